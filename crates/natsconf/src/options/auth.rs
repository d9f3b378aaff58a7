//! `authorization { … }`: single user, token, users and nkeys with permissions
//! (`server/opts.go` `parseAuthorization`, `parseUsers`, `parseUserPermissions`).

use std::time::Duration;

use gotext::quote;

use crate::value::Value;

use super::diag::{Ctx, Panic, V};
use super::gostd::{parse_duration, quote_list};

/// The connection type names `allowed_connection_types` accepts (`server/auth.go`
/// `validateAllowedConnectionTypes`).
pub const CONNECTION_TYPES: [&str; 6] = [
    "STANDARD",
    "WEBSOCKET",
    "LEAFNODE",
    "LEAFNODE_WS",
    "MQTT",
    "MQTT_WS",
];

/// `allow_responses` defaults: one response within two minutes.
const DEFAULT_RESPONSE_MAX_MSGS: i64 = 1;
const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(120);

/// The top-level `authorization` block, plus the users and nkeys of `accounts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    /// `user` / `username` (single-user auth).
    pub user: Option<String>,
    /// `pass` / `password` (plain text or a bcrypt hash `$2a$…`).
    pub password: Option<String>,
    /// `token` (plain text or bcrypt).
    pub token: Option<String>,
    /// `timeout` as configured (int or float seconds); see [`super::Options::auth_timeout`]
    /// for the effective value.
    pub timeout: Option<Duration>,
    /// Users from `users` and from every account, in file order.
    pub users: Vec<User>,
    /// Nkey users from `users` and from every account, in file order.
    pub nkeys: Vec<NkeyUser>,
    /// `default_permissions` / `default_permission` / `permissions` (already applied to the
    /// users without their own).
    pub default_permissions: Option<Permissions>,
}

/// One user with a name and password.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// `user` / `username`.
    pub username: String,
    /// `pass` / `password`; empty when not given.
    pub password: String,
    /// `permissions` (or the block's default permissions).
    pub permissions: Option<Permissions>,
    /// `allowed_connection_types` / `connection_types` / `clients`, upper-cased, without
    /// duplicates; empty means all.
    pub allowed_connection_types: Vec<String>,
    /// The account the user belongs to (`None` = the global account `$G`).
    pub account: Option<String>,
}

/// One nkey user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NkeyUser {
    /// The public user nkey (`U…`, validated).
    pub nkey: String,
    /// `permissions` (or the block's default permissions).
    pub permissions: Option<Permissions>,
    /// As for [`User::allowed_connection_types`].
    pub allowed_connection_types: Vec<String>,
    /// The account the user belongs to (`None` = `$G`).
    pub account: Option<String>,
}

/// A `permissions` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// `publish` / `pub` / `import`.
    pub publish: Option<SubjectPermission>,
    /// `subscribe` / `sub` / `export`; entries may be `"<subject> <queue>"`.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses` / `publish_allow_responses`.
    pub allow_responses: Option<ResponsePermission>,
}

/// `allow` and `deny` subject lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// `allow`: `None` when absent or empty in the file (no restriction). `Some(vec![])` only
    /// arises from `allow_responses`, which turns a missing publish allow list into "allow
    /// nothing but responses".
    pub allow: Option<Vec<String>>,
    /// `deny`.
    pub deny: Vec<String>,
}

/// `allow_responses`, with the reference's defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    /// `max` / `max_msgs` / `max_messages` / `max_responses`: default 1, negative = unlimited.
    pub max_msgs: i64,
    /// `expires` / `expiration` / `ttl`: default 2 minutes; `None` for a negative duration
    /// (never expires).
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        Self {
            max_msgs: DEFAULT_RESPONSE_MAX_MSGS,
            expires: Some(DEFAULT_RESPONSE_EXPIRES),
        }
    }
}

/// What one `authorization` block contained.
#[derive(Debug, Default)]
pub(crate) struct AuthBlock {
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) timeout: f64,
    pub(crate) users: Vec<User>,
    pub(crate) nkeys: Vec<NkeyUser>,
    /// `users: […]` was present (even empty).
    pub(crate) users_present: bool,
    pub(crate) default_permissions: Option<Permissions>,
}

/// `%v` / `%+v` of a config value, as far as the reference's messages print them.
pub(crate) fn go_value(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::Float(f) => go_float(*f),
        Value::Bool(b) => b.to_string(),
        Value::Str(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::Date(secs) => secs.to_string(),
        Value::Array(_) => "[…]".to_owned(),
        Value::Map(_) => "map[…]".to_owned(),
    }
}

/// `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, i.e. the shortest digits, in
/// exponent form when the exponent is below -4 or at least 6.
pub(crate) fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return sci;
    };
    if (-4..6).contains(&exponent) {
        return format!("{f}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// `timeout` of an authorization block: int or float seconds; any other kind is 1 second.
pub(crate) fn auth_timeout(v: &V<'_>) -> f64 {
    match v.value() {
        #[expect(clippy::cast_precision_loss, reason = "Go's float64(int64)")]
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        _ => 1.0,
    }
}

/// `parseAuthorization`. `None` when the block panicked before finishing.
pub(crate) fn parse_authorization(ctx: &mut Ctx, v: &V<'_>) -> Option<AuthBlock> {
    let mut auth = AuthBlock::default();
    let res = (|| -> Result<(), Panic> {
        for entry in v.map()? {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "user" | "username" => auth.user = super::non_empty(mv.string()?),
                "pass" | "password" => auth.password = super::non_empty(mv.string()?),
                "token" => auth.token = super::non_empty(mv.string()?),
                "timeout" => auth.timeout = auth_timeout(mv),
                "users" => {
                    if let Some((nkeys, users)) = parse_users(ctx, mv) {
                        auth.users = users;
                        auth.nkeys = nkeys;
                        auth.users_present = true;
                    }
                }
                "default_permission" | "default_permissions" | "permissions" => {
                    if let Some(perms) = parse_permissions(ctx, mv) {
                        auth.default_permissions = Some(perms);
                    }
                }
                _ => ctx.unknown(&entry),
            }
        }
        Ok(())
    })();
    ctx.recover(res);
    apply_default_permissions(
        &mut auth.users,
        &mut auth.nkeys,
        auth.default_permissions.as_ref(),
    );
    Some(auth)
}

pub(crate) fn apply_default_permissions(
    users: &mut [User],
    nkeys: &mut [NkeyUser],
    default: Option<&Permissions>,
) {
    let Some(default) = default else { return };
    for user in users.iter_mut().filter(|u| u.permissions.is_none()) {
        user.permissions = Some(default.clone());
    }
    for nkey in nkeys.iter_mut().filter(|u| u.permissions.is_none()) {
        nkey.permissions = Some(default.clone());
    }
}

/// Nkey users and users of one `users` list.
pub(crate) type UserLists = (Vec<NkeyUser>, Vec<User>);

/// `parseUsers`: `None` when the list was rejected as a whole.
pub(crate) fn parse_users(ctx: &mut Ctx, v: &V<'_>) -> Option<UserLists> {
    let res = (|| -> Result<Option<UserLists>, Panic> {
        let Value::Array(_) = v.value() else {
            ctx.error(
                v,
                format!(
                    "Expected users field to be an array, got {}",
                    go_value(v.value())
                ),
            );
            return Ok(None);
        };
        let mut nkeys = Vec::new();
        let mut users = Vec::new();
        for item in v.array()? {
            let Value::Map(map) = item.value() else {
                ctx.error(
                    &item,
                    format!(
                        "Expected user entry to be a map/struct, got {}",
                        go_value(item.value())
                    ),
                );
                continue;
            };
            let mut user = User::default();
            let mut nkey = NkeyUser::default();
            let mut perms = None;
            let mut last = item.clone();
            for entry in item.entries(map) {
                let mv = &entry.value;
                last = mv.clone();
                match entry.lower.as_str() {
                    "nkey" => nkey.nkey = mv.string()?,
                    "user" | "username" => user.username = mv.string()?,
                    "pass" | "password" => user.password = mv.string()?,
                    "permission" | "permissions" | "authorization" => {
                        perms = parse_permissions(ctx, mv);
                    }
                    "allowed_connection_types" | "connection_types" | "clients" => {
                        let types = parse_connection_types(ctx, mv)?;
                        nkey.allowed_connection_types.clone_from(&types);
                        user.allowed_connection_types = types;
                    }
                    _ => ctx.unknown(&entry),
                }
            }
            if perms.is_some() {
                if nkey.nkey.is_empty() {
                    user.permissions = perms;
                } else {
                    nkey.permissions = perms;
                }
            }
            if nkey.nkey.is_empty() && user.username.is_empty() {
                ctx.error(&last, "User entry requires a user");
                return Ok(None);
            } else if !nkey.nkey.is_empty() {
                if !is_valid_public_key(&nkey.nkey, PREFIX_USER) {
                    ctx.error(&last, "Not a valid public nkey for a user");
                    return Ok(None);
                }
                if !user.username.is_empty() || !user.password.is_empty() {
                    ctx.error(&last, "Nkey users do not take usernames or passwords");
                    return Ok(None);
                }
                nkeys.push(nkey);
            } else {
                users.push(user);
            }
        }
        Ok(Some((nkeys, users)))
    })();
    ctx.recover(res).flatten()
}

/// `parseStringArray`: a string or an array of strings. `None` after an error (already
/// reported).
pub(crate) fn parse_string_array(
    ctx: &mut Ctx,
    field: &str,
    v: &V<'_>,
) -> Result<Option<Vec<String>>, Panic> {
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
                            "error parsing {field}: unsupported type in array {}",
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
                format!("error parsing {field}: unsupported type {}", v.go_type()),
            );
            Ok(None)
        }
    }
}

/// `parseAllowedConnectionTypes`.
fn parse_connection_types(ctx: &mut Ctx, v: &V<'_>) -> Result<Vec<String>, Panic> {
    let Some(names) = parse_string_array(ctx, "allowed connection types", v)? else {
        return Ok(Vec::new());
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        let upper = name.to_uppercase();
        if CONNECTION_TYPES.contains(&upper.as_str()) {
            if !known.contains(&upper) {
                known.push(upper);
            }
        } else {
            unknown.push(upper);
        }
    }
    if !unknown.is_empty() {
        ctx.error(
            v,
            format!("invalid connection types {}", quote_list(&unknown)),
        );
    }
    Ok(known)
}

/// `parseUserPermissions`.
pub(crate) fn parse_permissions(ctx: &mut Ctx, v: &V<'_>) -> Option<Permissions> {
    let res = (|| -> Result<Option<Permissions>, Panic> {
        let Value::Map(map) = v.value() else {
            ctx.error(
                v,
                format!(
                    "Expected permissions to be a map/struct, got {}",
                    go_value(v.value())
                ),
            );
            return Ok(None);
        };
        let mut perms = Permissions::default();
        for entry in v.entries(map) {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "pub" | "publish" | "import" => match parse_variable_permissions(ctx, mv) {
                    Ok(p) => perms.publish = p,
                    Err(()) => continue,
                },
                "sub" | "subscribe" | "export" => match parse_variable_permissions(ctx, mv) {
                    Ok(p) => perms.subscribe = p,
                    Err(()) => continue,
                },
                "publish_allow_responses" | "allow_responses" => {
                    perms.allow_responses = match mv.value() {
                        Value::Bool(true) => Some(ResponsePermission::default()),
                        Value::Bool(false) => None,
                        _ => parse_allow_responses(ctx, mv),
                    };
                    if perms.allow_responses.is_some() {
                        let publish = perms.publish.get_or_insert_with(Default::default);
                        if publish.allow.is_none() {
                            publish.allow = Some(Vec::new());
                        }
                    }
                }
                _ => {
                    if !mv.used_as_variable() {
                        ctx.error(
                            mv,
                            format!("Unknown field {} parsing permissions", quote(&entry.key)),
                        );
                    }
                }
            }
        }
        Ok(Some(perms))
    })();
    ctx.recover(res).flatten()
}

/// `parseVariablePermissions`: `{allow, deny}` or a subject list. `Err` after an error.
fn parse_variable_permissions(ctx: &mut Ctx, v: &V<'_>) -> Result<Option<SubjectPermission>, ()> {
    if let Value::Map(map) = v.value() {
        if map.is_empty() {
            return Ok(None);
        }
        let mut perm = SubjectPermission::default();
        for entry in v.entries(map) {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "allow" => {
                    if let Some(subjects) = parse_perm_subjects(ctx, mv) {
                        perm.allow = (!subjects.is_empty()).then_some(subjects);
                    }
                }
                "deny" => {
                    if let Some(subjects) = parse_perm_subjects(ctx, mv) {
                        perm.deny = subjects;
                    }
                }
                _ => {
                    if !mv.used_as_variable() {
                        ctx.error(
                            mv,
                            format!(
                                "Unknown field name {} parsing subject permissions, only 'allow' or 'deny' are permitted",
                                quote(&entry.key)
                            ),
                        );
                    }
                }
            }
        }
        return Ok(Some(perm));
    }
    // The reference hands the bare value (not its token) to `parsePermSubjects` here, so
    // errors about the value as a whole carry no position.
    let bare = V {
        node: v.node,
        pos: None,
        path: v.path.clone(),
    };
    match parse_perm_subjects(ctx, &bare) {
        Some(subjects) => Ok(Some(SubjectPermission {
            allow: (!subjects.is_empty()).then_some(subjects),
            deny: Vec::new(),
        })),
        None => Err(()),
    }
}

/// `parsePermSubjects`: a subject or an array of subjects, each validated. `None` after an
/// error (reported here).
pub(crate) fn parse_perm_subjects(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<String>> {
    let res = (|| -> Result<Option<Vec<String>>, Panic> {
        let subjects = match v.value() {
            Value::Str(_) => vec![v.string()?],
            Value::Array(_) => {
                let mut out = Vec::new();
                for item in v.array()? {
                    if let Value::Str(_) = item.value() {
                        out.push(item.string()?);
                    } else {
                        ctx.error(
                            &item,
                            "Subject in permissions array cannot be cast to string",
                        );
                        return Ok(None);
                    }
                }
                out
            }
            _ => {
                ctx.error(
                    v,
                    format!(
                        "Expected subject permissions to be a subject, or array of subjects, got {}",
                        v.go_type()
                    ),
                );
                return Ok(None);
            }
        };
        if let Err(message) = check_perm_subjects(&subjects) {
            ctx.error(v, message);
            return Ok(None);
        }
        Ok(Some(subjects))
    })();
    ctx.recover(res).flatten()
}

/// `IsValidSubject` (without the rune check).
pub(crate) fn is_valid_subject(subject: &str) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut full_wildcard_seen = false;
    for token in subject.split('.') {
        if token.is_empty() || full_wildcard_seen {
            return false;
        }
        if token.len() > 1 {
            if token.contains(['\t', '\n', '\u{c}', '\r', ' ']) {
                return false;
            }
            continue;
        }
        match token {
            ">" => full_wildcard_seen = true,
            " " | "\t" | "\n" | "\r" | "\u{c}" => return false,
            _ => {}
        }
    }
    true
}

/// `checkPermSubjectArray`: plain subjects, or `"<subject> <queue>"`.
fn check_perm_subjects(subjects: &[String]) -> Result<(), String> {
    for subject in subjects {
        if is_valid_subject(subject) {
            continue;
        }
        let fields: Vec<&str> = subject.split_whitespace().collect();
        match fields.as_slice() {
            [first, _] if !is_valid_subject(first) => {
                return Err(format!("subject {} is not a valid subject", quote(first)));
            }
            [_, _] => {}
            _ => return Err(format!("subject {} is not a valid subject", quote(subject))),
        }
    }
    Ok(())
}

/// `parseAllowResponses` (the map form).
fn parse_allow_responses(ctx: &mut Ctx, v: &V<'_>) -> Option<ResponsePermission> {
    let res = (|| -> Result<Option<ResponsePermission>, Panic> {
        let Value::Map(map) = v.value() else {
            ctx.error(
                v,
                "error parsing response permissions, expected a boolean or a map",
            );
            return Ok(None);
        };
        let mut rp = ResponsePermission::default();
        for entry in v.entries(map) {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "max" | "max_msgs" | "max_messages" | "max_responses" => {
                    let max = mv.int()?;
                    if max != 0 {
                        rp.max_msgs = max;
                    }
                }
                "expires" | "expiration" | "ttl" => {
                    let Value::Str(_) = mv.value() else {
                        ctx.error(mv, "error parsing expires, not a duration string");
                        return Ok(None);
                    };
                    match parse_duration(&mv.string()?) {
                        Err(err) => {
                            ctx.error(mv, format!("error parsing expires: {err}"));
                            return Ok(None);
                        }
                        Ok(0) => {}
                        Ok(nanos) => {
                            rp.expires = u64::try_from(nanos).ok().map(Duration::from_nanos);
                        }
                    }
                }
                _ => {
                    if !mv.used_as_variable() {
                        ctx.error(
                            mv,
                            format!("Unknown field {} parsing permissions", quote(&entry.key)),
                        );
                    }
                }
            }
        }
        Ok(Some(rp))
    })();
    ctx.recover(res).flatten()
}

/// nkey prefix bytes (`nkeys.PrefixByte*`).
pub(crate) const PREFIX_USER: u8 = 20 << 3;
pub(crate) const PREFIX_ACCOUNT: u8 = 0;

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// `nkeys.IsValidPublic{User,Account}Key`.
pub(crate) fn is_valid_public_key(key: &str, prefix: u8) -> bool {
    let Some(raw) = base32_decode(key) else {
        return false;
    };
    if raw.len() != 35 {
        return false;
    }
    let Some((body, checksum)) = raw.split_last_chunk::<2>() else {
        return false;
    };
    if crc16(body) != u16::from_le_bytes(*checksum) {
        return false;
    }
    body.first().is_some_and(|&b| b & 0xf8 == prefix)
}

/// The names of the users and the nkeys of the nkey users defined so far.
pub(crate) fn user_names(users: &[User], nkeys: &[NkeyUser]) -> Vec<String> {
    users
        .iter()
        .map(|u| u.username.clone())
        .chain(nkeys.iter().map(|u| u.nkey.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        for (f, want) in [
            (2.5, "2.5"),
            (100.0, "100"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e20, "1e+20"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (-1.5e300, "-1.5e+300"),
        ] {
            assert_eq!(go_float(f), want);
        }
    }

    #[test]
    fn public_nkeys() {
        let user = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
        assert!(is_valid_public_key(user, PREFIX_USER));
        assert!(!is_valid_public_key(user, PREFIX_ACCOUNT));
        let mut corrupted = user.to_owned();
        corrupted.replace_range(10..11, "A");
        assert!(!is_valid_public_key(&corrupted, PREFIX_USER));
        assert!(!is_valid_public_key("U", PREFIX_USER));
        assert!(!is_valid_public_key(
            "udxu4rcsjnzoiqhznwxhxordprtgnjahahfrgzneejcpqtt2m7nlcnf4",
            PREFIX_USER
        ));
    }

    #[test]
    fn subjects() {
        for (subject, valid) in [
            ("a", true),
            ("a.b.>", true),
            ("*.>", true),
            ("", false),
            ("a..b", false),
            ("a.>.b", false),
            (".a", false),
            ("a b", false),
            ("a.\t", false),
        ] {
            assert_eq!(is_valid_subject(subject), valid, "{subject:?}");
        }
    }
}
