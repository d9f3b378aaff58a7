//! Sessions: the per-connection protocol state of the broker's clients.
//!
//! A session holds what one connection negotiated (CONNECT options, its account and
//! authentication state), its parser and outbound queue, its keep-alive and write-deadline
//! clocks and its counters. How a message is written for a connection is the session's
//! [`Renderer`]: the router decides *who* receives a message, the subscriber's renderer decides
//! *what bytes* it receives. Clients speak the client protocol (`MSG`/`HMSG`); a leaf
//! connection's deliveries are collected per leaf and written as `LMSG`/`HMSG` by the broker's
//! leaf module; MQTT connections get `PUBLISH` (see [`crate::mqtt`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth;
use crate::authseam::Permissions;
use crate::broker::{StoredCredentials, trace};
use crate::mqtt::{self, MqttState};
use crate::outq::{OutQueue, SHARE_THRESHOLD_BYTES};
use crate::proto::Parser;
use crate::router::{AccountId, PubRef, SubKey};
use crate::types::{ClientParams, CloseReason, SubInfo};
use crate::wire::{self, Rendered};

/// Options a client sets with CONNECT (`server/client.go` `ClientOpts`); defaults apply before
/// CONNECT.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub(crate) verbose: bool,
    pub(crate) pedantic: bool,
    pub(crate) echo: bool,
    pub(crate) headers: bool,
    pub(crate) no_responders: bool,
    pub(crate) protocol: i64,
    pub(crate) name: String,
    pub(crate) lang: String,
    pub(crate) version: String,
    pub(crate) user: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            user: String::new(),
        }
    }
}

/// Where a connection is in its life. Transitions: `AwaitingConnect` → `Connected` (CONNECT
/// accepted or `no_auth_user` bound) → `Closed`; any phase may go to `Closed`, and nothing
/// leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No CONNECT yet. With `auth_expected`, the next operation must be CONNECT.
    AwaitingConnect { auth_expected: bool },
    /// CONNECT was accepted (a later CONNECT re-runs the procedure).
    Connected,
    /// Closed by the broker or the binary; kept until `remove_client`.
    Closed { reason: CloseReason, at: Instant },
}

impl Phase {
    pub(crate) fn is_closed(self) -> bool {
        matches!(self, Self::Closed { .. })
    }

    pub(crate) fn awaiting_auth(self) -> bool {
        self == Self::AwaitingConnect {
            auth_expected: true,
        }
    }

    pub(crate) fn closed(self) -> Option<(CloseReason, Instant)> {
        match self {
            Self::Closed { reason, at } => Some((reason, at)),
            _ => None,
        }
    }
}

/// How deliveries are written for a connection. Chosen when the connection is registered;
/// one `match` per delivery, so the choice costs nothing on the routing path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renderer {
    /// The NATS client protocol: `MSG`, or `HMSG` for a client that negotiated headers.
    ClientMsg,
    /// A leaf connection: `LMSG`/`HMSG` without sid, written once per leaf by
    /// `Broker::deliver_to_leafs` (the router never hands a leaf's subscription to
    /// [`Renderer::write`]).
    Leaf,
    /// MQTT 3.1.1: `PUBLISH` on the topic the subject maps to, without the NATS headers.
    Mqtt,
}

/// One delivery as [`Renderer::measure`] found it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Bytes the delivery adds to the queue.
    pub(crate) queued: usize,
    /// Header bytes the subscriber does not get.
    skip: usize,
    /// How an MQTT subscriber gets it.
    pub(crate) mqtt: mqtt::Delivery,
}

impl Renderer {
    /// How many header bytes of `publish` the subscriber skips: a client without headers gets
    /// the payload alone (`MSG`), never the header block.
    fn skipped_header(client: &Client, publish: &PubRef<'_>) -> usize {
        let headers = client.opts.headers && client.parser.limits().headers;
        match publish.header_len {
            Some(h) if h > 0 && !headers => h.min(publish.message.len()),
            _ => 0,
        }
    }

    /// Measures one delivery of `publish` to subscription `sid`: the bytes it adds to the
    /// client's queue, and what [`Self::write`] needs to write it.
    pub(crate) fn measure(
        self,
        client: &Client,
        sid: &[u8],
        publish: &PubRef<'_>,
        rendered: &Rendered,
    ) -> Measured {
        match self {
            Self::Mqtt => {
                let skip = publish.header_len.unwrap_or(0).min(publish.message.len());
                let message_qos = mqtt::message_qos(publish.message, publish.header_len);
                let body_len = publish.message.len() - skip;
                let delivery = client
                    .mqtt
                    .as_ref()
                    .map_or(mqtt::Delivery::AtMostOnce, |m| {
                        m.delivery(sid, message_qos, body_len)
                    });
                let subject = String::from_utf8_lossy(publish.client_subject());
                let topic = mqtt_codec::nats::subject_to_topic(&subject);
                let queued = match delivery {
                    mqtt::Delivery::Held => 0,
                    mqtt::Delivery::AtLeastOnce => mqtt::publish_len(&topic, true, body_len),
                    _ => mqtt::publish_len(&topic, false, body_len),
                };
                Measured {
                    queued,
                    skip,
                    mqtt: delivery,
                }
            }
            Self::ClientMsg | Self::Leaf => {
                let skip = Self::skipped_header(client, publish);
                let body_len = publish.message.len() - skip;
                let queued = if skip == 0 {
                    rendered.delivery_len(sid, body_len)
                } else {
                    wire::msg_line_len(
                        publish.client_subject(),
                        sid,
                        publish.client_reply(),
                        None,
                        body_len,
                    ) + body_len
                        + 2
                };
                Measured {
                    queued,
                    skip,
                    mqtt: mqtt::Delivery::None,
                }
            }
        }
    }

    /// Queues the delivery [`Self::measure`] measured; returns the message bytes delivered
    /// (headers included when the client gets them), for the counters.
    pub(crate) fn write(
        self,
        client: &mut Client,
        sid: &Arc<[u8]>,
        publish: &PubRef<'_>,
        rendered: &mut Rendered,
        measured: &Measured,
        now: Instant,
    ) -> u64 {
        match self {
            Self::Mqtt => {
                let skip = measured.skip;
                let body = publish.message.get(skip..).unwrap_or_default();
                let subject = String::from_utf8_lossy(publish.client_subject());
                let topic = mqtt_codec::nats::subject_to_topic(&subject);
                let packet_id = match measured.mqtt {
                    mqtt::Delivery::Held => return 0,
                    mqtt::Delivery::AtLeastOnce => {
                        let payload = match publish.shared {
                            Some(message) => message.slice(skip..),
                            None => Bytes::copy_from_slice(body),
                        };
                        client
                            .mqtt
                            .as_mut()
                            .map(|m| m.track(&topic, payload, Some(Arc::clone(sid)), now))
                    }
                    _ => None,
                };
                let mut head = BytesMut::with_capacity(topic.len() + 8);
                if !mqtt::publish_head(&topic, packet_id, false, body.len(), &mut head) {
                    return 0;
                }
                client.out.push_slice(&head);
                match publish.shared {
                    Some(message) if body.len() >= SHARE_THRESHOLD_BYTES => {
                        client.out.push_bytes(&message.slice(skip..));
                    }
                    _ => client.out.push_slice(body),
                }
                body.len() as u64
            }
            Self::ClientMsg | Self::Leaf => {
                let skip = measured.skip;
                let body = publish.message.get(skip..).unwrap_or_default();
                if skip == 0 {
                    rendered.write(&mut client.out, sid, publish.shared);
                } else {
                    let shared = match publish.shared {
                        Some(message) if body.len() >= SHARE_THRESHOLD_BYTES => {
                            Some(message.slice(skip..))
                        }
                        _ => None,
                    };
                    wire::write_msg_parts(
                        &mut client.out,
                        publish.client_subject(),
                        sid,
                        publish.client_reply(),
                        body,
                        shared.as_ref(),
                    );
                }
                body.len() as u64
            }
        }
    }

    /// The `-V` trace line of one delivery.
    pub(crate) fn trace(self, client: &Client, sid: &[u8], publish: &PubRef<'_>) -> String {
        match self {
            Self::Mqtt => {
                let skip = publish.header_len.unwrap_or(0).min(publish.message.len());
                let subject = String::from_utf8_lossy(publish.client_subject());
                let topic = mqtt_codec::nats::subject_to_topic(&subject);
                format!(
                    "->> [PUBLISH {topic} pi=0 size={}]",
                    publish.message.len() - skip
                )
            }
            Self::ClientMsg | Self::Leaf => {
                let skip = Self::skipped_header(client, publish);
                let header_len = publish.header_len.filter(|_| skip == 0);
                trace::delivery(
                    publish.client_subject(),
                    sid,
                    publish.client_reply(),
                    header_len,
                    publish.message.len() - skip,
                )
            }
        }
    }
}

/// A connection's authentication state, in one place: what it proved, what it may do, and the
/// comparisons still running for it.
#[derive(Debug, Default)]
pub(crate) struct ClientAuth {
    /// The account the connection is bound to (`$G` until authentication says otherwise).
    pub(crate) account: AccountId,
    /// Username, nkey or token shown in `/connz?auth=1`.
    pub(crate) authorized_user: Option<String>,
    /// Who authenticated, for log lines and reload checks.
    pub(crate) identity: Option<auth::Authenticated>,
    /// The CONNECT credentials, checked again on reload.
    pub(crate) creds: StoredCredentials,
    /// Per-connection permission state, if the user is restricted.
    pub(crate) permissions: Option<Permissions>,
    /// The nonce sent in INFO, when nkeys are configured.
    pub(crate) nonce: Option<String>,
    /// The authentication timeout, while a CONNECT is expected.
    pub(crate) deadline: Option<Instant>,
    /// Operator mode: when the user's (or its account's) JWT expires, and the `-ERR` text
    /// then (`User Authentication Expired` or `Account Authentication Expired`).
    pub(crate) expiry: Option<(Instant, &'static str)>,
    /// Operator mode: most subscriptions the user's JWT allows.
    pub(crate) max_subs: Option<usize>,
    /// Operator mode: largest message the user's JWT allows.
    pub(crate) max_payload: Option<usize>,
    /// The bcrypt hash that verified this client's password, so that a reload keeping the
    /// same hash does not run bcrypt again.
    pub(crate) verified_hash: Option<Box<str>>,
    /// A CONNECT waiting for [`crate::Broker::password_checked`]; no input is parsed meanwhile.
    pub(crate) parked: Option<Box<(auth::HashCheck, PendingConnect)>>,
    /// An accepted leaf's CONNECT waiting for [`crate::Broker::password_checked`]: the bcrypt
    /// comparison for a `leafnodes { authorization }` user, and who it binds as if it matches.
    pub(crate) leaf_parked: Option<Box<LeafParked>>,
    /// After a reload: the comparison that decides whether this connected client keeps its
    /// session under the new configuration. It keeps running meanwhile.
    pub(crate) rechecking: Option<Box<auth::HashCheck>>,
}

impl Default for AccountId {
    fn default() -> Self {
        Self::GLOBAL
    }
}

/// A leaf's CONNECT parked for a bcrypt comparison.
#[derive(Debug)]
pub(crate) struct LeafParked {
    pub(crate) check: auth::PasswordCheck,
    /// The CONNECT's user.
    pub(crate) user: String,
    /// The account it binds to when the password matches (`None`: `$G`).
    pub(crate) account: Option<String>,
}

/// What CONNECT processing keeps for after authentication.
#[derive(Debug)]
pub(crate) struct PendingConnect {
    pub(crate) creds: StoredCredentials,
    pub(crate) account_requested: bool,
    /// [`crate::Broker`]'s auth epoch when authentication started.
    pub(crate) auth_epoch: u64,
}

/// One connection's session.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) cid: u64,
    pub(crate) params: ClientParams,
    pub(crate) phase: Phase,
    pub(crate) parser: Parser,
    pub(crate) renderer: Renderer,
    /// The MQTT session state, for an MQTT connection.
    pub(crate) mqtt: Option<Box<MqttState>>,
    pub(crate) out: OutQueue,
    pub(crate) opts: ClientOptions,
    pub(crate) auth: ClientAuth,
    pub(crate) subs: HashMap<Arc<[u8]>, SubKey>,
    pub(crate) ping_deadline: Option<Instant>,
    pub(crate) pings_out: u32,
    pub(crate) last_activity: Instant,
    pub(crate) last_client_ping: Option<Instant>,
    pub(crate) rtt: Option<Duration>,
    pub(crate) rtt_start: Option<Instant>,
    pub(crate) stall_since: Option<Instant>,
    pub(crate) consumed_seen: u64,
    /// Output the transport holds for this client outside `out` (framed WebSocket data and
    /// owed control replies): it counts toward `max_pending` and the write deadline.
    pub(crate) backlog: usize,
    pub(crate) scheduled: Option<Instant>,
    pub(crate) flush_requested: bool,
    pub(crate) in_msgs: u64,
    pub(crate) in_bytes: u64,
    pub(crate) out_msgs: u64,
    pub(crate) out_bytes: u64,
    pub(crate) start: Instant,
    pub(crate) counts_as_client: bool,
    pub(crate) closed_subs: Vec<SubInfo>,
    pub(crate) first_pong_sent: bool,
    pub(crate) announced_max_payload: usize,
    pub(crate) urls_epoch: u64,
    /// The leaf-node state of a leaf connection.
    pub(crate) leaf: Option<Box<crate::broker::leaf::LeafState>>,
    /// Input paused because a connection this client publishes to fell behind.
    pub(crate) producer_stall: Option<Box<crate::broker::stall::ProducerStall>>,
    /// The details its tracked service requests last showed (service latency), shared by
    /// the requests waiting for a response.
    pub(crate) latency_info: Option<Arc<crate::broker::latency::ClientInfoJson>>,
}

impl Client {
    /// Output owed to the client: its queue plus what the transport holds for it.
    pub(crate) fn pending(&self) -> usize {
        self.out.len() + self.backlog
    }
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) generation: u32,
    pub(crate) client: Option<Client>,
}
