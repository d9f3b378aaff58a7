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

/// Parses the document: an object, or `null` (which Go treats as "no fields").
fn object(arg: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match serde_json::from_slice::<Value>(arg).map_err(|_| JsonError)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(JsonError),
    }
}

impl ConnectJson {
    pub(crate) fn parse(arg: &[u8]) -> Result<Self, JsonError> {
        let obj = object(arg)?;
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

/// Validates an INFO sent by a client: nats-server decodes it and closes on a type error,
/// otherwise ignores it.
pub(crate) fn check_info(arg: &[u8]) -> Result<(), JsonError> {
    let obj = object(arg)?;
    for name in [
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
    ] {
        get_string(&obj, name)?;
    }
    for name in [
        "headers",
        "auth_required",
        "tls_required",
        "tls_verify",
        "tls_available",
        "jetstream",
        "ldm",
        "cluster_dynamic",
    ] {
        get_bool(&obj, name)?;
    }
    for name in ["port", "client_id"] {
        get_uint(&obj, name)?;
    }
    for name in ["proto", "max_payload"] {
        get_int(&obj, name)?;
    }
    for name in ["connect_urls", "ws_connect_urls"] {
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
