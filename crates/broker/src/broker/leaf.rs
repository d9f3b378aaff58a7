//! Leaf-node connections (`server/leafnode.go`): the soliciting side's handshake (the hub's
//! INFO, TLS when asked, CONNECT, the INFO that answers it), the accepting side's CONNECT,
//! `LS+`/`LS-` in both directions, `LMSG`/`HMSG`, loop detection and the signature of the
//! hub's nonce for `credentials`.
//!
//! A leaf connection is a session like a client's, with [`Renderer::Leaf`] and a
//! [`LeafState`]. What the other side is interested in becomes subscriptions the leaf owns in
//! its bound account (sid `subject` or `subject queue`, as nats-server keys them), so the
//! router delivers to it as to any subscriber; the delivery is then collected per leaf and
//! written once as `LMSG` with the queue groups chosen for it. What this side is interested
//! in is kept per leaf as a map from that key to a count (`smap`): a plain subject is
//! advertised when its count leaves zero and withdrawn when it returns there, a queue group on
//! every change of its weight.

use super::*;
use crate::config::FIRST_CLIENT_PING_INTERVAL;
use crate::json::{LeafConnectJson, LeafInfoJson, SubjectPermissionJson};
use crate::types::LeafRemote;

mod min_version;
pub use min_version::LEAF_REFUSED_HOLD;

/// The prefix of the loop-detection subject each account advertises on its leaf connections.
pub(crate) const LDS_PREFIX: &[u8] = b"$LDS.";
/// The wait before dialling again after a loop, identical cluster names or a permissions
/// violation (`leafNodeReconnectDelayAfterLoopDetected` and its siblings).
pub(crate) const LEAF_ERROR_RECONNECT_DELAY: Duration = Duration::from_secs(30);
/// How long a soliciting side waits for the hub's INFO and for the INFO answering its
/// CONNECT (nats-server: 1 s for the first, 2 s for the second; one deadline covers both).
pub(crate) const LEAF_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most queue groups one `LMSG` may name that are acted on; the rest are ignored.
const MAX_LEAF_MSG_QUEUES: usize = 64;

/// Where a leaf connection's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafStage {
    /// Soliciting: waiting for the hub's INFO.
    AwaitInfo,
    /// Soliciting: TLS is being set up after the INFO.
    AwaitTls,
    /// Soliciting: CONNECT sent, waiting for the INFO with `connect_info`.
    AwaitConnectInfo,
    /// Accepting: INFO sent, waiting for the leaf's CONNECT.
    AwaitConnect,
    /// Interest and messages flow.
    Open,
    /// Accepting: refused for its version, closed at `until`; its input is discarded.
    Refused { until: Instant },
}

/// Subjects one direction of a leaf connection allows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubjectFilter {
    allow: Option<Vec<Box<[u8]>>>,
    deny: Vec<Box<[u8]>>,
}

impl SubjectFilter {
    fn deny_list(list: &[String]) -> Self {
        Self {
            allow: None,
            deny: list.iter().map(|s| s.as_bytes().into()).collect(),
        }
    }

    /// Adds the hub's `allow`/`deny` lists.
    fn merge(&mut self, perm: Option<&SubjectPermissionJson>) {
        let Some(perm) = perm else {
            return;
        };
        if let Some(allow) = &perm.allow {
            self.allow = Some(allow.iter().map(|s| s.as_bytes().into()).collect());
        }
        if let Some(deny) = &perm.deny {
            self.deny.extend(deny.iter().map(|s| s.as_bytes().into()));
        }
    }

    /// Whether `subject` (a literal or a subscription's pattern) passes.
    pub(crate) fn permits(&self, subject: &[u8]) -> bool {
        if self.deny.iter().any(|d| subject::matches(d, subject)) {
            return false;
        }
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(|a| subject::matches(a, subject)))
    }

    fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }
}

/// The leaf part of a session.
#[derive(Debug)]
pub(crate) struct LeafState {
    /// The dialled remote's configuration; `None` on the accepting side.
    pub(crate) solicited: Option<Box<LeafRemote>>,
    /// This side is the spoke of the link (`server/leafnode.go` `isSpoke`): it dialled
    /// the other side without `hub: true`, or accepted a leaf whose CONNECT says `is_hub`.
    /// A spoke advertises only its own clients' interest and that of links it is the hub
    /// of, and drops silently what the hub's permissions refuse.
    pub(crate) spoke: bool,
    pub(crate) stage: LeafStage,
    /// What this side advertised, by key (`subject` or `subject queue`), with its count.
    pub(crate) smap: HashMap<Box<[u8]>, i64>,
    pub(crate) remote_id: String,
    pub(crate) remote_name: String,
    pub(crate) remote_cluster: String,
    /// Both sides support headers.
    pub(crate) headers: bool,
    /// What may be advertised (what this side may receive).
    pub(crate) import: SubjectFilter,
    /// What may be sent.
    pub(crate) export: SubjectFilter,
    /// The hub-side account name (second INFO), for monitoring.
    pub(crate) remote_account: Option<String>,
    /// The hub's nonce.
    pub(crate) nonce: Option<String>,
    /// The hub announced `info_on_connect`: an INFO answers the CONNECT.
    pub(crate) await_connect_info: bool,
    /// TLS was started after the hub's INFO.
    pub(crate) tls: bool,
}

impl LeafState {
    fn new(solicited: Option<Box<LeafRemote>>) -> Self {
        let stage = if solicited.is_some() {
            LeafStage::AwaitInfo
        } else {
            LeafStage::AwaitConnect
        };
        let (import, export) = solicited.as_ref().map_or_else(Default::default, |r| {
            (
                SubjectFilter::deny_list(&r.deny_imports),
                SubjectFilter::deny_list(&r.deny_exports),
            )
        });
        Self {
            spoke: solicited.as_ref().is_some_and(|r| !r.hub),
            solicited,
            stage,
            smap: HashMap::new(),
            remote_id: String::new(),
            remote_name: String::new(),
            remote_cluster: String::new(),
            headers: false,
            import,
            export,
            remote_account: None,
            nonce: None,
            await_connect_info: false,
            tls: false,
        }
    }

    /// The role on this link (see [`LeafState::spoke`]).
    pub(crate) fn is_spoke(&self) -> bool {
        self.spoke
    }

    /// This side dialled the link (`isSolicitedLeafNode`): it runs the soliciting handshake
    /// and waits before dialling again after a loop or a refusal.
    pub(crate) fn is_solicited(&self) -> bool {
        self.solicited.is_some()
    }

    fn is_open(&self) -> bool {
        self.stage == LeafStage::Open
    }
}

/// Who owns a subscription, as leaf interest propagation needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SubOwner {
    /// A client (any transport).
    #[default]
    Client,
    /// A leaf connection on which this server is the hub (usually one that connected to it).
    HubLeaf,
    /// A leaf connection on which this server is the spoke (usually one it dialled, unless
    /// the remote says `hub: true`): interest learned from a hub.
    SpokeLeaf,
}

impl SubOwner {
    pub(crate) fn is_leaf(self) -> bool {
        self != Self::Client
    }
}

/// The key nats-server gives a leaf interest: `subject` or `subject queue`.
fn interest_key(subject: &[u8], queue: Option<&[u8]>) -> Box<[u8]> {
    match queue {
        None => subject.into(),
        Some(q) => {
            let mut key = Vec::with_capacity(subject.len() + 1 + q.len());
            key.extend_from_slice(subject);
            key.push(b' ');
            key.extend_from_slice(q);
            key.into()
        }
    }
}

/// Whether `sub` came from a leaf of the cluster `cluster` (a non-empty name): such
/// interest is not advertised to a leaf of that cluster (nats-server's origin check).
fn same_origin(sub: &Subscription, cluster: &str) -> bool {
    !cluster.is_empty() && sub.origin.as_deref() == Some(cluster)
}

/// One `LS+`/`LS-` line for `key` with count `n` (`server/leafnode.go` `writeLeafSub`).
fn write_leaf_sub(out: &mut Vec<u8>, key: &[u8], n: i64) {
    if n > 0 {
        out.extend_from_slice(b"LS+ ");
        out.extend_from_slice(key);
        if key.contains(&b' ') {
            out.push(b' ');
            out.extend_from_slice(n.to_string().as_bytes());
        }
    } else {
        out.extend_from_slice(b"LS- ");
        out.extend_from_slice(key);
    }
    out.extend_from_slice(b"\r\n");
}

fn is_lds_exempt(subject: &[u8]) -> bool {
    subject.starts_with(LDS_PREFIX) || subject.starts_with(b"$GR.") || subject.starts_with(b"_GR_.")
}

impl Broker {
    /// Registers a leaf connection natsws dialled (the soliciting side), once its TCP
    /// connection (and, for `wss://`, its TLS and WebSocket upgrade) is up. Nothing is sent:
    /// the hub speaks first. Feed its bytes with [`Broker::handle_input`] and poll events:
    /// [`Event::LeafStartTls`] asks for TLS, [`Event::LeafConnected`] ends the handshake.
    #[must_use = "the handle is the only way to address the connection"]
    pub fn register_leaf(
        &mut self,
        now: Instant,
        params: ClientParams,
        remote: LeafRemote,
    ) -> ClientId {
        let id = self.register(now, params, true);
        let account = remote
            .account
            .as_deref()
            .map_or(Some(AccountId::GLOBAL), |name| self.router.lookup(name));
        if let Some(c) = self.client_mut(id) {
            c.leaf = Some(Box::new(LeafState::new(Some(Box::new(remote)))));
            c.auth.account = account.unwrap_or(AccountId::GLOBAL);
            c.auth.deadline = now.checked_add(LEAF_HANDSHAKE_TIMEOUT);
        }
        if account.is_none() {
            self.close(id, now, CloseReason::MissingAccount);
        }
        self.reschedule(id);
        id
    }

    /// The leaf state of an accepted leaf connection (called by `register_client`).
    pub(super) fn init_accepted_leaf(&mut self, id: ClientId) {
        if let Some(c) = self.client_mut(id) {
            c.leaf = Some(Box::new(LeafState::new(None)));
            c.renderer = Renderer::Leaf;
            c.opts.verbose = false;
            c.opts.pedantic = false;
            c.opts.echo = false;
        }
    }

    /// The TLS client of a soliciting leaf connection finished its handshake (after
    /// [`Event::LeafStartTls`]): CONNECT goes out. Poll events afterwards.
    pub fn leaf_tls_established(&mut self, client: ClientId, now: Instant) {
        let waiting = self
            .open_client_mut(client)
            .and_then(|c| c.leaf.as_mut())
            .is_some_and(|l| l.stage == LeafStage::AwaitTls);
        if waiting {
            self.send_leaf_connect(client, now);
        }
    }

    /// This account's loop-detection subject, made on first use.
    pub(crate) fn lds_subject(&mut self, account: AccountId) -> Box<[u8]> {
        if let Some(s) = self.lds.get(&account) {
            return s.clone();
        }
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut subject = LDS_PREFIX.to_vec();
        let (mut a, mut b) = (self.rng.next_u64(), self.rng.next_u64());
        for n in 0..22 {
            let word = if n < 11 { &mut a } else { &mut b };
            subject.push(DIGITS.get((*word % 62) as usize).copied().unwrap_or(b'0'));
            *word /= 62;
        }
        let subject: Box<[u8]> = subject.into();
        self.lds.insert(account, subject.clone());
        subject
    }

    /// INFO on a leaf connection: the soliciting side's first INFO starts the handshake,
    /// the one with `connect_info` ends it; later ones are updates (ignored but for
    /// their validity).
    pub(super) fn leaf_info(&mut self, id: ClientId, now: Instant, arg: &[u8]) {
        let Ok(info) = LeafInfoJson::parse(arg) else {
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        };
        let first = self
            .client(id)
            .and_then(|c| c.leaf.as_ref())
            .is_some_and(|l| l.stage == LeafStage::AwaitInfo);
        // `server/leafnode.go` `processLeafnodeInfo`: a client port answers without a
        // client id or leafnode URLs.
        if first && (info.client_id.unwrap_or(0) == 0 || info.leafnode_urls.is_none()) {
            self.events.push_back(Event::LeafError {
                client: id,
                text: "attempted to connect to wrong port".to_owned(),
            });
            self.close(id, now, CloseReason::IncorrectPort);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.last_activity = now;
        let Some(leaf) = c.leaf.as_mut() else {
            return;
        };
        match leaf.stage {
            LeafStage::AwaitInfo => {
                leaf.remote_id = info.server_id.unwrap_or_default();
                leaf.remote_name = info.server_name.unwrap_or_default();
                leaf.remote_cluster = info.cluster.unwrap_or_default();
                leaf.headers = info.headers.unwrap_or(false);
                leaf.nonce = info.nonce;
                // An older hub answers CONNECT with nothing: the connection opens after it.
                leaf.await_connect_info = info.info_on_connect == Some(true);
                let remote = leaf.solicited.as_deref();
                let tls_up = remote.is_some_and(|r| r.tls_established);
                let wants_tls = !tls_up
                    && (info.tls_required.unwrap_or(false) || remote.is_some_and(|r| r.tls));
                if wants_tls {
                    leaf.stage = LeafStage::AwaitTls;
                    leaf.tls = true;
                    self.events.push_back(Event::LeafStartTls(id));
                } else {
                    self.send_leaf_connect(id, now);
                }
            }
            LeafStage::AwaitConnectInfo if info.connect_info == Some(true) => {
                leaf.import.merge(info.import.as_ref());
                leaf.export.merge(info.export.as_ref());
                leaf.remote_account = info.remote_account;
                self.leaf_open(id, now);
            }
            _ => {}
        }
    }

    /// The soliciting side's CONNECT (`server/leafnode.go` `sendLeafConnect`). With an
    /// INFO that did not announce `info_on_connect`, the connection opens right after.
    fn send_leaf_connect(&mut self, id: ClientId, now: Instant) {
        #[derive(Serialize)]
        struct LeafConnect<'a> {
            version: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            jwt: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            sig: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pass: Option<&'a str>,
            tls_required: bool,
            server_id: &'a str,
            name: &'a str,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            is_hub: bool,
            cluster: &'a str,
            headers: bool,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            deny_pub: &'a [String],
        }
        let cfg = &self.config;
        let name = if cfg.server_name.is_empty() {
            &cfg.server_id
        } else {
            &cfg.server_name
        };
        let cluster = if cfg.cluster.is_empty() {
            name
        } else {
            &cfg.cluster
        };
        let Some(leaf) = self.client(id).and_then(|c| c.leaf.as_ref()) else {
            return;
        };
        let Some(remote) = leaf.solicited.as_deref() else {
            return;
        };
        // `credentials`: the JWT, and the hub's nonce signed with the seed
        // (`server/leafnode.go` `sendLeafConnect`), unpadded base64url.
        let sig = match (&remote.credentials, &leaf.nonce) {
            (Some(creds), Some(nonce)) => nkeys::KeyPair::from_seed(&creds.seed)
                .and_then(|kp| kp.sign(nonce.as_bytes()))
                .ok()
                .map(|sig| base64_url(&sig)),
            _ => None,
        };
        let connect = LeafConnect {
            version: &cfg.version,
            jwt: remote.credentials.as_ref().map(|c| c.jwt.as_str()),
            sig,
            user: remote.user.as_deref(),
            pass: remote.password.as_deref(),
            tls_required: remote.tls || remote.tls_established || leaf.tls,
            server_id: &cfg.server_id,
            name,
            is_hub: remote.hub,
            cluster,
            headers: cfg.headers,
            deny_pub: &remote.deny_imports,
        };
        let mut line = b"CONNECT ".to_vec();
        if serde_json::to_writer(&mut line, &connect).is_err() {
            return;
        }
        line.extend_from_slice(b"\r\n");
        let await_info = leaf.await_connect_info;
        if self.config.trace {
            let text = trace::redact_connect(line.get(8..line.len() - 2).unwrap_or_default());
            self.trace(id, || trace::op(false, "CONNECT", &[text.as_bytes()]));
        }
        self.queue_bytes(id, now, &line);
        if await_info {
            if let Some(leaf) = self.open_client_mut(id).and_then(|c| c.leaf.as_mut()) {
                leaf.stage = LeafStage::AwaitConnectInfo;
            }
        } else {
            self.leaf_open(id, now);
        }
    }

    /// CONNECT from a leaf on the accepting side (`server/leafnode.go`
    /// `processLeafNodeConnect`): refuse clients and gateways on the leafnode port and
    /// identical cluster names, then authenticate as a client's CONNECT is.
    pub(super) fn leaf_connect(&mut self, id: ClientId, now: Instant, arg: &[u8]) {
        let Ok(json) = LeafConnectJson::parse(arg) else {
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        };
        if json.has_lang {
            self.send_err(id, now, "attempted to connect to leaf node port");
            self.close(id, now, CloseReason::IncorrectPort);
            return;
        }
        if json.has_gateway {
            let text = format!(
                "Rejecting connection from gateway {} on the leafnode port",
                auth::go_quote(json.gateway.as_deref().unwrap_or_default().as_bytes())
            );
            self.send_err(id, now, &text);
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        }
        let cfg = &self.config;
        let own_cluster = if cfg.cluster.is_empty() {
            None
        } else {
            Some(cfg.cluster.clone())
        };
        let headers = cfg.headers && json.headers.unwrap_or(false);
        if let (Some(ours), Some(theirs)) = (own_cluster, json.cluster.as_deref())
            && ours == theirs
        {
            self.send_err(id, now, "remote leafnode has same cluster name");
            self.close(id, now, CloseReason::ClusterNamesIdentical);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if let Some(leaf) = c.leaf.as_mut() {
            leaf.remote_id = json.server_id.unwrap_or_default();
            leaf.remote_name = json.name.clone().unwrap_or_default();
            leaf.remote_cluster = json.cluster.unwrap_or_default();
            leaf.headers = headers;
            // The other side declared itself the hub: this side takes the spoke role.
            if json.hub == Some(true) {
                leaf.spoke = true;
            }
            if let Some(deny) = &json.deny_pub {
                // What the leaf refuses to receive is never sent to it.
                leaf.export = SubjectFilter::deny_list(deny);
            }
        }
        if let Some(name) = json.name {
            c.opts.name = name;
        }
        if let Some(version) = json.version {
            c.opts.version = version;
        }
        if let Some(leaf_auth) = self.config.leaf_auth.clone() {
            self.leaf_authenticate(id, now, arg, &leaf_auth);
            return;
        }
        // Authentication runs as for a client; `connected` opens the leaf on success.
        self.process_connect(id, now, arg);
        // A client's CONNECT options must not change how a leaf is treated.
        if let Some(c) = self.client_mut(id) {
            c.opts.verbose = false;
            c.opts.pedantic = false;
            c.opts.echo = false;
            c.opts.headers = headers;
        }
    }

    /// `leafnodes { authorization }` (`server/auth.go` `isLeafNodeAuthorized`): the single
    /// user or one of the users, or no credentials with only an account; the leaf binds to
    /// the user's account, else the authorization's, else `$G`. A bcrypt password is
    /// compared as a client's is: with [`crate::Config::defer_password_checks`] the CONNECT is
    /// parked for [`Broker::password_checked`] ([`Event::CheckPassword`]).
    fn leaf_authenticate(
        &mut self,
        id: ClientId,
        now: Instant,
        arg: &[u8],
        leaf_auth: &crate::config::LeafAuthConfig,
    ) {
        let Ok(json) = ConnectJson::parse(arg) else {
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        };
        let user = json.user.as_deref().unwrap_or_default();
        let pass = json.pass.as_deref().unwrap_or_default();
        if leaf_auth.users.is_empty() {
            self.leaf_bind(id, now, user, leaf_auth.account.as_deref());
            return;
        }
        let Some(found) = leaf_auth.users.iter().find(|u| u.username == user) else {
            self.leaf_refused(id, now, user);
            return;
        };
        let account = found.account.clone().or_else(|| leaf_auth.account.clone());
        if auth::is_bcrypt(&found.password) && self.config.defer_password_checks {
            let check = auth::PasswordCheck::new(&found.password, pass);
            let Some(c) = self.open_client_mut(id) else {
                return;
            };
            c.auth.leaf_parked = Some(Box::new(crate::session::LeafParked {
                check: check.clone(),
                user: user.to_owned(),
                account,
            }));
            // The CONNECT arrived in time: the auth timer stops for the comparison, as
            // for a client's.
            c.auth.deadline = None;
            self.events.push_back(Event::CheckPassword {
                client: id,
                check,
                parked: true,
            });
            self.reschedule(id);
            return;
        }
        if auth::compare_passwords(&found.password, pass) {
            self.leaf_bind(id, now, user, account.as_deref());
        } else {
            self.leaf_refused(id, now, user);
        }
    }

    /// The verdict on a leaf's parked CONNECT; `false` when `check` is not the one it
    /// waits for.
    pub(super) fn leaf_password_checked(
        &mut self,
        id: ClientId,
        check: &auth::PasswordCheck,
        verified: bool,
        now: Instant,
    ) -> bool {
        let Some(c) = self.open_client_mut(id) else {
            return false;
        };
        if c.auth
            .leaf_parked
            .as_ref()
            .is_none_or(|p| &p.check != check)
        {
            return false;
        }
        let Some(parked) = c.auth.leaf_parked.take() else {
            return false;
        };
        if verified {
            self.leaf_bind(id, now, &parked.user, parked.account.as_deref());
        } else {
            self.leaf_refused(id, now, &parked.user);
        }
        self.reschedule(id);
        true
    }

    fn leaf_refused(&mut self, id: ClientId, now: Instant, user: &str) {
        let detail = format!(
            "authentication error - User {}",
            auth::go_quote(user.as_bytes())
        );
        self.auth_violation(id, now, Some(detail));
    }

    /// An authenticated leaf binds to `account` (`None`: `$G`) and opens.
    fn leaf_bind(&mut self, id: ClientId, now: Instant, user: &str, account: Option<&str>) {
        let account = match account {
            None => Some(AccountId::GLOBAL),
            Some(name) => self.router.lookup(name),
        };
        let Some(account) = account else {
            self.auth_violation(id, now, None);
            return;
        };
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.auth.account = account;
        c.auth.authorized_user = (!user.is_empty()).then(|| user.to_owned());
        c.ping_deadline = now.checked_add(FIRST_CLIENT_PING_INTERVAL);
        c.rtt = Some(now.saturating_duration_since(c.start));
        self.leaf_open(id, now);
    }

    /// The handshake is over: send the interest set and start propagating.
    pub(super) fn leaf_open(&mut self, id: ClientId, now: Instant) {
        let server_headers = self.config.headers;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let account = c.auth.account;
        let headers = c.leaf.as_ref().is_some_and(|l| l.headers) && server_headers;
        c.renderer = Renderer::Leaf;
        c.opts.headers = headers;
        c.opts.echo = false;
        c.opts.verbose = false;
        c.opts.pedantic = false;
        c.parser.limits_mut().headers = headers;
        c.phase = Phase::Connected;
        c.auth.deadline = None;
        let Some(leaf) = c.leaf.as_mut() else {
            return;
        };
        leaf.stage = LeafStage::Open;
        let spoke = leaf.is_spoke();
        let solicited = leaf.is_solicited();
        let remote_name = leaf.remote_name.clone();
        if !solicited {
            // The INFO that answers an accepted leaf's CONNECT, before its interest set
            // (`server/leafnode.go` `sendPermsAndAccountInfo`).
            let name = self.router.name(account).to_string();
            let info = self.build_info_for(id, false, Some(&name));
            self.queue_bytes(id, now, &info);
            if self.leaf_version_refused(id, now) {
                return;
            }
        }
        // The whole interest of the account, counted per key.
        let mut smap: HashMap<Box<[u8]>, i64> = HashMap::new();
        let cluster = self
            .client(id)
            .and_then(|c| c.leaf.as_ref())
            .map(|l| l.remote_cluster.clone())
            .unwrap_or_default();
        for (owner, sub, weight) in self.router.account_subs(account) {
            if !self.leaf_carries(id, spoke, owner, sub.client) || same_origin(sub, &cluster) {
                continue;
            }
            *smap
                .entry(interest_key(&sub.subject, sub.queue.as_deref()))
                .or_insert(0) += i64::from(weight);
        }
        // Leafs send only on interest, so the services the account imports are advertised:
        // a request from the other side reaches the import and goes on to the exporter
        // (`server/leafnode.go` `initLeafNodeSmapAndSendSubs`).
        if let Some(acc) = self.router.account(account) {
            for import in &acc.service_imports {
                *smap.entry(import.local.clone()).or_insert(0) += 1;
            }
        }
        let lds = self.lds_subject(account);
        smap.entry(lds).or_insert(1);
        let is_system = self.router.system_account() == Some(account);
        let account_name = self.router.name(account).to_string();
        let server_name = if self.config.server_name.is_empty() {
            self.config.server_id.clone()
        } else {
            self.config.server_name.clone()
        };
        let Some(leaf) = self.client_mut(id).and_then(|c| c.leaf.as_mut()) else {
            return;
        };
        // This server has no JetStream (and no domain): JetStream is not extended over the
        // link, so its API and the KV/object-store subjects are denied in both directions
        // (`server/leafnode.go` `addLeafNodeConnection`).
        let (denied, notices) = if is_system {
            (
                DENY_ALL_JS,
                vec![
                    format!("System Account Connected from {server_name}"),
                    format!(
                        "JetStream Not Extended, adding denies {}",
                        go_list(DENY_ALL_JS)
                    ),
                ],
            )
        } else {
            (
                DENY_CLIENT_JS,
                vec![format!(
                    "JetStream Not Extended, adding deny {} for account {}",
                    go_list(DENY_CLIENT_JS),
                    gotext::quote(&account_name)
                )],
            )
        };
        for subject in denied {
            leaf.import.deny.push(subject.as_bytes().into());
            leaf.export.deny.push(subject.as_bytes().into());
        }
        smap.retain(|key, _| {
            let subject = key.split(|b| *b == b' ').next().unwrap_or_default();
            is_lds_exempt(subject) || leaf.import.permits(subject)
        });
        let mut out = Vec::new();
        let mut keys: Vec<(&Box<[u8]>, &i64)> = smap.iter().collect();
        keys.sort();
        for (key, n) in keys {
            write_leaf_sub(&mut out, key, *n);
        }
        leaf.smap = smap;
        if !self.leafs.contains(&id) {
            self.leafs.push(id);
        }
        if !out.is_empty() {
            if self.config.trace {
                for line in out.split(|b| *b == b'\n').filter(|l| l.len() > 4) {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let (op, rest) = line.split_at(3);
                    let rest = rest.get(1..).unwrap_or_default();
                    let text = trace::op(false, &String::from_utf8_lossy(op), &[rest]);
                    self.trace(id, || text);
                }
            }
            self.queue_bytes(id, now, &out);
        }
        for text in notices {
            self.events
                .push_back(Event::LeafNotice { client: id, text });
        }
        let account = self.router.name(account).to_string();
        self.events.push_back(Event::LeafConnected {
            client: id,
            account,
            remote_name,
        });
    }

    /// Whether a subscription of `owner_id` (of kind `owner`) is interest to advertise on
    /// leaf `leaf` (`spoke`: this side is its spoke): never its own, and a spoke carries only
    /// local clients and links this side is the hub of, never what it learned from a hub
    /// (`server/sublist.go` `localSubs` with `includeLeafHubs`).
    fn leaf_carries(
        &self,
        leaf: ClientId,
        spoke: bool,
        owner: SubOwner,
        owner_id: ClientId,
    ) -> bool {
        owner_id != leaf && !(spoke && owner == SubOwner::SpokeLeaf)
    }

    /// A subscription in `account` changed by `delta` (its weight): every open leaf bound to
    /// the account that carries it updates its count and sends `LS+`/`LS-` when due
    /// (`server/leafnode.go` `updateLeafNodes`, `updateSmap`).
    pub(super) fn leaf_interest(
        &mut self,
        account: AccountId,
        sub: &Subscription,
        delta: i64,
        now: Instant,
    ) {
        if self.leafs.is_empty() || delta == 0 {
            return;
        }
        let leafs = self.leafs.clone();
        let mut line = Vec::new();
        for leaf_id in leafs {
            let Some(c) = self.client(leaf_id) else {
                continue;
            };
            if c.auth.account != account || c.phase.is_closed() {
                continue;
            }
            let Some(leaf) = c.leaf.as_ref().filter(|l| l.is_open()) else {
                continue;
            };
            if !self.leaf_carries(leaf_id, leaf.is_spoke(), sub.owner, sub.client) {
                continue;
            }
            // Interest from a leaf of this leaf's own cluster is not sent back to it, but
            // the `$LDS.` subject still goes so that a loop is detected
            // (`server/leafnode.go` `updateLeafNodes`).
            let lds_exempt = is_lds_exempt(&sub.subject);
            if same_origin(sub, &leaf.remote_cluster) && !sub.subject.starts_with(LDS_PREFIX) {
                continue;
            }
            if !lds_exempt && !leaf.import.permits(&sub.subject) {
                continue;
            }
            let key = interest_key(&sub.subject, sub.queue.as_deref());
            let Some(leaf) = self.client_mut(leaf_id).and_then(|c| c.leaf.as_mut()) else {
                continue;
            };
            let n = leaf.smap.get(&key).copied().unwrap_or(0);
            let update = sub.queue.is_some() || n == 0 || n + delta <= 0;
            let total = n + delta;
            if total > 0 {
                leaf.smap.insert(key.clone(), total);
            } else {
                leaf.smap.remove(&key);
                shrink_map(&mut leaf.smap);
            }
            if update {
                line.clear();
                write_leaf_sub(&mut line, &key, total);
                if self.config.trace {
                    let text =
                        String::from_utf8_lossy(line.get(4..line.len() - 2).unwrap_or_default())
                            .into_owned();
                    let op = if total > 0 { "LS+" } else { "LS-" };
                    self.trace(leaf_id, || trace::op(false, op, &[text.as_bytes()]));
                }
                self.queue_bytes(leaf_id, now, &line);
            }
        }
    }

    /// `LS+` from the other side (`server/leafnode.go` `processLeafSub`).
    pub(super) fn process_leaf_sub(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: &Bytes,
        queue: Option<(Bytes, u32)>,
    ) {
        let max_subs = self.config.limits.max_subscriptions;
        let own_lds = self
            .client(id)
            .and_then(|c| self.lds.get(&c.auth.account))
            .is_some_and(|own| own[..] == subject[..]);
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.last_activity = now;
        let account = c.auth.account;
        let Some(leaf) = c.leaf.as_ref().filter(|l| l.is_open()) else {
            return;
        };
        let spoke = leaf.is_spoke();
        let solicited = leaf.is_solicited();
        if own_lds {
            self.leaf_loop(id, now, account);
            return;
        }
        let check = !is_lds_exempt(subject);
        if check && subject::is_valid_literal(subject) {
            // What the other side may not receive from us (the link's deny lists and the
            // user's publish permissions, `pubAllowedFullCheck`): a hub refuses it, a spoke
            // skips it silently (`server/leafnode.go` `processLeafSub`).
            let allowed = c.leaf.as_ref().is_none_or(|l| l.export.permits(subject))
                && c.auth
                    .permissions
                    .as_mut()
                    .is_none_or(|p| p.can_publish(subject, now));
            if !allowed {
                if !spoke {
                    // `leafPermViolation`: a link this side dialled waits before dialling
                    // again.
                    let quoted = auth::go_quote(subject);
                    if solicited {
                        self.events.push_back(Event::LeafReconnectDelay {
                            client: id,
                            delay: LEAF_ERROR_RECONNECT_DELAY,
                        });
                    }
                    let text = format!("Permissions Violation for Subscription to {quoted}");
                    self.send_err(id, now, &text);
                    self.events.push_back(Event::ClientError {
                        client: id,
                        detail: format!(
                            "Subscription Violation on {quoted} - Check other side configuration"
                        ),
                    });
                    self.close(id, now, CloseReason::ProtocolViolation);
                }
                return;
            }
        }
        if !subject::is_valid_subscription(subject)
            || queue
                .as_ref()
                .is_some_and(|(q, _)| q.is_empty() || q.contains(&b' '))
        {
            self.send_err(id, now, "Invalid Subscription");
            return;
        }
        let key: Arc<[u8]> = interest_key(subject, queue.as_ref().map(|(q, _)| &q[..])).into();
        let Some(c) = self.client(id) else {
            return;
        };
        let existing = c.subs.get(&key[..]).copied();
        let n_subs = c.subs.len();
        let owner = if spoke {
            SubOwner::SpokeLeaf
        } else {
            SubOwner::HubLeaf
        };
        let origin: Option<Arc<str>> = c
            .leaf
            .as_ref()
            .filter(|l| !l.remote_cluster.is_empty())
            .map(|l| l.remote_cluster.as_str().into());
        match existing {
            Some(sub_key) => {
                // A repeated queue LS+ updates the weight; a repeated plain one is nothing.
                let Some((_, weight)) = queue else {
                    return;
                };
                let Some(sub) = self.router.sub_mut(sub_key) else {
                    return;
                };
                let delta = i64::from(weight) - i64::from(sub.weight);
                sub.weight = weight;
                let snapshot = sub.clone_meta();
                self.leaf_interest(account, &snapshot, delta, now);
            }
            None => {
                if max_subs > 0 && n_subs >= max_subs {
                    self.send_err(id, now, "maximum subscriptions exceeded");
                    self.close(id, now, CloseReason::ProtocolViolation);
                    return;
                }
                let weight = queue.as_ref().map_or(1, |(_, w)| *w);
                let sub = Subscription {
                    client: id,
                    sid: Arc::clone(&key),
                    subject: subject[..].into(),
                    queue: queue.map(|(q, _)| q[..].into()),
                    delivered: 0,
                    max: None,
                    owner,
                    weight,
                    origin,
                };
                let snapshot = sub.clone_meta();
                let Ok(sub_key) = self.router.insert(account, sub) else {
                    self.send_err(id, now, "Invalid Subscription");
                    return;
                };
                if let Some(c) = self.client_mut(id) {
                    c.subs.insert(key, sub_key);
                }
                self.stats.subscriptions += 1;
                self.leaf_interest(account, &snapshot, i64::from(weight), now);
            }
        }
    }

    /// `LS-` from the other side.
    pub(super) fn process_leaf_unsub(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: &Bytes,
        queue: Option<&Bytes>,
    ) {
        let key = interest_key(subject, queue.map(|q| &q[..]));
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.last_activity = now;
        if let Some(sub_key) = c.subs.get(&key[..]).copied() {
            self.remove_sub(sub_key, now);
        }
    }

    /// A loop: this account's own detection subject came back (`handleLeafNodeLoop`).
    fn leaf_loop(&mut self, id: ClientId, now: Instant, account: AccountId) {
        let name = self.router.name(account).to_string();
        let text = format!(
            "Loop detected for leafnode account={}. Delaying attempt to reconnect for {}",
            auth::go_quote(name.as_bytes()),
            gotext::format_std_duration(LEAF_ERROR_RECONNECT_DELAY)
        );
        self.send_err(id, now, &text);
        self.events.push_back(Event::LeafError {
            client: id,
            text: text.clone(),
        });
        if self
            .client(id)
            .and_then(|c| c.leaf.as_ref())
            .is_some_and(|l| l.is_solicited())
        {
            self.events.push_back(Event::LeafReconnectDelay {
                client: id,
                delay: LEAF_ERROR_RECONNECT_DELAY,
            });
        }
        self.close(id, now, CloseReason::ProtocolViolation);
    }

    /// `-ERR` from the other side: logged; a loop, identical cluster names or a refused
    /// subscription make the soliciting side wait before dialling again.
    pub(super) fn leaf_err(&mut self, id: ClientId, now: Instant, arg: &[u8]) {
        let text = String::from_utf8_lossy(arg);
        let text = text.trim().trim_matches('\'').to_owned();
        let solicited = self
            .client(id)
            .and_then(|c| c.leaf.as_ref())
            .is_some_and(|l| l.is_solicited());
        let delay = solicited
            && (text.contains("Loop detected")
                || text.contains("same cluster name")
                || text.starts_with("Permissions Violation for Subscription"));
        let closes = text.contains("Loop detected") || text.contains("same cluster name");
        self.events.push_back(Event::LeafError { client: id, text });
        if delay {
            self.events.push_back(Event::LeafReconnectDelay {
                client: id,
                delay: LEAF_ERROR_RECONNECT_DELAY,
            });
        }
        if closes {
            self.close(id, now, CloseReason::ProtocolViolation);
        }
    }

    /// `LMSG`/`HMSG` from the other side: delivered in the leaf's account to local plain
    /// subscribers, to one member of each queue group the sender named, and to other leafs,
    /// never back (`server/leafnode.go` `processInboundLeafMsg`).
    pub(super) fn process_leaf_msg(&mut self, id: ClientId, now: Instant, msg: &LeafDelivery) {
        if self.config.trace {
            let size = msg.message.len();
            self.trace(id, || {
                trace::publish(&msg.subject, msg.reply.as_deref(), msg.header_len, size)
            });
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if !c.leaf.as_ref().is_some_and(|l| l.is_open()) {
            return;
        }
        let size = msg.message.len() as u64;
        c.in_msgs += 1;
        c.in_bytes += size;
        c.last_activity = now;
        let account = c.auth.account;
        self.stats.in_msgs += 1;
        self.stats.in_bytes += size;
        if !subject::is_valid_literal(&msg.subject) {
            return;
        }
        let publish = PubRef {
            subject: &msg.subject,
            reply: msg.reply.as_deref(),
            header_len: msg.header_len,
            message: &msg.message,
            shared: (msg.message.len() >= crate::outq::SHARE_THRESHOLD_BYTES)
                .then_some(&msg.message),
            queues: match &msg.queues {
                None => QueueFilter::None,
                Some(list) => QueueFilter::Only(list),
            },
            client_view: msg.reply.as_deref().and_then(jetstream_remap),
        };
        self.route(id, account, false, now, &publish);
    }

    /// Writes the deliveries collected for leaf connections while a message was routed:
    /// one `LMSG`/`HMSG` per leaf, naming the queue groups chosen for it
    /// (`server/client.go` `msgHeaderForRouteOrLeaf`). Returns the deliveries made.
    pub(super) fn deliver_to_leafs(
        &mut self,
        from: ClientId,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let mut targets = std::mem::take(&mut self.leaf_targets);
        targets.sort_by_key(|t| t.0);
        let mut delivered = 0;
        let mut line = std::mem::take(&mut self.leaf_line);
        let mut start = 0;
        while let Some(first) = targets.get(start) {
            let target = first.0;
            let end = targets
                .iter()
                .skip(start)
                .position(|t| t.0 != target)
                .map_or(targets.len(), |n| start + n);
            let group = targets.get(start..end).unwrap_or_default();
            start = end;
            if target == from {
                continue;
            }
            let mut queues: Vec<&[u8]> = Vec::new();
            for (_, key, is_queue) in group {
                if *is_queue
                    && let Some(q) = self.router.sub(*key).and_then(|s| s.queue.as_deref())
                    && !queues.contains(&q)
                {
                    queues.push(q);
                }
            }
            let has_plain = group.iter().any(|t| !t.2);
            if !has_plain && queues.is_empty() {
                continue;
            }
            let Some(c) = self.client(target) else {
                continue;
            };
            let Some(leaf) = c.leaf.as_ref() else {
                continue;
            };
            if !leaf.export.is_open() && !leaf.export.permits(publish.subject) {
                continue;
            }
            let headers = leaf.headers && c.opts.headers;
            let skip = match publish.header_len {
                Some(h) if h > 0 && !headers => h.min(publish.message.len()),
                _ => 0,
            };
            let body = publish.message.get(skip..).unwrap_or_default();
            line.clear();
            let header_len = publish.header_len.filter(|h| *h > 0 && skip == 0);
            line.extend_from_slice(if header_len.is_some() {
                b"HMSG "
            } else {
                b"LMSG "
            });
            line.extend_from_slice(publish.subject);
            match (publish.reply, queues.is_empty()) {
                (Some(reply), false) => {
                    line.extend_from_slice(b" + ");
                    line.extend_from_slice(reply);
                }
                (None, false) => line.extend_from_slice(b" |"),
                (Some(reply), true) => {
                    line.push(b' ');
                    line.extend_from_slice(reply);
                }
                (None, true) => {}
            }
            for q in &queues {
                line.push(b' ');
                line.extend_from_slice(q);
            }
            line.push(b' ');
            if let Some(h) = header_len {
                line.extend_from_slice(h.to_string().as_bytes());
                line.push(b' ');
            }
            line.extend_from_slice(body.len().to_string().as_bytes());
            line.extend_from_slice(b"\r\n");
            let queued = line.len() + body.len() + 2;
            let max_pending = self.config.limits.max_pending;
            let trace_on = self.config.trace;
            let Some(c) = self.open_client_mut(target) else {
                continue;
            };
            let owed = c.pending();
            if owed + queued > max_pending {
                self.slow_consumer(target, now, CloseReason::SlowConsumerPendingBytes);
                continue;
            }
            let was_empty = owed == 0;
            c.out.push_slice(&line);
            match publish.shared {
                Some(message) if body.len() >= crate::outq::SHARE_THRESHOLD_BYTES => {
                    c.out.push_bytes(&message.slice(skip..));
                }
                _ => c.out.push_slice(body),
            }
            c.out.push_slice(b"\r\n");
            c.out_msgs += 1;
            c.out_bytes += body.len() as u64;
            c.last_activity = now;
            if was_empty {
                c.stall_since = Some(now);
                c.consumed_seen = c.out.consumed();
            }
            let flush = !c.flush_requested;
            c.flush_requested = true;
            if flush {
                self.events.push_back(Event::Flush(target));
            }
            if trace_on {
                let text = String::from_utf8_lossy(line.get(..line.len() - 2).unwrap_or_default())
                    .into_owned();
                let (op, rest) = text.split_at(4);
                let rest = rest.trim_start().to_owned();
                let op = op.to_owned();
                self.trace(target, || trace::op(false, &op, &[rest.as_bytes()]));
            }
            self.stats.out_msgs += 1;
            self.stats.out_bytes += body.len() as u64;
            delivered += 1;
            if was_empty {
                self.reschedule(target);
            }
            if owed > max_pending / 2 {
                self.stall_producer(from, target, owed, now);
            }
        }
        targets.clear();
        self.leaf_targets = targets;
        self.leaf_line = line;
        delivered
    }

    /// Whether `client` is a leaf connection (either side).
    #[must_use]
    pub fn is_leaf(&self, client: ClientId) -> bool {
        self.client(client).is_some_and(|c| c.leaf.is_some())
    }

    /// A leaf connection closed: it no longer receives interest updates.
    pub(super) fn forget_leaf(&mut self, id: ClientId) {
        self.leafs.retain(|l| *l != id);
    }

    /// Whether the leaf queue group named `queue` is one `filter` lets through.
    pub(super) fn queue_allowed(filter: &QueueFilter<'_>, queue: &[u8]) -> bool {
        match filter {
            QueueFilter::All => true,
            QueueFilter::None => false,
            QueueFilter::Only(list) => list
                .split(|b| *b == b' ' || *b == b'\t')
                .filter(|q| !q.is_empty())
                .take(MAX_LEAF_MSG_QUEUES)
                .any(|q| q == queue),
        }
    }
}

/// The facts `/leafz` shows for one leaf connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// The connection.
    pub client: ClientId,
    /// The local account it is bound to.
    pub account: String,
    /// The other side's server id and name.
    pub remote_id: String,
    /// The other side's server name.
    pub remote_name: String,
    /// This side dialled it.
    pub solicited: bool,
    /// The subjects of the subscriptions the other side made here (a queue subscription
    /// shows its subject, as in nats-server's `/leafz`).
    pub subscriptions: Vec<String>,
    /// The remote's address as the connection sees it.
    pub remote: core::net::SocketAddr,
    /// Messages and bytes received from and sent to the other side.
    pub in_msgs: u64,
    /// See `in_msgs`.
    pub out_msgs: u64,
    /// See `in_msgs`.
    pub in_bytes: u64,
    /// See `in_msgs`.
    pub out_bytes: u64,
    /// The round-trip time last measured.
    pub rtt: Option<Duration>,
}

impl Broker {
    /// The open leaf connections, for `/leafz`.
    #[must_use]
    pub fn leafs(&self) -> Vec<LeafInfo> {
        self.leafs
            .iter()
            .filter_map(|id| {
                let c = self.client(*id)?;
                let leaf = c.leaf.as_ref()?;
                let mut subscriptions: Vec<String> = c
                    .subs
                    .values()
                    .filter_map(|k| self.router.sub(*k))
                    .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
                    .collect();
                subscriptions.sort();
                Some(LeafInfo {
                    client: *id,
                    account: self.router.name(c.auth.account).to_string(),
                    remote_id: leaf.remote_id.clone(),
                    remote_name: leaf.remote_name.clone(),
                    solicited: leaf.is_solicited(),
                    subscriptions,
                    remote: c.params.remote,
                    in_msgs: c.in_msgs,
                    out_msgs: c.out_msgs,
                    in_bytes: c.in_bytes,
                    out_bytes: c.out_bytes,
                    rtt: c.rtt,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

/// A JetStream delivery's reply `$JS.ACK.…@<stream subject>` split into the subject and the
/// reply clients are given (`server/client.go` `processMsgResults`: only `$JS.ACK.` replies,
/// only with something after the last `@`).
fn jetstream_remap(reply: &[u8]) -> Option<(&[u8], &[u8])> {
    if !reply.starts_with(b"$JS.ACK.") {
        return None;
    }
    let at = memchr::memrchr(b'@', reply)?;
    let subject = reply.get(at + 1..).filter(|s| !s.is_empty())?;
    Some((subject, reply.get(..at)?))
}

/// What a server without JetStream denies on a leaf of an account (`server/jetstream_api.go`
/// `denyAllClientJs`).
const DENY_CLIENT_JS: &[&str] = &["$JS.API.>", "$KV.>", "$OBJ.>"];

/// What it denies on a leaf of the system account (`denyAllJs`).
const DENY_ALL_JS: &[&str] = &["$JSC.>", "$NRG.>", "$JS.API.>", "$KV.>", "$OBJ.>"];

/// A list as Go's `%+v` prints a `[]string`.
fn go_list(list: &[&str]) -> String {
    format!("[{}]", list.join(" "))
}
