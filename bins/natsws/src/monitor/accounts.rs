//! `/accountz`: the account list and one account's detail.

use super::*;

#[derive(Serialize)]
struct Accountz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    system_account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountDetail>,
}

/// `/accountz?acc=` (`server/monitor.go` `AccountInfo`, the fields a configured account has).
#[derive(Serialize)]
struct AccountDetail {
    account_name: String,
    update_time: String,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: usize,
    client_connections: usize,
    subscriptions: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportDetail>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportDetail>,
    sublist_stats: SubszStats,
}

#[derive(Serialize)]
struct ExportDetail {
    subject: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approved_accounts: Vec<String>,
}

#[derive(Serialize)]
struct ImportDetail {
    subject: String,
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    local_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

/// `/accountz`: the account names, or with `acc` one account's detail (400 `Account <name>
/// does not exist` for an unknown one). The reference also lists the service imports of its
/// system services (`$SYS.REQ.…`) in every account; natsws's only system services (the full
/// resolver's claim services) are served in the system account itself, and no account
/// imports them.
pub(super) fn accountz(
    q: &[(String, String)],
    broker: &Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let accounts = broker.accounts();
    let system_account = broker.system_account().unwrap_or("");
    let mut out = Accountz {
        server_id: &broker.config().server_id,
        now: ctx.clock.rfc3339(ctx.now),
        system_account,
        accounts: None,
        account_detail: None,
    };
    let name = query_get(q, "acc").unwrap_or("");
    if name.is_empty() {
        out.accounts = Some(accounts.into_iter().map(|a| a.name).collect());
        return Ok(Response::json(pretty(&out)));
    }
    let Some(info) = accounts.into_iter().find(|a| a.name == name) else {
        return Err(Response::text(
            400,
            &format!("Account {name} does not exist"),
        ));
    };
    let config = broker.config().accounts.iter().find(|a| a.name == name);
    let kind = |k: broker::ExportKind| match k {
        broker::ExportKind::Stream => "stream",
        broker::ExportKind::Service => "service",
    };
    let exports = config.map_or_else(Vec::new, |a| {
        a.exports
            .iter()
            .map(|e| ExportDetail {
                subject: e.subject.clone(),
                kind: kind(e.kind),
                response_type: (e.kind == broker::ExportKind::Service).then_some(
                    match e.response_type {
                        broker::ResponseType::Singleton => "Singleton",
                        broker::ResponseType::Stream => "Streamed",
                        broker::ResponseType::Chunked => "Chunked",
                    },
                ),
                approved_accounts: e.accounts.clone(),
            })
            .collect()
    });
    let imports = config.map_or_else(Vec::new, |a| {
        a.imports
            .iter()
            .map(|i| {
                let stream = i.kind == broker::ExportKind::Stream;
                let local = match (&i.prefix, &i.to) {
                    (Some(p), _) => format!("{}.{}", p.trim_end_matches('.'), i.subject),
                    (None, Some(to)) => to.clone(),
                    (None, None) => i.subject.clone(),
                };
                ImportDetail {
                    // A service import shows its local subject and maps `to` the exported one.
                    subject: if stream {
                        i.subject.clone()
                    } else {
                        local.clone()
                    },
                    account: i.account.clone(),
                    local_subject: if stream { local } else { String::new() },
                    to: if stream {
                        String::new()
                    } else {
                        i.subject.clone()
                    },
                    kind: kind(i.kind),
                    invalid: false,
                    share: false,
                    tracking: false,
                }
            })
            .collect()
    });
    let st = info.sublist;
    out.account_detail = Some(AccountDetail {
        account_name: info.name,
        update_time: ctx.clock.rfc3339(broker.start_time()),
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: 0,
        client_connections: info.connections,
        subscriptions: st.num_subscriptions,
        exports,
        imports,
        sublist_stats: subsz_stats(&st, u64::from(st.num_subscriptions)),
    });
    Ok(Response::json(pretty(&out)))
}
