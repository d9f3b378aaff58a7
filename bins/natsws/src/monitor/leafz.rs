//! /leafz and the `leaf` section of /varz.

use broker::Broker;
use serde::Serialize;

use super::*;

#[derive(Serialize)]
struct Leafz<'a> {
    server_id: &'a str,
    now: String,
    leafnodes: usize,
    /// `null` when there are none, as nats-server renders it.
    leafs: Option<Vec<LeafzEntry>>,
}

/// One leaf connection (`server/monitor.go` `LeafInfo`).
#[derive(Serialize)]
struct LeafzEntry {
    account: String,
    ip: String,
    port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    rtt: String,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
}

/// `/leafz` (`?subs=1` lists each leaf's subscriptions, `?acc=` keeps one account's).
pub(super) fn leafz(
    q: &[(String, String)],
    broker: &Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let bad = |m: String| Response::text(400, &m);
    let subs = query_bool(q, "subs").map_err(bad)?;
    let acc = query_get(q, "acc").filter(|a| !a.is_empty());
    let leafs: Vec<LeafzEntry> = broker
        .leafs()
        .into_iter()
        .filter(|l| acc.is_none_or(|a| a == l.account))
        .map(|l| LeafzEntry {
            account: l.account,
            ip: l.remote.ip().to_string(),
            port: l.remote.port(),
            rtt: l.rtt.map(gotext::format_std_duration).unwrap_or_default(),
            in_msgs: l.in_msgs,
            out_msgs: l.out_msgs,
            in_bytes: l.in_bytes,
            out_bytes: l.out_bytes,
            subscriptions: l.subscriptions.len(),
            subscriptions_list: if subs { l.subscriptions } else { Vec::new() },
        })
        .collect();
    Ok(Response::json(pretty(&Leafz {
        server_id: &broker.config().server_id,
        now: ctx.clock.rfc3339(ctx.now),
        leafnodes: leafs.len(),
        leafs: (!leafs.is_empty()).then_some(leafs),
    })))
}

/// The `leaf` section of `/varz` (`server/monitor.go` `LeafNodeOptsVarz`).
#[derive(Serialize, Default)]
pub(super) struct LeafVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero_u16")]
    port: u16,
    #[serde(skip_serializing_if = "is_zero_f64")]
    auth_timeout: f64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    tls_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_verify: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remotes: Vec<RemoteLeafVarz>,
}

#[derive(Serialize)]
struct RemoteLeafVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    local_account: String,
    urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny: Option<DenyVarz>,
}

#[derive(Serialize)]
struct DenyVarz {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<String>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

pub(super) fn leaf_varz(ctx: &MonitorCtx<'_>) -> LeafVarz {
    let leaf = &ctx.settings.leaf;
    let options = &ctx.settings.options.leafnodes;
    let mut v = LeafVarz::default();
    if let Some(listen) = &leaf.listen {
        v.host.clone_from(&listen.host);
        v.port = ctx.bound.leaf_port.unwrap_or(0);
        v.auth_timeout = options.auth_timeout().as_secs_f64();
        v.tls_required = leaf.tls.is_some();
        v.tls_verify = leaf.tls.as_ref().is_some_and(|t| t.verify);
        v.tls_timeout = options
            .tls
            .as_ref()
            .map_or(0.0, |t| t.timeout.as_secs_f64());
    }
    v.remotes = leaf
        .remotes
        .iter()
        .map(|r| RemoteLeafVarz {
            local_account: r
                .account
                .clone()
                .unwrap_or_else(|| broker::GLOBAL_ACCOUNT.to_owned()),
            urls: r
                .urls
                .iter()
                .map(|u| crate::outbound::DialUrl::from_leaf(u).to_string())
                .collect(),
            deny: (!r.deny_exports.is_empty() || !r.deny_imports.is_empty()).then(|| DenyVarz {
                exports: r.deny_exports.clone(),
                imports: r.deny_imports.clone(),
            }),
        })
        .collect();
    v
}
