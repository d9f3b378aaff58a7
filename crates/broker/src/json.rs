//! Decoding of the CONNECT and INFO JSON the way Go's `encoding/json` does it for nats-server:
//! field names match case-insensitively, unknown fields are ignored, `null` leaves a field
//! unchanged, and a field of the wrong type (or a float where an integer is expected) is an
//! error that closes the connection.

use serde_json::{Map, Value};

/// The CONNECT fields the server uses; `None` = absent or `null`.
#[derive(Debug, Default)]
pub(crate) struct ConnectJson {
    pub(crate) verbose: Option<bool>,
    pub(crate) pedantic: Option<bool>,
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<String>,
    pub(crate) auth_token: Option<String>,
    pub(crate) nkey: Option<String>,
    pub(crate) sig: Option<String>,
    pub(crate) jwt: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) lang: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) protocol: Option<i64>,
    pub(crate) echo: Option<bool>,
    pub(crate) headers: Option<bool>,
    pub(crate) no_responders: Option<bool>,
    pub(crate) account: Option<String>,
    pub(crate) new_account: Option<bool>,
}

/// A JSON decoding error (the connection is closed without `-ERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError;

/// Finds `name` in `obj`: an exact match wins, else the last case-insensitive match.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(name) {
        return Some(v);
    }
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
}

fn get_bool(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(JsonError),
    }
}

fn get_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JsonError),
    }
}

fn get_int(obj: &Map<String, Value>, name: &str) -> Result<Option<i64>, JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(JsonError),
        Some(_) => Err(JsonError),
    }
}

fn get_uint(obj: &Map<String, Value>, name: &str) -> Result<(), JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
        Some(_) => Err(JsonError),
    }
}

fn get_string_list(obj: &Map<String, Value>, name: &str) -> Result<(), JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(|v| v.is_string() || v.is_null()) => Ok(()),
        Some(_) => Err(JsonError),
    }
}

/// The deepest nesting of arrays and objects Go's `encoding/json` accepts (`maxNestingDepth`
/// in `encoding/json/scanner.go`); deeper documents are a syntax error there.
const MAX_NESTING_DEPTH: usize = 10_000;

/// The deepest nesting of `arg`'s arrays and objects, strings skipped: one linear pass, so
/// that a deep document costs no recursion.
fn nesting_depth(arg: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in arg {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Decodes an object's members whose names match one of `names` (case-insensitively) into
/// `Value`s, and skips the others without building them: serde_json skips a value with an
/// explicit stack, so a member nested thousands of levels deep is neither recursed into nor
/// allocated.
struct Members<'n> {
    names: &'n [&'n str],
}

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut access: A,
    ) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if self.names.iter().any(|n| n.eq_ignore_ascii_case(&key)) {
                let value = access.next_value::<Value>()?;
                map.insert(key, value);
            } else {
                access.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(map)
    }
}

/// Parses the document: an object, or `null` (which Go treats as "no fields"), keeping the
/// members named in `names`. Nesting deeper than Go accepts is an error, as there.
fn object(arg: &[u8], names: &[&str]) -> Result<Map<String, Value>, JsonError> {
    if nesting_depth(arg) > MAX_NESTING_DEPTH {
        return Err(JsonError);
    }
    let mut de = serde_json::Deserializer::from_slice(arg);
    let map = serde::de::DeserializeSeed::deserialize(Members { names }, &mut de)
        .map_err(|_| JsonError)?;
    de.end().map_err(|_| JsonError)?;
    Ok(map)
}

impl ConnectJson {
    pub(crate) fn parse(arg: &[u8]) -> Result<Self, JsonError> {
        const NAMES: &[&str] = &[
            "tls_required",
            "verbose",
            "pedantic",
            "user",
            "pass",
            "auth_token",
            "nkey",
            "sig",
            "jwt",
            "name",
            "lang",
            "version",
            "protocol",
            "echo",
            "headers",
            "no_responders",
            "account",
            "new_account",
        ];
        let obj = object(arg, NAMES)?;
        // Fields the server ignores must still have the right type.
        get_bool(&obj, "tls_required")?;
        Ok(Self {
            verbose: get_bool(&obj, "verbose")?,
            pedantic: get_bool(&obj, "pedantic")?,
            user: get_string(&obj, "user")?,
            pass: get_string(&obj, "pass")?,
            auth_token: get_string(&obj, "auth_token")?,
            nkey: get_string(&obj, "nkey")?,
            sig: get_string(&obj, "sig")?,
            jwt: get_string(&obj, "jwt")?,
            name: get_string(&obj, "name")?,
            lang: get_string(&obj, "lang")?,
            version: get_string(&obj, "version")?,
            protocol: get_int(&obj, "protocol")?,
            echo: get_bool(&obj, "echo")?,
            headers: get_bool(&obj, "headers")?,
            no_responders: get_bool(&obj, "no_responders")?,
            account: get_string(&obj, "account")?,
            new_account: get_bool(&obj, "new_account")?,
        })
    }
}

/// A list of strings (`null` items skipped); `None` when absent.
fn get_strings(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map(str::to_owned).ok_or(JsonError))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(JsonError),
    }
}

/// `allow`/`deny` lists of one direction of the hub's `import`/`export` permissions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SubjectPermissionJson {
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) deny: Option<Vec<String>>,
}

fn get_permission(
    obj: &Map<String, Value>,
    name: &str,
) -> Result<Option<SubjectPermissionJson>, JsonError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(SubjectPermissionJson {
            allow: get_strings(inner, "allow")?,
            deny: get_strings(inner, "deny")?,
        })),
        Some(_) => Err(JsonError),
    }
}

/// The INFO a hub sends on its leafnode port (`server/server.go` `Info`), the fields a
/// soliciting leaf uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeafInfoJson {
    pub(crate) server_id: Option<String>,
    pub(crate) server_name: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) headers: Option<bool>,
    pub(crate) tls_required: Option<bool>,
    pub(crate) client_id: Option<i64>,
    pub(crate) nonce: Option<String>,
    pub(crate) info_on_connect: Option<bool>,
    pub(crate) connect_info: Option<bool>,
    pub(crate) leafnode_urls: Option<Vec<String>>,
    pub(crate) remote_account: Option<String>,
    pub(crate) import: Option<SubjectPermissionJson>,
    pub(crate) export: Option<SubjectPermissionJson>,
}

impl LeafInfoJson {
    pub(crate) fn parse(arg: &[u8]) -> Result<Self, JsonError> {
        const NAMES: &[&str] = &[
            "server_id",
            "server_name",
            "cluster",
            "headers",
            "tls_required",
            "client_id",
            "nonce",
            "info_on_connect",
            "connect_info",
            "leafnode_urls",
            "remote_account",
            "import",
            "export",
        ];
        let obj = object(arg, NAMES)?;
        Ok(Self {
            server_id: get_string(&obj, "server_id")?,
            server_name: get_string(&obj, "server_name")?,
            cluster: get_string(&obj, "cluster")?,
            headers: get_bool(&obj, "headers")?,
            tls_required: get_bool(&obj, "tls_required")?,
            client_id: get_int(&obj, "client_id")?,
            nonce: get_string(&obj, "nonce")?,
            info_on_connect: get_bool(&obj, "info_on_connect")?,
            connect_info: get_bool(&obj, "connect_info")?,
            leafnode_urls: get_strings(&obj, "leafnode_urls")?,
            remote_account: get_string(&obj, "remote_account")?,
            import: get_permission(&obj, "import")?,
            export: get_permission(&obj, "export")?,
        })
    }
}

/// The CONNECT a leaf sends to the accepting side (`server/leafnode.go` `leafConnectInfo`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeafConnectJson {
    pub(crate) has_lang: bool,
    pub(crate) has_gateway: bool,
    pub(crate) gateway: Option<String>,
    pub(crate) server_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) headers: Option<bool>,
    pub(crate) deny_pub: Option<Vec<String>>,
    pub(crate) hub: Option<bool>,
    pub(crate) version: Option<String>,
}

impl LeafConnectJson {
    pub(crate) fn parse(arg: &[u8]) -> Result<Self, JsonError> {
        const NAMES: &[&str] = &[
            "lang",
            "gateway",
            "server_id",
            "name",
            "cluster",
            "headers",
            "deny_pub",
            "is_hub",
            "version",
        ];
        let obj = object(arg, NAMES)?;
        let lang = get_string(&obj, "lang")?;
        let gateway = get_string(&obj, "gateway")?;
        Ok(Self {
            has_lang: lang.is_some_and(|l| !l.is_empty()),
            has_gateway: gateway.as_deref().is_some_and(|g| !g.is_empty()),
            gateway,
            server_id: get_string(&obj, "server_id")?,
            name: get_string(&obj, "name")?,
            cluster: get_string(&obj, "cluster")?,
            headers: get_bool(&obj, "headers")?,
            deny_pub: get_strings(&obj, "deny_pub")?,
            hub: get_bool(&obj, "is_hub")?,
            version: get_string(&obj, "version")?,
        })
    }
}

/// Validates an INFO sent by a client: nats-server decodes it and closes on a type error,
/// otherwise ignores it.
pub(crate) fn check_info(arg: &[u8]) -> Result<(), JsonError> {
    const STRINGS: &[&str] = &[
        "server_id",
        "server_name",
        "version",
        "go",
        "host",
        "git_commit",
        "ip",
        "client_ip",
        "nonce",
        "cluster",
        "domain",
    ];
    const BOOLS: &[&str] = &[
        "headers",
        "auth_required",
        "tls_required",
        "tls_verify",
        "tls_available",
        "jetstream",
        "ldm",
        "cluster_dynamic",
    ];
    const UINTS: &[&str] = &["port", "client_id"];
    const INTS: &[&str] = &["proto", "max_payload"];
    const LISTS: &[&str] = &["connect_urls", "ws_connect_urls"];
    let names: Vec<&str> = [STRINGS, BOOLS, UINTS, INTS, LISTS].concat();
    let obj = object(arg, &names)?;
    for name in STRINGS {
        get_string(&obj, name)?;
    }
    for name in BOOLS {
        get_bool(&obj, name)?;
    }
    for name in UINTS {
        get_uint(&obj, name)?;
    }
    for name in INTS {
        get_int(&obj, name)?;
    }
    for name in LISTS {
        get_string_list(&obj, name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_decoding() {
        let c = ConnectJson::parse(br#"{"Verbose":false,"ECHO":true,"protocol":1}"#).unwrap();
        assert_eq!(
            (c.verbose, c.echo, c.protocol),
            (Some(false), Some(true), Some(1))
        );
        let c = ConnectJson::parse(b"null").unwrap();
        assert_eq!(c.verbose, None);
        let c = ConnectJson::parse(br#"{"verbose":null,"x":[1]}"#).unwrap();
        assert_eq!(c.verbose, None);
        for bad in [
            &b"[]"[..],
            b"{",
            b"{} x",
            br#"{"verbose":"no"}"#,
            br#"{"name":5}"#,
            br#"{"protocol":1.5}"#,
            br#"{"protocol":1e0}"#,
            br#"{"tls_required":1}"#,
            b"",
        ] {
            assert_eq!(ConnectJson::parse(bad).err(), Some(JsonError), "{bad:?}");
        }
    }

    #[test]
    fn nesting_as_deep_as_go_accepts() {
        let nested = |depth: usize| {
            let mut doc = br#"{"verbose":false,"x":"#.to_vec();
            doc.extend(std::iter::repeat_n(b'[', depth));
            doc.extend(std::iter::repeat_n(b']', depth));
            doc.push(b'}');
            doc
        };
        // The object itself is one level.
        for depth in [127, 129, 1_500, MAX_NESTING_DEPTH - 1] {
            let c = ConnectJson::parse(&nested(depth)).unwrap();
            assert_eq!(c.verbose, Some(false), "{depth}");
        }
        assert_eq!(
            ConnectJson::parse(&nested(MAX_NESTING_DEPTH)).err(),
            Some(JsonError)
        );
        // Brackets inside strings do not count; escaped quotes do not end a string.
        let mut doc = br#"{"name":"\"["#.to_vec();
        doc.extend(std::iter::repeat_n(b'[', 20_000));
        doc.extend(br#""}"#);
        assert_eq!(nesting_depth(&doc), 1);
        assert!(ConnectJson::parse(&doc).is_ok());
        // A deep value in a field the server reads is a type error, as in Go.
        let mut doc = br#"{"verbose":"#.to_vec();
        doc.extend(std::iter::repeat_n(b'[', 200));
        doc.extend(std::iter::repeat_n(b']', 200));
        doc.push(b'}');
        assert_eq!(ConnectJson::parse(&doc).err(), Some(JsonError));
    }

    #[test]
    fn info_checking() {
        assert_eq!(check_info(b"{}"), Ok(()));
        assert_eq!(
            check_info(br#"{"server_id":"x","port":4222,"unknown":[]}"#),
            Ok(())
        );
        assert_eq!(check_info(b"x"), Err(JsonError));
        assert_eq!(check_info(br#"{"server_id":5}"#), Err(JsonError));
        assert_eq!(check_info(br#"{"port":-1}"#), Err(JsonError));
    }
}
