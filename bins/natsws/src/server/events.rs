//! The broker's events (flush, close, log lines, password checks) and the bcrypt verdicts
//! that come back from the hasher threads through the loop's waker.

use std::time::Instant;

use broker::{ClientId, CloseReason, Event};

use super::ctx::Ctx;
use crate::hasher::{self, Hasher};

/// The bcrypt workers and the re-checks a reload asked for.
#[derive(Debug)]
pub(super) struct PasswordChecks {
    hasher: Hasher,
    /// The password re-checks the last reload asked for, still queued.
    recheck_jobs: Vec<hasher::Withdraw>,
}

impl PasswordChecks {
    pub(super) fn new(hasher: Hasher) -> Self {
        Self {
            hasher,
            recheck_jobs: Vec::new(),
        }
    }

    /// A new configuration re-checks every session afresh: re-checks still queued from an
    /// earlier reload are moot.
    pub(super) fn cancel_rechecks(&mut self) {
        for job in self.recheck_jobs.drain(..) {
            job.withdraw();
        }
    }
}

/// Acts on everything the broker emitted: flushes, closes, log lines, password checks.
pub(super) fn drain(ctx: &mut Ctx, checks: &mut PasswordChecks, now: Instant) {
    while let Some(ev) = ctx.broker.poll_event() {
        match ev {
            Event::SystemRequest {
                service,
                subject,
                reply,
                payload,
                header_len,
            } => {
                let request = super::claims::Request {
                    service,
                    subject: &subject,
                    reply: reply.as_deref(),
                    message: &payload,
                    header_len,
                };
                super::claims::serve(ctx, &request, now);
            }
            Event::Flush(client) => {
                if let Some(key) = ctx.conns.conn_of(client) {
                    ctx.conns.mark_dirty(key);
                }
            }
            Event::Closed { client, reason } => {
                ctx.monitor.ops.closed(reason);
                let Some(key) = ctx.conns.conn_of(client) else {
                    ctx.broker.remove_client(client, now);
                    continue;
                };
                let leaf_connected = ctx.conns.get(key).and_then(|c| match &c.kind {
                    super::table::Kind::Leaf { link, .. } => Some(link.connected),
                    _ => ctx.broker.is_leaf(client).then_some(true),
                });
                if let Some(c) = ctx.conns.get_mut(key)
                    && let Some(connected) = leaf_connected
                {
                    c.close_reason = Some(reason);
                    let account = ctx
                        .broker
                        .client_summary(client, now)
                        .map(|i| i.account)
                        .unwrap_or_default();
                    // A dial that failed is reported by the retry, not as a closed connection.
                    if connected {
                        log::info!(
                            "{} - Leafnode connection closed: {reason} account: {account}",
                            c.log_id
                        );
                    }
                } else if let Some(c) = ctx.conns.get_mut(key) {
                    c.close_reason = Some(reason);
                    if reason == CloseReason::MaxConnectionsExceeded {
                        // nats-server's maxConnExceeded: sendErrAndErr.
                        log::error!("{} - maximum connections exceeded", c.log_id);
                    }
                    log::debug!("{} - Client connection closed: {reason}", c.log_id);
                }
                ctx.conns.schedule_reap(key, now, reason.flushes());
            }
            Event::Connected(client) => name_in_log(ctx, client, now),
            Event::SlowConsumer {
                client,
                reason,
                pending_bytes,
                chunks,
            } => {
                if let Some(c) = ctx.conns.conn_of(client).and_then(|k| ctx.conns.get(k)) {
                    // nats-server's texts (`client.go`, queueOutbound and
                    // handleWriteTimeout), logged as notices.
                    if reason == CloseReason::SlowConsumerWriteDeadline {
                        log::info!(
                            "{} - Slow Consumer Detected: WriteDeadline of {} exceeded with {chunks} chunks of {pending_bytes} total bytes.",
                            c.log_id,
                            gotext::format_std_duration(ctx.broker.config().write_deadline),
                        );
                    } else {
                        log::info!(
                            "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                            c.log_id,
                            ctx.broker.config().limits.max_pending,
                        );
                    }
                }
            }
            Event::SubscriptionRemoved { detail, .. } => log::info!("{detail}"),
            Event::LeafStartTls(client) => super::link::start_tls(ctx, client, now),
            Event::LeafConnected {
                client,
                account,
                remote_name,
            } => {
                if let Some(key) = ctx.conns.conn_of(client) {
                    if let Some(c) = ctx.conns.get(key) {
                        log::debug!(
                            "{} - Leafnode handshake complete with {remote_name:?} (account {account})",
                            c.log_id
                        );
                    }
                    if let Some(c) = ctx.conns.get(key)
                        && let super::table::Kind::Leaf { link, .. } = &c.kind
                    {
                        ctx.link_events
                            .push(super::table::LinkEvent::Established { link: link.link });
                    }
                }
            }
            Event::MqttHeldDropped {
                account,
                client_id,
                dropped,
                max_msgs,
                max_bytes,
            } => {
                log::warn!(
                    "MQTT client {client_id:?} (account {account}): held QoS 1 messages at their \
                     bound ({max_msgs} messages, {max_bytes} bytes), dropping the oldest \
                     ({dropped} now, more may follow until the client catches up)"
                );
            }
            Event::LeafNotice { client, text } => {
                if let Some(c) = ctx.conns.conn_of(client).and_then(|k| ctx.conns.get(k)) {
                    log::info!("{} - {text}", c.log_id);
                }
            }
            Event::LeafError { client, text } => {
                if let Some(c) = ctx.conns.conn_of(client).and_then(|k| ctx.conns.get(k)) {
                    log::error!("{} - Leafnode Error '{text}'", c.log_id);
                }
            }
            Event::LeafReconnectDelay { client, delay } => {
                if let Some(c) = ctx.conns.conn_of(client).and_then(|k| ctx.conns.get_mut(k))
                    && let super::table::Kind::Leaf { link, .. } = &mut c.kind
                {
                    link.delay = Some(delay);
                }
            }
            Event::ClientError { client, detail } => {
                if let Some(key) = ctx.conns.conn_of(client)
                    && let Some(c) = ctx.conns.get(key)
                {
                    log::error!("{} - {detail}", c.log_id);
                }
            }
            Event::Resumed { client, timed_out } => {
                let Some(key) = ctx.conns.conn_of(client) else {
                    continue;
                };
                if let (Some(ttl), Some(c)) = (timed_out, ctx.conns.get(key)) {
                    log::debug!(
                        "{} - Timed out of fast producer stall ({})",
                        c.log_id,
                        gotext::format_std_duration(ttl)
                    );
                }
                // Parse what the producer left, then read what waited in its socket.
                super::driver::process_input(ctx, key, now);
                ctx.conns.queue_ready(key);
            }
            Event::Trace { client, line } => {
                if let Some(key) = ctx.conns.conn_of(client)
                    && let Some(c) = ctx.conns.get(key)
                {
                    log::trace!("{} - {line}", c.log_id);
                }
            }
            Event::CheckPassword {
                client,
                check,
                parked,
            } => {
                let key = ctx.conns.conn_of(client);
                let source = match key.and_then(|k| ctx.conns.get(k)) {
                    Some(c) if parked => hasher::Source::Client(c.peer.ip()),
                    _ => hasher::Source::Recheck,
                };
                let submitted = checks.hasher.submit(client, source, check);
                if parked {
                    // The connection is not read until the verdict is in (even one
                    // answered at once waits in the hasher until the next wake-up), and
                    // closing it withdraws a queued check.
                    if let Some(c) = key.and_then(|k| ctx.conns.get_mut(k)) {
                        c.auth_parked = Some(submitted);
                    }
                } else if let hasher::Submitted::Queued(withdraw) = submitted {
                    // A re-check after a reload may stand for several clients: only the
                    // next reload withdraws it.
                    checks.recheck_jobs.push(withdraw);
                }
            }
            Event::AuthReason {
                client,
                reason,
                error,
            } => {
                name_in_log(ctx, client, now);
                if let Some(key) = ctx.conns.conn_of(client)
                    && let Some(c) = ctx.conns.get(key)
                {
                    if error {
                        log::error!("{} - {reason}", c.log_id);
                    } else {
                        log::debug!("{} - {reason}", c.log_id);
                    }
                }
            }
            Event::AuthFailed { client, detail } => {
                ctx.monitor.ops.auth_failed();
                // nats-server names the client from its CONNECT before authenticating it.
                name_in_log(ctx, client, now);
                if let Some(key) = ctx.conns.conn_of(client)
                    && let Some(c) = ctx.conns.get(key)
                {
                    // `detail` is the whole reference text ("authentication error - User
                    // \"bob\"").
                    if detail.is_empty() {
                        log::error!("{} - authentication error", c.log_id);
                    } else {
                        log::error!("{} - {detail}", c.log_id);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Appends nats-server's `"v<version>:<lang>:<name>"` (empty parts left out) to the
/// client's log prefix once its CONNECT has been read.
fn name_in_log(ctx: &mut Ctx, client: ClientId, now: Instant) {
    let Some(key) = ctx.conns.conn_of(client) else {
        return;
    };
    if ctx.conns.get(key).is_none_or(|c| c.log_named) {
        return;
    }
    let Some(info) = ctx.broker.client_summary(client, now) else {
        return;
    };
    let mut parts: Vec<String> = Vec::new();
    if !info.version.is_empty() {
        parts.push(format!("v{}", info.version));
    }
    parts.extend([info.lang, info.name].into_iter().filter(|s| !s.is_empty()));
    if let Some(c) = ctx.conns.get_mut(key)
        && !parts.is_empty()
    {
        let ncs = broker::auth::go_quote(parts.join(":").as_bytes());
        c.log_id = format!("{} - {ncs}", c.log_id);
        c.log_named = true;
    }
}

/// Resumes clients whose password check finished.
pub(super) fn password_verdicts(ctx: &mut Ctx, checks: &PasswordChecks, now: Instant) {
    while let Some(v) = checks.hasher.poll() {
        ctx.broker
            .password_checked(v.client, &v.check, v.verified, now);
        // After a reload the broker may have asked for another check instead; a verdict
        // for a re-check of a running client resumes nothing.
        if let Some(key) = ctx.conns.conn_of(v.client)
            && !ctx.broker.is_parked(v.client)
            && let Some(c) = ctx.conns.get_mut(key)
            && c.auth_parked.is_some()
        {
            c.auth_parked = None;
            // Parse what arrived with the CONNECT, then read what came meanwhile.
            super::driver::process_input(ctx, key, now);
            ctx.conns.queue_ready(key);
        }
    }
}
