//! Reading a monitoring request, without I/O: the request head (RFC 9112 §2–§3, tokenised by
//! `httparse`), the routing of its path to one of the endpoints, and the error responses that
//! do not come from an endpoint.
//!
//! The event loop hands [`read_head`] the bytes it has buffered and acts on the answer; nothing
//! here touches a socket or the clock, so the fuzz target `natsws_monitor` drives it directly.
//! The head is re-tokenised from its start on each read: it is bounded by the caller's limit
//! (16 KiB in the server), which bounds that work too.

/// A plain-text response that no endpoint makes: a refused head, or the 404. The loop (and
/// the fuzz target) renders it as `monitor::Response::text(status, body)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plain {
    pub(crate) status: u16,
    pub(crate) body: &'static str,
}

/// The header array `httparse` fills on the first try. A head with more header lines is
/// tokenised again with room for as many lines as its bytes can hold, so that only the byte
/// limit refuses a head, as in Go's `net/http` (nats-server's monitoring server).
const HEADERS_FIRST_TRY: usize = 64;

/// The shortest header line, `x:` and LF.
const MIN_HEADER_LINE_BYTES: usize = 3;

/// What the buffered bytes of a monitoring connection amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// No complete head yet, and still within the limit: read more.
    Partial,
    /// No complete head within the limit: answer 431 and close.
    TooLarge,
    /// Not an HTTP/1.x request head: answer 400 and close.
    Bad,
    /// A complete head.
    Complete(RequestHead),
}

/// The parts of a complete request head the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// Bytes the head takes at the start of the buffer (the body, if any, is not read).
    pub(crate) head_len: usize,
    /// The request target's path, before any `?` (always starting with `/`).
    pub(crate) path: String,
    /// The raw query after the first `?` (empty when there is none), not yet decoded.
    pub(crate) query: String,
    /// Whether the connection stays open after the response: HTTP/1.1 without a `close`
    /// token in `Connection` (HTTP/1.0 always closes).
    pub(crate) keep_alive: bool,
    /// Whether an `Upgrade` header asks for `websocket`, so that a listener serving both hands
    /// the connection to the WebSocket handshake instead.
    pub(crate) websocket_upgrade: bool,
}

impl Head {
    /// The response that refuses a [`Head::TooLarge`] or [`Head::Bad`] head (after which the
    /// connection closes); `None` for the other two.
    pub(crate) fn refusal(&self) -> Option<Plain> {
        match self {
            Self::TooLarge => Some(Plain {
                status: 431,
                body: "431 Request Header Fields Too Large",
            }),
            Self::Bad => Some(Plain {
                status: 400,
                body: "400 Bad Request",
            }),
            Self::Partial | Self::Complete(_) => None,
        }
    }
}

/// Reads the request head at the start of `buf`. Only the first `max_head_bytes` bytes count:
/// a head that does not end within them is [`Head::TooLarge`], however many bytes follow, so
/// the answer for a buffer never changes once it is not [`Head::Partial`] (more bytes give
/// the same answer).
pub(crate) fn read_head(buf: &[u8], max_head_bytes: usize) -> Head {
    let window = buf.get(..max_head_bytes).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_FIRST_TRY];
    let mut req = httparse::Request::new(&mut headers);
    let res = match req.parse(window) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut headers =
                vec![httparse::EMPTY_HEADER; window.len() / MIN_HEADER_LINE_BYTES + 1];
            let mut req = httparse::Request::new(&mut headers);
            let res = req.parse(window);
            complete_head(res, &req)
        }
        res => complete_head(res, &req),
    };
    match res {
        Some(Ok(head)) => Head::Complete(head),
        Some(Err(())) => Head::Bad,
        None if buf.len() > window.len() => Head::TooLarge,
        None => Head::Partial,
    }
}

/// The head for a finished `httparse` run: `None` while partial, `Err` when malformed.
fn complete_head(
    res: httparse::Result<usize>,
    req: &httparse::Request<'_, '_>,
) -> Option<Result<RequestHead, ()>> {
    let head_len = match res {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Err(())),
    };
    let Some((path, query)) = req.path.and_then(split_target) else {
        return Some(Err(()));
    };
    let tokens = |name: &str, token: &str| {
        req.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && h.value
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let http11 = req.version == Some(1);
    let websocket_upgrade = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("websocket")
    });
    Some(Ok(RequestHead {
        head_len,
        path: path.to_owned(),
        query: query.to_owned(),
        keep_alive: http11 && !tokens("connection", "close"),
        websocket_upgrade,
    }))
}

/// The path and raw query of a request target (RFC 9112 §3.2): of the origin-form, or of the
/// absolute-form (whose empty path is `/`). `None` for anything else, which Go's
/// `url.ParseRequestURI` refuses too.
fn split_target(target: &str) -> Option<(&str, &str)> {
    let target = if target.starts_with('/') {
        target
    } else {
        let scheme_len = ["http://", "https://"].into_iter().find_map(|scheme| {
            let head = target.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme).then_some(scheme.len())
        })?;
        let rest = target.get(scheme_len..)?;
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let after = rest.get(authority_len..)?;
        if !after.starts_with('/') {
            return Some(("/", after.strip_prefix('?').unwrap_or(after)));
        }
        after
    };
    Some(target.split_once('?').unwrap_or((target, "")))
}

/// The monitoring endpoints, as nats-server 2.9.10 registers them (`startMonitoring` in
/// server/server.go), and natsws' own: `/metrics`, the console and `/natsws/connz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/`: the index page.
    Index,
    /// `/varz`.
    Varz,
    /// `/connz`.
    Connz,
    /// `/routez`.
    Routez,
    /// `/gatewayz`.
    Gatewayz,
    /// `/leafz`.
    Leafz,
    /// `/subsz`, also served as `/subscriptionsz`.
    Subsz,
    /// `/accountz`.
    Accountz,
    /// `/jsz`.
    Jsz,
    /// `/healthz`.
    Healthz,
    /// `/metrics` (natsws): Prometheus text format.
    Metrics,
    /// `/console` and its files (natsws).
    Console(crate::monitor::Asset),
    /// `/natsws/connz` (natsws): connections with their transport details, for the console.
    NatswsConnz,
}

/// Every path served, each endpoint's own path first.
const ENDPOINTS: [(&str, Endpoint); 14] = [
    ("/", Endpoint::Index),
    ("/varz", Endpoint::Varz),
    ("/connz", Endpoint::Connz),
    ("/routez", Endpoint::Routez),
    ("/gatewayz", Endpoint::Gatewayz),
    ("/leafz", Endpoint::Leafz),
    ("/subsz", Endpoint::Subsz),
    ("/subscriptionsz", Endpoint::Subsz),
    ("/accountz", Endpoint::Accountz),
    ("/jsz", Endpoint::Jsz),
    ("/healthz", Endpoint::Healthz),
    ("/metrics", Endpoint::Metrics),
    ("/console", Endpoint::Console(crate::monitor::Asset::PAGE)),
    ("/natsws/connz", Endpoint::NatswsConnz),
];

impl Endpoint {
    /// The endpoint serving `path` under the configured `base_path` (`http_base_path`, whose
    /// trailing `/` does not count); `None` answers [`not_found`].
    pub(crate) fn route(path: &str, base_path: &str) -> Option<Self> {
        let rest = path.strip_prefix(base_path.trim_end_matches('/'))?;
        let rest = if rest.is_empty() { "/" } else { rest };
        ENDPOINTS
            .iter()
            .find(|(served, _)| *served == rest)
            .map(|(_, endpoint)| *endpoint)
            .or_else(|| {
                let file = rest.strip_prefix("/console")?;
                crate::monitor::Asset::route(file).map(Self::Console)
            })
    }

    /// The endpoint's own path: the key its requests are counted under in `/varz`'s
    /// `http_req_stats` (nats-server counts `/subscriptionsz` as `/subsz`).
    pub(crate) fn path(self) -> &'static str {
        if let Self::Console(_) = self {
            return "/console";
        }
        ENDPOINTS
            .iter()
            .find(|(_, endpoint)| *endpoint == self)
            .map_or("/", |(path, _)| path)
    }
}

/// The response for a path no endpoint serves, as Go's `http.NotFound` writes it.
pub(crate) fn not_found() -> Plain {
    Plain {
        status: 404,
        body: "404 page not found\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 256;

    fn complete(path: &str, query: &str, keep_alive: bool, websocket_upgrade: bool) -> Head {
        Head::Complete(RequestHead {
            head_len: 0,
            path: path.to_owned(),
            query: query.to_owned(),
            keep_alive,
            websocket_upgrade,
        })
    }

    /// Reads `input`, checks that every shorter prefix is partial or gives the same answer,
    /// and compares with `expect` (whose `head_len` is ignored).
    fn check(input: &str, expect: &Head) {
        let got = read_head(input.as_bytes(), LIMIT);
        for cut in 0..input.len() {
            let partial = read_head(&input.as_bytes()[..cut], LIMIT);
            assert!(
                partial == Head::Partial || partial == got,
                "{input:?} cut at {cut}: {partial:?}, whole {got:?}"
            );
        }
        let got = match got {
            Head::Complete(head) => {
                assert!(head.head_len <= input.len().min(LIMIT));
                Head::Complete(RequestHead {
                    head_len: 0,
                    ..head
                })
            }
            other => other,
        };
        assert_eq!(&got, expect, "{input:?}");
    }

    #[test]
    fn heads() {
        check(
            "GET /connz?subs=1&limit=3 HTTP/1.1\r\nHost: x\r\n\r\n",
            &complete("/connz", "subs=1&limit=3", true, false),
        );
        check(
            "GET /varz HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
            &complete("/varz", "", false, false),
        );
        check(
            "GET /varz HTTP/1.0\r\n\r\n",
            &complete("/varz", "", false, false),
        );
        check(
            "GET / HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n",
            &complete("/", "", true, true),
        );
        check("GET ?a=b HTTP/1.1\r\n\r\n", &Head::Bad);
        check(
            "GET HTTP://h:8222/subsz?x HTTP/1.1\r\n\r\n",
            &complete("/subsz", "x", true, false),
        );
        check(
            "GET https://h HTTP/1.1\r\n\r\n",
            &complete("/", "", true, false),
        );
        check(
            "GET http://h?a=1 HTTP/1.1\r\n\r\n",
            &complete("/", "a=1", true, false),
        );
        check("GET /varz HTTP/1.1\r\n", &Head::Partial);
        check("GET /varz HTTP/2.0\r\n\r\n", &Head::Bad);
        check("\0\r\n\r\n", &Head::Bad);
    }

    /// Only bytes limit a head, not its number of header lines.
    #[test]
    fn many_headers_within_the_limit() {
        let mut input = "GET /varz HTTP/1.1\r\n".to_owned();
        for idx in 0..200 {
            input.push_str(&format!("h{idx}: v\r\n"));
        }
        input.push_str("\r\n");
        assert!(matches!(
            read_head(input.as_bytes(), 16 * 1024),
            Head::Complete(_)
        ));
    }

    #[test]
    fn too_large() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(LIMIT));
        check(&long, &Head::TooLarge);
        check(&"x: y\r\n".repeat(LIMIT), &Head::Bad);
        let refusal = Head::TooLarge.refusal().unwrap();
        assert_eq!(refusal.status, 431);
        assert_eq!(Head::Bad.refusal().unwrap().status, 400);
        assert_eq!(Head::Partial.refusal(), None);
    }

    #[test]
    fn routes() {
        let check = |path: &str, base: &str, expect: Option<Endpoint>| {
            assert_eq!(
                Endpoint::route(path, base),
                expect,
                "{path:?} under {base:?}"
            );
        };
        check("/varz", "", Some(Endpoint::Varz));
        check("/", "", Some(Endpoint::Index));
        check("/subscriptionsz", "/", Some(Endpoint::Subsz));
        check("/mon/connz", "/mon/", Some(Endpoint::Connz));
        check("/mon", "/mon", Some(Endpoint::Index));
        check("/varz", "/mon", None);
        check("/monvarz", "/mon", None);
        check("/varz/", "", None);
        check("/nope", "", None);
        check("/mon/metrics", "/mon", Some(Endpoint::Metrics));
        check(
            "/mon/console",
            "/mon/",
            Some(Endpoint::Console(crate::monitor::Asset::PAGE)),
        );
        check("/consolex", "", None);
        check(
            "/console/",
            "",
            Some(Endpoint::Console(crate::monitor::Asset::PAGE)),
        );
        check("/natsws/connz", "", Some(Endpoint::NatswsConnz));
        let js = Endpoint::route("/mon/console/console.js", "/mon").unwrap();
        assert!(matches!(js, Endpoint::Console(a) if a != crate::monitor::Asset::PAGE));
        assert_eq!(js.path(), "/console");
        for (path, endpoint) in ENDPOINTS {
            assert_eq!(Endpoint::route(endpoint.path(), ""), Some(endpoint));
            assert_eq!(Endpoint::route(path, ""), Some(endpoint));
        }
        assert_eq!(Endpoint::Subsz.path(), "/subsz");
        assert_eq!(not_found().status, 404);
    }
}
