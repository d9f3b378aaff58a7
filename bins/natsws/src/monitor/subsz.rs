//! `/subsz`: the subject index statistics and, with `subs`, a page of subscriptions.

use std::collections::BinaryHeap;

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

#[derive(Debug, Serialize)]
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

/// What `/subsz` is answered with: the statistics alone, at once, or, with `subs`, a page
/// of subscriptions to take over several ticks ([`SubszQuery::choose`]).
pub(super) enum SubszReply {
    Ready(Response),
    Page(SubszQuery),
}

/// A checked `/subsz?subs=1` query. It holds no more than the query held.
#[derive(Debug)]
pub(crate) struct SubszQuery {
    offset: i64,
    limit: i64,
    acc: String,
    test: Option<String>,
    /// The JSONP `callback` the reply is wrapped in.
    callback: Option<String>,
}

/// The index statistics `/subsz` reports, of one account (`acc`) or of all.
fn stats_of(broker: &Broker, acc: &str) -> SubszStats {
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
    subsz_stats(&st, u64::try_from(n_subs).unwrap_or(0))
}

pub(super) fn subsz(q: &[(String, String)], broker: &Broker) -> Result<SubszReply, Response> {
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
    if !subs {
        return Ok(SubszReply::Ready(Response::json(pretty(&stats_of(
            broker, acc,
        )))));
    }
    Ok(SubszReply::Page(SubszQuery {
        offset,
        limit,
        acc: acc.to_owned(),
        test: test.map(str::to_owned),
        callback: callback(q).map(str::to_owned),
    }))
}

impl SubszQuery {
    /// Starts the page at `now`: the statistics are taken now, the subscriptions by
    /// [`SubszPage::take_subscriptions`].
    pub(crate) fn choose(self, broker: &Broker, clock: Clock, now: Instant) -> SubszPage {
        let keep = usize::try_from(self.offset)
            .unwrap_or(usize::MAX)
            .saturating_add(usize::try_from(self.limit).unwrap_or(usize::MAX));
        SubszPage {
            stats: stats_of(broker, &self.acc),
            server_id: broker.config().server_id.clone(),
            now: clock.rfc3339(now),
            cursor: 0,
            keep,
            first: BinaryHeap::new(),
            query: self,
        }
    }
}

/// A subscription ordered as `/subsz` lists them: by cid, then sid.
#[derive(Debug)]
struct Listed(SubInfo);

impl Listed {
    fn key(&self) -> (u64, &str) {
        (self.0.cid, &self.0.sid)
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Listed {}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// A `/subsz?subs=1` page being made: the broker's subscriptions are looked at a bounded
/// number at a time, keeping only the first `offset + limit` in list order, so that 100,000
/// subscriptions do not pause the event loop; then it renders on its own, touching nothing
/// the loop owns.
#[derive(Debug)]
pub(crate) struct SubszPage {
    query: SubszQuery,
    stats: SubszStats,
    server_id: String,
    now: String,
    /// The next subscription slot to look at.
    cursor: usize,
    /// How many subscriptions, from the first in list order, the page needs: `offset + limit`.
    keep: usize,
    /// The first `keep` subscriptions seen so far, the last in list order on top.
    first: BinaryHeap<Listed>,
}

impl SubszPage {
    /// Looks at up to `budget` more subscription slots. True once all were looked at.
    pub(crate) fn take_subscriptions(&mut self, broker: &Broker, budget: usize) -> bool {
        let (first, keep) = (&mut self.first, self.keep);
        broker.scan_subscriptions(
            &mut self.cursor,
            budget,
            Some(self.query.acc.as_str()).filter(|a| !a.is_empty()),
            self.query.test.as_deref().map(str::as_bytes),
            |s| {
                let s = Listed(s);
                if first.len() < keep {
                    first.push(s);
                } else if first.peek().is_some_and(|last| s < *last) {
                    first.pop();
                    first.push(s);
                }
            },
        )
    }

    /// Renders the reply.
    pub(crate) fn render(self) -> Response {
        let offset = usize::try_from(self.query.offset).unwrap_or(usize::MAX);
        let details: Vec<SubDetail> = self
            .first
            .into_sorted_vec()
            .iter()
            .skip(offset)
            .map(|s| sub_detail(&s.0, true))
            .collect();
        let resp = if details.is_empty() {
            Response::json(pretty(&self.stats))
        } else {
            Response::json(pretty(&SubszList {
                server_id: &self.server_id,
                now: self.now,
                stats: self.stats,
                total: details.len(),
                offset: self.query.offset,
                limit: self.query.limit,
                subscriptions_list: details,
            }))
        };
        with_callback(resp, self.query.callback.as_deref())
    }
}

#[cfg(test)]
mod subsz_tests {
    use super::*;
    use broker::{ClientParams, ConnectionType};
    use bytes::BytesMut;

    /// A page taken a few slots at a time lists what one look at every subscription lists:
    /// the `offset..offset + limit` of all, by cid then sid, filtered by `test`.
    #[test]
    fn pages_taken_in_steps_list_the_right_subscriptions() {
        let settings =
            crate::settings::from_options(&natsconf::options::Options::default()).unwrap();
        let now = Instant::now();
        let mut broker = Broker::new(settings.broker.clone(), now);
        let addr = "127.0.0.1:5000".parse().unwrap();
        for i in 0..5 {
            let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
            // Sids that sort differently as strings and as numbers, subscribed out of order.
            let subs: String = [7, 10, 1, 30, 2, 21, 100, 3]
                .iter()
                .map(|j| format!("SUB s.{}.{j} {j}\r\n", (i * 7) % 5))
                .collect();
            let mut input = BytesMut::from(format!("CONNECT {{}}\r\n{subs}").as_bytes());
            broker.handle_input(id, now, &mut input);
            while broker.poll_event().is_some() {}
        }
        let mut all = broker.subscriptions(None);
        assert_eq!(all.len(), 40);
        all.sort_by(|a, b| a.cid.cmp(&b.cid).then_with(|| a.sid.cmp(&b.sid)));
        for (offset, limit, test) in [
            (0, 1024, None),
            (3, 5, None),
            (38, 10, None),
            (40, 10, None),
            (1, 2, Some("s.3.21")),
        ] {
            let q = SubszQuery {
                offset,
                limit,
                acc: String::new(),
                test: test.map(str::to_owned),
                callback: None,
            };
            let mut page = q.choose(&broker, Clock::now(), now);
            let mut n_steps = 0;
            while !page.take_subscriptions(&broker, 3) {
                n_steps += 1;
            }
            assert!(n_steps >= 10, "{n_steps} steps");
            let body: serde_json::Value = serde_json::from_slice(&page.render().body).unwrap();
            let listed: Vec<(u64, String)> =
                body["subscriptions_list"]
                    .as_array()
                    .map_or_else(Vec::new, |l| {
                        l.iter()
                            .map(|s| {
                                (
                                    s["cid"].as_u64().unwrap(),
                                    s["sid"].as_str().unwrap().to_owned(),
                                )
                            })
                            .collect()
                    });
            let expected: Vec<(u64, String)> = all
                .iter()
                .filter(|s| test.is_none_or(|t| s.subject == t))
                .skip(usize::try_from(offset).unwrap())
                .take(usize::try_from(limit).unwrap())
                .map(|s| (s.cid, s.sid.clone()))
                .collect();
            assert_eq!(
                listed, expected,
                "offset {offset} limit {limit} test {test:?}"
            );
        }
    }
}
