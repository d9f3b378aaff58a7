//! JWTs for operator-mode tests, signed as nsc signs them (the v2 format), with keys made
//! at test time from fixed bytes so that nothing secret is stored.
//!
//! One file serves the broker's tests and the binary's: both include it with `#[path]`, and
//! it uses nothing but `broker::auth::jwt`, so neither crate gains a dependency. The module
//! that includes it provides `fn iat() -> i64`, the issue time of every JWT made here
//! without an explicit one (the broker's simulated clock, or the wall clock for a real
//! server); `*_at` variants take it as an argument.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the signer"
)]

use broker::auth::jwt::{KeyPair, KeyPairType, encode};

/// A key of `kind` made from 32 copies of `byte`.
pub(crate) fn key(kind: KeyPairType, byte: u8) -> KeyPair {
    KeyPair::new_from_raw(kind, [byte; 32]).unwrap()
}

/// Limits as nsc writes them (unlimited); a JWT without them allows nothing (Go's zero
/// values), so every helper below adds them unless the case sets its own.
pub(crate) const ACCOUNT_LIMITS: &str = r#","limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}"#;
pub(crate) const USER_LIMITS: &str = r#","subs":-1,"data":-1,"payload":-1"#;

/// The claims JSON of a `kind` JWT for `sub` issued by `iss` at `iat`: `extra` is spliced
/// into the top level, `nats` into the `nats` object (`NO_LIMITS` there leaves a user's
/// default limits out).
pub(crate) fn claims_at(
    iat: i64,
    iss: &KeyPair,
    sub: &str,
    kind: &str,
    extra: &str,
    nats: &str,
) -> String {
    let defaults = match kind {
        "account" if !nats.contains("\"limits\"") => ACCOUNT_LIMITS,
        "user" if !nats.contains("\"subs\"") && !nats.contains("NO_LIMITS") => USER_LIMITS,
        _ => "",
    };
    let nats = format!("{}{defaults}", nats.replace("NO_LIMITS", ""));
    format!(
        r#"{{"jti":"J{sub}","iat":{iat},"iss":"{iss}","name":"n-{kind}","sub":"{sub}"{extra},"nats":{{"type":"{kind}","version":2{nats}}}}}"#,
        iss = iss.public_key(),
    )
}

/// [`claims_at`] issued at `iat()` of the including module.
pub(crate) fn claims(iss: &KeyPair, sub: &str, kind: &str, extra: &str, nats: &str) -> String {
    claims_at(super::iat(), iss, sub, kind, extra, nats)
}

/// The operator and two accounts every operator test starts from.
pub(crate) struct Keys {
    pub(crate) op: KeyPair,
    pub(crate) a: KeyPair,
    pub(crate) b: KeyPair,
}

pub(crate) fn keys() -> Keys {
    Keys {
        op: key(KeyPairType::Operator, 1),
        a: key(KeyPairType::Account, 2),
        b: key(KeyPairType::Account, 3),
    }
}

/// The self-signed operator JWT.
pub(crate) fn operator_jwt(k: &Keys) -> String {
    encode(
        &claims(&k.op, &k.op.public_key(), "operator", "", ""),
        &k.op,
    )
    .unwrap()
}

/// The JWT of account `acc`, signed by the operator and issued at `iat`.
pub(crate) fn account_jwt_at(iat: i64, k: &Keys, acc: &KeyPair, nats: &str) -> String {
    encode(
        &claims_at(iat, &k.op, &acc.public_key(), "account", "", nats),
        &k.op,
    )
    .unwrap()
}

pub(crate) fn account_jwt(k: &Keys, acc: &KeyPair, nats: &str) -> String {
    account_jwt_at(super::iat(), k, acc, nats)
}

/// The JWT of `user`, signed by `issuer` (an account or one of its signing keys).
pub(crate) fn user_jwt(issuer: &KeyPair, user: &KeyPair, extra: &str, nats: &str) -> String {
    encode(
        &claims(issuer, &user.public_key(), "user", extra, nats),
        issuer,
    )
    .unwrap()
}
