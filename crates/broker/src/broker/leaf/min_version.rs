//! `leafnodes { min_version }` on the accepting side (`server/leafnode.go`
//! `processLeafNodeConnect`): a leaf whose CONNECT `version` is lower gets the INFO that
//! answers CONNECT (so a recent nats-server waits instead of dropping the link after 2 s),
//! then `-ERR 'connection rejected since minimum version required is "<v>"'`, and is closed
//! as `Minimum Version Required` after [`LEAF_REFUSED_HOLD`]; what it sends meanwhile is
//! discarded, as nats-server stops reading it.

use super::*;

/// How long a leaf refused for its version is held open before it is closed, so that it
/// does not dial again at once (`leafNodeWaitBeforeClose`).
pub const LEAF_REFUSED_HOLD: Duration = Duration::from_secs(5);

/// `versionComponents` (`server/util.go`): `\Av?([0-9]+)\.?([0-9]+)?\.?([0-9]+)?` with
/// each group read by `strconv.Atoi`; `None` where nats-server has an error (a missing
/// group, a number out of range). What follows the three numbers is ignored.
pub(crate) fn version_components(version: &str) -> Option<[i64; 3]> {
    let mut rest = version.strip_prefix('v').unwrap_or(version);
    let mut out = [0i64; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, tail) = rest.split_at(end);
        *slot = digits.parse().ok()?;
        rest = tail;
    }
    Some(out)
}

/// `versionAtLeast`: `false` for a version nats-server cannot read.
pub(crate) fn version_at_least(version: &str, min: [i64; 3]) -> bool {
    version_components(version).is_some_and(|v| v >= min)
}

impl Broker {
    /// Refuses accepted leaf `id` if its CONNECT version is below `min_version`; `true`
    /// when it was refused (the INFO answering CONNECT is already queued).
    pub(in crate::broker) fn leaf_version_refused(&mut self, id: ClientId, now: Instant) -> bool {
        let Some(min) = self.config.leaf_min_version.clone() else {
            return false;
        };
        let Some(c) = self.open_client_mut(id) else {
            return false;
        };
        let min_parts = version_components(&min).unwrap_or([i64::MAX; 3]);
        if version_at_least(&c.opts.version, min_parts) {
            return false;
        }
        if let Some(leaf) = c.leaf.as_mut() {
            leaf.stage = LeafStage::Refused {
                until: now + LEAF_REFUSED_HOLD,
            };
        }
        let text = format!(
            "connection rejected since minimum version required is {}",
            gotext::quote(&min)
        );
        self.send_err(id, now, &text);
        self.events.push_back(Event::ClientError {
            client: id,
            detail: text,
        });
        self.reschedule(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{version_at_least, version_components};

    #[test]
    fn versions_read_as_nats_server_reads_them() {
        for (text, want) in [
            ("2.9.10", Some([2, 9, 10])),
            ("v2.10.0", Some([2, 10, 0])),
            ("2.10.0-beta.1", Some([2, 10, 0])),
            ("2.10", None),
            ("", None),
            ("abc", None),
            ("99999999999999999999.0.0", None),
        ] {
            assert_eq!(version_components(text), want, "{text:?}");
        }
        assert!(version_at_least("2.9.10", [2, 9, 0]));
        assert!(version_at_least("3.0.0", [2, 10, 0]));
        assert!(!version_at_least("2.9.10", [2, 10, 0]));
        assert!(!version_at_least("", [2, 8, 0]));
    }
}
