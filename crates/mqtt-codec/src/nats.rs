//! MQTT topic ↔ NATS subject mapping, as nats-server 2.9.10 bridges them (`server/mqtt.go`
//! `mqttToNATSSubjectConversion` and `natsSubjectToMQTTTopic`).
//!
//! - `/` separates levels and becomes `.`; an empty level (a leading, trailing or doubled `/`)
//!   keeps a `/` as its token: `/foo` ↔ `/.foo`, `foo/` ↔ `foo./`, `foo//bar` ↔ `foo./.bar`,
//!   `/` ↔ `/./`.
//! - In filters, `+` becomes `*` and `#` becomes `>`. In topic names (PUBLISH, will) they are
//!   refused.
//! - `.` and ` ` cannot be expressed and are refused in both.
//!
//! The mapping does not check wildcard placement (`a+` becomes `a*`); a subject the NATS side
//! then refuses is the server's to answer (SUBACK failure).

use std::borrow::Cow;
use std::fmt;

/// Why a topic or filter has no NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicError {
    /// A `.` or a space, which a NATS subject cannot carry.
    UnsupportedCharacter,
    /// A wildcard in a topic name (MQTT-3.3.2-2, MQTT-4.7.1-1).
    WildcardInTopicName(String),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedCharacter => {
                f.write_str("characters ' ' and '.' not supported for MQTT topics")
            }
            Self::WildcardInTopicName(topic) => {
                write!(f, "wildcards not allowed in publish's topic: {topic:?}")
            }
        }
    }
}

impl std::error::Error for TopicError {}

/// The subject a PUBLISH (or will) topic name is published on.
///
/// # Errors
///
/// [`TopicError`] for `.`, ` `, `+` or `#`.
pub fn topic_to_subject(topic: &str) -> Result<Cow<'_, str>, TopicError> {
    convert(topic, false)
}

/// The subject a SUBSCRIBE topic filter subscribes to.
///
/// # Errors
///
/// [`TopicError::UnsupportedCharacter`] for `.` or ` `.
pub fn filter_to_subject(filter: &str) -> Result<Cow<'_, str>, TopicError> {
    convert(filter, true)
}

fn convert(topic: &str, wildcards: bool) -> Result<Cow<'_, str>, TopicError> {
    let bytes = topic.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'/' | b'.' | b' ' | b'+' | b'#'))
    {
        return Ok(Cow::Borrowed(topic));
    }
    let mut out = String::with_capacity(topic.len() + 8);
    let mut chars = topic.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' => {
                if out.is_empty() || out.ends_with('.') {
                    // An empty level before this separator: its token is `/`.
                    out.push_str("/.");
                } else if chars.peek().is_none_or(|next| *next == '/') {
                    // An empty level after this separator.
                    out.push_str("./");
                } else {
                    out.push('.');
                }
            }
            '.' | ' ' => return Err(TopicError::UnsupportedCharacter),
            '+' | '#' if !wildcards => {
                return Err(TopicError::WildcardInTopicName(topic.to_owned()));
            }
            '+' => out.push('*'),
            '#' => out.push('>'),
            other => out.push(other),
        }
    }
    if out.ends_with('.') {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// The topic name an MQTT subscriber sees for a message published on `subject` (the reverse
/// of [`topic_to_subject`]; subjects carry no wildcard when published).
#[must_use]
pub fn subject_to_topic(subject: &str) -> Cow<'_, str> {
    if !subject.contains(['.', '/']) {
        return Cow::Borrowed(subject);
    }
    let mut out = String::with_capacity(subject.len());
    let mut chars = subject.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            // A leading `/.` stands for the empty first level: only its `.` (→ `/`) is kept.
            '/' if first && chars.peek() == Some(&'.') => {}
            '.' => {
                out.push('/');
                // `./` is a separator followed by an empty level's token.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
            }
            other => out.push(other),
        }
        first = false;
    }
    Cow::Owned(out)
}

/// The parent subject that a subscription on `subject` also needs, because MQTT's `foo/#`
/// matches `foo` itself while NATS's `foo.>` does not (nats-server's `mqttNeedSubForLevelUp`):
/// `Some` for a subject of more than one token ending in `.>`.
#[must_use]
pub fn needs_parent_subscription(subject: &str) -> Option<&str> {
    subject
        .strip_suffix(".>")
        .filter(|parent| !parent.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nats-server's `TestMQTTTopicAndSubjectConversion`.
    #[test]
    fn topic_and_subject_conversion() {
        for (topic, subject) in [
            ("/", "/./"),
            ("//", "/././"),
            ("///", "/./././"),
            ("////", "/././././"),
            ("foo", "foo"),
            ("/foo", "/.foo"),
            ("//foo", "/./.foo"),
            ("///foo", "/././.foo"),
            ("///foo/", "/././.foo./"),
            ("///foo//", "/././.foo././"),
            ("///foo///", "/././.foo./././"),
            ("foo/bar", "foo.bar"),
            ("/foo/bar", "/.foo.bar"),
            ("/foo/bar/", "/.foo.bar./"),
            ("foo/bar/baz", "foo.bar.baz"),
            ("/foo/bar/baz", "/.foo.bar.baz"),
            ("/foo/bar/baz/", "/.foo.bar.baz./"),
            ("bar/", "bar./"),
            ("bar//", "bar././"),
            ("bar///", "bar./././"),
            ("foo//bar", "foo./.bar"),
            ("foo///bar", "foo././.bar"),
            ("foo////bar", "foo./././.bar"),
            ("héllo/wörld", "héllo.wörld"),
        ] {
            assert_eq!(topic_to_subject(topic).unwrap(), subject, "{topic}");
            assert_eq!(subject_to_topic(subject), topic, "{subject}");
        }
        for topic in ["foo/+", "foo/#", "+", "a#"] {
            let err = topic_to_subject(topic).unwrap_err();
            assert!(
                err.to_string().contains("wildcards not allowed in publish"),
                "{err}"
            );
        }
        for topic in ["foo bar", "foo.bar", "."] {
            let err = topic_to_subject(topic).unwrap_err();
            assert_eq!(
                err.to_string(),
                "characters ' ' and '.' not supported for MQTT topics"
            );
            assert!(filter_to_subject(topic).is_err());
        }
        assert!(matches!(topic_to_subject("plain"), Ok(Cow::Borrowed(_))));
    }

    /// nats-server's `TestMQTTFilterConversion`.
    #[test]
    fn filter_conversion() {
        for (filter, subject) in [
            ("+", "*"),
            ("/+", "/.*"),
            ("+/", "*./"),
            ("/+/", "/.*./"),
            ("foo/+", "foo.*"),
            ("foo/+/", "foo.*./"),
            ("foo/+/bar", "foo.*.bar"),
            ("foo/+/+", "foo.*.*"),
            ("foo/+/+/", "foo.*.*./"),
            ("foo/+/+/bar", "foo.*.*.bar"),
            ("foo//+", "foo./.*"),
            ("foo//+/", "foo./.*./"),
            ("foo//+//", "foo./.*././"),
            ("foo//+//bar", "foo./.*./.bar"),
            ("foo///+///bar", "foo././.*././.bar"),
            ("#", ">"),
            ("/#", "/.>"),
            ("/foo/#", "/.foo.>"),
            ("foo/#", "foo.>"),
            ("foo//#", "foo./.>"),
            ("foo///#", "foo././.>"),
            ("foo/bar/#", "foo.bar.>"),
        ] {
            assert_eq!(filter_to_subject(filter).unwrap(), subject, "{filter}");
        }
    }

    proptest::proptest! {
        /// Every topic name the mapping accepts comes back from its subject unchanged.
        #[test]
        fn topic_subject_round_trip(levels in proptest::collection::vec("[a-z/é*>]{0,4}", 1..6)) {
            let topic = levels.join("/");
            let subject = topic_to_subject(&topic).unwrap();
            proptest::prop_assert!(!subject.contains(' '));
            proptest::prop_assert_eq!(subject_to_topic(&subject), topic.as_str());
        }
    }

    #[test]
    fn parent_subscription_for_multi_level_wildcard() {
        assert_eq!(needs_parent_subscription("foo.>"), Some("foo"));
        assert_eq!(needs_parent_subscription("/.foo.>"), Some("/.foo"));
        assert_eq!(needs_parent_subscription(">"), None);
        assert_eq!(needs_parent_subscription("foo.*"), None);
    }
}
