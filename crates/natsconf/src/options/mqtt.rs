//! The `mqtt` block (`server/opts.go` `parseMQTT`).
//!
//! natsws serves MQTT without JetStream: sessions and retained messages live in memory, so the
//! keys that configure nats-server's JetStream streams and consumers for MQTT (`js_domain`,
//! `stream_replicas`, `consumer_replicas`, `consumer_memory_storage`,
//! `consumer_inactive_threshold`) are refused.

use std::time::Duration;

use crate::value::Value;

use super::HostPort;
use super::diag::{Ctx, Panic, V};
use super::fields::{
    listener, nanos_to_duration, parse_duration_option, parse_listen_into, parse_port_into,
};
use super::tls::{TlsOptions, parse_tls};
use super::websocket::{WebsocketAuthorization, parse_simple_auth};

/// nats-server's default `ack_wait` (`mqttDefaultAckWait`).
pub const DEFAULT_MQTT_ACK_WAIT: Duration = Duration::from_secs(30);

/// nats-server's default `max_ack_pending` (`mqttDefaultMaxAckPending`).
pub const DEFAULT_MQTT_MAX_ACK_PENDING: u16 = 1024;

/// Keys of the `mqtt` block that natsws refuses: they configure JetStream.
const UNSUPPORTED_MQTT: &[&str] = &[
    "js_domain",
    "stream_replicas",
    "consumer_replicas",
    "consumer_memory_storage",
    "consumer_inactive_threshold",
    "consumer_auto_cleanup",
];

/// The `mqtt` block of an enabled listener (port ≠ 0).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttOptions {
    /// `host`/`net`, `port`, `listen`; host defaults to `0.0.0.0`, port 0 means random (`-1`
    /// in the config).
    pub listen: HostPort,
    /// `tls`.
    pub tls: Option<TlsOptions>,
    /// `authorization` / `authentication`: credentials for MQTT clients only (an override of
    /// the server's, as the websocket block's).
    pub authorization: WebsocketAuthorization,
    /// `no_auth_user`.
    pub no_auth_user: Option<String>,
    /// `ack_wait` / `ackwait`: how long a QoS 1 delivery waits for its PUBACK before it is
    /// sent again with DUP; 0 in the config means the default, a negative value gives zero
    /// (refused by [`super::Options::validate`]).
    pub ack_wait: Duration,
    /// `max_ack_pending` / `max_pending` / `max_inflight`: QoS 1 deliveries awaiting PUBACK
    /// per session; 0 in the config means the default.
    pub max_ack_pending: u16,
}

impl MqttOptions {
    /// Whether the block overrides client authentication for MQTT clients.
    #[must_use]
    pub fn auth_override(&self) -> bool {
        self.authorization.user.is_some()
            || self.authorization.token.is_some()
            || self.no_auth_user.is_some()
    }
}

/// The block as the reference stores it before its port decides whether it is used.
#[derive(Debug, Default)]
pub(crate) struct RawMqtt {
    host: String,
    port: i64,
    tls: Option<TlsOptions>,
    authorization: WebsocketAuthorization,
    no_auth_user: Option<String>,
    ack_wait: i64,
    max_ack_pending: u16,
}

/// `parseMQTT`.
pub(crate) fn parse_mqtt(mqtt: &mut RawMqtt, ctx: &mut Ctx, v: &V<'_>) {
    let Value::Map(_) = v.value() else {
        ctx.error(v, format!("Expected mqtt to be a map, got {}", v.go_type()));
        return;
    };
    let res = parse_entries(mqtt, ctx, v);
    ctx.recover(res);
}

fn parse_entries(mqtt: &mut RawMqtt, ctx: &mut Ctx, v: &V<'_>) -> Result<(), Panic> {
    for entry in v.map()? {
        let mv = &entry.value;
        match entry.lower.as_str() {
            "listen" => parse_listen_into(ctx, mv, &mut mqtt.host, &mut mqtt.port),
            "port" => parse_port_into(ctx, mv, &mut mqtt.port)?,
            "host" | "net" => mqtt.host = mv.string()?,
            "tls" => {
                if let Some(tls) = parse_tls(ctx, mv, true) {
                    mqtt.tls = Some(tls);
                }
            }
            "authorization" | "authentication" => {
                mqtt.authorization = parse_simple_auth(ctx, mv);
            }
            "no_auth_user" => mqtt.no_auth_user = super::non_empty(mv.string()?),
            "ack_wait" | "ackwait" => {
                if let Some(nanos) = parse_duration_option(ctx, "ack_wait", mv)? {
                    mqtt.ack_wait = nanos;
                }
            }
            "max_ack_pending" | "max_pending" | "max_inflight" => {
                let n = mv.int()?;
                match u16::try_from(n) {
                    Ok(n) => mqtt.max_ack_pending = n,
                    Err(_) => ctx.error(
                        mv,
                        format!("invalid value {n}, should in [0..{}] range", u16::MAX),
                    ),
                }
            }
            key if UNSUPPORTED_MQTT.contains(&key) => ctx.unsupported(&entry),
            _ => ctx.unknown(&entry),
        }
    }
    Ok(())
}

impl RawMqtt {
    pub(crate) fn finish(self) -> Option<MqttOptions> {
        if self.port == 0 {
            return None;
        }
        Some(MqttOptions {
            listen: listener(self.host, self.port),
            tls: self.tls,
            authorization: self.authorization,
            no_auth_user: self.no_auth_user,
            // Negative: zero, which start-up validation refuses as nats-server does.
            ack_wait: match self.ack_wait {
                0 => DEFAULT_MQTT_ACK_WAIT,
                n if n < 0 => Duration::ZERO,
                n => nanos_to_duration(n),
            },
            max_ack_pending: if self.max_ack_pending > 0 {
                self.max_ack_pending
            } else {
                DEFAULT_MQTT_MAX_ACK_PENDING
            },
        })
    }
}
