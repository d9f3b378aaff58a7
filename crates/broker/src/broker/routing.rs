//! Publishing: the fast path, routing inside an account, stream feeds, service imports and their response routes, delivery to subscribers.

use super::*;

impl Broker {
    /// Routes a complete PUB/HPUB found by [`Parser::peek_pub`] and consumes it from `src`.
    /// Small payloads are read in place; large ones are split off as shared `Bytes` so that
    /// every subscriber queues the same allocation.
    pub(super) fn fast_pub(
        &mut self,
        client: ClientId,
        now: Instant,
        src: &mut BytesMut,
        found: &PubRanges,
    ) {
        if found.size >= crate::outq::SHARE_THRESHOLD_BYTES {
            let head = src.split_to(found.payload_start).freeze();
            let message = src.split_to(found.size).freeze();
            src.advance(2);
            let range = |(start, end): (usize, usize)| head.get(start..end).unwrap_or_default();
            let publish = PubRef {
                subject: range(found.subject),
                reply: found.reply.map(range),
                header_len: found.header_len,
                message: &message,
                shared: Some(&message),
            };
            self.process_pub(client, now, &publish);
        } else {
            let buf: &[u8] = src;
            let range = |(start, end): (usize, usize)| buf.get(start..end).unwrap_or_default();
            let publish = PubRef {
                subject: range(found.subject),
                reply: found.reply.map(range),
                header_len: found.header_len,
                message: range((found.payload_start, found.payload_start + found.size)),
                shared: None,
            };
            self.process_pub(client, now, &publish);
            src.advance(found.total_len());
        }
    }

    pub(super) fn process_pub(&mut self, id: ClientId, now: Instant, publish: &PubRef<'_>) {
        if self.config.trace {
            let size = publish.message.len();
            self.trace(id, || {
                trace::publish(publish.subject, publish.reply, publish.header_len, size)
            });
            let max = self.config.max_traced_msg_len;
            self.trace(id, || trace::payload(publish.message, max));
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let subj = publish.subject;
        let size = publish.message.len() as u64;
        c.in_msgs += 1;
        c.in_bytes += size;
        c.last_activity = now;
        let pedantic = c.opts.pedantic;
        let verbose = c.opts.verbose;
        let echo = c.opts.echo;
        let no_responders = c.opts.no_responders;
        let account = c.auth.account;
        let gr_reply = subj.len() > 5 && subj.starts_with(b"_GR_.");
        let allowed = !gr_reply
            && c.auth
                .permissions
                .as_mut()
                .is_none_or(|p| p.can_publish(subj, now));
        self.stats.in_msgs += 1;
        self.stats.in_bytes += size;
        if pedantic && !subject::is_valid_literal(subj) {
            self.send_err(id, now, "Invalid Publish Subject");
        }
        if !allowed {
            let text = format!(
                "Permissions Violation for Publish to {}",
                auth::go_quote(subj)
            );
            self.send_err(id, now, &text);
            return;
        }
        if let Some(reply) = publish.reply
            && is_reserved_reply(reply)
        {
            let text = format!(
                "Permissions Violation for Publish with Reply of {}",
                auth::go_quote(reply)
            );
            self.send_err(id, now, &text);
            return;
        }
        if verbose {
            self.send_ok(id, now);
        }
        let delivered = self.route(id, account, echo, now, publish);
        if delivered == 0
            && no_responders
            && let Some(reply) = publish.reply
        {
            self.send_no_responders(id, now, reply);
        }
    }

    /// Delivers `publish`, published in `account`, to every match there and in the accounts
    /// that import it as a stream. Returns the number of deliveries.
    pub(super) fn route(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(acc) = self.router.account_mut(account) else {
            return 0;
        };
        acc.stats.in_msgs += 1;
        let result = acc.sublist.matches(publish.subject);
        let crossings = !acc.stream_feeds.is_empty()
            || !acc.service_imports.is_empty()
            || !acc.responses.is_empty();
        let mut delivered = self.deliver_all(from, echo, now, publish, &result);
        if crossings {
            delivered += self.route_feeds(from, account, echo, now, publish);
            if !self.router.account(account).is_some_and(|a| {
                a.service_imports.is_empty()
                    && (a.responses.is_empty() || !publish.subject.starts_with(b"_R_."))
            }) {
                delivered += self.route_services(from, account, echo, now, publish);
            }
        }
        delivered
    }

    /// Routes a service response back to its requester's account, and a request on an
    /// imported service into the exporting account with its reply rewritten to a `_R_.`
    /// subject that routes the responses back (`server/client.go` `processServiceImport`).
    pub(super) fn route_services(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(acc) = self.router.account_mut(account) else {
            return 0;
        };
        if publish.subject.starts_with(b"_R_.")
            && let Some(route) = acc.responses.take(publish.subject, now)
        {
            let Some(importer) = self.router.account_mut(route.importer) else {
                return 0;
            };
            let result = importer.sublist.matches(&route.reply);
            let response = PubRef {
                subject: &route.reply,
                ..*publish
            };
            return self.deliver_all(from, echo, now, &response, &result);
        }
        let Some(import) = acc
            .service_imports
            .iter()
            .find(|si| subject::matches(&si.local, publish.subject))
            .cloned()
        else {
            return 0;
        };
        let reply = publish
            .reply
            .map(|reply| self.new_response_route(&import, account, reply, now));
        let remote: &[u8] = if subject::has_wildcard(&import.local) {
            publish.subject
        } else {
            &import.remote
        };
        let Some(exporter) = self.router.account_mut(import.exporter) else {
            return 0;
        };
        let result = exporter.sublist.matches(remote);
        let request = PubRef {
            subject: remote,
            reply: reply.as_deref(),
            ..*publish
        };
        // The import itself is an interest (nats-server subscribes it in the importing
        // account), so a request to it never draws a no-responders status.
        self.deliver_all(from, echo, now, &request, &result).max(1)
    }

    /// A fresh `_R_.` reply subject in the exporting account that routes responses to
    /// `reply` in the requester's account (`server/accounts.go` `newServiceReply`).
    pub(super) fn new_response_route(
        &mut self,
        import: &ServiceImport,
        importer: AccountId,
        reply: &[u8],
        now: Instant,
    ) -> Box<[u8]> {
        const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let route = ResponseRoute {
            importer,
            reply: reply.into(),
            response_type: import.response_type,
            expires: now.checked_add(import.threshold).unwrap_or(now),
        };
        loop {
            let mut subject = b"_R_.".to_vec();
            for part in [self.rng.next_u64(), self.rng.next_u64()] {
                let mut n = part;
                for _ in 0..10 {
                    subject.push(DIGITS.get((n % 62) as usize).copied().unwrap_or(b'0'));
                    n /= 62;
                }
                subject.push(b'.');
            }
            subject.pop();
            let subject: Box<[u8]> = subject.into();
            let Some(exporter) = self.router.account_mut(import.exporter) else {
                return subject;
            };
            if exporter.responses.contains(&subject) {
                continue;
            }
            exporter.responses.insert(subject.clone(), route, now);
            return subject;
        }
    }

    /// Routes `publish` into every account importing it from `account` as a stream, under
    /// the subject the import gives it. One hop: a message an account received through an
    /// import is not forwarded by that account's own exports, so no configuration can loop.
    pub(super) fn route_feeds(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(feeds) = self.router.account(account).map(|a| a.stream_feeds.clone()) else {
            return 0;
        };
        let mut mapped = std::mem::take(&mut self.mapped_subject);
        let mut delivered = 0;
        for feed in &feeds {
            if !subject::matches(&feed.from, publish.subject) {
                continue;
            }
            feed.map.apply(publish.subject, &mut mapped);
            let Some(importer) = self.router.account_mut(feed.importer) else {
                continue;
            };
            let result = importer.sublist.matches(&mapped);
            let imported = PubRef {
                subject: &mapped,
                ..*publish
            };
            delivered += self.deliver_all(from, echo, now, &imported, &result);
        }
        self.mapped_subject = mapped;
        delivered
    }

    /// Delivers `publish` to the subscriptions of one match result: every plain one and one
    /// member per queue group. Inlined: it is the whole of routing within one account, and a
    /// call here cost about 70 instructions per message (callgrind, `examples/hotpath.rs`).
    #[inline(always)]
    pub(super) fn deliver_all(
        &mut self,
        from: ClientId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
        result: &MatchResult<SubKey>,
    ) -> usize {
        if result.fanout() == 0 {
            return 0;
        }
        // The MSG text is rendered once; each delivery adds only its sid.
        let mut rendered = std::mem::take(&mut self.rendered);
        let shared =
            publish.shared.is_some() && publish.message.len() >= crate::outq::SHARE_THRESHOLD_BYTES;
        rendered.render(
            publish.subject,
            publish.reply,
            publish.header_len.filter(|h| *h > 0),
            publish.message,
            shared,
        );
        let mut delivered = 0;
        for key in &result.plain {
            if self.deliver(from, echo, *key, now, publish, &rendered) {
                delivered += 1;
            }
        }
        for (_, members) in &result.queues {
            let n = members.len();
            let start = self.rng.below(n);
            for step in 0..n {
                let Some(key) = members.get((start + step) % n) else {
                    break;
                };
                if self.deliver(from, echo, *key, now, publish, &rendered) {
                    delivered += 1;
                    break;
                }
            }
        }
        self.rendered = rendered;
        delivered
    }

    /// Appends one `MSG`/`HMSG` to the subscriber's queue. The subscription and the client are
    /// borrowed from their tables side by side, so nothing is cloned per delivery.
    pub(super) fn deliver(
        &mut self,
        from: ClientId,
        echo: bool,
        key: SubKey,
        now: Instant,
        publish: &PubRef<'_>,
        rendered: &Rendered,
    ) -> bool {
        let Some(sub) = self
            .router
            .subs
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
            .and_then(|slot| slot.sub.as_mut())
        else {
            return false;
        };
        let target = sub.client;
        if target == from && !echo {
            return false;
        }
        let Some(c) = self
            .slots
            .get_mut(target.index as usize)
            .filter(|slot| slot.generation == target.generation)
            .and_then(|slot| slot.client.as_mut())
            .filter(|c| !c.phase.is_closed())
        else {
            return false;
        };
        if c.auth
            .permissions
            .as_mut()
            .is_some_and(|p| p.deny_delivery(publish.subject))
        {
            return false;
        }
        let measured = c.renderer.measure(c, &sub.sid, publish, rendered);
        if c.pending() + measured.queued > self.config.limits.max_pending {
            self.slow_consumer(target, now, CloseReason::SlowConsumerPendingBytes);
            return false;
        }
        let was_empty = c.pending() == 0;
        let body_len = c
            .renderer
            .write(c, &sub.sid, publish, rendered, &measured, now);
        if self.config.trace {
            let line = c.renderer.trace(c, &sub.sid, publish);
            self.events.push_back(Event::Trace {
                client: target,
                line,
            });
        }
        c.out_msgs += 1;
        c.out_bytes += body_len;
        c.last_activity = now;
        if let Some(reply) = publish.reply
            && let Some(p) = c.auth.permissions.as_mut()
        {
            p.record_reply(reply, now);
        }
        if was_empty {
            c.stall_since = Some(now);
            c.consumed_seen = c.out.consumed();
        }
        if !c.flush_requested {
            c.flush_requested = true;
            self.events.push_back(Event::Flush(target));
        }
        self.stats.out_msgs += 1;
        self.stats.out_bytes += body_len;
        sub.delivered += 1;
        if sub.max.is_some_and(|m| sub.delivered >= m.get()) {
            self.remove_sub(key);
        }
        if was_empty || measured.mqtt == crate::mqtt::Delivery::AtLeastOnce {
            // The write-deadline clock, or a QoS 1 redelivery time.
            self.reschedule(target);
        }
        true
    }

    pub(super) fn send_no_responders(&mut self, id: ClientId, now: Instant, reply: &[u8]) {
        let Some(account) = self.client(id).map(|c| c.auth.account) else {
            return;
        };
        let Some(acc) = self.router.account_mut(account) else {
            return;
        };
        let result = acc.sublist.matches(reply);
        let sid = result
            .plain
            .iter()
            .filter_map(|k| self.router.sub(*k))
            .find(|s| s.client == id)
            .map(|s| Arc::clone(&s.sid));
        let Some(sid) = sid else {
            return;
        };
        let mut line = Vec::with_capacity(64);
        line.extend_from_slice(b"HMSG ");
        line.extend_from_slice(reply);
        line.push(b' ');
        line.extend_from_slice(&sid);
        line.extend_from_slice(b" 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
        self.queue_bytes(id, now, &line);
    }
}
