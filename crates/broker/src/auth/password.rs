//! Password and token comparison, plain or bcrypt.
//!
//! The reference (`auth.go` `isBcrypt`, `comparePasswords`) treats a configured secret as a bcrypt
//! hash when it starts with `$` and matches `^\$2[abxy]\$\d{2}\$.*`; the client's plaintext is then
//! checked with bcrypt. Anything else is compared byte for byte, so sending the hash itself as the
//! password fails.

use std::fmt;

use super::{AuthError, Authenticated};

/// What [`super::Authorizer::authenticate_deferred`] decided.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Decided without a bcrypt comparison.
    Decided(Result<Authenticated, AuthError>),
    /// Only a bcrypt comparison is left; its outcome decides between the two prepared results.
    CheckHash(HashCheck),
}

impl AuthOutcome {
    /// Compares at once unless `configured` is a bcrypt hash, which is left to the caller.
    pub(super) fn compare(
        configured: &str,
        presented: &str,
        success: Authenticated,
        failure: AuthError,
    ) -> Self {
        if is_bcrypt(configured) {
            return Self::CheckHash(HashCheck {
                check: PasswordCheck {
                    hash: configured.to_owned(),
                    password: presented.to_owned(),
                },
                success,
                failure,
            });
        }
        Self::Decided(if compare_passwords(configured, presented) {
            Ok(success)
        } else {
            Err(failure)
        })
    }

    /// The result, running a pending bcrypt comparison on this thread.
    pub fn resolve(self) -> Result<Authenticated, AuthError> {
        match self {
            Self::Decided(result) => result,
            Self::CheckHash(pending) => {
                let ok = pending.check().verify();
                pending.finish(ok)
            }
        }
    }
}

/// An authentication waiting only for a bcrypt comparison. `Debug` shows nothing of the
/// prepared results (the identity may be the presented token).
pub struct HashCheck {
    check: PasswordCheck,
    success: Authenticated,
    failure: AuthError,
}

impl fmt::Debug for HashCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashCheck").finish_non_exhaustive()
    }
}

impl HashCheck {
    /// The comparison to run (it is `Send`; clone it to hand it to a worker thread).
    #[must_use]
    pub fn check(&self) -> &PasswordCheck {
        &self.check
    }

    /// The authentication result, given what [`PasswordCheck::verify`] returned.
    pub fn finish(self, verified: bool) -> Result<Authenticated, AuthError> {
        if verified {
            Ok(self.success)
        } else {
            Err(self.failure)
        }
    }
}

/// A bcrypt hash and the password a client presented. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PasswordCheck {
    hash: String,
    password: String,
}

impl PasswordCheck {
    /// A comparison of `password` with the bcrypt `hash`.
    #[must_use]
    pub fn new(hash: &str, password: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The password the client presented: a secret, for a caller that keys a digest with it
    /// (never log or store it).
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The configured bcrypt hash (not secret in itself: it is in the configuration file).
    #[must_use]
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Runs the comparison: CPU-bound, 2^cost rounds of the bcrypt key schedule (about 100 ms
    /// at cost 11 on a current core). A malformed hash never matches.
    #[must_use]
    pub fn verify(&self) -> bool {
        compare_passwords(&self.hash, &self.password)
    }
}

impl fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCheck").finish_non_exhaustive()
    }
}

/// True when a configured password or token is a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`
/// followed by two digits and `$`).
#[must_use]
pub fn is_bcrypt(secret: &str) -> bool {
    let bytes = secret.as_bytes();
    let Some(head) = bytes.get(..7) else {
        return false;
    };
    matches!(
        head,
        [b'$', b'2', b'a' | b'b' | b'x' | b'y', b'$', d1, d2, b'$']
            if d1.is_ascii_digit() && d2.is_ascii_digit()
    )
}

/// Compares the client's secret with the configured one: bcrypt when the configured one is a
/// bcrypt hash (a malformed hash never matches), plain equality otherwise.
#[must_use]
pub fn compare_passwords(configured: &str, presented: &str) -> bool {
    if is_bcrypt(configured) {
        // A hash the bcrypt crate cannot parse fails, as Go's CompareHashAndPassword does.
        bcrypt::verify(presented.as_bytes(), configured).unwrap_or(false)
    } else {
        constant_time_eq(configured.as_bytes(), presented.as_bytes())
    }
}

/// Byte equality whose running time does not depend on where the first difference is.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated by nats-server's test suite (`test/auth_test.go`, cost 4).
    const GO_HASH: &str = "$2a$04$Q.CgCP2Sl9pkcTXEZHazaeMwPaAkSHk7AI51HkyMt5iJQQyUA4qxq";
    const GO_PASS: &str = "IW@$6v(y1(t@fhPDvf!5^%";

    fn check_is_bcrypt(secret: &str, expect: bool) {
        assert_eq!(is_bcrypt(secret), expect, "{secret:?}");
    }

    #[test]
    fn bcrypt_prefix_detection() {
        check_is_bcrypt(GO_HASH, true);
        check_is_bcrypt("$2b$10$x", true);
        check_is_bcrypt("$2x$10$", true);
        check_is_bcrypt("$2y$99$anything", true);
        check_is_bcrypt("$2c$10$x", false);
        check_is_bcrypt("$2a$1$x", false);
        check_is_bcrypt("$2a$1a$x", false);
        check_is_bcrypt("$2a$10", false);
        check_is_bcrypt("2a$10$xxxx", false);
        check_is_bcrypt("", false);
        check_is_bcrypt("$", false);
        check_is_bcrypt("$2a$１0$x", false);
    }

    fn check_compare(configured: &str, presented: &str, expect: bool) {
        assert_eq!(
            compare_passwords(configured, presented),
            expect,
            "{configured:?} vs {presented:?}"
        );
    }

    #[test]
    fn plain_and_bcrypt_comparison() {
        check_compare("s3cr3t", "s3cr3t", true);
        check_compare("s3cr3t", "s3cr3", false);
        check_compare("s3cr3t", "S3cr3t", false);
        check_compare("", "", true);
        check_compare(GO_HASH, GO_PASS, true);
        check_compare(GO_HASH, "wrong", false);
        // The hash itself is not a valid password.
        check_compare(GO_HASH, GO_HASH, false);
        // A malformed hash never matches, not even itself.
        check_compare("$2a$04$short", "$2a$04$short", false);
        check_compare("$2a$04$short", "", false);
        // Token hash from nats-server's test suite (`test/client_auth_test.go`).
        check_compare(
            "$2a$05$3sSWEVA1eMCbV0hWavDjXOx.ClBjI6u1CuUdLqf22cbJjXsnzz8/.",
            "test",
            true,
        );
    }

    #[test]
    fn bcrypt_2b_hash_from_the_rust_crate() {
        let hash = bcrypt::hash_with_salt("pw", 4, [7u8; 16]).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let text = hash.format_for_version(version);
            check_compare(&text, "pw", true);
            check_compare(&text, "pW", false);
        }
    }
}
