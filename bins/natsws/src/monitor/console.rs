//! The web console (`<http_base_path>/console`), a natsws extension: static files compiled
//! into the binary (`bins/natsws/console/`, no build step, nothing fetched from elsewhere)
//! and the JSON it reads beside nats-server's endpoints, `/natsws/connz`: every open
//! connection with what the event loop knows of its transport (TLS, compression, `Origin`,
//! `User-Agent`, the whole `X-Forwarded-For` chain), and what the page's pub/sub playground
//! needs to know of the WebSocket listener.
//!
//! The console is served only by the monitoring listeners, like every endpoint here, with the
//! same access as the JSON endpoints; its pages forbid framing and scripts from elsewhere
//! (`Content-Security-Policy`).

use broker::{Broker, ConnectionType};
use serde::Serialize;

use super::metrics::kind_and_transport;
use super::{MonitorCtx, Response, query_int, uptime};

/// One embedded file.
struct File {
    /// Its path under `<base>/console/` (`""` is the page itself, `<base>/console`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file the console serves.
const FILES: [File; 6] = [
    File {
        name: "",
        content_type: HTML,
        body: include_bytes!("../../console/index.html"),
    },
    File {
        name: "console.js",
        content_type: JS,
        body: include_bytes!("../../console/console.js"),
    },
    File {
        name: "console.css",
        content_type: CSS,
        body: include_bytes!("../../console/console.css"),
    },
    File {
        name: "favicon.svg",
        content_type: SVG,
        body: include_bytes!("../../console/favicon.svg"),
    },
    File {
        name: "vendor/nats.ws.js",
        content_type: JS,
        body: include_bytes!("../../console/vendor/nats.ws.js"),
    },
    File {
        name: "vendor/LICENSE-nats.ws",
        content_type: TEXT,
        body: include_bytes!("../../console/vendor/LICENSE-nats.ws"),
    },
];

/// One of the console's files, by its index in [`FILES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asset(u8);

impl Asset {
    /// The page itself.
    pub(crate) const PAGE: Self = Self(0);

    /// The file at `rest`, the request path after `/console` (`""`, `/` or `/<name>`).
    pub(crate) fn route(rest: &str) -> Option<Self> {
        let name = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix('/')?
        };
        let idx = FILES.iter().position(|f| f.name == name)?;
        Some(Self(u8::try_from(idx).ok()?))
    }
}

/// The headers every console file is sent with (and the HTML index too): no framing, no
/// script, style or connection from another origin than this one (the playground's WebSocket
/// goes to another port, hence `ws:`/`wss:`), no sniffing, no caching of live figures.
pub(crate) fn security_headers(content_type: &str) -> &'static str {
    if [HTML, JS, CSS, SVG].contains(&content_type) {
        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\nContent-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    } else {
        ""
    }
}

/// A console file. The page names its files under the configured base path, which it is
/// given in a `<meta>` element.
pub(crate) fn asset(asset: Asset, ctx: &MonitorCtx<'_>) -> Response {
    let Some(file) = FILES.get(usize::from(asset.0)) else {
        let nf = crate::monitor_request::not_found();
        return Response::text(nf.status, nf.body);
    };
    let body = if asset == Asset::PAGE {
        let base = html_attr(ctx.settings.http_base_path.trim_end_matches('/'));
        String::from_utf8_lossy(file.body)
            .replace("{{BASE}}", &base)
            .into_bytes()
    } else {
        file.body.to_vec()
    };
    Response {
        status: 200,
        content_type: file.content_type,
        body,
    }
}

/// Text escaped for an HTML attribute value in double quotes.
fn html_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the playground needs to know of the WebSocket listener.
#[derive(Serialize)]
struct WsListener {
    /// The bound port (0: no WebSocket listener).
    port: u16,
    /// `wss://` rather than `ws://`.
    tls: bool,
    compression: bool,
    /// CONNECT needs credentials for a WebSocket client (nothing lets it in anonymously).
    credentials_required: bool,
    /// Upgrades must come from the listener's own origin (which the console's never is).
    same_origin: bool,
    /// Origins allowed to upgrade (empty: any).
    allowed_origins: Vec<String>,
}

#[derive(Serialize)]
struct Conn<'a> {
    cid: u64,
    kind: &'static str,
    transport: &'static str,
    compression: bool,
    ip: String,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarded_for: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<String>,
    pending_bytes: usize,
    subscriptions: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    start: String,
    uptime: String,
    uptime_seconds: u64,
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    websocket: WsListener,
    /// Open connections in all.
    total: usize,
    offset: usize,
    limit: usize,
    connections: Vec<Conn<'a>>,
}

/// Connections shown by default (and as nats-server's `/connz` does, 1024).
const DEFAULT_LIMIT: usize = 1024;

/// `/natsws/connz?offset=&limit=`: the open connections in cid order.
pub(crate) fn connections(
    q: &[(String, String)],
    broker: &Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let offset = query_int(q, "offset").map_err(|e| Response::text(400, &e))?;
    let limit = query_int(q, "limit").map_err(|e| Response::text(400, &e))?;
    let offset = usize::try_from(offset).unwrap_or(0);
    let limit = usize::try_from(limit)
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_LIMIT);
    let now = ctx.now;
    let open: Vec<_> = broker
        .clients()
        .into_iter()
        .filter(|c| broker.is_open(*c))
        .collect();
    let mut connections = Vec::new();
    for client in open.iter().skip(offset).take(limit) {
        let Some(info) = broker.client_summary(*client, now) else {
            continue;
        };
        let meta = ctx.ops.conn(*client);
        let (kind, transport) = kind_and_transport(info.conn_type, meta.is_some_and(|m| m.tls));
        let up = now.saturating_duration_since(info.start);
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        connections.push(Conn {
            cid: info.cid,
            kind,
            transport,
            compression: meta.is_some_and(|m| m.compression),
            ip: info.remote.ip().to_string(),
            port: info.remote.port(),
            forwarded_for: meta.and_then(|m| m.forwarded_for.as_deref()),
            origin: meta.and_then(|m| m.origin.as_deref()),
            user_agent: meta.and_then(|m| m.user_agent.as_deref()),
            name: non_empty(&info.name),
            lang: non_empty(&info.lang),
            version: non_empty(&info.version),
            account: info.account,
            user: info
                .authorized_user
                .as_deref()
                .and_then(non_empty)
                .or_else(|| non_empty(&info.user)),
            tls_version: info.tls_version,
            pending_bytes: info.pending_bytes,
            subscriptions: info.num_subscriptions,
            in_msgs: info.in_msgs,
            out_msgs: info.out_msgs,
            in_bytes: info.in_bytes,
            out_bytes: info.out_bytes,
            start: ctx.clock.rfc3339(info.start),
            uptime: uptime(up),
            uptime_seconds: up.as_secs(),
        });
    }
    let cfg = broker.config();
    let ws = ctx.settings.websocket.as_ref();
    let auth = &cfg.auth;
    let anonymous_ok = !auth.auth_required(ConnectionType::WebSocket)
        || is_set(auth.websocket.no_auth_user.as_deref())
        || (!auth.websocket.overrides() && is_set(auth.no_auth_user.as_deref()));
    let websocket = WsListener {
        port: ctx.bound.ws_port.unwrap_or(0),
        tls: ws.is_some_and(|w| !w.no_tls),
        compression: ws.is_some_and(|w| w.compression),
        credentials_required: !anonymous_ok,
        same_origin: ws.is_some_and(|w| w.same_origin),
        allowed_origins: ws.map(|w| w.allowed_origins.clone()).unwrap_or_default(),
    };
    let body = Connz {
        server_id: &cfg.server_id,
        now: ctx.clock.rfc3339(now),
        websocket,
        total: open.len(),
        offset,
        limit,
        connections,
    };
    Ok(Response::json(super::pretty(&body)))
}

fn is_set(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_files() {
        assert_eq!(Asset::route(""), Some(Asset::PAGE));
        assert!(Asset::route("/console.js").is_some());
        assert!(Asset::route("/vendor/nats.ws.js").is_some());
        assert_eq!(Asset::route("/"), Some(Asset::PAGE));
        assert_eq!(Asset::route("/../Cargo.toml"), None);
        assert_eq!(Asset::route("x"), None);
        for file in &FILES {
            assert!(!file.body.is_empty(), "{}", file.name);
        }
        assert!(security_headers(HTML).contains("frame-ancestors 'none'"));
        assert_eq!(security_headers("application/json"), "");
        assert_eq!(html_attr("/a\"<b>&'"), "/a&quot;&lt;b&gt;&amp;&#39;");
    }
}
