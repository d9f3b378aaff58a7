//! The `accounts` block (`server/opts.go` `parseAccounts` and its import/export helpers).
//! natsws parses and validates accounts; serving them is the broker's business.

use std::time::Duration;

use gotext::quote;

use crate::value::Value;

use super::auth::{
    NkeyUser, PREFIX_ACCOUNT, Permissions, User, apply_default_permissions, go_value,
    is_valid_public_key, is_valid_subject, parse_permissions, parse_users, user_names,
};
use super::diag::{Ctx, Panic, V};
use super::gostd::parse_duration;

/// Whether an export is a stream or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// `stream`.
    Stream,
    /// `service`.
    Service,
}

/// Whether an import is a stream or a service.
pub type ImportKind = ExportKind;

/// A service export's `response_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// `single` / `singleton` (the default).
    #[default]
    Singleton,
    /// `stream`.
    Stream,
    /// `chunk` / `chunked`.
    Chunked,
}

/// A service export's `latency` tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// Subject the latency samples go to.
    pub subject: String,
    /// Sampling percentage (1–100); `None` means "headers" (sample when the request asks).
    pub sampling: Option<u8>,
}

/// One entry of `exports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exported subject.
    pub subject: String,
    /// `accounts` allowed to import; empty means public.
    pub accounts: Vec<String>,
    /// `response_type` (services).
    pub response_type: ResponseType,
    /// `response_threshold` (services).
    pub response_threshold: Option<Duration>,
    /// `latency` (services).
    pub latency: Option<Latency>,
    /// `account_token_position`.
    pub account_token_position: u32,
}

/// One entry of `imports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Stream or service.
    pub kind: ImportKind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// `to`: the local subject (services: defaults to `subject`).
    pub to: Option<String>,
    /// `prefix` (streams).
    pub prefix: Option<String>,
    /// `share` (services).
    pub share: bool,
}

/// One account of the `accounts` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// The account name.
    pub name: String,
    /// `nkey`: the account's public nkey.
    pub nkey: Option<String>,
    /// `default_permissions` (already applied to the account's users without their own).
    pub default_permissions: Option<Permissions>,
    /// `exports`.
    pub exports: Vec<Export>,
    /// `imports`.
    pub imports: Vec<Import>,
}

/// Account-level keys nats-server knows that natsconf does not model (recorded as `Unmodelled`).
const UNSUPPORTED_ACCOUNT_KEYS: &[&str] = &["jetstream", "mappings", "maps", "limits"];

/// `%q` of a config value: strings quoted, integers as Go rune literals (`'\x05'`).
fn go_quote_value(value: &Value) -> String {
    match value {
        Value::Int(n) => {
            let c = u32::try_from(*n).ok().and_then(char::from_u32);
            match c {
                Some('\'') => "'\\''".to_owned(),
                Some('\\') => "'\\\\'".to_owned(),
                Some(c) if !c.is_control() => format!("'{c}'"),
                Some(c) if u32::from(c) < 0x80 => format!("'\\x{:02x}'", u32::from(c)),
                Some(c) => format!("'\\u{:04x}'", u32::from(c)),
                None => "'\u{fffd}'".to_owned(),
            }
        }
        other => quote(go_value(other)),
    }
}

fn reserved(name: &str) -> bool {
    name == "$G"
}

/// What the accounts block adds to, and the top-level credentials it must not be combined
/// with.
pub(crate) struct Principals<'a> {
    /// A top-level single user/password is configured.
    pub(crate) single_user: bool,
    /// A top-level token is configured.
    pub(crate) token: bool,
    pub(crate) users: &'a mut Vec<User>,
    pub(crate) nkeys: &'a mut Vec<NkeyUser>,
    pub(crate) accounts: &'a mut Vec<Account>,
}

/// `parseAccounts`.
pub(crate) fn parse_accounts(raw: &mut Principals<'_>, ctx: &mut Ctx, v: &V<'_>) {
    let res = parse_accounts_inner(raw, ctx, v);
    ctx.recover(res);
}

fn parse_accounts_inner(raw: &mut Principals<'_>, ctx: &mut Ctx, v: &V<'_>) -> Result<(), Panic> {
    match v.value() {
        Value::Array(_) => {
            let mut seen: Vec<String> = Vec::new();
            for item in v.array()? {
                let name = item.string()?;
                if reserved(&name) {
                    ctx.error(&item, format!("{} is a Reserved Account", quote(&name)));
                    continue;
                }
                if seen.contains(&name) {
                    ctx.error(&item, format!("Duplicate Account Entry: {name}"));
                    continue;
                }
                seen.push(name.clone());
                raw.accounts.push(Account {
                    name,
                    ..Account::default()
                });
            }
        }
        Value::Map(map) => {
            let mut names = user_names(raw.users, raw.nkeys);
            for entry in v.entries(map) {
                let av = &entry.value;
                if av.used_as_variable() {
                    continue;
                }
                let Value::Map(account_map) = av.value() else {
                    ctx.error(av, "Expected map entries for accounts");
                    continue;
                };
                if reserved(&entry.key) {
                    ctx.error(av, format!("{} is a Reserved Account", quote(&entry.key)));
                    continue;
                }
                let mut account = Account {
                    name: entry.key.clone(),
                    ..Account::default()
                };
                let mut users = Vec::new();
                let mut nkeys = Vec::new();
                let mut users_at = av.clone();
                for field in av.entries(account_map) {
                    let mv = &field.value;
                    match field.lower.as_str() {
                        "nkey" => {
                            let nkey = match mv.value() {
                                Value::Str(_) => Some(mv.string()?),
                                _ => None,
                            };
                            match nkey {
                                Some(key) if is_valid_public_key(&key, PREFIX_ACCOUNT) => {
                                    account.nkey = Some(key);
                                }
                                _ => ctx.error(
                                    mv,
                                    format!(
                                        "Not a valid public nkey for an account: {}",
                                        go_quote_value(mv.value())
                                    ),
                                ),
                            }
                        }
                        "imports" => {
                            if let Some(imports) = parse_imports(ctx, mv) {
                                account.imports.extend(imports);
                            }
                        }
                        "exports" => {
                            if let Some(exports) = parse_exports(ctx, mv) {
                                account.exports.extend(exports);
                            }
                        }
                        "users" => {
                            users_at = mv.clone();
                            if let Some((n, u)) = parse_users(ctx, mv) {
                                nkeys = n;
                                users = u;
                            }
                        }
                        "default_permissions" => {
                            if let Some(perms) = parse_permissions(ctx, mv) {
                                account.default_permissions = Some(perms);
                            }
                        }
                        key if UNSUPPORTED_ACCOUNT_KEYS.contains(&key) => {
                            ctx.unsupported(&field);
                        }
                        _ => ctx.unknown(&field),
                    }
                }
                if !users.is_empty() || !nkeys.is_empty() {
                    if raw.single_user {
                        ctx.error(&users_at, "Can not have a single user/pass and accounts");
                        raw.accounts.push(account);
                        continue;
                    }
                    if raw.token {
                        ctx.error(&users_at, "Can not have a token and accounts");
                        raw.accounts.push(account);
                        continue;
                    }
                }
                apply_default_permissions(
                    &mut users,
                    &mut nkeys,
                    account.default_permissions.as_ref(),
                );
                for mut nkey in nkeys {
                    if names.contains(&nkey.nkey) {
                        ctx.error(
                            &users_at,
                            format!("Duplicate nkey {} detected", quote(&nkey.nkey)),
                        );
                        continue;
                    }
                    names.push(nkey.nkey.clone());
                    nkey.account = Some(account.name.clone());
                    raw.nkeys.push(nkey);
                }
                for mut user in users {
                    if names.contains(&user.username) {
                        ctx.error(
                            &users_at,
                            format!("Duplicate user {} detected", quote(&user.username)),
                        );
                        continue;
                    }
                    names.push(user.username.clone());
                    user.account = Some(account.name.clone());
                    raw.users.push(user);
                }
                raw.accounts.push(account);
            }
        }
        _ => {}
    }
    if !ctx.errors.is_empty() {
        return Ok(());
    }
    check_imports_and_exports(raw.accounts, ctx, v);
    Ok(())
}

/// `isSubsetMatchTokenized`: every subject matching `subject` also matches `export`.
fn is_subset_match(subject: &str, export: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    let test: Vec<&str> = export.split('.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == ">" {
            return true;
        }
        if t1.is_empty() || *t1 == ">" {
            return false;
        }
        if *t1 == "*" {
            if *t2 != "*" {
                return false;
            }
            continue;
        }
        if *t2 != "*" && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

fn import_authorized(accounts: &[Account], import: &Import, importer: &str) -> bool {
    let Some(target) = accounts.iter().find(|a| a.name == import.account) else {
        return false;
    };
    if !is_valid_subject(&import.subject) {
        return false;
    }
    target.exports.iter().any(|export| {
        export.kind == import.kind
            && (export.subject == import.subject
                || is_subset_match(&import.subject, &export.subject))
            && (export.accounts.is_empty() || export.accounts.iter().any(|a| a == importer))
    })
}

/// The second half of `parseAccounts`: exports name known accounts, imports refer to
/// existing, permitted exports. Errors are reported at the `accounts` token.
fn check_imports_and_exports(accounts: &[Account], ctx: &mut Ctx, v: &V<'_>) {
    let mut cycles = Cycles::default();
    let exists = |name: &str| accounts.iter().any(|a| a.name == name);
    for account in accounts {
        for export in &account.exports {
            let what = match export.kind {
                ExportKind::Stream => "stream",
                ExportKind::Service => "service",
            };
            for name in &export.accounts {
                if !exists(name) {
                    ctx.error(
                        v,
                        format!("{} account not defined for {what} export", quote(name)),
                    );
                }
            }
            if !is_valid_subject(&export.subject) {
                ctx.error(
                    v,
                    format!(
                        "Error adding {what} export {}: subject is not valid",
                        quote(&export.subject)
                    ),
                );
                continue;
            }
            if let Some(problem) = latency_problem(account, export) {
                let latency = export.latency.as_ref().map_or("", |l| l.subject.as_str());
                ctx.error(
                    v,
                    format!(
                        "Error adding service latency sampling for {} on subject {}: {problem}",
                        quote(&export.subject),
                        quote(latency)
                    ),
                );
            }
        }
    }
    for account in accounts {
        for import in &account.imports {
            let what = match import.kind {
                ExportKind::Stream => "stream",
                ExportKind::Service => "service",
            };
            if !exists(&import.account) {
                ctx.error(
                    v,
                    format!(
                        "{} account not defined for {what} import",
                        quote(&import.account)
                    ),
                );
                continue;
            }
            if let Some(prefix) = &import.prefix
                && prefix.split('.').any(|t| t == "*" || t == ">")
            {
                ctx.error(
                        v,
                        format!(
                            "Error adding stream import {}: stream import prefix can not contain wildcard tokens",
                            quote(&import.subject)
                        ),
                    );
                continue;
            }
            if !import_authorized(accounts, import, &account.name) {
                ctx.error(
                    v,
                    format!(
                        "Error adding {what} import {}: {what} import not authorized",
                        quote(&import.subject)
                    ),
                );
                continue;
            }
            if cycles.add(accounts, &account.name, import) {
                ctx.error(
                    v,
                    format!(
                        "Error adding {what} import {}: import forms a cycle",
                        quote(&import.subject)
                    ),
                );
            }
        }
    }
}

/// Why `TrackServiceExportWithSampling` refuses the latency tracking of `export`, if it
/// does: a results subject that is not a valid publish subject or that falls within one of
/// the account's service exports added so far (they are added in order), or responses that
/// are not singletons. (The system account it also needs is checked by the broker.)
fn latency_problem(account: &Account, export: &Export) -> Option<&'static str> {
    let latency = export.latency.as_ref()?;
    let results = latency.subject.as_str();
    let publishable =
        is_valid_subject(results) && !results.split('.').any(|t| t == "*" || t == ">");
    let loops_back = account
        .exports
        .iter()
        .take_while(|e| !std::ptr::eq(*e, export))
        .chain(std::iter::once(export))
        .any(|e| e.kind == ExportKind::Service && is_subset_match(results, &e.subject));
    if !publishable || loops_back {
        Some("invalid publish subject")
    } else if export.response_type != ResponseType::Singleton {
        Some("bad service response type")
    } else {
        None
    }
}

/// `SubjectsCollide`: some subject matches both.
fn subjects_collide(a: &str, b: &str) -> bool {
    let (mut left, mut right) = (a.split('.'), b.split('.'));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(l), Some(r)) => {
                if l == ">" || r == ">" {
                    return true;
                }
                if l != "*" && r != "*" && l != r {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// `MaxAccountCycleSearchDepth`.
const MAX_CYCLE_SEARCH_DEPTH: usize = 1024;

/// One import already added: the exporting account, `to` (streams: the subject in the
/// importer; services: the subject in the exporter) and `from` (services: the local subject).
struct Added {
    exporter: String,
    to: String,
    from: String,
}

/// The imports added so far, per importing account, for the reference's cycle checks
/// (`streamImportFormsCycle`, `serviceImportFormsCycle`), made as each import is added.
#[derive(Default)]
struct Cycles {
    streams: std::collections::HashMap<String, Vec<Added>>,
    services: std::collections::HashMap<String, Vec<Added>>,
}

impl Cycles {
    /// Adds `import` of `importer`; true when it forms a cycle (it is then not added).
    fn add(&mut self, accounts: &[Account], importer: &str, import: &Import) -> bool {
        let mut visited = vec![importer.to_owned()];
        match import.kind {
            ExportKind::Stream => {
                let to = match (&import.prefix, &import.to) {
                    (Some(p), _) => format!("{}.{}", p.trim_end_matches('.'), import.subject),
                    (None, Some(to)) => to.clone(),
                    (None, None) => import.subject.clone(),
                };
                if self.stream_cycle(accounts, &import.account, to.clone(), &mut visited) {
                    return true;
                }
                self.streams
                    .entry(importer.to_owned())
                    .or_default()
                    .push(Added {
                        exporter: import.account.clone(),
                        to,
                        from: import.subject.clone(),
                    });
            }
            ExportKind::Service => {
                let local = import.to.clone().unwrap_or_else(|| import.subject.clone());
                if self.service_cycle(&import.account, local.clone(), &mut visited) {
                    return true;
                }
                self.services
                    .entry(importer.to_owned())
                    .or_default()
                    .push(Added {
                        exporter: import.account.clone(),
                        to: import.subject.clone(),
                        from: local,
                    });
            }
        }
        false
    }

    fn stream_cycle(
        &self,
        accounts: &[Account],
        account: &str,
        mut to: String,
        visited: &mut Vec<String>,
    ) -> bool {
        if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
            return true;
        }
        let exported = accounts.iter().filter(|a| a.name == account).any(|a| {
            a.exports
                .iter()
                .any(|e| e.kind == ExportKind::Stream && is_subset_match(&to, &e.subject))
        });
        if !exported {
            return false;
        }
        for added in self.streams.get(account).map_or(&[][..], |v| &v[..]) {
            if subjects_collide(&to, &added.to) {
                if visited.contains(&added.exporter) {
                    return true;
                }
                visited.push(account.to_owned());
                if is_subset_match(&added.to, &to) {
                    to.clone_from(&added.to);
                }
                if self.stream_cycle(accounts, &added.exporter, to.clone(), visited) {
                    return true;
                }
            }
        }
        false
    }

    fn service_cycle(&self, account: &str, mut from: String, visited: &mut Vec<String>) -> bool {
        if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
            return true;
        }
        for added in self.services.get(account).map_or(&[][..], |v| &v[..]) {
            if subjects_collide(&from, &added.to) {
                if visited.contains(&added.exporter) {
                    return true;
                }
                visited.push(account.to_owned());
                if is_subset_match(&added.from, &from) {
                    from.clone_from(&added.from);
                }
                if self.service_cycle(&added.exporter, from.clone(), visited) {
                    return true;
                }
            }
        }
        false
    }
}

/// `parseAccountExports`.
fn parse_exports(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<Export>> {
    let res = (|| -> Result<Option<Vec<Export>>, Panic> {
        let Value::Array(_) = v.value() else {
            ctx.error(
                v,
                format!("Exports should be an array, got {}", v.go_type()),
            );
            return Ok(None);
        };
        let mut out = Vec::new();
        for item in v.array()? {
            if let Some(export) = parse_export(ctx, &item) {
                out.push(export);
            }
        }
        Ok(Some(out))
    })();
    ctx.recover(res).flatten()
}

/// `parseExportStreamOrService`.
#[expect(clippy::too_many_lines, reason = "one arm per key, as the reference")]
fn parse_export(ctx: &mut Ctx, v: &V<'_>) -> Option<Export> {
    let res = (|| -> Result<Option<Export>, Panic> {
        let Value::Map(map) = v.value() else {
            ctx.error(
                v,
                format!(
                    "Export Items should be a map with type entry, got {}",
                    v.go_type()
                ),
            );
            return Ok(None);
        };
        let mut kind: Option<(ExportKind, String)> = None;
        let mut accounts = Vec::new();
        let mut response_type: Option<(ResponseType, V<'_>)> = None;
        let mut threshold: Option<Duration> = None;
        let mut threshold_seen = false;
        let mut latency: Option<(Latency, V<'_>)> = None;
        let mut token_position = 0u32;
        for entry in v.entries(map) {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "stream" => {
                    if matches!(kind, Some((ExportKind::Service, _))) {
                        ctx.error(
                            mv,
                            format!(
                                "Detected stream {} but already saw a service",
                                quote(go_value(mv.value()))
                            ),
                        );
                        continue;
                    }
                    if let Some((_, at)) = &response_type {
                        ctx.error(at, "Detected response directive on non-service");
                        continue;
                    }
                    if let Some((_, at)) = &latency {
                        ctx.error(at, "Detected latency directive on non-service");
                        continue;
                    }
                    let Value::Str(_) = mv.value() else {
                        ctx.error(
                            mv,
                            format!("Expected stream name to be string, got {}", mv.go_type()),
                        );
                        continue;
                    };
                    kind = Some((ExportKind::Stream, mv.string()?));
                }
                "service" => {
                    if matches!(kind, Some((ExportKind::Stream, _))) {
                        ctx.error(
                            mv,
                            format!(
                                "Detected service {} but already saw a stream",
                                quote(go_value(mv.value()))
                            ),
                        );
                        continue;
                    }
                    let Value::Str(_) = mv.value() else {
                        ctx.error(
                            mv,
                            format!("Expected service name to be string, got {}", mv.go_type()),
                        );
                        continue;
                    };
                    kind = Some((ExportKind::Service, mv.string()?));
                }
                "response" | "response_type" => {
                    if response_type.is_some() {
                        ctx.error(mv, "Duplicate response type definition");
                        continue;
                    }
                    let Value::Str(_) = mv.value() else {
                        ctx.error(
                            mv,
                            format!("Expected response type to be string, got {}", mv.go_type()),
                        );
                        continue;
                    };
                    let text = mv.string()?;
                    let rt = match text.to_lowercase().as_str() {
                        "single" | "singleton" => ResponseType::Singleton,
                        "stream" => ResponseType::Stream,
                        "chunk" | "chunked" => ResponseType::Chunked,
                        _ => {
                            ctx.error(mv, format!("Unknown response type: {}", quote(&text)));
                            continue;
                        }
                    };
                    response_type = Some((rt, mv.clone()));
                    if matches!(kind, Some((ExportKind::Stream, _))) {
                        ctx.error(mv, "Detected response directive on non-service");
                    }
                }
                "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                    if threshold_seen {
                        ctx.error(mv, "Duplicate response threshold detected");
                        continue;
                    }
                    threshold_seen = true;
                    let Value::Str(_) = mv.value() else {
                        ctx.error(
                            mv,
                            format!(
                                "Expected response threshold to be a parseable time duration, got {}",
                                mv.go_type()
                            ),
                        );
                        continue;
                    };
                    let text = mv.string()?;
                    match parse_duration(&text) {
                        Ok(nanos) => {
                            threshold =
                                Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)));
                        }
                        Err(_) => {
                            ctx.error(
                                mv,
                                format!(
                                    "Expected response threshold to be a parseable time duration, got {}",
                                    quote(&text)
                                ),
                            );
                            continue;
                        }
                    }
                    if matches!(kind, Some((ExportKind::Stream, _))) {
                        ctx.error(mv, "Detected response directive on non-service");
                    }
                }
                "accounts" => {
                    for item in mv.array()? {
                        accounts.push(item.string()?);
                    }
                }
                "latency" => {
                    let parsed = parse_latency(mv);
                    match parsed {
                        Err((message, at)) => {
                            ctx.error(&at, message);
                            continue;
                        }
                        Ok(l) => latency = Some((l, mv.clone())),
                    }
                    if matches!(kind, Some((ExportKind::Stream, _))) {
                        ctx.error(mv, "Detected latency directive on non-service");
                    }
                }
                "account_token_position" => {
                    token_position = u32::try_from(mv.int()?).unwrap_or(0);
                }
                _ => ctx.unknown(&entry),
            }
        }
        Ok(kind.map(|(kind, subject)| Export {
            kind,
            subject,
            accounts,
            response_type: response_type.map(|(rt, _)| rt).unwrap_or_default(),
            response_threshold: threshold,
            latency: latency.map(|(l, _)| l),
            account_token_position: token_position,
        }))
    })();
    ctx.recover(res).flatten()
}

/// `parseServiceLatency`: a subject, or `{ sampling, subject }`.
fn parse_latency<'a>(v: &V<'a>) -> Result<Latency, (String, V<'a>)> {
    match v.value() {
        Value::Str(_) => {
            let subject = v
                .string()
                .map_err(|_| ("invalid latency subject".to_owned(), v.clone()))?;
            return Ok(Latency {
                subject,
                sampling: Some(100),
            });
        }
        Value::Map(_) => {}
        _ => {
            return Err((
                format!(
                    "Expected latency entry to be a map/struct or string, got {}",
                    v.go_type()
                ),
                v.clone(),
            ));
        }
    }
    let mut sampling = Some(100u8);
    let mut subject = None;
    for entry in v
        .map()
        .map_err(|_| ("invalid latency".to_owned(), v.clone()))?
    {
        let mv = &entry.value;
        match entry.key.as_str() {
            "sampling" => {
                let sample: i64 = match mv.value() {
                    Value::Int(n) => *n,
                    Value::Str(bytes) => {
                        let text = String::from_utf8_lossy(bytes);
                        if text.trim().eq_ignore_ascii_case("headers") {
                            sampling = None;
                            continue;
                        }
                        let digits = text.strip_suffix('%').unwrap_or(&text);
                        digits.parse::<i64>().map_err(|e| {
                            let why = match e.kind() {
                                std::num::IntErrorKind::PosOverflow
                                | std::num::IntErrorKind::NegOverflow => "value out of range",
                                _ => "invalid syntax",
                            };
                            (
                                format!(
                                    "Failed to parse latency sample: strconv.Atoi: parsing {}: {why}",
                                    quote(digits)
                                ),
                                mv.clone(),
                            )
                        })?
                    }
                    _ => {
                        return Err((
                            format!(
                                "Expected latency sample to be a string or map/struct, got {}",
                                mv.go_type()
                            ),
                            mv.clone(),
                        ));
                    }
                };
                if !(1..=100).contains(&sample) {
                    return Err((
                        "bad sampling percentage, should be 1-100".to_owned(),
                        mv.clone(),
                    ));
                }
                sampling = u8::try_from(sample).ok();
            }
            "subject" => {
                let Value::Str(_) = mv.value() else {
                    // The reference prints the type of its zero-value string here.
                    return Err((
                        "Expected latency subject to be a string, got string".to_owned(),
                        mv.clone(),
                    ));
                };
                subject = Some(
                    mv.string()
                        .map_err(|_| ("invalid latency subject".to_owned(), mv.clone()))?,
                );
            }
            _ => {}
        }
    }
    let subject = subject.ok_or_else(|| {
        (
            "Latency subject required, but missing".to_owned(),
            v.clone(),
        )
    })?;
    Ok(Latency { subject, sampling })
}

/// `parseAccountImports`.
fn parse_imports(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<Import>> {
    let res = (|| -> Result<Option<Vec<Import>>, Panic> {
        let Value::Array(_) = v.value() else {
            ctx.error(
                v,
                format!("Imports should be an array, got {}", v.go_type()),
            );
            return Ok(None);
        };
        let mut out: Vec<Import> = Vec::new();
        for item in v.array()? {
            let Some(import) = parse_import(ctx, &item) else {
                continue;
            };
            if import.kind == ExportKind::Service
                && let Some(dup) = out
                    .iter()
                    .find(|i| i.kind == ExportKind::Service && i.to == import.to)
            {
                ctx.error(
                        &item,
                        format!(
                            "Duplicate service import subject {}, previously used in import for account {}, subject {}",
                            quote(import.to.as_deref().unwrap_or_default()),
                            quote(&dup.account),
                            quote(&dup.subject)
                        ),
                    );
                continue;
            }
            out.push(import);
        }
        Ok(Some(out))
    })();
    ctx.recover(res).flatten()
}

/// `parseAccount`: `{ account, subject }` of an import.
fn parse_import_source(ctx: &mut Ctx, v: &V<'_>) -> Result<(String, String), Panic> {
    let mut account = String::new();
    let mut subject = String::new();
    for entry in v.map()? {
        match entry.lower.as_str() {
            "account" => account = entry.value.string()?,
            "subject" => subject = entry.value.string()?,
            _ => ctx.unknown(&entry),
        }
    }
    Ok((account, subject))
}

/// `parseImportStreamOrService`.
fn parse_import(ctx: &mut Ctx, v: &V<'_>) -> Option<Import> {
    let res = (|| -> Result<Option<Import>, Panic> {
        let Value::Map(map) = v.value() else {
            ctx.error(
                v,
                format!(
                    "Import Items should be a map with type entry, got {}",
                    v.go_type()
                ),
            );
            return Ok(None);
        };
        let mut current: Option<Import> = None;
        let mut prefix: Option<String> = None;
        let mut to: Option<String> = None;
        let mut share = false;
        for entry in v.entries(map) {
            let mv = &entry.value;
            match entry.lower.as_str() {
                kind_key @ ("stream" | "service") => {
                    let kind = if kind_key == "stream" {
                        ExportKind::Stream
                    } else {
                        ExportKind::Service
                    };
                    if current.as_ref().is_some_and(|c| c.kind != kind) {
                        let message = if kind == ExportKind::Stream {
                            "Detected stream but already saw a service"
                        } else {
                            "Detected service but already saw a stream"
                        };
                        ctx.error(mv, message);
                        continue;
                    }
                    let Value::Map(_) = mv.value() else {
                        let what = if kind == ExportKind::Stream {
                            "Stream"
                        } else {
                            "Service"
                        };
                        ctx.error(
                            mv,
                            format!(
                                "{what} entry should be an account map, got {}",
                                mv.go_type()
                            ),
                        );
                        continue;
                    };
                    let sub = parse_import_source(ctx, mv);
                    let Some((account, subject)) = ctx.recover(sub) else {
                        continue;
                    };
                    if account.is_empty() || subject.is_empty() {
                        ctx.error(mv, "Expect an account name and a subject");
                        continue;
                    }
                    current = Some(Import {
                        kind,
                        to: if kind == ExportKind::Service {
                            Some(to.clone().unwrap_or_else(|| subject.clone()))
                        } else {
                            to.clone()
                        },
                        prefix: if kind == ExportKind::Stream {
                            prefix.clone()
                        } else {
                            None
                        },
                        share: kind == ExportKind::Service && share,
                        account,
                        subject,
                    });
                }
                "prefix" => {
                    let value = mv.string()?;
                    prefix = (!value.is_empty()).then_some(value);
                    if let Some(c) = current.as_mut().filter(|c| c.kind == ExportKind::Stream) {
                        c.prefix.clone_from(&prefix);
                    }
                }
                "to" => {
                    let value = mv.string()?;
                    to = (!value.is_empty()).then_some(value);
                    if let Some(c) = current.as_mut() {
                        c.to.clone_from(&to);
                        if c.kind == ExportKind::Stream && c.prefix.is_some() {
                            ctx.error(
                                mv,
                                "Stream import can not have a 'prefix' and a 'to' property",
                            );
                            continue;
                        }
                    }
                }
                "share" => {
                    share = mv.bool()?;
                    if let Some(c) = current.as_mut().filter(|c| c.kind == ExportKind::Service) {
                        c.share = share;
                    }
                }
                _ => ctx.unknown(&entry),
            }
        }
        Ok(current)
    })();
    ctx.recover(res).flatten()
}
