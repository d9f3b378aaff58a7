//! Flushes, transport backlog, per-client deadlines (auth, ping, write), lame duck.

use super::*;

impl Broker {
    /// Tells the broker that the binary wrote from the client's queue at `now` (progress
    /// resets the write-deadline clock). Optional but keeps the slow-consumer timing exact.
    pub fn handle_flushed(&mut self, client: ClientId, now: Instant) {
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        if c.out.is_empty() {
            c.out.shrink_if_idle();
        }
        if c.pending() == 0 {
            c.stall_since = None;
        } else if c.out.consumed() != c.consumed_seen {
            c.consumed_seen = c.out.consumed();
            c.stall_since = Some(now);
        }
        self.reschedule(client);
        self.release_if_drained(client);
    }

    /// Tells the broker how many bytes the transport holds for the client outside its queue:
    /// output already framed but not yet written, and replies the transport owes the peer on
    /// its own (WebSocket pongs and close frames). They count toward `max_pending` and the
    /// write deadline as queued output does, as nats-server counts its WebSocket frames and
    /// control messages in the client's pending bytes (`server/websocket.go`,
    /// `wsEnqueueControlMessageLocked`). A backlog that shrank is progress. Over
    /// `max_pending` the client is closed as a slow consumer: poll events afterwards.
    pub fn set_transport_backlog(&mut self, client: ClientId, bytes: usize, now: Instant) {
        let max_pending = self.config.limits.max_pending;
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        let before = c.backlog;
        if before == bytes {
            return;
        }
        let was_empty = c.pending() == 0;
        c.backlog = bytes;
        if c.pending() > max_pending {
            self.slow_consumer(client, now, CloseReason::SlowConsumerPendingBytes);
            return;
        }
        if c.pending() == 0 {
            c.stall_since = None;
        } else if was_empty || bytes < before {
            // Output appeared, or some of it was written: the write-deadline clock (re)starts.
            c.stall_since = Some(now);
            c.consumed_seen = c.out.consumed();
        }
        self.reschedule(client);
    }

    pub(super) fn client_deadline(&self, c: &Client) -> Option<Instant> {
        let stall = if c.pending() == 0 {
            None
        } else {
            c.stall_since
                .and_then(|s| s.checked_add(self.config.write_deadline))
        };
        let redelivery = c.mqtt.as_ref().and_then(|m| m.peek_due());
        let persist = c.mqtt.as_ref().and_then(|m| m.persist_due);
        let resume = c.producer_stall.as_ref().map(|s| s.until);
        let refused = c.leaf.as_ref().and_then(|l| match l.stage {
            leaf::LeafStage::Refused { until } => Some(until),
            _ => None,
        });
        [
            resume,
            refused,
            c.auth.deadline,
            c.ping_deadline,
            stall,
            c.auth.expiry.map(|(at, _)| at),
            redelivery,
            persist,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn reschedule(&mut self, id: ClientId) {
        let Some(c) = self.client(id) else {
            return;
        };
        if c.phase.is_closed() {
            return;
        }
        let Some(deadline) = self.client_deadline(c) else {
            return;
        };
        let push = c.scheduled.is_none_or(|s| deadline < s);
        if push {
            if let Some(c) = self.client_mut(id) {
                c.scheduled = Some(deadline);
            }
            self.timers
                .push(Reverse((deadline, id.index, id.generation)));
        }
    }

    /// The earliest deadline over all clients (auth timeout, ping, write deadline, MQTT
    /// redelivery and session records to write) and tracked service requests (their
    /// response threshold), or `None`.
    /// May be earlier than necessary (a spurious [`Broker::handle_timeout`] is harmless).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let client = self.timers.peek().map(|Reverse((t, _, _))| *t);
        [client, self.mqtt_store_due, self.latency_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer due at `now`: auth timeouts, pings and stale connections, write
    /// deadlines, the response thresholds of tracked service requests. Then poll events and
    /// re-read [`Broker::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fire_latency_timers(now);
        if self.mqtt_store_due.is_some_and(|d| d <= now) {
            self.persist_kept_sessions();
        }
        while let Some(Reverse((deadline, index, generation))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let id = ClientId { index, generation };
            let Some(c) = self.client_mut(id) else {
                continue;
            };
            if c.scheduled != Some(deadline) {
                continue;
            }
            c.scheduled = None;
            self.fire_client_timers(id, now);
            self.reschedule(id);
        }
    }

    pub(super) fn fire_client_timers(&mut self, id: ClientId, now: Instant) {
        self.stall_timer(id, now);
        let write_deadline = self.config.write_deadline;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if let Some(leaf::LeafStage::Refused { until }) = c.leaf.as_ref().map(|l| l.stage)
            && until <= now
        {
            self.close(id, now, CloseReason::MinimumVersionRequired);
            return;
        }
        let leaf_handshaking = c
            .leaf
            .as_ref()
            .is_some_and(|l| l.is_solicited() && l.stage != leaf::LeafStage::Open);
        if c.auth.deadline.is_some_and(|d| d <= now) && leaf_handshaking {
            self.send_err(id, now, "Stale Leaf Node Connection - Closing");
            self.close(id, now, CloseReason::StaleConnection);
            return;
        }
        if c.auth.deadline.is_some_and(|d| d <= now) && c.phase.awaiting_auth() {
            self.send_err(id, now, "Authentication Timeout");
            self.close(id, now, CloseReason::AuthenticationTimeout);
            return;
        }
        if let Some((at, text)) = c.auth.expiry
            && at <= now
            && c.phase == Phase::Connected
        {
            c.auth.expiry = None;
            self.send_err(id, now, text);
            self.close(id, now, CloseReason::AuthenticationExpired);
            return;
        }
        if c.pending() > 0 {
            if c.out.consumed() != c.consumed_seen {
                c.consumed_seen = c.out.consumed();
                c.stall_since = Some(now);
            } else if c
                .stall_since
                .and_then(|s| s.checked_add(write_deadline))
                .is_some_and(|d| d <= now)
            {
                self.slow_consumer(id, now, CloseReason::SlowConsumerWriteDeadline);
                return;
            }
        } else {
            c.stall_since = None;
        }
        if c.mqtt.is_some() {
            self.mqtt_redeliver(id, now);
            let persist_due = self
                .client(id)
                .and_then(|c| c.mqtt.as_ref())
                .and_then(|m| m.persist_due);
            if persist_due.is_some_and(|d| d <= now) {
                if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                    m.persist_due = None;
                }
                self.persist_live_session(id);
            }
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if c.ping_deadline.is_some_and(|d| d <= now) {
            if c.mqtt.is_some() {
                // Nothing arrived for one and a half keep-alive periods (MQTT-3.1.2-24).
                self.close(id, now, CloseReason::StaleConnection);
            } else {
                self.ping_timer(id, now);
            }
        }
    }

    pub(super) fn ping_timer(&mut self, id: ClientId, now: Instant) {
        let interval = self.config.ping_interval;
        let ping_max = self.config.ping_max;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let need_rtt = c.rtt.is_none()
            || c.rtt_start
                .is_none_or(|s| now.saturating_duration_since(s) > RTT_MEASUREMENT_INTERVAL);
        let recent_activity = now.saturating_duration_since(c.last_activity) < interval;
        let recent_ping = c
            .last_client_ping
            .is_some_and(|p| now.saturating_duration_since(p) < interval);
        let send = need_rtt || !(recent_activity || recent_ping);
        c.ping_deadline = now.checked_add(interval);
        c.out.release_if_quiet();
        if send {
            if c.pings_out + 1 > ping_max {
                self.send_err(id, now, "Stale Connection");
                self.close(id, now, CloseReason::StaleConnection);
                return;
            }
            c.pings_out += 1;
            c.rtt_start = Some(now);
            self.trace(id, || trace::op(false, "PING", &[]));
            self.queue_bytes(id, now, b"PING\r\n");
        }
    }

    /// Lame-duck notice (`server/server.go` `sendLDMToClients`): every open client that sent
    /// CONNECT with `protocol` ≥ 1 and already got its first PONG receives an INFO with
    /// `"ldm":true`. Poll events afterwards.
    pub fn lame_duck_notice(&mut self, now: Instant) {
        for id in self.clients() {
            let eligible = self
                .client(id)
                .is_some_and(|c| !c.phase.is_closed() && c.opts.protocol >= 1 && c.first_pong_sent);
            if eligible {
                let info = self.build_info(id, true);
                self.queue_bytes(id, now, &info);
            }
        }
    }
}
