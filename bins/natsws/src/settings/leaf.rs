//! The `leafnodes` block: the remotes natsws dials and the accepting side's authorization.

use std::time::Duration;

use natsconf::options::Options;

use super::{ListenSpec, listen, tls_spec};
use crate::tls::{ClientTlsSpec, TlsSpec};

/// One `leafnodes { remotes [...] }` entry natsws dials.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteSettings {
    /// The URLs, dialled in turn (shuffled once unless `no_randomize`).
    pub(crate) urls: Vec<natsconf::options::LeafUrl>,
    /// The local account (`None`: `$G`).
    pub(crate) account: Option<String>,
    /// The remote's `tls { ca_file, cert_file, key_file, insecure }`: how the hub is verified
    /// and the certificate presented to it; `None` without TLS.
    pub(crate) tls_client: Option<ClientTlsSpec>,
    /// A `tls {}` block was given: TLS is started after the hub's INFO even on `nats://`.
    pub(crate) tls: bool,
    /// `ws_compression`: offer permessage-deflate on `ws://`/`wss://`.
    pub(crate) ws_compression: bool,
    /// `ws_no_masking`: ask the hub to accept unmasked frames.
    pub(crate) ws_no_masking: bool,
    pub(crate) deny_imports: Vec<String>,
    pub(crate) deny_exports: Vec<String>,
    pub(crate) no_randomize: bool,
    /// `credentials`, read at start-up.
    pub(crate) credentials: Option<broker::LeafCredentials>,
    /// `hub: true`: this side is the hub of the link it dials.
    pub(crate) hub: bool,
}

/// `leafnodes { advertise }` as `server/leafnode.go` `setLeafNodeInfoHostPortAndIP` reads it
/// with `server/util.go` `parseHostPort`: `host:port`, or a host alone (`leaf_port`, the
/// bound leafnode port, is appended); a port of 0 or -1 is `leaf_port` too. The error is
/// nats-server's fatal one. A port outside 1-65535 is refused, where nats-server would
/// advertise it as written.
pub(crate) fn parse_advertise(text: &str, leaf_port: u16) -> Result<(String, u16), String> {
    let fail = |err: String| {
        format!("Error setting leafnode INFO with LeafNode.Advertise value of {text}, err={err}")
    };
    let (host, port) = match go_split_host_port(text) {
        Ok(split) => split,
        Err(why) if why == MISSING_PORT => {
            let with_port = format!("{text}:{leaf_port}");
            let (host, _) = go_split_host_port(&with_port)
                .map_err(|why| fail(format!("address {with_port}: {why}")))?;
            return Ok((host.trim().to_owned(), leaf_port));
        }
        Err(why) => return Err(fail(format!("address {text}: {why}"))),
    };
    let port = match go_atoi(port.trim()).map_err(fail)? {
        0 | -1 => leaf_port,
        n => u16::try_from(n)
            .ok()
            .ok_or_else(|| format!("leafnodes.advertise {text}: port {n} is out of range"))?,
    };
    Ok((host.trim().to_owned(), port))
}

const MISSING_PORT: &str = "missing port in address";

/// Go's `net.SplitHostPort`, with the reason of its `AddrError` on failure.
fn go_split_host_port(hostport: &str) -> Result<(&str, &str), &'static str> {
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let colon = hostport.rfind(':').ok_or(MISSING_PORT)?;
    let (host, j, k) = if hostport.starts_with('[') {
        let end = hostport.find(']').ok_or("missing ']' in address")?;
        if end + 1 == hostport.len() {
            return Err(MISSING_PORT);
        }
        if end + 1 != colon {
            return Err(if hostport.as_bytes().get(end + 1) == Some(&b':') {
                TOO_MANY_COLONS
            } else {
                MISSING_PORT
            });
        }
        (hostport.get(1..end).unwrap_or_default(), 1, end + 1)
    } else {
        let host = hostport.get(..colon).unwrap_or_default();
        if host.contains(':') {
            return Err(TOO_MANY_COLONS);
        }
        (host, 0, 0)
    };
    if hostport.get(j..).is_some_and(|s| s.contains('[')) {
        return Err("unexpected '[' in address");
    }
    if hostport.get(k..).is_some_and(|s| s.contains(']')) {
        return Err("unexpected ']' in address");
    }
    Ok((host, hostport.get(colon + 1..).unwrap_or_default()))
}

/// Go's `strconv.Atoi` on a 64-bit platform, with its error text.
fn go_atoi(text: &str) -> Result<i64, String> {
    let digits = text
        .strip_prefix('+')
        .or_else(|| text.strip_prefix('-'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            gotext::quote(text)
        ));
    }
    text.parse::<i64>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            gotext::quote(text)
        )
    })
}

/// The `leafnodes` block, the parts natsws serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LeafSettings {
    /// The accepting side's listener (`port`, `host`, `listen`).
    pub(crate) listen: Option<ListenSpec>,
    /// The accepting side's `tls {}` (TLS after INFO, as for clients).
    pub(crate) tls: Option<TlsSpec>,
    /// `advertise`: the address accepted leafs are given in INFO (`host`, `port` and
    /// `leafnode_urls`) instead of the listener's; read by [`parse_advertise`] once the
    /// leafnode port is bound.
    pub(crate) advertise: Option<String>,
    pub(crate) remotes: Vec<RemoteSettings>,
    /// `reconnect`: the longest wait between two attempts to dial a remote.
    pub(crate) reconnect: Duration,
}

/// The remotes natsws dials, checked as nats-server checks them at start-up.
pub(super) fn leaf_settings(o: &Options) -> Result<LeafSettings, String> {
    let mut remotes = Vec::new();
    for r in &o.leafnodes.remotes {
        if let Some(name) = &r.account
            && name != broker::GLOBAL_ACCOUNT
            && !o.accounts.iter().any(|a| &a.name == name)
        {
            // `server/leafnode.go` `validateLeafNode`.
            return Err(format!(
                "cannot find local account {} specified in leafnode remote",
                gotext::quote(name)
            ));
        }
        let ws = r.urls.iter().filter(|u| u.is_websocket()).count();
        if ws != 0 && ws != r.urls.len() {
            // `server/opts.go` `parseRemoteLeafNodes`.
            let urls: Vec<&str> = r.urls.iter().map(|u| u.raw.as_str()).collect();
            return Err(format!(
                "remote leaf node configuration cannot have a mix of websocket and non-websocket urls: {}",
                urls.join(", ")
            ));
        }
        for url in &r.urls {
            if !matches!(
                url.scheme.as_str(),
                "nats" | "tls" | "nats-leaf" | "ws" | "wss"
            ) {
                return Err(format!(
                    "leafnode remote url scheme {} is not supported by natsws",
                    gotext::quote(&url.scheme)
                ));
            }
        }
        let tls = r.tls.is_some()
            || r.urls
                .iter()
                .any(|u| u.scheme == "tls" || u.scheme == "wss");
        let tls_client = r.tls.as_ref().map(|t| ClientTlsSpec {
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            insecure: t.insecure,
        });
        if tls
            && !tls_client
                .as_ref()
                .is_some_and(|t| t.ca_file.is_some() || t.insecure)
        {
            return Err(
                "leafnode remote with TLS needs tls { ca_file } (the hub's certificate is verified) or tls { insecure: true }"
                    .to_owned(),
            );
        }
        remotes.push(RemoteSettings {
            urls: r.urls.clone(),
            account: r.account.clone(),
            tls_client,
            tls,
            ws_compression: r.ws_compression,
            ws_no_masking: r.ws_no_masking,
            deny_imports: r.deny_imports.clone(),
            deny_exports: r.deny_exports.clone(),
            no_randomize: r.no_randomize,
            credentials: match &r.credentials {
                Some(path) => Some(read_credentials(path)?),
                None => None,
            },
            hub: r.hub,
        });
    }
    let leaf = &o.leafnodes;
    Ok(LeafSettings {
        listen: leaf.listen.as_ref().map(|l| listen(&l.host, l.port)),
        tls: leaf.tls.as_ref().map(tls_spec),
        advertise: leaf.advertise.clone(),
        remotes,
        reconnect: leaf.reconnect_interval,
    })
}

/// A `.creds` file (`nsc`'s format, `jwt.DecorateJWT` and `jwt.DecorateSeed`): the first
/// line after the `BEGIN ... JWT` marker, and the first after `BEGIN ... SEED`.
fn read_credentials(path: &str) -> Result<broker::LeafCredentials, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "error reading leafnode credentials {}: {e}",
            gotext::quote(path)
        )
    })?;
    let after = |marker: &str| {
        let mut lines = text.lines();
        lines
            .by_ref()
            .find(|l| l.contains("BEGIN") && l.contains(marker))?;
        lines
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    };
    let jwt = after("JWT").filter(|j| j.split('.').count() == 3);
    let seed = after("SEED").filter(|s| s.starts_with("SU"));
    match (jwt, seed) {
        (Some(jwt), Some(seed)) => Ok(broker::LeafCredentials { jwt, seed }),
        _ => Err(format!(
            "leafnode credentials {}: no user JWT and user seed found",
            gotext::quote(path)
        )),
    }
}

/// `leafnodes { authorization }` for the broker: `None` when it names neither a user nor an
/// account, and accepted leafs then authenticate as clients do (connection type `LEAFNODE`).
pub(super) fn leaf_auth(o: &Options) -> Option<broker::LeafAuthConfig> {
    let a = &o.leafnodes.authorization;
    if a.user.is_none() && a.users.is_empty() && a.account.is_none() {
        return None;
    }
    let mut users: Vec<broker::LeafUserConfig> = a
        .users
        .iter()
        .map(|u| broker::LeafUserConfig {
            username: u.username.clone(),
            password: u.password.clone(),
            account: u.account.clone(),
        })
        .collect();
    if let Some(user) = &a.user {
        users.push(broker::LeafUserConfig {
            username: user.clone(),
            password: a.password.clone().unwrap_or_default(),
            account: None,
        });
    }
    Some(broker::LeafAuthConfig {
        users,
        account: a.account.clone(),
        timeout: a.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_advertise;

    #[test]
    fn advertise_is_read_as_nats_server_reads_it() {
        let err = |e: &str| {
            Err(format!(
                "Error setting leafnode INFO with LeafNode.Advertise value of {}",
                e
            ))
        };
        for (text, want) in [
            ("h.example:4242", Ok(("h.example".to_owned(), 4242))),
            ("h.example", Ok(("h.example".to_owned(), 7422))),
            ("h.example:0", Ok(("h.example".to_owned(), 7422))),
            ("h.example:-1", Ok(("h.example".to_owned(), 7422))),
            (" h.example : 5 ", Ok(("h.example".to_owned(), 5))),
            ("[::1]", Ok(("::1".to_owned(), 7422))),
            ("[::1]:9", Ok(("::1".to_owned(), 9))),
            (
                "a:b:c",
                err("a:b:c, err=address a:b:c: too many colons in address"),
            ),
            (
                "h:x",
                err("h:x, err=strconv.Atoi: parsing \"x\": invalid syntax"),
            ),
            (
                "h:",
                err("h:, err=strconv.Atoi: parsing \"\": invalid syntax"),
            ),
            (
                "[::1",
                err("[::1, err=address [::1: missing ']' in address"),
            ),
            (
                "h[:1",
                err("h[:1, err=address h[:1: unexpected '[' in address"),
            ),
            (
                "[h]x",
                err("[h]x, err=address [h]x:7422: missing port in address"),
            ),
            (
                "h:99999999999999999999",
                err(
                    "h:99999999999999999999, err=strconv.Atoi: parsing \"99999999999999999999\": value out of range",
                ),
            ),
            (
                "h:70000",
                Err("leafnodes.advertise h:70000: port 70000 is out of range".to_owned()),
            ),
        ] {
            assert_eq!(parse_advertise(text, 7422), want, "{text:?}");
        }
    }
}
