//! Fast producers: a client whose messages go to a connection that has fallen behind (more
//! than half of `max_pending` owed to it) stops being read until that connection drains
//! below half, or for at most a stall time of 100 ms to 1 s — the back-pressure nats-server
//! applies (`server/client.go`: `queueOutbound` marks the stalled connection, `deliverMsg`
//! makes the producer wait in `stalledWait`, `flushOutbound` releases it; `stallDuration`).
//!
//! nats-server blocks the producer's read loop just before the delivery. A broker without
//! threads cannot, so the delivery is made and the producer's input stops after the operation
//! that made it: [`crate::Broker::handle_input`] leaves the rest in the caller's buffer, the
//! caller stops reading the connection while [`crate::Broker::is_stalled`] says so, and
//! [`crate::Event::Resumed`] says when to hand that input back. Only client connections
//! (NATS, WebSocket, MQTT) are stalled; a leaf's messages are not, as nats-server does not
//! stall routes or leafs. What a producer can add to a stalled connection before it stops is
//! one operation's deliveries, and `max_pending` still bounds the connection.

use std::time::{Duration, Instant};

use super::Broker;
use crate::types::{ClientId, Event};

/// The shortest stall (`stallClientMinDuration`).
pub(crate) const STALL_MIN: Duration = Duration::from_millis(100);
/// The longest stall (`stallClientMaxDuration`).
pub(crate) const STALL_MAX: Duration = Duration::from_secs(1);

/// A producer waiting for a connection it feeds to drain.
#[derive(Debug)]
pub(crate) struct ProducerStall {
    /// The connection that fell behind.
    pub(crate) target: ClientId,
    /// When the producer is resumed even if `target` has not drained.
    pub(crate) until: Instant,
    /// How long the stall was set to last (for the log line when it runs out).
    pub(crate) ttl: Duration,
}

/// How long a producer waits for a connection that owes `pending` of `max_pending` bytes:
/// 100 ms, plus 100 ms for every tenth of the upper half that is filled, and 1 s once the
/// connection is full (`server/client.go` `stallDuration`).
#[must_use]
pub(crate) fn stall_duration(pending: usize, max_pending: usize) -> Duration {
    if pending >= max_pending {
        return STALL_MAX;
    }
    let half = max_pending / 2;
    let step = half / 10;
    if pending <= half || step == 0 {
        return STALL_MIN;
    }
    let steps = u32::try_from((pending - half) / step).unwrap_or(u32::MAX);
    STALL_MIN.saturating_add(STALL_MIN.saturating_mul(steps))
}

impl Broker {
    /// Whether the client's input is paused because a connection it publishes to fell
    /// behind: do not read it until [`Event::Resumed`] names it.
    #[must_use]
    pub fn is_stalled(&self, client: ClientId) -> bool {
        self.client(client)
            .is_some_and(|c| c.producer_stall.is_some())
    }

    /// A delivery from `producer` went to `target`, which already owed `pending` bytes, more
    /// than half of `max_pending`: pauses the producer's input unless it is not a client or
    /// is paused already.
    #[cold]
    pub(super) fn stall_producer(
        &mut self,
        producer: ClientId,
        target: ClientId,
        pending: usize,
        now: Instant,
    ) {
        let ttl = stall_duration(pending, self.config.limits.max_pending);
        let Some(p) = self.open_client_mut(producer) else {
            return;
        };
        if p.leaf.is_some() || p.producer_stall.is_some() {
            return;
        }
        let Some(until) = now.checked_add(ttl) else {
            return;
        };
        p.producer_stall = Some(Box::new(ProducerStall { target, until, ttl }));
        self.stalled_on.entry(target).or_default().push(producer);
        self.reschedule(producer);
    }

    /// `target` wrote some of what it owed: once it owes less than half of `max_pending`,
    /// every producer waiting for it is resumed (`flushOutbound`).
    pub(super) fn release_if_drained(&mut self, target: ClientId) {
        if self.stalled_on.is_empty() || !self.stalled_on.contains_key(&target) {
            return;
        }
        let half = self.config.limits.max_pending / 2;
        if self
            .client(target)
            .is_some_and(|c| !c.phase.is_closed() && c.pending() >= half && c.pending() > 0)
        {
            return;
        }
        self.release_stalled_on(target);
    }

    /// Resumes every producer waiting for `target` (it drained or closed).
    pub(super) fn release_stalled_on(&mut self, target: ClientId) {
        if self.stalled_on.is_empty() {
            return;
        }
        let Some(producers) = self.stalled_on.remove(&target) else {
            return;
        };
        for producer in producers {
            let Some(p) = self.client_mut(producer) else {
                continue;
            };
            if p.producer_stall
                .as_ref()
                .is_some_and(|s| s.target == target)
            {
                p.producer_stall = None;
                self.events.push_back(Event::Resumed {
                    client: producer,
                    timed_out: None,
                });
            }
        }
    }

    /// The producer's stall time ran out (its timer fired at `now`): it is resumed whether or
    /// not its target drained; the next delivery to a connection still behind stalls it again.
    pub(super) fn stall_timer(&mut self, producer: ClientId, now: Instant) {
        let Some(p) = self.client_mut(producer) else {
            return;
        };
        let Some(stall) = p.producer_stall.take_if(|s| s.until <= now) else {
            return;
        };
        self.forget_stall(producer, stall.target);
        self.events.push_back(Event::Resumed {
            client: producer,
            timed_out: Some(stall.ttl),
        });
    }

    /// A closing producer leaves its target's list of waiting producers.
    pub(super) fn drop_stall(&mut self, producer: ClientId) {
        let Some(stall) = self
            .client_mut(producer)
            .and_then(|p| p.producer_stall.take())
        else {
            return;
        };
        self.forget_stall(producer, stall.target);
    }

    /// Every stalled producer is open and listed once, under its target; every listed
    /// producer is stalled on that target.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn check_stalls(&self) -> Result<(), String> {
        let mut listed = 0usize;
        for (target, producers) in &self.stalled_on {
            if producers.is_empty() {
                return Err("empty list of stalled producers kept".to_owned());
            }
            for p in producers {
                let c = self
                    .client(*p)
                    .ok_or("a removed producer is listed as stalled")?;
                if c.phase.is_closed() {
                    return Err(format!("closed cid {} listed as stalled", c.cid));
                }
                if c.producer_stall.as_ref().map(|s| s.target) != Some(*target) {
                    return Err(format!(
                        "cid {} listed under a target it waits not for",
                        c.cid
                    ));
                }
                listed += 1;
            }
        }
        let stalled = self
            .slots
            .iter()
            .filter_map(|s| s.client.as_ref())
            .filter(|c| c.producer_stall.is_some())
            .count();
        if stalled != listed {
            return Err(format!("{stalled} stalled producers, {listed} listed"));
        }
        Ok(())
    }

    fn forget_stall(&mut self, producer: ClientId, target: ClientId) {
        if let Some(list) = self.stalled_on.get_mut(&target) {
            list.retain(|p| *p != producer);
            if list.is_empty() {
                self.stalled_on.remove(&target);
            }
        }
    }
}

#[cfg(test)]
mod tests;
