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
