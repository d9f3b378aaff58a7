//! `/connz`: choosing a page of connections, taking their subscriptions a bounded number
//! at a time, and rendering it (off the loop, in the render thread).

use std::cmp::Reverse;
use std::net::IpAddr;

use broker::ClientInfo;

use super::*;

#[derive(Serialize)]
struct ConnInfoJson {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    conn_type: &'static str,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<String>,
    /// With `auth`, for a client outside the global account (`server/monitor.go` `Connz`).
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail>,
    /// The MQTT client id (`server/monitor.go` `ConnInfo.MQTTClient`).
    #[serde(skip_serializing_if = "String::is_empty")]
    mqtt_client: String,
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: i64,
    limit: i64,
    connections: Vec<ConnInfoJson>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubsMode {
    None,
    List,
    Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    Open,
    Closed,
    Any,
}

/// A checked `/connz` query: what the page will be chosen by ([`ConnzQuery::choose`]). It
/// holds no more than the query held.
#[derive(Debug)]
pub(crate) struct ConnzQuery {
    sort: String,
    auth: bool,
    subs: SubsMode,
    offset: i64,
    limit: i64,
    cid: u64,
    state: StateFilter,
    user: String,
    acc: String,
    /// The JSONP `callback` the reply is wrapped in.
    callback: Option<String>,
}

/// Parses and checks a `/connz` query; a bad one gets its 400 at once.
pub(super) fn connz_query(q: &[(String, String)]) -> Result<ConnzQuery, Response> {
    let bad = |m: String| Response::text(400, &m);
    let sort = query_get(q, "sort").unwrap_or("").to_owned();
    let auth = query_bool(q, "auth").map_err(bad)?;
    let subs = match query_get(q, "subs") {
        Some("detail") => SubsMode::Detail,
        Some(v) if !v.is_empty() => {
            if parse_go_bool("subs", v).map_err(bad)? {
                SubsMode::List
            } else {
                SubsMode::None
            }
        }
        _ => SubsMode::None,
    };
    let mut offset = query_int(q, "offset").map_err(bad)?;
    let mut limit = query_int(q, "limit").map_err(bad)?;
    let cid = match query_get(q, "cid") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| {
            bad(format!(
                "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"{v}\": invalid syntax"
            ))
        })?,
    };
    let state = match query_get(q, "state")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("open") => StateFilter::Open,
        Some("closed") => StateFilter::Closed,
        Some("any") | Some("all") => StateFilter::Any,
        Some(_) => {
            return Err(bad(format!(
                "Error decoding state for {}",
                query_get(q, "state").unwrap_or("")
            )));
        }
    };
    let user = query_get(q, "user").unwrap_or("").to_owned();
    let acc = query_get(q, "acc").unwrap_or("").to_owned();
    let valid_sorts = [
        "",
        "cid",
        "start",
        "subs",
        "pending",
        "msgs_to",
        "msgs_from",
        "bytes_to",
        "bytes_from",
        "last",
        "idle",
        "uptime",
        "stop",
        "reason",
    ];
    if !valid_sorts.contains(&sort.as_str()) {
        return Err(bad(format!("invalid sorting option: {sort}")));
    }
    if (sort == "stop" || sort == "reason") && state != StateFilter::Closed {
        return Err(bad(format!(
            "sort by {sort} only valid on closed connections"
        )));
    }
    if offset < 0 {
        offset = 0;
    }
    if limit <= 0 {
        limit = 1024;
    }
    Ok(ConnzQuery {
        sort,
        auth,
        subs,
        offset,
        limit,
        cid,
        state,
        user,
        acc,
        callback: callback(q).map(str::to_owned),
    })
}

impl ConnzQuery {
    /// Chooses the page at `now`: takes every candidate connection's summary, filters, sorts
    /// and pages them (`keep_closed`: closed connections are listed at all). Subscriptions
    /// are not taken yet ([`ConnzPage::take_subscriptions`]) and nothing is rendered
    /// ([`ConnzPage::render`]).
    pub(crate) fn choose(
        self,
        broker: &Broker,
        clock: Clock,
        now: Instant,
        keep_closed: bool,
    ) -> ConnzPage {
        let Self {
            sort,
            auth,
            subs,
            offset,
            mut limit,
            cid,
            state,
            user,
            acc,
            callback,
        } = self;
        // Connections the broker has closed but whose last bytes are still being written count as
        // closed: they are not in the closed ring until they are removed.
        // Leaf connections are shown by /leafz, not here (nats-server lists clients only).
        let is_client = |c: &ClientInfo| {
            !matches!(
                c.conn_type,
                broker::ConnectionType::Leaf | broker::ConnectionType::LeafWebSocket
            )
        };
        let (open, closing): (Vec<ClientInfo>, Vec<ClientInfo>) = broker
            .clients()
            .into_iter()
            .filter_map(|id| broker.client_summary(id, now))
            .filter(is_client)
            .partition(|c| c.stop.is_none());
        // With `max_closed_clients: 0` nothing closed is listed, not even these.
        let closed = closing
            .into_iter()
            .filter(|_| keep_closed)
            .chain(broker.closed_clients().filter(|c| is_client(c)).cloned());
        let mut infos: Vec<ClientInfo> = Vec::new();
        if cid != 0 {
            // 2.9.10: with state=all only closed connections are searched.
            if state == StateFilter::Open {
                infos.extend(open.into_iter().filter(|c| c.cid == cid));
            } else {
                infos.extend(closed.filter(|c| c.cid == cid));
            }
            limit = 1;
        } else {
            if state != StateFilter::Closed {
                infos.extend(open);
            }
            if state != StateFilter::Open {
                infos.extend(closed);
            }
        }
        if !user.is_empty() {
            infos.retain(|c| c.user == user || c.authorized_user.as_deref() == Some(user.as_str()));
        }
        if !acc.is_empty() {
            infos.retain(|c| c.account == acc);
        }
        let life = |c: &ClientInfo| c.stop.unwrap_or(now).saturating_duration_since(c.start);
        match sort.as_str() {
            "" | "cid" | "start" => infos.sort_by_key(|c| c.cid),
            "subs" => infos.sort_by_key(|c| Reverse(c.num_subscriptions)),
            "pending" => infos.sort_by_key(|c| Reverse(c.pending_bytes)),
            "msgs_to" => infos.sort_by_key(|c| Reverse(c.out_msgs)),
            "msgs_from" => infos.sort_by_key(|c| Reverse(c.in_msgs)),
            "bytes_to" => infos.sort_by_key(|c| Reverse(c.out_bytes)),
            "bytes_from" => infos.sort_by_key(|c| Reverse(c.in_bytes)),
            "last" => infos.sort_by_key(|c| Reverse(c.last_activity)),
            "idle" => infos.sort_by(|a, b| {
                let ia = a.last_activity.saturating_duration_since(a.start);
                let ib = b.last_activity.saturating_duration_since(b.start);
                ib.cmp(&ia)
            }),
            "uptime" => infos.sort_by_key(|c| life(c)),
            "stop" => infos.sort_by_key(|c| Reverse(c.stop)),
            "reason" => infos.sort_by(|a, b| {
                a.reason
                    .map(|r| r.as_str())
                    .cmp(&b.reason.map(|r| r.as_str()))
            }),
            _ => {}
        }
        let total = infos.len();
        let start_idx = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
        let end_idx = start_idx
            .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
            .min(total);
        let page: Vec<ClientInfo> = infos.drain(start_idx..end_idx).collect();
        ConnzPage {
            page,
            n_taken: 0,
            subs,
            auth,
            total,
            offset,
            limit,
            server_id: broker.config().server_id.clone(),
            clock,
            now,
            callback,
        }
    }
}

/// A chosen `/connz` page (from [`connz_page`]). Its connections' subscriptions are taken a
/// few connections at a time, so that a page of thousands of connections holding many
/// subscriptions each does not pause the event loop; then it renders on its own, touching
/// nothing the loop owns (nats-server, too, renders monitoring replies on the HTTP handler's
/// goroutine, `server/monitor.go` `HandleConnz`).
#[derive(Debug)]
pub(crate) struct ConnzPage {
    page: Vec<ClientInfo>,
    /// How many connections of `page`, from the front, have their subscriptions taken.
    n_taken: usize,
    subs: SubsMode,
    auth: bool,
    total: usize,
    offset: i64,
    limit: i64,
    server_id: String,
    clock: Clock,
    now: Instant,
    /// The JSONP `callback` the reply is wrapped in.
    callback: Option<String>,
}

impl ConnzPage {
    /// Takes the subscriptions of the next connections of the page, one connection at a time,
    /// until about `budget` subscriptions were taken. True once every connection's are taken
    /// (at once when the query did not ask for subscriptions).
    pub(crate) fn take_subscriptions(&mut self, broker: &Broker, budget: usize) -> bool {
        if self.subs == SubsMode::None {
            return true;
        }
        let mut taken = 0;
        while taken < budget
            && let Some(c) = self.page.get_mut(self.n_taken)
        {
            // Summaries carry no subscriptions (the closed ring keeps its own).
            if c.subscriptions.is_empty() && c.num_subscriptions > 0 {
                c.subscriptions = broker.client_subscriptions(c.id);
            }
            taken += c.subscriptions.len().max(1);
            self.n_taken += 1;
        }
        self.n_taken >= self.page.len()
    }

    /// Renders the reply. Subscriptions not yet taken are left out.
    pub(crate) fn render(self) -> Response {
        let now = self.now;
        let clock = self.clock;
        let connections: Vec<ConnInfoJson> = self
            .page
            .iter()
            .map(|c| {
                let closed = c.stop.is_some();
                let end = c.stop.unwrap_or(now);
                ConnInfoJson {
                    cid: c.cid,
                    kind: "Client",
                    conn_type: c.conn_type.connz_type(),
                    ip: ip_string(c.remote.ip()),
                    port: c.remote.port(),
                    start: clock.rfc3339(c.start),
                    last_activity: clock.rfc3339(c.last_activity),
                    stop: c.stop.map(|s| clock.rfc3339(s)),
                    reason: c.reason.map(|r| r.as_str()),
                    rtt: rtt_string(c.rtt),
                    uptime: uptime(end.saturating_duration_since(c.start)),
                    idle: uptime(end.saturating_duration_since(c.last_activity)),
                    pending_bytes: c.pending_bytes,
                    in_msgs: c.in_msgs,
                    out_msgs: c.out_msgs,
                    in_bytes: c.in_bytes,
                    out_bytes: c.out_bytes,
                    subscriptions: c.num_subscriptions,
                    name: c.name.clone(),
                    lang: c.lang.clone(),
                    version: c.version.clone(),
                    tls_version: c.tls_version.clone(),
                    tls_cipher_suite: c.tls_cipher.clone(),
                    authorized_user: if self.auth {
                        c.authorized_user.clone()
                    } else {
                        None
                    },
                    account: if self.auth && c.account != broker::GLOBAL_ACCOUNT {
                        c.account.clone()
                    } else {
                        String::new()
                    },
                    subscriptions_list: if self.subs == SubsMode::List {
                        c.subscriptions.iter().map(|s| s.subject.clone()).collect()
                    } else {
                        Vec::new()
                    },
                    subscriptions_list_detail: if self.subs == SubsMode::Detail {
                        c.subscriptions
                            .iter()
                            .map(|s| sub_detail(s, closed))
                            .collect()
                    } else {
                        Vec::new()
                    },
                    mqtt_client: c.mqtt_client.clone().unwrap_or_default(),
                }
            })
            .collect();
        let resp = Response::json(pretty(&Connz {
            server_id: &self.server_id,
            now: clock.rfc3339(now),
            num_connections: connections.len(),
            total: self.total,
            offset: self.offset,
            limit: self.limit,
            connections,
        }));
        with_callback(resp, self.callback.as_deref())
    }
}

fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod connz_tests {
    use super::*;
    use broker::{ClientParams, CloseReason, ConnectionType};

    fn count(broker: &Broker, ctx: &MonitorCtx<'_>, query: &str) -> Vec<u64> {
        let resp = match connz_query(&parse_query(query)) {
            Ok(query) => {
                let keep = ctx.settings.max_closed_clients > 0;
                let mut page = query.choose(broker, ctx.clock, ctx.now, keep);
                assert!(page.take_subscriptions(broker, usize::MAX));
                page.render()
            }
            Err(resp) => resp,
        };
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cid"].as_u64().unwrap())
            .collect()
    }

    /// A connection the broker closed while its last bytes are still being written is
    /// reported as closed at once, not missing from both lists until it is removed.
    #[test]
    fn closing_connections_are_listed_as_closed() {
        let settings =
            crate::settings::from_options(&natsconf::options::Options::default()).unwrap();
        let now = Instant::now();
        let mut broker = Broker::new(settings.broker.clone(), now);
        let addr = "127.0.0.1:5000".parse().unwrap();
        let params = || ClientParams::new(ConnectionType::Standard, addr);
        let _a = broker.register_client(now, params());
        let b = broker.register_client(now, params());
        let c = broker.register_client(now, params());
        broker.close_client(b, now, CloseReason::ClientClosed);
        broker.close_client(c, now, CloseReason::ClientClosed);
        broker.remove_client(c, now);
        let bound = Bound::default();
        let stats = BTreeMap::new();
        let ctx = MonitorCtx {
            settings: &settings,
            bound: &bound,
            clock: Clock::now(),
            now,
            start: now,
            config_load_time: now,
            http_req_stats: &stats,
            healthy: true,
            rss_bytes: 0,
            cpu_percent: 0.0,
            ops: &Ops::default(),
        };
        assert_eq!(count(&broker, &ctx, ""), vec![1]);
        assert_eq!(count(&broker, &ctx, "state=closed"), vec![2, 3]);
        assert_eq!(count(&broker, &ctx, "state=all"), vec![1, 2, 3]);
        assert_eq!(count(&broker, &ctx, "state=closed&cid=2"), vec![2]);
        assert_eq!(count(&broker, &ctx, "cid=2"), Vec::<u64>::new());
    }
}
