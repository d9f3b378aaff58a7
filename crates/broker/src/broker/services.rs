//! System services: subjects the server itself answers in the system account, as
//! nats-server's internal subscriptions (`server/events.go` `sysSubscribe`).
//!
//! The broker only routes: a message published in the system account whose subject matches a
//! service becomes an [`Event::SystemRequest`] (the whole message, headers included, as
//! nats-server's system client receives it), and the binary, which does the work (reading
//! and writing files, say), answers with [`Broker::publish_system`]. A service counts as an
//! interest, so a request to it never draws a no-responders status.

use super::*;

/// A system service, as [`Broker::add_system_service`] returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId(pub(crate) u32);

impl ServiceId {
    /// The index of the service: the order of the [`Broker::add_system_service`] calls.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why [`Broker::add_system_service`] refused a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The subject is not a valid subscription subject.
    InvalidSubject,
    /// [`MAX_SYSTEM_SERVICES`] are registered already.
    TooMany,
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidSubject => "invalid system service subject",
            Self::TooMany => "too many system services",
        })
    }
}

/// Most system services one broker holds (every message in the system account is matched
/// against each).
pub const MAX_SYSTEM_SERVICES: usize = 64;

/// The sender of the server's own messages: no client has this id.
pub(super) const SERVER: ClientId = ClientId {
    index: u32::MAX,
    generation: u32::MAX,
};

impl Broker {
    /// Registers a system service on `subject` (wildcards allowed). Messages published in the
    /// system account that match it are handed out as [`Event::SystemRequest`]s; without a
    /// system account nothing matches. Services stay across reloads.
    pub fn add_system_service(&mut self, subject: &str) -> Result<ServiceId, ServiceError> {
        if subject.bytes().any(|b| b.is_ascii_whitespace())
            || !subject::is_valid_subscription(subject.as_bytes())
        {
            return Err(ServiceError::InvalidSubject);
        }
        if self.services.len() >= MAX_SYSTEM_SERVICES {
            return Err(ServiceError::TooMany);
        }
        let id = ServiceId(u32::try_from(self.services.len()).unwrap_or(u32::MAX));
        self.services.push(subject.as_bytes().into());
        Ok(id)
    }

    /// Publishes `payload` on `subject` in the system account as the server (an answer to an
    /// [`Event::SystemRequest`]). Does nothing without a system account or for an invalid
    /// subject. Poll events afterwards (the subscribers' flushes).
    pub fn publish_system(&mut self, now: Instant, subject: &str, payload: &[u8]) {
        let Some(system) = self.router.system_account() else {
            return;
        };
        if !subject::is_valid_literal(subject.as_bytes()) {
            return;
        }
        self.publish_as_server(now, system, subject.as_bytes(), payload);
    }

    /// Publishes `payload` on `subject` in `account` as the server (no client, no reply).
    pub(super) fn publish_as_server(
        &mut self,
        now: Instant,
        account: AccountId,
        subject: &[u8],
        payload: &[u8],
    ) {
        let shared = Bytes::copy_from_slice(payload);
        let publish = PubRef {
            subject,
            reply: None,
            header_len: None,
            message: &shared,
            shared: Some(&shared),
            queues: QueueFilter::All,
            client_view: None,
        };
        self.route(SERVER, account, true, now, &publish);
    }

    /// Hands `publish` to every system service it matches; returns how many.
    pub(super) fn route_system_services(
        &mut self,
        account: AccountId,
        publish: &PubRef<'_>,
    ) -> usize {
        if self.services.is_empty() || self.router.system_account() != Some(account) {
            return 0;
        }
        let mut matched = 0;
        for (index, pattern) in self.services.iter().enumerate() {
            if !subject::matches(pattern, publish.subject) {
                continue;
            }
            self.events.push_back(Event::SystemRequest {
                service: ServiceId(u32::try_from(index).unwrap_or(u32::MAX)),
                subject: String::from_utf8_lossy(publish.subject).into_owned(),
                reply: publish
                    .reply
                    .map(|r| String::from_utf8_lossy(r).into_owned()),
                payload: Bytes::copy_from_slice(publish.message),
                header_len: publish.header_len.unwrap_or(0).min(publish.message.len()),
            });
            matched += 1;
        }
        matched
    }
}
