//! Publishing: the fast path, routing inside an account, stream feeds, service imports and their response routes, delivery to subscribers.

use super::*;
use latency::Failure;

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
                queues: QueueFilter::All,
                client_view: None,
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
                queues: QueueFilter::All,
                client_view: None,
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
        if !self.services.is_empty() {
            delivered += self.route_system_services(account, publish);
        }
        if self.mqtt_sessions.collects_in(account) {
            self.mqtt_collect(account, now, publish);
        }
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
        let taken = if publish.subject.starts_with(b"_R_.") {
            acc.responses.take(publish.subject, now)
        } else {
            None
        };
        if let Some(route) = taken.and_then(|t| self.live_route(now, account, t)) {
            if let Some(tracking) = route.tracking.as_deref() {
                self.latency_answered(now, account, tracking, from);
            }
            let Some(importer) = self.router.account_mut(route.importer) else {
                return 0;
            };
            let result = importer.sublist.matches(&route.reply);
            let response = PubRef {
                subject: &route.reply,
                client_view: None,
                ..*publish
            };
            return self.deliver_all(from, echo, now, &response, &result);
        }
        let Some(acc) = self.router.account_mut(account) else {
            return 0;
        };
        let Some(import) = acc
            .service_imports
            .iter()
            .find(|si| subject::matches(&si.local, publish.subject))
            .cloned()
        else {
            return 0;
        };
        let (tracked, header) = match import.latency.as_deref() {
            Some(latency) => self.sample_request(latency, publish),
            None => (false, None),
        };
        let tracking = match import.latency.as_deref() {
            Some(latency) if tracked && publish.reply.is_some() => {
                Some(self.start_tracking(&import, latency, from, header, now))
            }
            Some(latency) if tracked => {
                self.latency_bad_request(now, &import, latency, from, header);
                None
            }
            _ => None,
        };
        let reply = publish
            .reply
            .map(|reply| self.new_response_route(&import, account, reply, now, tracking));
        let remote: &[u8] = if subject::has_wildcard(&import.local) {
            publish.subject
        } else {
            &import.remote
        };
        let info = self.request_info(from, account, import.share);
        let (message, header_len) = with_header(publish, REQUEST_INFO_HEADER, &info);
        // Shared, so that a large request is queued by reference to every subscriber.
        let message = Bytes::from(message);
        let Some(exporter) = self.router.account_mut(import.exporter) else {
            return 0;
        };
        let result = exporter.sublist.matches(remote);
        let request = PubRef {
            subject: remote,
            reply: reply.as_deref(),
            header_len: Some(header_len),
            message: &message,
            shared: Some(&message),
            queues: QueueFilter::All,
            client_view: None,
        };
        let delivered = self.deliver_all(from, echo, now, &request, &result);
        if delivered == 0
            && let Some(reply) = &reply
        {
            // Nobody can answer a request no subscriber received: its route goes, and a
            // tracked one reports 503 (`removeRespServiceImport` with `rsiNoDelivery`).
            let dropped = self
                .router
                .account_mut(import.exporter)
                .and_then(|e| e.responses.drop_route(reply));
            if let Some(route) = dropped {
                self.latency_dropped(now, import.exporter, vec![route], Failure::NoDelivery);
            }
        }
        // The import itself is an interest (nats-server subscribes it in the importing
        // account), so a request to it never draws a no-responders status.
        delivered.max(1)
    }

    /// The `Nats-Request-Info` value a request carries into the exporting account: the
    /// requester's account and, once measured, its round-trip time in nanoseconds; through
    /// an import with `share`, its details as a latency measurement shows them
    /// (`server/client.go` `processServiceImport` and `getClientInfo`).
    pub(super) fn request_info(&self, from: ClientId, account: AccountId, share: bool) -> Vec<u8> {
        if share && let Some(info) = self.latency_client_info(from, true) {
            return serde_json::to_vec(&info).unwrap_or_default();
        }
        let name = self.router.account(account).map_or("", |a| &a.name);
        let mut info = b"{\"acc\":".to_vec();
        info.extend_from_slice(
            serde_json::to_string(name)
                .unwrap_or_else(|_| "\"\"".to_owned())
                .as_bytes(),
        );
        let rtt = self
            .client(from)
            .and_then(|c| c.rtt)
            .map_or(0, |d| d.as_nanos());
        if rtt > 0 {
            info.extend_from_slice(format!(",\"rtt\":{rtt}").as_bytes());
        }
        info.push(b'}');
        info
    }

    /// A fresh `_R_.` reply subject in the exporting account that routes responses to
    /// `reply` in the requester's account (`server/accounts.go` `newServiceReply`).
    pub(super) fn new_response_route(
        &mut self,
        import: &ServiceImport,
        importer: AccountId,
        reply: &[u8],
        now: Instant,
        tracking: Option<Box<latency::Tracking>>,
    ) -> Box<[u8]> {
        const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let route = ResponseRoute {
            importer,
            reply: reply.into(),
            response_type: import.response_type,
            expires: now.checked_add(import.threshold).unwrap_or(now),
            tracking,
        };
        let tracked = route.tracking.is_some();
        let expires = route.expires;
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
            let dropped = exporter.responses.insert(subject.clone(), route, now);
            if !dropped.is_empty() {
                self.latency_dropped(now, import.exporter, dropped, Failure::Timeout);
            }
            if tracked {
                self.watch_tracked_route(import.exporter, subject.clone(), expires);
            }
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
                client_view: None,
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
            publish.client_subject(),
            publish.client_reply(),
            publish.header_len.filter(|h| *h > 0),
            publish.message,
            shared,
        );
        rendered.keep_whole(result.fanout());
        let mut delivered = 0;
        for key in &result.plain {
            if self.deliver(from, echo, *key, now, publish, &mut rendered) {
                delivered += 1;
            }
        }
        for (queue, members) in &result.queues {
            if !matches!(publish.queues, QueueFilter::All)
                && !Self::queue_allowed(&publish.queues, queue)
            {
                continue;
            }
            let n = members.len();
            let start = self.rng.below(n);
            // A local member is preferred; a leaf's queue subscription takes the message
            // only when none can (`server/client.go` `processMsgResults`).
            let mut fallback = None;
            let mut done = false;
            for step in 0..n {
                let Some(key) = members.get((start + step) % n) else {
                    break;
                };
                match self.router.sub(*key).map(|s| (s.owner.is_leaf(), s.client)) {
                    Some((true, owner)) if owner != from && fallback.is_none() => {
                        fallback = Some((owner, *key));
                    }
                    Some((false, _))
                        if self.deliver(from, echo, *key, now, publish, &mut rendered) =>
                    {
                        delivered += 1;
                        done = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !done && let Some((owner, key)) = fallback {
                self.leaf_targets.push((owner, key, true));
            }
        }
        self.rendered = rendered;
        if !self.leaf_targets.is_empty() {
            delivered += self.deliver_to_leafs(from, now, publish);
        }
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
        rendered: &mut Rendered,
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
        if sub.owner.is_leaf() {
            // Written once per leaf after the match result is walked; never back to the leaf
            // the message came from.
            if target != from {
                self.leaf_targets.push((target, key, false));
            }
            return false;
        }
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
            .is_some_and(|p| p.deny_delivery(publish.client_subject()))
        {
            return false;
        }
        let measured = c.renderer.measure(c, &sub.sid, publish, rendered);
        if measured.mqtt == crate::mqtt::Delivery::Held {
            let sid = Arc::clone(&sub.sid);
            self.mqtt_hold(target, now, &sid, publish);
            return true;
        }
        let owed = c.pending();
        if owed + measured.queued > self.config.limits.max_pending {
            self.slow_consumer(target, now, CloseReason::SlowConsumerPendingBytes);
            return false;
        }
        let was_empty = owed == 0;
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
        if let Some(reply) = publish.client_reply()
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
            self.remove_sub(key, now);
        }
        if was_empty || measured.mqtt == crate::mqtt::Delivery::AtLeastOnce {
            // The write-deadline clock, or a QoS 1 redelivery time.
            self.reschedule(target);
        }
        if owed > self.config.limits.max_pending / 2 {
            self.stall_producer(from, target, owed, now);
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

/// The header nats-server stamps on a request that crosses a service import.
pub(super) const REQUEST_INFO_HEADER: &[u8] = b"Nats-Request-Info";

/// `publish`'s message with header `key` set to `value`, and the new header length, as
/// nats-server's `setHeader` (`server/client.go`) builds it: the original header block
/// without its first `key` line (a bare `NATS/1.0` line when there is none, or when removing
/// the line left no other), then `key: value`, then the payload. `value` holds no line break.
pub(super) fn with_header(publish: &PubRef<'_>, key: &[u8], value: &[u8]) -> (Vec<u8>, usize) {
    const HDR_LINE: &[u8] = b"NATS/1.0\r\n";
    let header_len = publish
        .header_len
        .filter(|h| *h > 2)
        .map_or(0, |h| h.min(publish.message.len()));
    let (header, payload) = publish.message.split_at(header_len);
    let mut out = Vec::with_capacity(publish.message.len() + key.len() + value.len() + 16);
    match header.get(..header_len.saturating_sub(2)) {
        Some(lines) if header_len > 0 => {
            if remove_header_line(lines, key, &mut out) && out.len() <= b"NATS/1.0\r\n\r\n".len() {
                out.clear();
            }
            if out.is_empty() {
                out.extend_from_slice(HDR_LINE);
            }
        }
        _ => out.extend_from_slice(HDR_LINE),
    }
    out.extend_from_slice(key);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n\r\n");
    let new_header_len = out.len();
    out.extend_from_slice(payload);
    (out, new_header_len)
}

/// Appends `lines` to `out` without the line of the first occurrence of `key`, when that
/// occurrence starts a line and is followed by `:` (`server/client.go`
/// `removeHeaderIfPresent`; a first occurrence elsewhere leaves every line in place).
/// Returns whether a line was removed.
fn remove_header_line(lines: &[u8], key: &[u8], out: &mut Vec<u8>) -> bool {
    let start = lines.windows(key.len().max(1)).position(|w| w == key);
    let removable = start.filter(|&start| {
        start >= 1
            && lines.get(start - 1) == Some(&b'\n')
            && lines.get(start + key.len()) == Some(&b':')
    });
    let end = removable.and_then(|start| {
        let rest = lines.get(start..).unwrap_or_default();
        rest.windows(2)
            .position(|w| w == b"\r\n")
            .map(|end| (start, start + end + 2))
    });
    let Some((start, end)) = end else {
        out.extend_from_slice(lines);
        return false;
    };
    out.extend_from_slice(lines.get(..start).unwrap_or_default());
    out.extend_from_slice(lines.get(end..).unwrap_or_default());
    true
}
