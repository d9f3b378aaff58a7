//! Operator mode: `operator`, `trusted`, `resolver` and `resolver_preload` (the arms of
//! `processConfigFileLine` in nats-server's `server/opts.go`).
//!
//! This module only reads shapes: operator values stay as written (a file name or an inline
//! JWT), keys and JWTs are not decoded (natsconf knows no cryptography). Each value keeps its
//! position so that the binary, which reads the files and checks the JWTs, reports problems
//! where the reference does (`<file>:<line>:<pos>: error parsing operator JWT: ...`).

use crate::value::{Pos, Value};

use super::diag::{Ctx, Entry, Panic, V};

/// Where account JWTs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// `resolver: MEMORY` (or `MEM`): the accounts of `resolver_preload`.
    Memory,
    /// `resolver: { type: full, dir: ... }`: account JWTs in `<dir>/<public key>.jwt`, read at
    /// start and on reload.
    Full {
        /// `dir`.
        dir: String,
        /// `limit`: most JWTs kept; 0 = the reference's default.
        limit: i64,
        /// `allow_delete`: `$SYS.REQ.CLAIMS.DELETE` may delete account JWTs (renamed to
        /// `<key>.jwt.deleted`).
        allow_delete: bool,
    },
}

/// One `resolver_preload` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    /// The account public key (the map key).
    pub account: String,
    /// The account JWT.
    pub jwt: String,
    /// Where the JWT is in the file.
    pub pos: Option<Pos>,
}

/// The operator-mode settings. `Default` is "not in operator mode".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorOptions {
    /// `operator` / `operators` / `root(s)` / `root_operator(s)`: file names or inline JWTs.
    pub operators: Vec<String>,
    /// Where `operator` is.
    pub operators_pos: Option<Pos>,
    /// `trusted` / `trusted_keys`: public operator keys.
    pub trusted_keys: Vec<String>,
    /// Where `trusted` is.
    pub trusted_pos: Option<Pos>,
    /// `resolver` / `account_resolver` / `accounts_resolver`.
    pub resolver: Option<Resolver>,
    /// `resolver_preload`, in file order.
    pub preload: Vec<Preload>,
}

impl OperatorOptions {
    /// True when operators or trusted keys are configured (the reference's `trustedKeys != nil`).
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.operators.is_empty() || !self.trusted_keys.is_empty()
    }
}

fn strings(ctx: &mut Ctx, v: &V<'_>, what: &str) -> Result<Option<Vec<String>>, Panic> {
    match v.value() {
        Value::Str(_) => Ok(Some(vec![v.string()?])),
        Value::Array(_) => {
            let mut out = Vec::new();
            for item in v.array()? {
                if let Value::Str(_) = item.value() {
                    out.push(item.string()?);
                } else {
                    ctx.error(
                        &item,
                        format!(
                            "error parsing {what}: unsupported type in array {}",
                            item.go_type()
                        ),
                    );
                }
            }
            Ok(Some(out))
        }
        _ => {
            ctx.error(
                v,
                format!("error parsing {what}: unsupported type {}", v.go_type()),
            );
            Ok(None)
        }
    }
}

/// The `operator` arm.
pub(crate) fn parse_operators(
    o: &mut OperatorOptions,
    ctx: &mut Ctx,
    v: &V<'_>,
) -> Result<(), Panic> {
    if let Some(list) = strings(ctx, v, "operators")? {
        o.operators = list;
        o.operators_pos.clone_from(&v.pos);
    }
    Ok(())
}

/// The `trusted` arm.
pub(crate) fn parse_trusted(
    o: &mut OperatorOptions,
    ctx: &mut Ctx,
    v: &V<'_>,
) -> Result<(), Panic> {
    if let Some(list) = strings(ctx, v, "trusted")? {
        o.trusted_keys = list;
        o.trusted_pos.clone_from(&v.pos);
    }
    Ok(())
}

const RESOLVER_SHAPE: &str = "error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])";

/// The `resolver` arm. URL and CACHE resolvers are refused by name; the FULL resolver's
/// cluster-sync settings (`interval`, `timeout`) and `ttl` too.
pub(crate) fn parse_resolver(
    o: &mut OperatorOptions,
    ctx: &mut Ctx,
    entry: &Entry<'_>,
) -> Result<(), Panic> {
    let v = &entry.value;
    o.resolver = None;
    match v.value() {
        Value::Str(_) => {
            let text = v.string()?;
            let upper = text.trim().to_ascii_uppercase();
            if upper.starts_with("MEM") {
                o.resolver = Some(Resolver::Memory);
            } else if upper.starts_with("URL") {
                ctx.error(
                    v,
                    "the URL account resolver (resolver: URL(...)) is not supported by natsws; use MEMORY or { type: full, dir: ... }",
                );
            } else {
                ctx.error(v, RESOLVER_SHAPE);
            }
        }
        Value::Map(map) => {
            let mut dir = String::new();
            let mut kind = String::new();
            let mut limit = 0;
            let mut allow_delete = false;
            for e in v.entries(map) {
                match e.lower.as_str() {
                    "dir" => dir = e.value.string()?,
                    "type" => kind = e.value.string()?,
                    "limit" => limit = e.value.int()?,
                    "allow_delete" => allow_delete = e.value.bool()?,
                    "interval" | "timeout" | "ttl" => ctx.error(
                        &e.value,
                        format!(
                            "resolver {} is not supported by natsws",
                            gotext::quote(e.key.as_bytes())
                        ),
                    ),
                    _ => {}
                }
            }
            if dir.is_empty() {
                ctx.error(v, "dir has no value and needs to point to a directory");
                return Ok(());
            }
            match kind.to_ascii_uppercase().as_str() {
                "FULL" => {
                    o.resolver = Some(Resolver::Full {
                        dir,
                        limit,
                        allow_delete,
                    });
                }
                "CACHE" => ctx.error(
                    v,
                    "the CACHE account resolver (resolver: { type: cache }) is not supported by natsws; use MEMORY or { type: full, dir: ... }",
                ),
                _ => ctx.error(v, RESOLVER_SHAPE),
            }
        }
        _ => ctx.error(
            v,
            format!(
                "error parsing operator resolver, wrong type {}",
                v.go_type()
            ),
        ),
    }
    Ok(())
}

/// The `resolver_preload` arm.
pub(crate) fn parse_preload(
    o: &mut OperatorOptions,
    ctx: &mut Ctx,
    v: &V<'_>,
) -> Result<(), Panic> {
    let Value::Map(map) = v.value() else {
        ctx.error(
            v,
            "preload should be a map of account_public_key:account_jwt",
        );
        return Ok(());
    };
    o.preload.clear();
    for e in v.entries(map) {
        if let Value::Str(_) = e.value.value() {
            o.preload.push(Preload {
                account: e.key.clone(),
                jwt: e.value.string()?,
                pos: e.value.pos.clone(),
            });
        } else {
            ctx.error(&e.value, "preload map value should be a string JWT");
        }
    }
    Ok(())
}
