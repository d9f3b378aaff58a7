//! MQTT 3.1.1 connections (`server/mqtt.go` `mqttParse` and the `mqttProcess*` functions):
//! CONNECT with the NATS auth, session takeover, keep-alive, SUBSCRIBE/UNSUBSCRIBE on the
//! mapped subjects, PUBLISH at QoS 0 and 1 both ways (QoS 1 deliveries tracked until PUBACK
//! and sent again with DUP after `ack_wait`, at most `max_ack_pending` at a time), retained
//! messages, PINGREQ, DISCONNECT and will messages.

use mqtt_codec::nats::{filter_to_subject, needs_parent_subscription, topic_to_subject};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Packet, Publish, QoS, SubAck, SubAckReturn, Subscribe,
    Unsubscribe,
};

use super::*;
use crate::mqtt::{MqttState, nats_message};

use crate::mqtt::PARENT_SID_SUFFIX;

/// Subjects MQTT clients may not subscribe to (`mqttSubPrefix`): nats-server reserves them for
/// its JetStream deliveries.
const RESERVED_SUB_PREFIX: &str = "$MQTT.sub.";

impl Broker {
    /// The MQTT state for a new connection of `conn_type`, when it is an MQTT one.
    pub(super) fn mqtt_state_for(&self, conn_type: ConnectionType) -> Option<Box<MqttState>> {
        matches!(
            conn_type,
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket
        )
        .then(|| {
            let max = self.config.limits.max_payload + 2 + mqtt_codec::MAX_STRING_BYTES + 2;
            let mut state = MqttState::new(max);
            state.ack_wait = self.config.mqtt_ack_wait;
            state.max_ack_pending = usize::from(self.config.mqtt_max_ack_pending.max(1));
            state.max_inflight_bytes = self.config.limits.max_pending;
            state.held_limits = self.mqtt_held_limits();
            Box::new(state)
        })
    }

    /// The bounds of each MQTT session's held QoS 1 deliveries: [`crate::mqtt::MAX_HELD_MESSAGES`]
    /// and `max_pending` bytes.
    pub(super) fn mqtt_held_limits(&self) -> crate::mqtt::HeldLimits {
        crate::mqtt::HeldLimits {
            max_msgs: crate::mqtt::MAX_HELD_MESSAGES,
            max_bytes: self.config.limits.max_pending,
        }
    }

    /// A reload's `mqtt { max_ack_pending }` and `max_pending`: every live session's window
    /// and held bounds take the new values (a wider window sends held deliveries at once),
    /// and kept sessions' held bounds too, as nats-server's `mqttUpdateMaxAckPending` sets
    /// the new value on every session of every account.
    pub(super) fn mqtt_reload_limits(&mut self, now: Instant) {
        let limits = self.mqtt_held_limits();
        self.mqtt_sessions.held_limits = limits;
        let max_ack_pending = usize::from(self.config.mqtt_max_ack_pending.max(1));
        let max_pending = self.config.limits.max_pending;
        for id in self.clients() {
            let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) else {
                continue;
            };
            m.max_ack_pending = max_ack_pending;
            m.max_inflight_bytes = max_pending;
            m.held_limits = limits;
            m.held.trim_to(limits.max_bytes);
            self.mqtt_release_held(id, now);
            self.reschedule(id);
        }
    }

    pub(super) fn is_mqtt(&self, id: ClientId) -> bool {
        self.client(id).is_some_and(|c| c.mqtt.is_some())
    }

    /// `handle_input` for an MQTT connection: every whole packet in `src`.
    pub(super) fn mqtt_input(&mut self, id: ClientId, now: Instant, src: &mut BytesMut) {
        loop {
            let Some(c) = self.open_client_mut(id) else {
                src.clear();
                return;
            };
            if c.auth.parked.is_some() || c.producer_stall.is_some() {
                // The CONNECT waits for its password check, or a subscriber to drain; the
                // rest stays in `src`.
                return;
            }
            let Some(m) = c.mqtt.as_mut() else {
                return;
            };
            let res = m.decoder.decode(src);
            let keep_alive = m.keep_alive;
            match res {
                Ok(None) => return,
                Ok(Some(packet)) => {
                    c.last_activity = now;
                    if let Some(ka) = keep_alive {
                        c.ping_deadline = now.checked_add(ka);
                    }
                    self.mqtt_packet(id, now, packet);
                }
                Err(err) => {
                    if let Some(code) = err.connack_code() {
                        self.mqtt_connack(id, now, false, code);
                    }
                    self.client_error(id, err.to_string());
                    self.close(id, now, CloseReason::ProtocolViolation);
                    src.clear();
                    return;
                }
            }
        }
    }

    fn client_error(&mut self, client: ClientId, detail: String) {
        self.events.push_back(Event::ClientError { client, detail });
    }

    fn mqtt_send(&mut self, id: ClientId, now: Instant, packet: &Packet) {
        let mut out = BytesMut::with_capacity(16);
        if mqtt_codec::encode(packet, &mut out).is_ok() {
            self.queue_bytes(id, now, &out);
        }
    }

    fn mqtt_connack(
        &mut self,
        id: ClientId,
        now: Instant,
        session_present: bool,
        code: ConnectReturnCode,
    ) {
        self.trace(id, || {
            format!("->> [CONNACK sp={session_present} rc={}]", code.as_u8())
        });
        let ack = ConnAck {
            session_present,
            code,
        };
        self.mqtt_send(id, now, &Packet::ConnAck(ack));
    }

    fn mqtt_packet(&mut self, id: ClientId, now: Instant, packet: Packet) {
        if self.config.trace {
            let name = packet.packet_type().name();
            self.trace(id, || format!("<<- [{name}]"));
        }
        match packet {
            Packet::Connect(connect) => self.mqtt_connect(id, now, connect),
            Packet::Publish(publish) => self.mqtt_publish(id, now, &publish),
            Packet::PubAck(packet_id) => {
                if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                    m.acked(packet_id, now);
                }
                self.mqtt_release_held(id, now);
                self.reschedule(id);
            }
            Packet::Subscribe(sub) => self.mqtt_subscribe(id, now, sub),
            Packet::Unsubscribe(unsub) => self.mqtt_unsubscribe(id, now, &unsub),
            Packet::PingReq => {
                self.trace(id, || "->> [PINGRESP]".to_owned());
                self.queue_bytes(id, now, &mqtt_codec::PINGRESP);
            }
            Packet::Disconnect => {
                // MQTT-3.14.4-3: a DISCONNECT discards the will.
                if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                    m.will = None;
                }
                self.close(id, now, CloseReason::ClientClosed);
            }
            Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                // nats-server 2.9.10 does not implement QoS 2.
                let n = packet.packet_type().nibble();
                self.client_error(id, format!("protocol {n} not supported"));
                self.close(id, now, CloseReason::ProtocolViolation);
            }
            // The decoder's server role yields no server-to-client packet.
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.close(id, now, CloseReason::ProtocolViolation);
            }
        }
    }

    /// `mqttProcessConnect`: authenticate as a NATS client would (the password also serves as
    /// the token, as nats-server does), take over a connection with the same client id, and
    /// answer CONNACK.
    fn mqtt_connect(&mut self, id: ClientId, now: Instant, connect: Connect) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let conn_type = c.params.conn_type;
        let password = connect
            .password
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        if let Some(user) = &connect.username {
            user.clone_into(&mut c.opts.user);
        }
        let creds = Credentials {
            user: connect.username.as_deref(),
            pass: password.as_deref(),
            auth_token: password.as_deref(),
            nkey: None,
            sig: None,
            // `server/mqtt.go` `mqttParseConnect`: the password is also the JWT in operator
            // mode (a bearer user JWT: there is no nonce to sign).
            jwt: password.as_deref(),
        };
        let remote = c.params.remote.ip();
        let now_unix = self.unix_now(now);
        let step = self
            .auth
            .authenticate(conn_type, &creds, None, &[], remote, now_unix);
        let stored = StoredCredentials::new(&creds);
        let res = match step {
            AuthStep::Done(res) => res,
            AuthStep::CheckHash(check) if self.config.defer_password_checks => {
                // As a NATS CONNECT: parked until `password_checked`, no input read meanwhile.
                if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                    m.parked_connect = Some(Box::new(connect));
                }
                let pending = PendingConnect {
                    creds: stored,
                    account_requested: false,
                    auth_epoch: self.auth_epoch,
                };
                self.park(id, check, pending);
                return;
            }
            AuthStep::CheckHash(check) => {
                let verified = check.check().verify();
                finish_hash(check, verified)
            }
        };
        self.mqtt_finish_connect(id, now, res, connect, stored);
    }

    /// The part of CONNECT after authentication (also for a parked CONNECT, from
    /// `finish_connect`).
    pub(super) fn mqtt_finish_connect(
        &mut self,
        id: ClientId,
        now: Instant,
        res: Result<crate::authseam::Authenticated, crate::authseam::Refused>,
        connect: Connect,
        creds: StoredCredentials,
    ) {
        let user = match res {
            Ok(user) => user,
            Err(refused) => {
                if let Some(reason) = refused.reason {
                    let error = auth::operator::is_error_level(&reason);
                    self.events.push_back(Event::AuthReason {
                        client: id,
                        reason,
                        error,
                    });
                }
                self.events.push_back(Event::AuthFailed {
                    client: id,
                    detail: refused.log,
                });
                self.mqtt_connack(id, now, false, ConnectReturnCode::NotAuthorized);
                self.close(id, now, CloseReason::AuthenticationFailure);
                return;
            }
        };
        if !self.bind_account(id, user.identity.as_ref()) {
            self.mqtt_connack(id, now, false, ConnectReturnCode::NotAuthorized);
            self.close(id, now, CloseReason::AuthenticationFailure);
            return;
        }
        let client_id = if connect.client_id.is_empty() {
            self.generated_client_id()
        } else {
            connect.client_id.clone()
        };
        let persist = self.config.mqtt_persist;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.auth.creds = creds;
        c.auth.authorized_user = user.authorized_user;
        c.auth.permissions = user.permissions;
        c.auth.identity = user.identity;
        c.phase = Phase::Connected;
        c.auth.deadline = None;
        c.rtt = Some(now.saturating_duration_since(c.start));
        let account = c.auth.account;
        // One and a half keep-alives (MQTT-3.1.2-24) in whole seconds, as nats-server computes
        // it (`time.Duration(float64(ka)*1.5) * time.Second` truncates: 1 s for 1, 4 s for 3).
        let keep_alive = (connect.keep_alive > 0)
            .then(|| Duration::from_secs(u64::from(connect.keep_alive) * 3 / 2));
        c.ping_deadline = keep_alive.and_then(|ka| now.checked_add(ka));
        if let Some(m) = c.mqtt.as_mut() {
            m.client_id.clone_from(&client_id);
            m.keep_alive = keep_alive;
            m.will = connect.will;
            m.clean_session = connect.clean_session;
            m.persist = persist && !connect.clean_session;
        }
        // Session takeover: an open connection with the same client id in the same account
        // is closed (nats-server: "Replacing old client ... since both have the same client ID").
        let duplicates: Vec<ClientId> = self
            .clients()
            .into_iter()
            .filter(|other| *other != id)
            .filter(|other| {
                self.client(*other).is_some_and(|o| {
                    !o.phase.is_closed()
                        && o.phase == Phase::Connected
                        && o.auth.account == account
                        && o.mqtt.as_ref().is_some_and(|m| m.client_id == client_id)
                })
            })
            .collect();
        for old in duplicates {
            self.client_error(
                old,
                format!("Replacing old client since both have the same client ID {client_id:?}"),
            );
            self.close(old, now, CloseReason::DuplicateClientId);
        }
        // A replaced connection has saved its session by now. A clean start discards the
        // kept session (MQTT-3.1.2-6); otherwise it is resumed (MQTT-3.1.2-4).
        let saved = self.mqtt_sessions.take(account, &client_id);
        let session_present = !connect.clean_session && saved.is_some();
        if connect.clean_session && saved.is_some() {
            self.persist_session(account, &client_id, None);
        }
        self.events.push_back(Event::Connected(id));
        self.mqtt_connack(id, now, session_present, ConnectReturnCode::Accepted);
        if let (false, Some(saved)) = (connect.clean_session, saved) {
            self.mqtt_resume(id, now, saved);
        }
        if !connect.clean_session {
            self.persist_live_session(id);
        }
    }

    /// Queues the record of a session (or its removal) when MQTT state is persisted.
    fn persist_session(
        &mut self,
        account: AccountId,
        client_id: &str,
        session: Option<&crate::mqtt::SavedSession>,
    ) {
        if !self.config.mqtt_persist {
            return;
        }
        let name = Arc::clone(self.router.name(account));
        self.mqtt_store.push_back(crate::mqtt::store::StoreWrite {
            kind: crate::mqtt::store::StoreKind::Session,
            key: crate::mqtt::store::key(&name, client_id),
            record: session.map(|s| crate::mqtt::store::encode_session(&name, client_id, s)),
        });
    }

    /// Queues the record of a connected `clean_session: false` client's session as it stands
    /// (its subscriptions and the deliveries it has not acknowledged), so a restart finds it
    /// even if the server stops without closing the connection.
    pub(super) fn persist_live_session(&mut self, id: ClientId) {
        // A connection closed meanwhile has saved (and persisted) its session already.
        if !self.config.mqtt_persist || !self.is_open(id) {
            return;
        }
        let Some(c) = self.client(id) else {
            return;
        };
        let account = c.auth.account;
        let Some(m) = c.mqtt.as_ref() else {
            return;
        };
        if m.clean_session || m.client_id.is_empty() {
            return;
        }
        let mut inflight: Vec<(u16, crate::mqtt::Inflight)> =
            m.inflight.iter().map(|(k, f)| (*k, f.clone())).collect();
        crate::mqtt::sending_order(&mut inflight, m.next_packet_id);
        let session = crate::mqtt::SavedSession {
            filters: m.filters.clone(),
            inflight,
            held: m.held.clone(),
            next_packet_id: m.next_packet_id,
        };
        let client_id = m.client_id.clone();
        if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
            m.persist_due = None;
        }
        self.persist_session(account, &client_id, Some(&session));
    }

    /// Writes the records of the kept sessions (of disconnected clients) that collected
    /// deliveries since their last record.
    pub(super) fn persist_kept_sessions(&mut self) {
        self.mqtt_store_due = None;
        for (account, client_id) in self.mqtt_sessions.take_dirty() {
            if let Some(session) = self.mqtt_sessions.get(account, &client_id).cloned() {
                self.persist_session(account, &client_id, Some(&session));
            }
        }
    }

    /// Writes now every MQTT session record a timer would write later (connected
    /// `clean_session: false` clients and kept sessions that changed): for a clean stop, after
    /// [`Broker::close_all`] and before the last [`Broker::poll_mqtt_store`].
    pub fn flush_mqtt_sessions(&mut self) {
        for id in self.clients() {
            if self
                .client(id)
                .and_then(|c| c.mqtt.as_ref())
                .is_some_and(|m| m.persist_due.is_some())
            {
                self.persist_live_session(id);
            }
        }
        self.persist_kept_sessions();
    }

    /// Holds a QoS 1 delivery that the window of subscriber `id` has no room for (or that
    /// must wait behind earlier held ones): `nats-server` leaves it in the session's
    /// JetStream consumer, which sends it once fewer than `MaxAckPending` await PUBACK.
    pub(super) fn mqtt_hold(
        &mut self,
        id: ClientId,
        now: Instant,
        sid: &Arc<[u8]>,
        publish: &PubRef<'_>,
    ) {
        let skip = publish.header_len.unwrap_or(0).min(publish.message.len());
        let subject = String::from_utf8_lossy(publish.client_subject());
        let topic = mqtt_codec::nats::subject_to_topic(&subject);
        let payload = match publish.shared {
            Some(message) => message.slice(skip..),
            None => Bytes::copy_from_slice(publish.message.get(skip..).unwrap_or_default()),
        };
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let account = c.auth.account;
        let Some(m) = c.mqtt.as_mut() else {
            return;
        };
        let held = crate::mqtt::Held {
            topic: topic.into_owned(),
            payload,
            sid: Some(Arc::clone(sid)),
        };
        let limits = m.held_limits;
        let dropped = m.held.push(held, limits);
        m.changed(now);
        if dropped.first {
            let client_id = m.client_id.clone();
            self.mqtt_held_warning(account, client_id, dropped.now, limits);
        }
        self.reschedule(id);
    }

    fn mqtt_held_warning(
        &mut self,
        account: AccountId,
        client_id: String,
        dropped: usize,
        limits: crate::mqtt::HeldLimits,
    ) {
        self.events.push_back(Event::MqttHeldDropped {
            account: self.router.name(account).to_string(),
            client_id,
            dropped,
            max_msgs: limits.max_msgs,
            max_bytes: limits.max_bytes,
        });
    }

    /// Sends the held QoS 1 deliveries the window now has room for, oldest first.
    pub(super) fn mqtt_release_held(&mut self, id: ClientId, now: Instant) {
        loop {
            let Some(m) = self.open_client_mut(id).and_then(|c| c.mqtt.as_mut()) else {
                return;
            };
            let Some(held) = m.release() else {
                return;
            };
            let packet_id = m.track(&held.topic, held.payload.clone(), held.sid.clone(), now);
            self.trace(id, || {
                format!(
                    "->> [PUBLISH {} pi={packet_id} size={}]",
                    held.topic,
                    held.payload.len()
                )
            });
            let mut packet = BytesMut::with_capacity(held.topic.len() + 8 + held.payload.len());
            if crate::mqtt::publish_head(
                &held.topic,
                Some(packet_id),
                false,
                held.payload.len(),
                &mut packet,
            ) {
                packet.extend_from_slice(&held.payload);
                self.queue_bytes(id, now, &packet);
            }
            if let Some(c) = self.open_client_mut(id) {
                c.out_msgs += 1;
                c.out_bytes += held.payload.len() as u64;
                self.stats.out_msgs += 1;
                self.stats.out_bytes += held.payload.len() as u64;
            }
        }
    }

    /// Offers a QoS 1 message routed in `account` to the kept sessions of disconnected
    /// clients whose QoS 1 filters match: nats-server's durable consumers keep collecting
    /// while no client is connected, and the session gets them when it resumes.
    pub(super) fn mqtt_collect(&mut self, account: AccountId, now: Instant, publish: &PubRef<'_>) {
        if crate::mqtt::message_qos(publish.message, publish.header_len) != QoS::AtLeastOnce {
            return;
        }
        let Ok(subject) = std::str::from_utf8(publish.subject) else {
            return;
        };
        let skip = publish.header_len.unwrap_or(0).min(publish.message.len());
        let payload = match publish.shared {
            Some(message) => message.slice(skip..),
            None => Bytes::copy_from_slice(publish.message.get(skip..).unwrap_or_default()),
        };
        let topic = mqtt_codec::nats::subject_to_topic(subject);
        let drops = self
            .mqtt_sessions
            .collect(account, subject, &topic, &payload);
        let limits = self.mqtt_sessions.held_limits;
        for drop in drops {
            if drop.dropped.first {
                self.mqtt_held_warning(account, drop.client_id, drop.dropped.now, limits);
            }
        }
        if self.config.mqtt_persist
            && self.mqtt_sessions.has_dirty()
            && self.mqtt_store_due.is_none()
        {
            self.mqtt_store_due = now.checked_add(crate::mqtt::PERSIST_INTERVAL);
        }
    }

    /// Queues the record of a retained message (`None`: its removal).
    fn persist_retained(
        &mut self,
        account: AccountId,
        subject: &str,
        retained: Option<(&str, &[u8])>,
    ) {
        if !self.config.mqtt_persist {
            return;
        }
        let name = Arc::clone(self.router.name(account));
        self.mqtt_store.push_back(crate::mqtt::store::StoreWrite {
            kind: crate::mqtt::store::StoreKind::Retained,
            key: crate::mqtt::store::key(&name, subject),
            record: retained
                .filter(|(_, payload)| !payload.is_empty())
                .map(|(topic, payload)| crate::mqtt::store::encode_retained(&name, topic, payload)),
        });
    }

    /// The next MQTT state change to persist (only with [`Config::mqtt_persist`]); call until
    /// `None` after every `handle_*` call, and apply the writes in order.
    pub fn poll_mqtt_store(&mut self) -> Option<crate::mqtt_store::StoreWrite> {
        self.mqtt_store.pop_front()
    }

    /// The largest record of `kind` the broker writes with its configuration: a caller
    /// reading records back may skip larger files unread.
    #[must_use]
    pub fn mqtt_record_limit(&self, kind: crate::mqtt_store::StoreKind) -> usize {
        // Account names, topics and client ids are MQTT strings (at most 64 KiB) or
        // configured names; 1 MiB covers them and the framing.
        const NAMES: usize = 1 << 20;
        match kind {
            crate::mqtt_store::StoreKind::Retained => {
                self.config.limits.max_payload.saturating_add(NAMES)
            }
            crate::mqtt_store::StoreKind::Session => crate::mqtt::MAX_SAVED_SESSION_BYTES
                .max(self.config.limits.max_pending.saturating_mul(2))
                .saturating_add(crate::mqtt::MAX_HELD_MESSAGES.saturating_mul(16))
                .saturating_add(
                    usize::from(self.config.mqtt_max_ack_pending)
                        .saturating_mul(mqtt_codec::MAX_STRING_BYTES + 16),
                )
                .saturating_add(NAMES.saturating_mul(16)),
        }
    }

    /// Restores one record written from [`Broker::poll_mqtt_store`] (at start-up, before
    /// clients connect): a retained message, or a kept session whose unacknowledged
    /// deliveries are sent again when its client resumes it. Each goes through the bounds live
    /// state has; a record that is damaged, names an unknown account or finds its bound reached
    /// is refused with the reason, and nothing of it is kept. Restoring queues no writes.
    pub fn restore_mqtt(
        &mut self,
        now: Instant,
        record: &[u8],
    ) -> Result<crate::mqtt_store::StoreKind, crate::mqtt_store::StoreError> {
        use crate::mqtt::store::{Record, StoreError, StoreKind, decode};
        let account_of = |router: &Router, name: &str| {
            router
                .lookup(name)
                .ok_or_else(|| StoreError::UnknownAccount(name.to_owned()))
        };
        match decode(record)? {
            Record::Retained(r) => {
                let account = account_of(&self.router, &r.account)?;
                let subject = topic_to_subject(&r.topic)
                    .map_err(|_| StoreError::Invalid("topic"))?
                    .into_owned();
                if !self.retained.set(account, &subject, &r.topic, &r.payload) {
                    return Err(StoreError::Full(
                        "the account's retained messages are at their bound",
                    ));
                }
                Ok(StoreKind::Retained)
            }
            Record::Session(r) => {
                let account = account_of(&self.router, &r.account)?;
                let session = crate::mqtt::SavedSession {
                    filters: r.filters,
                    inflight: r
                        .inflight
                        .into_iter()
                        .map(|(packet_id, topic, payload)| {
                            let f = crate::mqtt::Inflight {
                                topic,
                                payload,
                                due: now,
                                sid: None,
                            };
                            (packet_id, f)
                        })
                        .collect(),
                    held: {
                        let mut held = crate::mqtt::HeldQueue::default();
                        let limits = self.mqtt_sessions.held_limits;
                        for (topic, payload) in r.held {
                            let _ = held.push(
                                crate::mqtt::Held {
                                    topic,
                                    payload,
                                    sid: None,
                                },
                                limits,
                            );
                        }
                        held
                    },
                    next_packet_id: r.next_packet_id,
                };
                if self.mqtt_sessions.get(account, &r.client_id).is_some() {
                    return Err(StoreError::Invalid("client id (a second record for it)"));
                }
                if self
                    .mqtt_sessions
                    .save(account, &r.client_id, session)
                    .is_none()
                {
                    return Err(StoreError::Full("the kept sessions are at their bound"));
                }
                Ok(StoreKind::Session)
            }
        }
    }

    /// Restores a kept session: its subscriptions (as far as the resuming user's permissions
    /// allow), then its unacknowledged QoS 1 deliveries, sent again with DUP (MQTT-4.4.0-1),
    /// then those it collected or held, each only where that user may receive it.
    fn mqtt_resume(&mut self, id: ClientId, now: Instant, saved: crate::mqtt::SavedSession) {
        for (filter, granted) in &saved.filters {
            let Ok(subject) = filter_to_subject(filter) else {
                continue;
            };
            let subject = subject.into_owned();
            let mut ok = self.mqtt_sub(id, now, &subject, &subject, *granted);
            if ok && let Some(parent) = needs_parent_subscription(&subject) {
                let parent_sid = format!("{subject}{PARENT_SID_SUFFIX}");
                ok = self.mqtt_sub(id, now, parent, &parent_sid, *granted);
                if !ok {
                    self.mqtt_drop_sub(id, &subject, now);
                }
            }
            if ok && let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                m.filters.insert(filter.clone(), *granted);
            }
        }
        let Some(c) = self.client_mut(id) else {
            return;
        };
        let Some(m) = c.mqtt.as_mut() else {
            return;
        };
        m.next_packet_id = saved.next_packet_id;
        m.held = saved.held;
        let mut inflight = saved.inflight;
        // What the session kept goes only where the resuming user may receive it: to a
        // filter its subscribe permissions restored (nats-server: a filter refused on resume
        // gets no subscription on its consumer's delivery subject, so nothing it stored is
        // delivered), and not on a subject its subscribe deny excludes (as a live delivery).
        let matcher = m.qos1_matcher();
        let mut denied = |topic: &str| {
            !matcher.matches(topic)
                || c.auth.permissions.as_mut().is_some_and(|p| {
                    topic_to_subject(topic).map_or(true, |s| p.deny_delivery(s.as_bytes()))
                })
        };
        let before = inflight.len();
        inflight.retain(|(_, f)| !denied(&f.topic));
        let mut withheld = before - inflight.len();
        withheld += m.held.retain(|h| !denied(&h.topic));
        let client_id = m.client_id.clone();
        if withheld > 0 {
            self.client_error(
                id,
                format!(
                    "session {client_id:?} resumed without {withheld} of its QoS 1 deliveries: \
                     the user may not subscribe to their topics"
                ),
            );
        }
        let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) else {
            return;
        };
        let mut resend = Vec::new();
        for (packet_id, mut inflight) in inflight {
            inflight.due = now.checked_add(m.ack_wait).unwrap_or(now);
            m.inflight_bytes += inflight.payload.len();
            m.due.push_back((inflight.due, packet_id));
            resend.push((packet_id, inflight.topic.clone(), inflight.payload.clone()));
            m.inflight.insert(packet_id, inflight);
        }
        for (packet_id, topic, payload) in resend {
            self.mqtt_send_publish(id, now, packet_id, &topic, &payload);
        }
        // Then what it collected meanwhile, as far as the window goes.
        self.mqtt_release_held(id, now);
        self.reschedule(id);
    }

    /// Keeps the session of a closing `clean_session: false` connection.
    pub(super) fn mqtt_save_session(&mut self, id: ClientId) {
        let Some(c) = self.client_mut(id) else {
            return;
        };
        let account = c.auth.account;
        let Some(m) = c.mqtt.as_mut() else {
            return;
        };
        if m.clean_session || m.client_id.is_empty() {
            return;
        }
        let mut inflight: Vec<(u16, crate::mqtt::Inflight)> = m.inflight.drain().collect();
        crate::mqtt::sending_order(&mut inflight, m.next_packet_id);
        m.due.clear();
        m.inflight_bytes = 0;
        m.persist_due = None;
        let saved = crate::mqtt::SavedSession {
            filters: std::mem::take(&mut m.filters),
            inflight,
            held: std::mem::take(&mut m.held),
            next_packet_id: m.next_packet_id,
        };
        let client_id = m.client_id.clone();
        if let Some(dropped) = self.mqtt_sessions.save(account, &client_id, saved) {
            if dropped > 0 {
                self.client_error(
                    id,
                    format!(
                        "session {client_id:?} kept without its {dropped} oldest QoS 1 \
                         deliveries: the kept sessions' deliveries are at their bound ({} bytes)",
                        crate::mqtt::MAX_SAVED_SESSION_BYTES
                    ),
                );
            }
            if self.config.mqtt_persist {
                let kept = self.mqtt_sessions.get(account, &client_id).cloned();
                self.persist_session(account, &client_id, kept.as_ref());
            }
        } else {
            self.persist_session(account, &client_id, None);
            self.client_error(
                id,
                format!(
                    "session {client_id:?} not kept: {} sessions are kept already",
                    crate::mqtt::MAX_SAVED_SESSIONS
                ),
            );
        }
    }

    /// A QoS 1 PUBLISH sent again with DUP.
    fn mqtt_send_publish(
        &mut self,
        id: ClientId,
        now: Instant,
        packet_id: u16,
        topic: &str,
        payload: &[u8],
    ) {
        self.trace(id, || format!("->> [PUBLISH {topic} dup pi={packet_id}]"));
        let mut head = BytesMut::with_capacity(topic.len() + 8);
        if crate::mqtt::publish_head(topic, Some(packet_id), true, payload.len(), &mut head) {
            let mut packet = head.to_vec();
            packet.extend_from_slice(payload);
            self.queue_bytes(id, now, &packet);
        }
    }

    /// A client id for a CONNECT without one (MQTT-3.1.3-6), as nats-server's `nuid.Next()`
    /// gives: 22 characters of base 62.
    fn generated_client_id(&mut self) -> String {
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..22)
            .map(|_| {
                let i = self.rng.below(DIGITS.len());
                char::from(DIGITS.get(i).copied().unwrap_or(b'0'))
            })
            .collect()
    }

    /// `mqttProcessPub`: the message is published on the mapped subject with nats-server's
    /// `Nmqtt-Pub` header, then QoS 1 is acknowledged. QoS 2 is refused, as 2.9.10 does.
    fn mqtt_publish(&mut self, id: ClientId, now: Instant, publish: &Publish) {
        if publish.qos == QoS::ExactlyOnce {
            self.client_error(id, "publish QoS=2 not supported".to_owned());
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        }
        let subject = match topic_to_subject(&publish.topic) {
            Ok(subject) => subject.into_owned(),
            Err(err) => {
                self.client_error(id, err.to_string());
                self.close(id, now, CloseReason::ProtocolViolation);
                return;
            }
        };
        if publish.retain {
            self.mqtt_retain(id, now, &subject, &publish.topic, &publish.payload);
        }
        let (message, header_len) = nats_message(publish.qos, &publish.payload);
        let pub_ref = PubRef {
            subject: subject.as_bytes(),
            reply: None,
            header_len: Some(header_len),
            message: &message,
            shared: None,
            queues: QueueFilter::All,
            client_view: None,
        };
        self.process_pub(id, now, &pub_ref);
        if let Some(packet_id) = publish.packet_id
            && self.is_open(id)
        {
            self.trace(id, || format!("->> [PUBACK pi={packet_id}]"));
            self.mqtt_send(id, now, &Packet::PubAck(packet_id));
        }
    }

    /// `mqttHandlePubRetain`: a retained publish that the client may publish is kept (an
    /// empty one clears its topic), for subscriptions made later.
    fn mqtt_retain(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: &str,
        topic: &str,
        payload: &[u8],
    ) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let account = c.auth.account;
        let allowed = c
            .auth
            .permissions
            .as_mut()
            .is_none_or(|p| p.can_publish(subject.as_bytes(), now));
        if !allowed {
            return;
        }
        if self.retained.set(account, subject, topic, payload) {
            self.persist_retained(account, subject, Some((topic, payload)));
        } else {
            self.client_error(
                id,
                format!(
                    "retained message on {topic:?} not kept: {} retained messages in the account",
                    crate::mqtt::MAX_RETAINED_PER_ACCOUNT
                ),
            );
        }
    }

    /// `mqttProcessSubs`: each filter becomes a subscription on its subject (and, for a
    /// trailing `#`, one on the parent level too); the SUBACK grants the requested QoS (2 as
    /// 1), or refuses a filter that has no subject or that the account's permissions refuse.
    fn mqtt_subscribe(&mut self, id: ClientId, now: Instant, sub: Subscribe) {
        let mut returns = Vec::with_capacity(sub.filters.len());
        let mut retained = Vec::new();
        for (filter, requested) in &sub.filters {
            // nats-server 2.9.10 grants QoS 2 as QoS 1.
            let granted = (*requested).min(QoS::AtLeastOnce);
            let ok = match filter_to_subject(filter) {
                Ok(subject) if !subject.starts_with(RESERVED_SUB_PREFIX) => {
                    let subject = subject.into_owned();
                    let sid = subject.clone();
                    let mut ok = self.mqtt_sub(id, now, &subject, &sid, granted);
                    if ok && let Some(parent) = needs_parent_subscription(&subject) {
                        let parent_sid = format!("{subject}{PARENT_SID_SUFFIX}");
                        ok = self.mqtt_sub(id, now, parent, &parent_sid, granted);
                        if ok {
                            self.collect_retained(id, parent, &mut retained);
                        } else {
                            // The filter is refused whole: no half of it stays subscribed.
                            self.mqtt_drop_sub(id, &sid, now);
                        }
                    }
                    if ok {
                        self.collect_retained(id, &subject, &mut retained);
                        if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                            m.filters.insert(filter.clone(), granted);
                        }
                    }
                    ok
                }
                Ok(_) => false,
                Err(err) => {
                    self.client_error(id, format!("invalid topic {filter:?}: {err}"));
                    false
                }
            };
            returns.push(if ok {
                SubAckReturn::Success(granted)
            } else {
                SubAckReturn::Failure
            });
        }
        if !self.is_open(id) {
            return;
        }
        if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
            m.forget_unmatched_held();
        }
        self.persist_live_session(id);
        self.trace(id, || format!("->> [SUBACK pi={}]", sub.packet_id));
        let ack = SubAck {
            packet_id: sub.packet_id,
            returns,
        };
        self.mqtt_send(id, now, &Packet::SubAck(ack));
        // `mqttSendRetainedMsgsToNewSubs`: matching retained messages follow the SUBACK, with
        // the retain flag set (MQTT-3.3.1-8).
        for r in retained {
            self.trace(id, || {
                format!(
                    "->> [PUBLISH {} retained size={}]",
                    r.topic,
                    r.payload.len()
                )
            });
            let publish = Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: true,
                topic: r.topic,
                packet_id: None,
                payload: r.payload,
            };
            self.mqtt_send(id, now, &Packet::Publish(publish));
        }
        // A filter made QoS 0 again forgot its deliveries in flight: their window slots go to
        // the other filters' held ones.
        self.mqtt_release_held(id, now);
    }

    fn collect_retained(&self, id: ClientId, subject: &str, into: &mut Vec<crate::mqtt::Retained>) {
        let Some(c) = self.client(id) else {
            return;
        };
        for r in self.retained.matching(c.auth.account, subject) {
            if !into.iter().any(|seen| seen.topic == r.topic) {
                into.push(r);
            }
        }
    }

    /// One subscription of an MQTT client; true when it exists afterwards.
    fn mqtt_sub(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: &str,
        sid: &str,
        granted: QoS,
    ) -> bool {
        self.process_sub(
            id,
            now,
            Bytes::copy_from_slice(subject.as_bytes()),
            None,
            Bytes::copy_from_slice(sid.as_bytes()),
        );
        let exists = self
            .client(id)
            .is_some_and(|c| c.subs.contains_key(sid.as_bytes()));
        if exists && let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
            m.granted.insert(Arc::from(sid.as_bytes()), granted);
        }
        exists
    }

    /// Removes one subscription of an MQTT client by sid.
    fn mqtt_drop_sub(&mut self, id: ClientId, sid: &str, now: Instant) {
        let key = self
            .client(id)
            .and_then(|c| c.subs.get(sid.as_bytes()).copied());
        if let Some(key) = key {
            self.remove_sub(key, now);
        }
        if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
            m.granted.remove(sid.as_bytes());
        }
    }

    /// `mqttProcessUnsubs`: the subscriptions of each filter are removed, then UNSUBACK.
    fn mqtt_unsubscribe(&mut self, id: ClientId, now: Instant, unsub: &Unsubscribe) {
        for filter in &unsub.filters {
            if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
                m.filters.remove(filter);
            }
            let Ok(subject) = filter_to_subject(filter) else {
                continue;
            };
            let parent_sid = format!("{subject}{PARENT_SID_SUFFIX}");
            self.mqtt_drop_sub(id, &subject, now);
            self.mqtt_drop_sub(id, &parent_sid, now);
        }
        if let Some(m) = self.client_mut(id).and_then(|c| c.mqtt.as_mut()) {
            m.forget_unmatched_held();
        }
        self.persist_live_session(id);
        self.trace(id, || format!("->> [UNSUBACK pi={}]", unsub.packet_id));
        self.mqtt_send(id, now, &Packet::UnsubAck(unsub.packet_id));
        // Forgotten deliveries in flight free the window for the other filters' held ones,
        // sent after the acknowledgement as nats-server's consumers go on delivering.
        self.mqtt_release_held(id, now);
    }

    /// Sends again, with DUP, every QoS 1 delivery whose PUBACK did not come within
    /// `ack_wait` (nats-server: JetStream's redelivery of the session's consumer).
    pub(super) fn mqtt_redeliver(&mut self, id: ClientId, now: Instant) {
        let Some(m) = self.open_client_mut(id).and_then(|c| c.mqtt.as_mut()) else {
            return;
        };
        for (packet_id, topic, payload) in m.take_due(now) {
            self.mqtt_send_publish(id, now, packet_id, &topic, &payload);
        }
    }

    /// Publishes the will of an MQTT connection that ended without DISCONNECT
    /// (`mqttHandleWill`), as if the client had published it.
    pub(super) fn mqtt_publish_will(&mut self, id: ClientId, now: Instant) {
        let Some(will) = self
            .client_mut(id)
            .and_then(|c| c.mqtt.as_mut())
            .and_then(|m| m.will.take())
        else {
            return;
        };
        let Ok(subject) = topic_to_subject(&will.topic) else {
            return;
        };
        let (message, header_len) = nats_message(will.qos, &will.message);
        let publish = PubRef {
            subject: subject.as_bytes(),
            reply: None,
            header_len: Some(header_len),
            message: &message,
            shared: None,
            queues: QueueFilter::All,
            client_view: None,
        };
        let Some(c) = self.client_mut(id) else {
            return;
        };
        let account = c.auth.account;
        let allowed = c
            .auth
            .permissions
            .as_mut()
            .is_none_or(|p| p.can_publish(subject.as_bytes(), now));
        if allowed {
            if will.retain {
                if self
                    .retained
                    .set(account, &subject, &will.topic, &will.message)
                {
                    self.persist_retained(account, &subject, Some((&will.topic, &will.message)));
                } else {
                    self.client_error(id, format!("retained will on {:?} not kept", will.topic));
                }
            }
            self.route(id, account, true, now, &publish);
        }
    }
}

#[cfg(test)]
mod tests;
