//! The full account resolver's claim services in the system account, as nats-server 2.9.10's
//! `DirAccResolver.Start` serves them (`server/accounts.go`): `nsc push` and its kin.
//!
//! | subject | request | answer |
//! |---|---|---|
//! | `$SYS.REQ.CLAIMS.UPDATE` | an account JWT | [`Response`] |
//! | `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`, `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` | the JWT of `<key>` | [`Response`] |
//! | `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` | anything | the stored JWT, or no answer |
//! | `$SYS.REQ.CLAIMS.LIST` | anything | [`list_json`]: the stored account keys |
//! | `$SYS.REQ.CLAIMS.DELETE` | a JWT the operator signed naming `accounts` | [`Response`] |
//!
//! This module decides; it does no I/O. The binary stores what [`check_update`] accepts (the
//! reference saves it unconditionally, newer or not, and applies it to the live account only
//! when the account's issuer is trusted), reads the directory for lookups and lists, and
//! removes what [`check_delete`] accepts. `$SYS.REQ.CLAIMS.PACK` (the cluster
//! synchronisation between servers) is not served: natsws does not cluster.
//!
//! A MEMORY resolver serves only the two update subjects that name the account
//! ([`MEMORY_SUBJECTS`], [`check_memory_update`]): the JWT applies to the live account
//! ([`check_live`]) and is not kept past a reload or restart.

use std::collections::HashSet;

use serde::Serialize;

use super::jwt;
use super::operator::account_issues;

/// The subjects of the claim services, to register with
/// [`crate::Broker::add_system_service`]; [`ClaimsRequest::parse`] tells them apart.
pub const SUBJECTS: [&str; 6] = [
    "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
    "$SYS.REQ.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
    "$SYS.REQ.CLAIMS.LIST",
    "$SYS.REQ.CLAIMS.DELETE",
];

/// One request to the claim services, by its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsRequest<'a> {
    /// An account JWT to store: for the account the subject names, or (`None`,
    /// `$SYS.REQ.CLAIMS.UPDATE`) for the JWT's own subject.
    Update(Option<&'a str>),
    /// The stored JWT of an account.
    Lookup(&'a str),
    /// The stored account keys.
    List,
    /// Accounts to delete.
    Delete,
}

impl<'a> ClaimsRequest<'a> {
    /// The request a subject makes, or `None` for a subject that is not one (the reference
    /// skips those, answering nothing).
    #[must_use]
    pub fn parse(subject: &'a str) -> Option<Self> {
        let tokens: Vec<&str> = subject.split('.').take(7).collect();
        match tokens.as_slice() {
            ["$SYS", "ACCOUNT", acc, "CLAIMS", "UPDATE"]
            | ["$SYS", "REQ", "ACCOUNT", acc, "CLAIMS", "UPDATE"] => Some(Self::Update(Some(acc))),
            ["$SYS", "REQ", "CLAIMS", "UPDATE"] => Some(Self::Update(None)),
            ["$SYS", "REQ", "ACCOUNT", acc, "CLAIMS", "LOOKUP"] => Some(Self::Lookup(acc)),
            ["$SYS", "REQ", "CLAIMS", "LIST"] => Some(Self::List),
            ["$SYS", "REQ", "CLAIMS", "DELETE"] => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The operator keys the services check against (`getOperatorKeys`): the first operator's
/// identity key (unless it uses strict signing keys) and its signing keys.
#[derive(Debug, Clone, Default)]
pub struct OperatorKeys {
    operator: String,
    keys: HashSet<String>,
    strict: bool,
}

impl OperatorKeys {
    /// The keys of the first of `operators` (operator JWTs); `None` when there is none or it
    /// does not decode (the reference then refuses to start the resolver).
    #[must_use]
    pub fn new(operators: &[String]) -> Option<Self> {
        let op = jwt::decode_operator(operators.first()?.trim()).ok()?;
        let strict = op.nats.strict_signing_key_usage;
        let mut keys: HashSet<String> = op.nats.signing_keys.iter().cloned().collect();
        if !strict {
            keys.insert(op.data.sub.clone());
        }
        Some(Self {
            operator: op.data.sub,
            keys,
            strict,
        })
    }
}

/// The answer to an update or delete (`respondToUpdate`): `{"data": {"account", "code": 200,
/// "message"}}` on success, `{"error": {"account", "code": 500, "description": "<message> -
/// <error>"}}` otherwise, both beside the `server` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The account the answer is about (left out when empty).
    pub account: String,
    /// What happened.
    pub message: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl Response {
    fn failed(account: &str, message: &str, error: impl Into<String>) -> Self {
        Self {
            account: account.to_owned(),
            message: message.to_owned(),
            error: Some(error.into()),
        }
    }

    /// The answer for an update that was stored (`jwt updated`).
    #[must_use]
    pub fn updated(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            message: "jwt updated".to_owned(),
            error: None,
        }
    }

    /// The answer for an update of an account the server has not loaded (`jwt update
    /// skipped`, a success).
    #[must_use]
    pub fn skipped(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            message: "jwt update skipped".to_owned(),
            error: None,
        }
    }

    /// The answer for an update the live account refused (`error` from [`check_live`]).
    #[must_use]
    pub fn not_applied(account: &str, error: &str) -> Self {
        Self::failed(account, "jwt update resulted in error", error)
    }

    /// The answer for an update that could not be stored (`error` is the I/O error's text).
    #[must_use]
    pub fn not_saved(account: &str, error: &str) -> Self {
        Self::failed(account, "jwt update resulted in error", error)
    }

    /// The line nats-server logs for it: at debug level on success, else at error level.
    #[must_use]
    pub fn log_line(&self) -> String {
        let mut line = self.message.clone();
        if !self.account.is_empty() {
            line.push_str(" - ");
            line.push_str(&self.account);
        }
        if let Some(e) = &self.error {
            line.push_str(" - ");
            line.push_str(e);
        }
        line
    }

    /// The JSON answer.
    #[must_use]
    pub fn to_json(&self, server: &ServerInfo) -> String {
        let mut m = serde_json::Map::new();
        if !self.account.is_empty() {
            m.insert("account".to_owned(), self.account.clone().into());
        }
        let key = match &self.error {
            None => {
                m.insert("code".to_owned(), 200.into());
                m.insert("message".to_owned(), self.message.clone().into());
                "data"
            }
            Some(e) => {
                m.insert("code".to_owned(), 500.into());
                m.insert(
                    "description".to_owned(),
                    format!("{} - {e}", self.message).into(),
                );
                "error"
            }
        };
        let mut top = serde_json::Map::new();
        top.insert(key.to_owned(), m.into());
        top.insert("server".to_owned(), server_value(server));
        serde_json::Value::Object(top).to_string()
    }
}

/// The `server` object of every answer (`ServerInfo` in `server/events.go`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerInfo {
    /// The server name.
    pub name: String,
    /// The client listener's host.
    pub host: String,
    /// The server id.
    pub id: String,
    /// The version natsws serves.
    pub ver: String,
    /// The sequence of the server's messages.
    pub seq: u64,
    /// Always `false`: natsws has no JetStream.
    pub jetstream: bool,
    /// When the answer was sent (RFC 3339, UTC).
    pub time: String,
}

fn server_value(server: &ServerInfo) -> serde_json::Value {
    serde_json::to_value(server).unwrap_or_default()
}

/// `{"data": [<key>...], "server": {...}}`, the answer to a list request.
#[must_use]
pub fn list_json(accounts: &[String], server: &ServerInfo) -> String {
    serde_json::json!({ "data": accounts, "server": server_value(server) }).to_string()
}

/// `claimValidate`: the blocking issues of `AccountClaims.Validate`, times left out.
fn validate(claims: &jwt::Claims<jwt::Account>) -> Result<(), String> {
    let issues = account_issues(claims);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(format!("validation errors: [{}]", issues.join(" ")))
    }
}

/// Checks an update request (`DirAccResolver.Start`'s two update handlers, in their order):
/// the JWT decodes as an account JWT, passes validation, is for the account the subject
/// names, and is not signed by the operator's identity key when the operator requires
/// signing keys. Gives the account to store it for, or the answer refusing it.
///
/// As in the reference, the issuer is not checked against the trusted keys here: an account
/// JWT signed by another operator is stored, and only the live account refuses it.
pub fn check_update(
    subject_account: Option<&str>,
    token: &str,
    keys: &OperatorKeys,
) -> Result<String, Response> {
    check_update_claims(subject_account, token, keys).map(|c| c.data.sub)
}

/// [`check_update`], giving the decoded claims.
pub fn check_update_claims(
    subject_account: Option<&str>,
    token: &str,
    keys: &OperatorKeys,
) -> Result<jwt::Claims<jwt::Account>, Response> {
    let failed = |acc: &str, e: String| Response::failed(acc, "jwt update resulted in error", e);
    let claims = jwt::decode_account(token.trim()).map_err(|e| failed("n/a", e.to_string()))?;
    let sub = claims.data.sub.as_str();
    let strict = keys.strict && claims.data.iss == keys.operator;
    let strict_err = "operator requires issuer to be a signing key".to_owned();
    match subject_account {
        Some(acc) => {
            validate(&claims).map_err(|e| Response::failed(sub, "jwt validation failed", e))?;
            if sub != acc {
                return Err(failed(acc, "subject does not match jwt content".to_owned()));
            }
            if strict {
                return Err(failed(acc, strict_err));
            }
        }
        None => {
            if strict {
                return Err(failed(sub, strict_err));
            }
            validate(&claims).map_err(|e| Response::failed(sub, "jwt validation failed", e))?;
        }
    }
    Ok(claims)
}

/// The subjects a MEMORY resolver serves (`server/events.go` `initEventTracking`): account
/// updates naming the account, applied to the live account without being stored.
pub const MEMORY_SUBJECTS: [&str; 2] = [
    "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
];

/// Checks a MEMORY resolver's update of `account` (`accountClaimUpdate`): a body, an account
/// JWT that decodes, for that account. The caller then answers [`Response::skipped`] for an
/// account the server has not loaded, and checks the JWT with [`check_live`].
pub fn check_memory_update(account: &str, token: &str) -> Result<(), Response> {
    if token.trim().is_empty() {
        return Err(Response::failed(
            account,
            "jwt update error",
            "request body is empty",
        ));
    }
    let failed = |e: String| Response::failed(account, "jwt update resulted in error", e);
    let claims = jwt::decode_account(token.trim()).map_err(|e| failed(e.to_string()))?;
    if claims.data.sub != account {
        return Err(failed("subject does not match jwt content".to_owned()));
    }
    Ok(())
}

/// Whether the live server takes `token` for an account (`verifyAccountClaims`): issued by a
/// trusted key, without blocking validation issues, and within its times at `now_unix`.
/// The error is the reference's (`account validation failed`).
pub fn check_live(token: &str, keys: &OperatorKeys, now_unix: i64) -> Result<(), String> {
    let refused = || "account validation failed".to_owned();
    let claims = jwt::decode_account(token.trim()).map_err(|e| e.to_string())?;
    if !is_trusted(keys, &claims.data.iss)
        || !account_issues(&claims).is_empty()
        || claims.data.check_times(now_unix).is_err()
    {
        return Err(refused());
    }
    Ok(())
}

/// Whether `issuer` may sign accounts the live server takes (the trusted keys).
#[must_use]
pub fn is_trusted(keys: &OperatorKeys, issuer: &str) -> bool {
    keys.keys.contains(issuer)
}

/// Checks a delete request (`handleDeleteRequest`): a JWT self-signed by a trusted operator
/// key whose `nats.accounts` lists account keys, none the system account, and only with
/// `allow_delete`. Gives the accounts to delete, or the answer refusing the request.
pub fn check_delete(
    token: &str,
    keys: &OperatorKeys,
    allow_delete: bool,
    system_account: Option<&str>,
) -> Result<Vec<String>, Response> {
    let (data, nats) = match jwt::decode_generic(token.trim()) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Err(Response::failed(
                "",
                "delete accounts request by  failed",
                e.to_string(),
            ));
        }
    };
    let fail = |e: &str| {
        Err(Response::failed(
            "",
            &format!("delete accounts request by {} failed", data.sub),
            e,
        ))
    };
    if !allow_delete {
        return fail("delete must be enabled in server config");
    }
    if data.sub != data.iss {
        return fail("not self signed");
    }
    if !keys.keys.contains(&data.iss) {
        return fail("not trusted");
    }
    let Some(list) = nats.get("accounts").and_then(serde_json::Value::as_array) else {
        return fail("malformed request");
    };
    let mut accounts = Vec::with_capacity(list.len());
    for entry in list {
        match entry.as_str() {
            Some(acc) if jwt::is_public_key(acc, nkeys::KeyPairType::Account) => {
                if Some(acc) == system_account {
                    return fail("not allowed to delete system account");
                }
                accounts.push(acc.to_owned());
            }
            _ => return fail("malformed request"),
        }
    }
    Ok(accounts)
}

/// The answer once the deletes ran: `deleted <n> accounts`, or with the failures' texts.
#[must_use]
pub fn delete_response(deleted: usize, errors: &[String]) -> Response {
    if errors.is_empty() {
        Response {
            account: String::new(),
            message: format!("deleted {deleted} accounts"),
            error: None,
        }
    } else {
        Response::failed(
            "",
            &format!("deleted {deleted} accounts, failed for {}", errors.len()),
            errors.join("\n"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_parse_to_their_requests() {
        let acc = "ABC";
        assert_eq!(
            ClaimsRequest::parse("$SYS.REQ.ACCOUNT.ABC.CLAIMS.UPDATE"),
            Some(ClaimsRequest::Update(Some(acc)))
        );
        assert_eq!(
            ClaimsRequest::parse("$SYS.ACCOUNT.ABC.CLAIMS.UPDATE"),
            Some(ClaimsRequest::Update(Some(acc)))
        );
        assert_eq!(
            ClaimsRequest::parse("$SYS.REQ.CLAIMS.UPDATE"),
            Some(ClaimsRequest::Update(None))
        );
        assert_eq!(
            ClaimsRequest::parse("$SYS.REQ.ACCOUNT.ABC.CLAIMS.LOOKUP"),
            Some(ClaimsRequest::Lookup(acc))
        );
        assert_eq!(
            ClaimsRequest::parse("$SYS.REQ.CLAIMS.LIST"),
            Some(ClaimsRequest::List)
        );
        assert_eq!(
            ClaimsRequest::parse("$SYS.REQ.CLAIMS.DELETE"),
            Some(ClaimsRequest::Delete)
        );
        assert_eq!(ClaimsRequest::parse("$SYS.REQ.CLAIMS.UPDATE.X"), None);
        assert_eq!(ClaimsRequest::parse("$SYS.REQ.CLAIMS"), None);
    }

    proptest::proptest! {
        /// Hostile requests never panic: any subject parses or not, and any body is refused
        /// with an answer (no key here signs anything).
        #[test]
        fn hostile_requests_are_refused(subject in "[$A-Z.*>a-z]{0,40}", body in ".{0,200}") {
            let _ = ClaimsRequest::parse(&subject);
            let keys = OperatorKeys::default();
            proptest::prop_assert!(check_update(Some("ACC"), &body, &keys).is_err());
            proptest::prop_assert!(check_update(None, &body, &keys).is_err());
            proptest::prop_assert!(check_delete(&body, &keys, true, Some("SYS")).is_err());
        }
    }

    /// Properly signed account JWTs with hostile fields, and what nats-server 2.9.10 answers
    /// to each, worked out here from the Go library's rules (`jwt/v2` `Account.Validate`,
    /// `Export.Validate`, `Import.Validate`, `ExportType.UnmarshalJSON`, `Decode`) and
    /// `DirAccResolver.Start`'s order of checks, not from the code under test.
    mod signed {
        use super::super::*;
        use proptest::prelude::*;

        /// Subjects no two of which contain each other (so no export or import overlaps),
        /// with Go's `%q` of each.
        const SUBJECTS: [(&str, &str); 6] = [
            ("svc.a", r#""svc.a""#),
            ("feed.>", r#""feed.>""#),
            ("x.*", r#""x.*""#),
            ("", r#""""#),
            ("a b", r#""a b""#),
            ("ü.\"q\"", r#""ü.\"q\"""#),
        ];

        /// Who signs the account JWT.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Issuer {
            /// The operator's identity key.
            Operator,
            /// The operator's signing key.
            SigningKey,
            /// An operator the server does not trust.
            Stranger,
            /// The account itself.
            SelfSigned,
            /// A user key (not a key that may sign accounts).
            User,
        }

        /// An export's or import's `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Kind {
            Stream,
            Service,
            Missing,
            /// Neither `stream` nor `service`.
            Bogus,
        }

        impl Kind {
            fn json(self) -> &'static str {
                match self {
                    Self::Stream => r#","type":"stream""#,
                    Self::Service => r#","type":"service""#,
                    Self::Missing => "",
                    Self::Bogus => r#","type":"bogus""#,
                }
            }
        }

        #[derive(Debug, Clone)]
        struct Limits {
            imports: i64,
            exports: i64,
            wildcards: bool,
            subs: i64,
            conn: i64,
            /// A JetStream limit set (the limits are then not empty).
            jetstream: bool,
        }

        #[derive(Debug, Clone)]
        struct Spec {
            name: String,
            issuer: Issuer,
            /// The JWT is for the other account than the one the request names.
            for_other: bool,
            /// The request's subject names an account (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`).
            named: bool,
            strict: bool,
            limits: Option<Limits>,
            /// Subject index, kind, `response_type`.
            exports: Vec<(usize, Kind, Option<&'static str>)>,
            /// Subject index, kind, account (0 a valid key, 1 empty, 2 not a key).
            imports: Vec<(usize, Kind, u8)>,
            /// 0 none, 1 past, 2 future.
            exp: u8,
        }

        fn limit() -> impl Strategy<Value = i64> {
            prop_oneof![
                6 => Just(-1),
                1 => Just(0),
                1 => Just(1),
                1 => Just(2),
                1 => Just(-5),
                1 => Just(i64::MIN),
                1 => Just(i64::MAX),
            ]
        }

        fn kind() -> impl Strategy<Value = Kind> {
            prop_oneof![
                8 => Just(Kind::Stream),
                8 => Just(Kind::Service),
                1 => Just(Kind::Missing),
                1 => Just(Kind::Bogus),
            ]
        }

        /// Up to three distinct indices into [`SUBJECTS`], mostly of the valid ones.
        fn subjects() -> impl Strategy<Value = Vec<usize>> {
            prop_oneof![
                2 => proptest::sample::subsequence(vec![0, 1, 2, 5], 0..=2),
                1 => proptest::sample::subsequence((0..SUBJECTS.len()).collect::<Vec<_>>(), 0..=3),
            ]
            .prop_shuffle()
        }

        fn spec() -> impl Strategy<Value = Spec> {
            let issuer = prop_oneof![
                3 => Just(Issuer::Operator),
                3 => Just(Issuer::SigningKey),
                1 => Just(Issuer::Stranger),
                1 => Just(Issuer::SelfSigned),
                1 => Just(Issuer::User),
            ];
            let limits = proptest::option::weighted(
                0.8,
                (
                    limit(),
                    limit(),
                    any::<bool>(),
                    limit(),
                    limit(),
                    proptest::bool::weighted(0.1),
                )
                    .prop_map(
                        |(imports, exports, wildcards, subs, conn, jetstream)| Limits {
                            imports,
                            exports,
                            wildcards,
                            subs,
                            conn,
                            jetstream,
                        },
                    ),
            );
            let name = prop_oneof![
                "\\PC{0,40}",
                ("\\PC{1,3}", 500..3000_usize).prop_map(|(s, n)| s.repeat(n)),
            ];
            let rt =
                proptest::option::weighted(0.25, prop_oneof![Just("Singleton"), Just("Bogus")]);
            let exports = subjects().prop_flat_map(move |idx| {
                let n = idx.len();
                (
                    Just(idx),
                    proptest::collection::vec((kind(), rt.clone()), n),
                )
                    .prop_map(|(idx, rest)| {
                        idx.into_iter()
                            .zip(rest)
                            .map(|(i, (k, r))| (i, k, r))
                            .collect::<Vec<_>>()
                    })
            });
            let imports = subjects().prop_flat_map(|idx| {
                let n = idx.len();
                (
                    Just(idx),
                    proptest::collection::vec(
                        (
                            kind(),
                            prop_oneof![6 => Just(0_u8), 1 => Just(1), 1 => Just(2)],
                        ),
                        n,
                    ),
                )
                    .prop_map(|(idx, rest)| {
                        idx.into_iter()
                            .zip(rest)
                            .map(|(i, (k, a))| (i, k, a))
                            .collect::<Vec<_>>()
                    })
            });
            (
                (name, issuer, any::<bool>(), any::<bool>(), any::<bool>()),
                (limits, exports, imports, 0..3_u8),
            )
                .prop_map(
                    |(
                        (name, issuer, for_other, named, strict),
                        (limits, exports, imports, exp),
                    )| {
                        Spec {
                            name,
                            issuer,
                            for_other,
                            named,
                            strict,
                            limits,
                            exports,
                            imports,
                            exp,
                        }
                    },
                )
        }

        fn key(kind: nkeys::KeyPairType, byte: u8) -> nkeys::KeyPair {
            nkeys::KeyPair::new_from_raw(kind, [byte; 32]).unwrap()
        }

        const NOW: i64 = 1_800_000_000;

        struct World {
            op: nkeys::KeyPair,
            sk: nkeys::KeyPair,
            stranger: nkeys::KeyPair,
            user: nkeys::KeyPair,
            /// The account the request is about, the other one, and one imports name.
            target: nkeys::KeyPair,
            other: nkeys::KeyPair,
            exporter: String,
            lax: OperatorKeys,
            strict: OperatorKeys,
        }

        fn world() -> &'static World {
            static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
            WORLD.get_or_init(|| {
                let op = key(nkeys::KeyPairType::Operator, 11);
                let sk = key(nkeys::KeyPairType::Operator, 12);
                let operator = |strict: bool| {
                    let claims = format!(
                        r#"{{"jti":"O","iat":1,"iss":"{o}","sub":"{o}","nats":{{"type":"operator","version":2,"strict_signing_key_usage":{strict},"signing_keys":["{}"]}}}}"#,
                        sk.public_key(),
                        o = op.public_key()
                    );
                    OperatorKeys::new(&[jwt::encode(&claims, &op).unwrap()]).unwrap()
                };
                World {
                    lax: operator(false),
                    strict: operator(true),
                    op,
                    sk,
                    stranger: key(nkeys::KeyPairType::Operator, 13),
                    user: key(nkeys::KeyPairType::User, 14),
                    target: key(nkeys::KeyPairType::Account, 15),
                    other: key(nkeys::KeyPairType::Account, 16),
                    exporter: key(nkeys::KeyPairType::Account, 17).public_key(),
                }
            })
        }

        /// The signed JWT of `spec`.
        fn token(w: &World, spec: &Spec) -> String {
            let sub = if spec.for_other { &w.other } else { &w.target };
            let signer = match spec.issuer {
                Issuer::Operator => &w.op,
                Issuer::SigningKey => &w.sk,
                Issuer::Stranger => &w.stranger,
                Issuer::SelfSigned => sub,
                Issuer::User => &w.user,
            };
            let mut nats = String::from(r#""type":"account","version":2"#);
            if let Some(l) = &spec.limits {
                let js = if l.jetstream {
                    r#","mem_storage":1"#
                } else {
                    ""
                };
                nats.push_str(&format!(
                    r#","limits":{{"imports":{},"exports":{},"wildcards":{},"subs":{},"conn":{}{js}}}"#,
                    l.imports, l.exports, l.wildcards, l.subs, l.conn
                ));
            }
            let imports: Vec<String> = spec
                .imports
                .iter()
                .map(|(i, k, a)| {
                    let account = match a {
                        0 => w.exporter.as_str(),
                        1 => "",
                        _ => "XYZ",
                    };
                    format!(
                        r#"{{"subject":{}{},"account":"{account}"}}"#,
                        serde_json::Value::from(SUBJECTS[*i].0),
                        k.json()
                    )
                })
                .collect();
            nats.push_str(&format!(r#","imports":[{}]"#, imports.join(",")));
            let exports: Vec<String> = spec
                .exports
                .iter()
                .map(|(i, k, rt)| {
                    let rt = rt.map_or(String::new(), |r| format!(r#","response_type":"{r}""#));
                    format!(
                        r#"{{"subject":{}{}{rt}}}"#,
                        serde_json::Value::from(SUBJECTS[*i].0),
                        k.json()
                    )
                })
                .collect();
            nats.push_str(&format!(r#","exports":[{}]"#, exports.join(",")));
            let exp = match spec.exp {
                0 => 0,
                1 => NOW - 100,
                _ => NOW + 1000,
            };
            let claims = format!(
                r#"{{"jti":"J","iat":{},"exp":{exp},"iss":"{}","sub":"{}","name":{},"nats":{{{nats}}}}}"#,
                NOW - 1000,
                signer.public_key(),
                sub.public_key(),
                serde_json::Value::from(spec.name.as_str()),
            );
            jwt::encode(&claims, signer).unwrap()
        }

        /// Go's `Subject.HasWildCards`.
        fn wildcard(subject: &str) -> bool {
            subject.ends_with(".>")
                || subject.contains(".*.")
                || subject.ends_with(".*")
                || subject.starts_with("*.")
                || subject == "*"
                || subject == ">"
        }

        fn subject_issues(i: usize, issues: &mut Vec<String>) {
            let (subject, quoted) = SUBJECTS[i];
            if subject.is_empty() {
                issues.push("subject cannot be empty".to_owned());
            }
            if subject.contains(' ') {
                issues.push(format!("subject {quoted} cannot have spaces"));
            }
        }

        /// The blocking issues of `Account.Validate`, in its order.
        fn issues(spec: &Spec) -> Vec<String> {
            let mut issues = Vec::new();
            for (i, k, a) in &spec.imports {
                if matches!(k, Kind::Missing) {
                    issues.push(r#"invalid import type: "unknown""#.to_owned());
                }
                if *a == 1 {
                    issues.push("account to import from is not specified".to_owned());
                }
                subject_issues(*i, &mut issues);
            }
            for (i, k, rt) in &spec.exports {
                if *k == Kind::Missing {
                    issues.push(r#"invalid export type: "unknown""#.to_owned());
                }
                match (k, rt) {
                    (Kind::Service, Some("Bogus")) => {
                        issues.push(r#"invalid response type for service: "Bogus""#.to_owned());
                    }
                    (Kind::Stream, Some(rt)) => {
                        issues.push(format!(r#"invalid response type for stream: "{rt}""#));
                    }
                    _ => {}
                }
                subject_issues(*i, &mut issues);
            }
            let zero = Limits {
                imports: 0,
                exports: 0,
                wildcards: false,
                subs: 0,
                conn: 0,
                jetstream: false,
            };
            let l = spec.limits.as_ref().unwrap_or(&zero);
            let empty = l.imports == 0
                && l.exports == 0
                && !l.wildcards
                && l.subs == 0
                && l.conn == 0
                && !l.jetstream;
            let (n_imports, n_exports) = (spec.imports.len() as i64, spec.exports.len() as i64);
            let too_many = "the account contains more imports than allowed by the operator";
            if !empty && l.imports >= 0 && n_imports > l.imports {
                issues.push(too_many.to_owned());
            }
            if l.imports != -1 && n_imports > l.imports {
                issues.push(too_many.to_owned());
            }
            if l.exports != -1 {
                if n_exports > l.exports {
                    issues.push(
                        "the account contains more exports than allowed by the operator".to_owned(),
                    );
                }
                if !l.wildcards {
                    for (i, _, _) in &spec.exports {
                        if wildcard(SUBJECTS[*i].0) {
                            issues.push(
                                "the account contains wildcard exports that are not allowed by the operator"
                                    .to_owned(),
                            );
                        }
                    }
                }
            }
            issues
        }

        /// What `DirAccResolver.Start`'s update handlers answer: the account stored, or
        /// (account, message, error).
        fn expected(w: &World, spec: &Spec) -> Result<String, (String, String, String)> {
            let failed = "jwt update resulted in error";
            let refuse =
                |acc: &str, msg: &str, e: &str| Err((acc.to_owned(), msg.to_owned(), e.to_owned()));
            let kinds = spec
                .imports
                .iter()
                .map(|i| i.1)
                .chain(spec.exports.iter().map(|e| e.1));
            if kinds.clone().any(|k| k == Kind::Bogus) {
                return refuse("n/a", failed, r#"unknown export type "bogus""#);
            }
            if spec.issuer == Issuer::User {
                return refuse(
                    "n/a",
                    failed,
                    "unable to validate expected prefixes - [account operator]",
                );
            }
            let sub = if spec.for_other {
                w.other.public_key()
            } else {
                w.target.public_key()
            };
            let strict = spec.strict && spec.issuer == Issuer::Operator;
            let strict_err = "operator requires issuer to be a signing key";
            let issues = issues(spec);
            let invalid = format!("validation errors: [{}]", issues.join(" "));
            if spec.named {
                let named = w.target.public_key();
                if !issues.is_empty() {
                    return refuse(&sub, "jwt validation failed", &invalid);
                }
                if sub != named {
                    return refuse(&named, failed, "subject does not match jwt content");
                }
                if strict {
                    return refuse(&named, failed, strict_err);
                }
            } else {
                if strict {
                    return refuse(&sub, failed, strict_err);
                }
                if !issues.is_empty() {
                    return refuse(&sub, "jwt validation failed", &invalid);
                }
            }
            Ok(sub)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Each update is accepted or refused, with the message, as the reference
            /// decides; the live server takes it only when it is trusted, valid and within
            /// its times (`verifyAccountClaims`).
            #[test]
            fn signed_updates_are_decided_as_the_reference(spec in spec()) {
                let w = world();
                let token = token(w, &spec);
                let keys = if spec.strict { &w.strict } else { &w.lax };
                let target = w.target.public_key();
                let subject = spec.named.then_some(target.as_str());
                let got = check_update(subject, &token, keys)
                    .map_err(|r| (r.account, r.message, r.error.unwrap_or_default()));
                let want = expected(w, &spec);
                prop_assert_eq!(&got, &want, "{:?}", spec);
                if want.is_ok() {
                    let trusted = match spec.issuer {
                        Issuer::Operator => !spec.strict,
                        Issuer::SigningKey => true,
                        _ => false,
                    };
                    let live = check_live(&token, keys, NOW);
                    prop_assert_eq!(
                        live.is_ok(),
                        trusted && issues(&spec).is_empty() && spec.exp != 1,
                        "{:?}: {:?}", spec, live
                    );
                }
            }
        }
    }

    fn key(kind: nkeys::KeyPairType, byte: u8) -> nkeys::KeyPair {
        nkeys::KeyPair::new_from_raw(kind, [byte; 32]).unwrap()
    }

    fn signed(signer: &nkeys::KeyPair, sub: &str, nats: &str) -> String {
        let claims = format!(
            r#"{{"jti":"J","iat":1,"iss":"{}","sub":"{sub}","nats":{{{nats}}}}}"#,
            signer.public_key()
        );
        jwt::encode(&claims, signer).unwrap()
    }

    /// An operator with strict signing keys refuses accounts its identity key signed, on both
    /// update subjects; its signing key's are taken, and only the identity key deletes.
    #[test]
    fn strict_operators_need_signing_keys() {
        let op = key(nkeys::KeyPairType::Operator, 1);
        let sk = key(nkeys::KeyPairType::Operator, 2);
        let acc = key(nkeys::KeyPairType::Account, 3).public_key();
        let op_jwt = signed(
            &op,
            &op.public_key(),
            &format!(
                r#""type":"operator","version":2,"strict_signing_key_usage":true,"signing_keys":["{}"]"#,
                sk.public_key()
            ),
        );
        let keys = OperatorKeys::new(&[op_jwt]).unwrap();
        let account =
            r#""type":"account","version":2,"limits":{"imports":-1,"exports":-1,"wildcards":true}"#;
        let by_op = signed(&op, &acc, account);
        for subject in [Some(acc.as_str()), None] {
            let refused = check_update(subject, &by_op, &keys).unwrap_err();
            assert_eq!(
                refused.log_line(),
                format!(
                    "jwt update resulted in error - {acc} - operator requires issuer to be a signing key"
                )
            );
        }
        assert_eq!(
            check_update(None, &signed(&sk, &acc, account), &keys),
            Ok(acc.clone())
        );
        let delete = |signer: &nkeys::KeyPair| {
            let nats = format!(r#""accounts":["{acc}"]"#);
            check_delete(
                &signed(signer, &signer.public_key(), &nats),
                &keys,
                true,
                None,
            )
        };
        // The identity key is not among a strict operator's keys; a signing key signs itself.
        assert_eq!(
            delete(&op).unwrap_err().error.as_deref(),
            Some("not trusted")
        );
        assert_eq!(delete(&sk), Ok(vec![acc.clone()]));
    }

    #[test]
    fn responses_have_the_reference_shape() {
        let server = ServerInfo::default();
        let ok: serde_json::Value =
            serde_json::from_str(&Response::updated("ACC").to_json(&server)).unwrap();
        assert_eq!(
            ok["data"],
            serde_json::json!({"account": "ACC", "code": 200, "message": "jwt updated"})
        );
        assert!(ok["server"].is_object());
        let err: serde_json::Value =
            serde_json::from_str(&Response::not_saved("ACC", "disk full").to_json(&server))
                .unwrap();
        assert_eq!(
            err["error"],
            serde_json::json!({"account": "ACC", "code": 500,
                "description": "jwt update resulted in error - disk full"})
        );
        let bad = check_update(None, "garbage", &OperatorKeys::default()).unwrap_err();
        assert_eq!(
            bad.log_line(),
            "jwt update resulted in error - n/a - expected 3 chunks"
        );
    }
}
