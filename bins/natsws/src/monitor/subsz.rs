//! `/subsz`: the subject index statistics and, with `subs`, a page of subscriptions.

use super::*;

#[derive(Serialize)]
pub(super) struct SubDetail {
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    qgroup: String,
    sid: String,
    msgs: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    max: i64,
    cid: u64,
}

pub(super) fn sub_detail(s: &SubInfo, account: bool) -> SubDetail {
    SubDetail {
        account: if account {
            s.account.clone()
        } else {
            String::new()
        },
        subject: s.subject.clone(),
        qgroup: s.queue.clone().unwrap_or_default(),
        sid: s.sid.clone(),
        msgs: i64::try_from(s.msgs).unwrap_or(i64::MAX),
        max: s.max.map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX)),
        cid: s.cid,
    }
}

#[derive(Serialize)]
pub(super) struct SubszStats {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: GoFloat,
    max_fanout: u64,
    avg_fanout: GoFloat,
}

#[derive(Serialize)]
struct SubszList<'a> {
    server_id: &'a str,
    now: String,
    #[serde(flatten)]
    stats: SubszStats,
    total: usize,
    offset: i64,
    limit: i64,
    subscriptions_list: Vec<SubDetail>,
}

/// An index's statistics as `/subsz` and `/accountz` render them.
pub(super) fn subsz_stats(st: &broker::sublist::SublistStats, n_subs: u64) -> SubszStats {
    SubszStats {
        num_subscriptions: n_subs,
        num_cache: u64::from(st.num_cache),
        num_inserts: st.num_inserts,
        num_removes: st.num_removes,
        num_matches: st.num_matches,
        cache_hit_rate: GoFloat(st.cache_hit_rate),
        max_fanout: u64::from(st.max_fanout),
        avg_fanout: GoFloat(st.avg_fanout),
    }
}

pub(super) fn subsz(
    q: &[(String, String)],
    broker: &mut Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let bad = |m: String| Response::text(400, &m);
    let subs = query_bool(q, "subs").map_err(bad)?;
    let mut offset = query_int(q, "offset").map_err(bad)?;
    let mut limit = query_int(q, "limit").map_err(bad)?;
    let acc = query_get(q, "acc").unwrap_or("");
    let test = query_get(q, "test").filter(|t| !t.is_empty());
    if let Some(t) = test
        && !broker::subject::is_valid_literal(t.as_bytes())
    {
        return Err(bad(format!(
            "invalid test subject, must be valid publish subject: {t}"
        )));
    }
    if offset < 0 {
        offset = 0;
    }
    if limit <= 0 {
        limit = 1024;
    }
    // Go sums the index statistics of the accounts the filter keeps (an unknown account:
    // none).
    let (st, n_subs) = if acc.is_empty() {
        (broker.sublist_stats(), broker.stats().subscriptions)
    } else {
        let st = broker.account_sublist_stats(acc).unwrap_or_default();
        (
            st,
            usize::try_from(st.num_subscriptions).unwrap_or(usize::MAX),
        )
    };
    let stats = subsz_stats(&st, u64::try_from(n_subs).unwrap_or(0));
    let mut list: Vec<SubInfo> = if subs {
        broker.subscriptions_in(Some(acc).filter(|a| !a.is_empty()), test.map(str::as_bytes))
    } else {
        Vec::new()
    };
    let start_idx = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(list.len());
    let end_idx = start_idx
        .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(list.len());
    list = list.get(start_idx..end_idx).unwrap_or(&[]).to_vec();
    if list.is_empty() {
        return Ok(Response::json(pretty(&stats)));
    }
    let details: Vec<SubDetail> = list.iter().map(|s| sub_detail(s, true)).collect();
    Ok(Response::json(pretty(&SubszList {
        server_id: &broker.config().server_id,
        now: ctx.clock.rfc3339(ctx.now),
        stats,
        total: details.len(),
        offset,
        limit,
        subscriptions_list: details,
    })))
}
