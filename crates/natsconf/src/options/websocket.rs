//! The `websocket` / `ws` block (`server/opts.go` `parseWebsocket`).

use std::time::Duration;

use gotext::quote;

use crate::value::Value;

use super::HostPort;
use super::auth::{auth_timeout, parse_string_array};
use super::diag::{Ctx, Panic, V};
use super::fields::{
    auth_timeout_of, listener, nanos_to_duration, parse_duration_option, parse_listen_into,
    parse_port_into,
};
use super::gostd::parse_duration;
use super::tls::{TlsOptions, parse_tls};
use super::url::AllowedOrigin;

/// The websocket block's own credentials (an auth override for WebSocket clients when `user`
/// or `token` is set, `server/websocket.go` `wsConfigAuth`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebsocketAuthorization {
    /// `user` / `username`.
    pub user: Option<String>,
    /// `pass` / `password`.
    pub password: Option<String>,
    /// `token`.
    pub token: Option<String>,
    /// `timeout` (int or float seconds; another kind gives 1 s, as the reference).
    pub timeout: Option<Duration>,
}

/// The `websocket` block of an enabled listener (port ≠ 0).
#[derive(Debug, Clone, PartialEq)]
pub struct WebsocketOptions {
    /// `host`/`net`, `port`, `listen`; host defaults to `0.0.0.0`, port 0 means random
    /// (`-1` in the config).
    pub listen: HostPort,
    /// `advertise` (`host[:port]`).
    pub advertise: Option<String>,
    /// `no_tls`.
    pub no_tls: bool,
    /// `tls`.
    pub tls: Option<TlsOptions>,
    /// `same_origin`.
    pub same_origin: bool,
    /// `allowed_origins` (and aliases) as written; [`WebsocketOptions::parsed_origins`]
    /// parses them (start-up validation refuses any that do not parse).
    pub allowed_origins: Vec<String>,
    /// `handshake_timeout`: `None` = no timeout (0 or negative in the config).
    pub handshake_timeout: Option<Duration>,
    /// `compression` / `compress`.
    pub compression: bool,
    /// `authorization` / `authentication`.
    pub authorization: WebsocketAuthorization,
    /// `jwt_cookie`.
    pub jwt_cookie: Option<String>,
    /// `user_cookie` (nats-server 2.11+).
    pub user_cookie: Option<String>,
    /// `pass_cookie` (nats-server 2.11+).
    pub pass_cookie: Option<String>,
    /// `token_cookie` (nats-server 2.11+).
    pub token_cookie: Option<String>,
    /// `no_auth_user`.
    pub no_auth_user: Option<String>,
    /// `headers`: extra `101` response headers, in file order (nats-server 2.11+).
    pub headers: Vec<(String, String)>,
    /// `ping_interval` for WebSocket clients (nats-server 2.11.12+); `None` = the global one.
    pub ping_interval: Option<Duration>,
    /// `reuse_port` (a natsws extension): bind with `SO_REUSEPORT`, so that several natsws
    /// processes share the port.
    pub reuse_port: bool,
}

impl WebsocketOptions {
    /// The allowed origins, parsed.
    ///
    /// # Errors
    /// The start-up error text of the first entry that does not parse.
    pub fn parsed_origins(&self) -> Result<Vec<AllowedOrigin>, String> {
        self.allowed_origins
            .iter()
            .map(|o| AllowedOrigin::parse(o))
            .collect()
    }

    /// Whether the websocket block overrides client authentication for WebSocket clients.
    #[must_use]
    pub fn auth_override(&self) -> bool {
        self.authorization.user.is_some()
            || self.authorization.token.is_some()
            || self.no_auth_user.is_some()
    }
}

/// The block as the reference stores it before its port decides whether it is used.
#[derive(Debug, Default)]
pub(crate) struct RawWebsocket {
    host: String,
    port: i64,
    advertise: Option<String>,
    no_tls: bool,
    tls: Option<TlsOptions>,
    same_origin: bool,
    allowed_origins: Vec<String>,
    handshake_timeout: i64,
    compression: bool,
    reuse_port: bool,
    authorization: WebsocketAuthorization,
    jwt_cookie: Option<String>,
    user_cookie: Option<String>,
    pass_cookie: Option<String>,
    token_cookie: Option<String>,
    no_auth_user: Option<String>,
    headers: Vec<(String, String)>,
    ping_interval: Option<i64>,
}

/// `parseWebsocket`.
pub(crate) fn parse_websocket(ws: &mut RawWebsocket, ctx: &mut Ctx, v: &V<'_>) {
    let Value::Map(_) = v.value() else {
        ctx.error(
            v,
            format!("Expected websocket to be a map, got {}", v.go_type()),
        );
        return;
    };
    let res = parse_entries(ws, ctx, v);
    ctx.recover(res);
}

fn parse_entries(ws: &mut RawWebsocket, ctx: &mut Ctx, v: &V<'_>) -> Result<(), Panic> {
    for entry in v.map()? {
        let mv = &entry.value;
        match entry.lower.as_str() {
            "listen" => parse_listen_into(ctx, mv, &mut ws.host, &mut ws.port),
            "port" => parse_port_into(ctx, mv, &mut ws.port)?,
            "host" | "net" => ws.host = mv.string()?,
            "advertise" => ws.advertise = super::non_empty(mv.string()?),
            "no_tls" => ws.no_tls = mv.bool()?,
            "tls" => {
                if let Some(tls) = parse_tls(ctx, mv, true) {
                    ws.tls = Some(tls);
                }
            }
            "same_origin" => ws.same_origin = mv.bool()?,
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins"
            | "origin" => {
                ws.allowed_origins =
                    parse_string_array(ctx, "allowed origins", mv)?.unwrap_or_default();
            }
            "handshake_timeout" => {
                ws.handshake_timeout = match mv.value() {
                    Value::Int(seconds) => seconds.wrapping_mul(1_000_000_000),
                    Value::Str(_) => match parse_duration(&mv.string()?) {
                        Ok(nanos) => nanos,
                        Err(err) => {
                            ctx.error(mv, err);
                            continue;
                        }
                    },
                    _ => {
                        ctx.error(
                            mv,
                            format!(
                                "error parsing handshake timeout: unsupported type {}",
                                mv.go_type()
                            ),
                        );
                        0
                    }
                };
            }
            "compress" | "compression" => ws.compression = mv.bool()?,
            "reuse_port" => ws.reuse_port = mv.bool()?,
            "authorization" | "authentication" => {
                ws.authorization = parse_simple_auth(ctx, mv);
            }
            "jwt_cookie" => ws.jwt_cookie = super::non_empty(mv.string()?),
            "user_cookie" => ws.user_cookie = super::non_empty(mv.string()?),
            "pass_cookie" => ws.pass_cookie = super::non_empty(mv.string()?),
            "token_cookie" => ws.token_cookie = super::non_empty(mv.string()?),
            "no_auth_user" => ws.no_auth_user = super::non_empty(mv.string()?),
            "headers" => {
                let Value::Map(map) = mv.value() else {
                    ctx.error(
                        mv,
                        format!("error parsing headers: unsupported type {}", mv.go_type()),
                    );
                    continue;
                };
                let mut headers = Vec::new();
                for header in mv.entries(map) {
                    let hv = &header.value;
                    if let Value::Str(_) = hv.value() {
                        headers.push((header.key.clone(), hv.string()?));
                    } else {
                        ctx.error(
                            hv,
                            format!(
                                "error parsing header key {}: unsupported type {}",
                                header.key,
                                hv.go_type()
                            ),
                        );
                    }
                }
                ws.headers = headers;
            }
            "ping_interval" => {
                if let Some(nanos) = parse_duration_option(ctx, "ping_interval", mv)? {
                    ws.ping_interval = Some(nanos);
                }
            }
            _ => ctx.unknown(&entry),
        }
    }
    Ok(())
}

/// `parseSimpleAuth`: `user`, `password`, `token`, `timeout`; anything else is unknown.
pub(crate) fn parse_simple_auth(ctx: &mut Ctx, v: &V<'_>) -> WebsocketAuthorization {
    let mut auth = WebsocketAuthorization::default();
    let res = (|| -> Result<(), Panic> {
        for entry in v.map()? {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "user" | "username" => auth.user = super::non_empty(mv.string()?),
                "pass" | "password" => auth.password = super::non_empty(mv.string()?),
                "token" => auth.token = super::non_empty(mv.string()?),
                "timeout" => auth.timeout = auth_timeout_of(auth_timeout(mv)),
                _ => ctx.unknown(&entry),
            }
        }
        Ok(())
    })();
    ctx.recover(res);
    auth
}

impl RawWebsocket {
    pub(crate) fn finish(self) -> Option<WebsocketOptions> {
        if self.port == 0 {
            return None;
        }
        Some(WebsocketOptions {
            listen: listener(self.host, self.port),
            advertise: self.advertise,
            no_tls: self.no_tls,
            tls: self.tls,
            same_origin: self.same_origin,
            allowed_origins: self.allowed_origins,
            handshake_timeout: (self.handshake_timeout > 0)
                .then(|| nanos_to_duration(self.handshake_timeout)),
            compression: self.compression,
            authorization: self.authorization,
            jwt_cookie: self.jwt_cookie,
            user_cookie: self.user_cookie,
            pass_cookie: self.pass_cookie,
            token_cookie: self.token_cookie,
            no_auth_user: self.no_auth_user,
            headers: self.headers,
            ping_interval: self.ping_interval.filter(|n| *n > 0).map(nanos_to_duration),
            reuse_port: self.reuse_port,
        })
    }
}

/// Header names the websocket `headers` option may not set (nats-server 2.11+).
pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    for (name, _) in headers {
        let lower = name.to_ascii_lowercase();
        if [
            "host",
            "content-length",
            "connection",
            "upgrade",
            "nats-no-masking",
        ]
        .contains(&lower.as_str())
        {
            return Err(format!(
                "websocket: invalid header {} not allowed",
                quote(name)
            ));
        }
        if lower.starts_with("sec-websocket-") {
            return Err(format!(
                "websocket: invalid header {}, \"Sec-WebSocket-\" prefix not allowed",
                quote(name)
            ));
        }
    }
    Ok(())
}
