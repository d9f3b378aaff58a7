//! Operator mode's I/O: reading operator JWTs (a file name or the JWT inline), the
//! `resolver_preload` accounts, and the full resolver's directory of account JWTs, with
//! nats-server's texts and positions for what is wrong (`server/opts.go` `operator`,
//! `trusted`, `resolver_preload`; `server/jwt.go` `readOperatorJWT`, `validateTrustedOperators`;
//! `server/dirstore.go` for the directory layout `<dir>/<account public key>.jwt`).
//!
//! The checks themselves are the broker's (`broker::auth::jwt`, `broker::auth::operator`);
//! this module only reads files and puts positions on the errors.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use broker::auth::jwt;
use broker::auth::operator::{OperatorConfig, TimeZones, ZoneSource};
use natsconf::Loader as _;
use natsconf::options::{Options, Resolver};
use natsconf::value::Pos;

/// The most JWTs a full resolver keeps for its configured `limit`: a limit of 0 or less is
/// unlimited, as `server/dirstore.go` `NewExpiringDirJWTStore` makes it.
pub(crate) fn dir_limit(limit: i64) -> usize {
    usize::try_from(limit)
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX)
}

/// The wall clock's Unix seconds.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn at(pos: Option<&Pos>, message: &str) -> String {
    match pos {
        Some(p) => format!("{}:{}:{}: {message}", p.file, p.line, p.pos),
        None => message.to_owned(),
    }
}

/// The `times_location` zones of user JWTs from the system's time zone database
/// (`/usr/share/zoneinfo`, or `TZDIR`), as Go's `time.LoadLocation` reads it; an empty name
/// (or `Local`) is the server's local zone, Go's `time.Local` (`TZ`, else `/etc/localtime`,
/// else UTC). A wall-clock time that a daylight-saving change skips resolves to the instant
/// after the change, and one it repeats to the first of its two instants (jiff's
/// "compatible" disambiguation).
struct SystemZones;

impl SystemZones {
    fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
        if name.is_empty() || name == "Local" {
            Some(jiff::tz::TimeZone::system())
        } else {
            jiff::tz::TimeZone::get(name).ok()
        }
    }
}

impl TimeZones for SystemZones {
    fn local_seconds(&self, zone: &str, unix: i64) -> Option<i64> {
        let tz = Self::zone(zone)?;
        let at = jiff::Timestamp::from_second(unix).ok()?;
        Some(unix + i64::from(tz.to_offset(at).seconds()))
    }

    fn unix_seconds(&self, zone: &str, local: i64) -> Option<i64> {
        let tz = Self::zone(zone)?;
        let wall = jiff::tz::Offset::UTC.to_datetime(jiff::Timestamp::from_second(local).ok()?);
        let at = tz.to_ambiguous_timestamp(wall).compatible().ok()?;
        Some(at.as_second())
    }
}

/// The one [`SystemZones`] every configuration shares (so reloads compare equal).
fn system_zones() -> ZoneSource {
    static ZONES: OnceLock<Arc<dyn TimeZones>> = OnceLock::new();
    ZoneSource(Some(ZONES.get_or_init(|| Arc::new(SystemZones)).clone()))
}

/// `readOperatorJWT`: the file's contents, else the value itself when it looks like a JWT;
/// a decorated (creds-style) file gives its first JWT block.
fn read_operator(value: &str) -> Result<String, String> {
    let contents = match natsconf::FsLoader::new().read(value.as_bytes()) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "invalid UTF-8".to_owned())?,
        Err(e) if !value.starts_with("eyJ") => return Err(String::from_utf8_lossy(&e).into_owned()),
        Err(_) => value.to_owned(),
    };
    let text = decorated_jwt(&contents)
        .unwrap_or_else(|| contents.trim())
        .to_owned();
    jwt::decode_operator(&text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// `checkResolvePreloads`: the validation issues of blocked preloaded accounts, checked
/// against the wall clock now; logged as warnings at start-up and again on every reload
/// with the MEMORY resolver, as nats-server does (`server/reload.go` `reloadAuthorization`).
pub(crate) fn preload_issues(o: &Options) -> Vec<String> {
    let now_unix = now_unix();
    o.operator
        .preload
        .iter()
        .flat_map(|entry| {
            broker::auth::operator::preload_report(&entry.account, &entry.jwt, now_unix)
        })
        .collect()
}

/// The first `-----BEGIN ... JWT-----` block of a decorated file (`jwt.ParseDecoratedJWT`).
fn decorated_jwt(contents: &str) -> Option<&str> {
    let mut lines = contents.lines().map(str::trim);
    lines.find(|l| l.starts_with("-----BEGIN") && l.ends_with("-----"))?;
    lines
        .find(|l| !l.is_empty())
        .filter(|l| !l.starts_with("---"))
}

/// The account JWTs of a full resolver's directory: every `<key>.jwt` file in name order, at
/// most `limit` of them unexpired (expired ones do not count, as in the reference's store). The directory is created when missing, as the reference does. A file that
/// is unreadable, too large or not an account JWT for its name is skipped with a warning.
fn read_dir(dir: &str, limit: usize, warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
    let path = Path::new(dir);
    if !path.exists() {
        std::fs::create_dir_all(path).map_err(|e| format!("creating resolver dir {dir}: {e}"))?;
    }
    let mut names: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("reading resolver dir {dir}: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jwt"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    let mut unexpired = 0;
    let now = now_unix();
    for file in names {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let size = std::fs::metadata(&file).map_or(u64::MAX, |m| m.len());
        if size > jwt::MAX_JWT_BYTES as u64 {
            warnings.push(format!(
                "{}: account JWT too large, ignored",
                file.display()
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                warnings.push(format!("{}: {e}, ignored", file.display()));
                continue;
            }
        };
        match jwt::decode_account(&text) {
            Ok(c) if c.data.sub == stem => {
                let expired = c.data.exp > 0 && c.data.exp < now;
                if !expired {
                    if unexpired >= limit {
                        warnings.push(format!(
                            "resolver dir {dir}: more than {limit} account JWTs, the rest is ignored"
                        ));
                        break;
                    }
                    unexpired += 1;
                }
                out.push(text);
            }
            Ok(_) => warnings.push(format!(
                "{}: account JWT of another account, ignored",
                file.display()
            )),
            Err(e) => warnings.push(format!(
                "{}: invalid account JWT ({e}), ignored",
                file.display()
            )),
        }
    }
    Ok(out)
}

/// The broker's operator settings from the options, or `None` outside operator mode.
pub(crate) fn operator_config(
    o: &Options,
    warnings: &mut Vec<String>,
) -> Result<Option<OperatorConfig>, String> {
    let op = &o.operator;
    if !op.enabled() {
        return Ok(None);
    }
    let mut cfg = OperatorConfig {
        time_zones: system_zones(),
        ..OperatorConfig::default()
    };
    let mut first_system = None;
    for value in &op.operators {
        let text = read_operator(value).map_err(|e| {
            at(
                op.operators_pos.as_ref(),
                &format!("error parsing operator JWT: {e}"),
            )
        })?;
        if first_system.is_none() && cfg.operators.is_empty() {
            first_system = jwt::decode_operator(&text)
                .ok()
                .map(|c| c.nats.system_account)
                .filter(|s| !s.is_empty());
        }
        cfg.operators.push(text);
    }
    for key in &op.trusted_keys {
        if !jwt::is_public_key(key, jwt::KeyPairType::Operator) {
            return Err(at(
                op.trusted_pos.as_ref(),
                &format!(
                    "trust key {} required to be a valid public operator nkey",
                    broker::auth::go_quote(key.as_bytes())
                ),
            ));
        }
    }
    cfg.trusted_keys.clone_from(&op.trusted_keys);
    for entry in &op.preload {
        if jwt::decode_account(&entry.jwt).is_err() {
            return Err(at(entry.pos.as_ref(), "invalid account JWT"));
        }
        cfg.accounts.push(entry.jwt.clone());
    }
    warnings.extend(preload_issues(o));
    // `validateTrustedOperators`: the configured system account must be the operator's.
    if let (Some(configured), Some(claimed)) = (&o.system_account, &first_system)
        && configured != claimed
    {
        return Err("system_account in config and operator JWT must be identical".to_owned());
    }
    cfg.system_account = o.system_account.clone().or(first_system);
    if let Some(Resolver::Full { dir, limit, .. }) = &op.resolver {
        if cfg.system_account.is_none() {
            return Err(
                "using nats based account resolver - the system account needs to be specified in configuration or the operator jwt"
                    .to_owned(),
            );
        }
        cfg.accounts
            .extend(read_dir(dir, dir_limit(*limit), warnings)?);
    }
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account JWT for the account made from `byte`, expiring at `exp` (0: never).
    fn account(byte: u8, exp: i64) -> (String, String) {
        let op = jwt::KeyPair::new_from_raw(jwt::KeyPairType::Operator, [1; 32]).unwrap();
        let acc = jwt::KeyPair::new_from_raw(jwt::KeyPairType::Account, [byte; 32]).unwrap();
        let claims = format!(
            r#"{{"jti":"J{byte}","iat":1,"exp":{exp},"iss":"{}","sub":"{}","nats":{{"type":"account","version":2}}}}"#,
            op.public_key(),
            acc.public_key()
        );
        (acc.public_key(), jwt::encode(&claims, &op).unwrap())
    }

    /// The directory's limit counts the unexpired JWTs: expired ones are read besides.
    #[test]
    fn the_dir_limit_counts_unexpired_jwts() {
        let dir = std::env::temp_dir().join(format!("natsws-read-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = [account(2, 0), account(3, 1000), account(4, 0)];
        for (key, token) in &files {
            std::fs::write(dir.join(format!("{key}.jwt")), token).unwrap();
        }
        let mut warnings = Vec::new();
        let read = read_dir(dir.to_str().unwrap(), 2, &mut warnings).unwrap();
        assert_eq!(read.len(), 3, "{warnings:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
        // A third unexpired JWT is over the limit.
        let (key, token) = account(5, 0);
        std::fs::write(dir.join(format!("{key}.jwt")), token).unwrap();
        let read = read_dir(dir.to_str().unwrap(), 2, &mut warnings).unwrap();
        assert_eq!(read.iter().filter(|t| **t != files[1].1).count(), 2);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dir_limit_of_zero_or_less_is_unlimited() {
        assert_eq!(dir_limit(0), usize::MAX);
        assert_eq!(dir_limit(-1), usize::MAX);
        assert_eq!(dir_limit(i64::MIN), usize::MAX);
        assert_eq!(dir_limit(1), 1);
        assert_eq!(dir_limit(1000), 1000);
    }

    #[test]
    fn system_zones_follow_the_zone_database() {
        let z = SystemZones;
        // 2026-07-01 12:00:00 UTC: 14:00 in Paris (CEST), 08:00 in New York (EDT).
        let noon = 1_782_907_200;
        if SystemZones::zone("Europe/Paris").is_none() {
            eprintln!("no time zone database on this machine; skipped");
            return;
        }
        assert_eq!(z.local_seconds("Europe/Paris", noon), Some(noon + 2 * 3600));
        assert_eq!(
            z.local_seconds("America/New_York", noon),
            Some(noon - 4 * 3600)
        );
        assert_eq!(z.unix_seconds("Europe/Paris", noon + 2 * 3600), Some(noon));
        // In winter Paris is UTC+1.
        let winter = noon - 182 * 86_400;
        assert_eq!(z.local_seconds("Europe/Paris", winter), Some(winter + 3600));
        assert_eq!(z.local_seconds("UTC", noon), Some(noon));
        assert_eq!(z.local_seconds("Mars/Olympus", noon), None);
        assert_eq!(z.unix_seconds("Mars/Olympus", noon), None);
        // 2026-03-29 02:30 does not exist in Paris (clocks jump from 02:00 to 03:00): the
        // instant after the change, 01:30 UTC.
        let gap_local = 1_774_742_400 + 3600 * 2 + 1800; // 2026-03-29 00:00 UTC + 02:30
        assert_eq!(
            z.unix_seconds("Europe/Paris", gap_local),
            Some(1_774_742_400 + 3600 + 1800)
        );
    }

    #[test]
    fn decorated_files_give_their_first_jwt() {
        let text =
            "-----BEGIN NATS OPERATOR JWT-----\neyJ0.a.b\n------END NATS OPERATOR JWT------\n";
        assert_eq!(decorated_jwt(text), Some("eyJ0.a.b"));
        assert_eq!(decorated_jwt("eyJ0.a.b"), None);
    }

    #[test]
    fn a_missing_file_that_is_not_a_jwt_names_the_file() {
        assert_eq!(
            read_operator("/nonexistent/op.jwt"),
            Err("open /nonexistent/op.jwt: no such file or directory".to_owned())
        );
    }
}
