//! The nkey challenge: the nonce carried in INFO (`server/nkey.go` `generateNonce`) and the check
//! of the client's signature over it (the `Verify` in `server/auth.go`
//! `processClientOrLeafAuthentication`).
//!
//! Key parsing and Ed25519 verification come from the `nkeys` crate; this module only adds the
//! reference's encodings (`nkey.go`, `auth.go`).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Number of random bytes in a nonce (`nonceRawLen` in the reference).
pub const NONCE_RANDOM_BYTES: usize = 11;

/// Length of the encoded nonce sent in INFO (`nonceLen`: unpadded base64 of 11 bytes).
pub const NONCE_LEN: usize = 15;

/// Go's `base64.RawURLEncoding` for decoding: URL-safe alphabet, no padding allowed, and (as Go's
/// non-strict decoder) non-zero trailing bits accepted.
const RAW_URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Go's `base64.StdEncoding` for decoding: standard alphabet, padding required, trailing bits
/// accepted.
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes the caller's random bytes as the INFO `nonce`: 15 characters of unpadded URL-safe
/// base64 (alphabet `A-Z a-z 0-9 - _`). The caller draws fresh random bytes for each connection.
#[must_use]
pub fn encode_nonce(random: &[u8; NONCE_RANDOM_BYTES]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

/// Why an nkey signature was refused; the text is the reference's debug log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// CONNECT had no `sig`.
    Missing,
    /// `sig` is neither unpadded URL-safe nor padded standard base64.
    NotBase64,
    /// The public key in CONNECT `nkey` cannot be decoded.
    BadNkey,
    /// The signature does not verify against the nonce.
    NotVerified,
}

impl SignatureError {
    /// The reference's debug text for this failure.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "Signature missing",
            Self::NotBase64 => "Signature not valid base64",
            Self::BadNkey => "User nkey not valid",
            Self::NotVerified => "Signature not verified",
        }
    }
}

/// Checks `sig` (base64 of an Ed25519 signature) over the nonce string's ASCII bytes with the
/// public nkey `public_key`. The raw URL-safe encoding is tried first, then padded standard
/// base64, as the reference does.
pub fn verify_nonce_signature(
    public_key: &str,
    nonce: &str,
    sig: Option<&str>,
) -> Result<(), SignatureError> {
    let sig = match sig {
        Some(sig) if !sig.is_empty() => sig,
        _ => return Err(SignatureError::Missing),
    };
    let raw_sig = RAW_URL_LENIENT
        .decode(sig)
        .or_else(|_| STD_LENIENT.decode(sig))
        .map_err(|_| SignatureError::NotBase64)?;
    let key = nkeys::KeyPair::from_public_key(public_key).map_err(|_| SignatureError::BadNkey)?;
    key.verify(nonce.as_bytes(), &raw_sig)
        .map_err(|_| SignatureError::NotVerified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_key(seed_byte: u8) -> nkeys::KeyPair {
        nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [seed_byte; 32]).unwrap()
    }

    #[test]
    fn public_key_encoding_matches_an_independent_encoder() {
        // Computed with Python (base32 of 0xA0 || key || CRC-16/XMODEM LE) from the same seed and
        // accepted by nats-server 2.9.10 as a user nkey.
        assert_eq!(
            user_key(3).public_key(),
            "UDWUSKGGFDI4FRXK5EBTRECZSVQSSWJHHJOGH6JWG3AUMFFMQ435C2U4"
        );
    }

    #[test]
    fn nonce_is_15_url_safe_chars() {
        let nonce = encode_nonce(&[0xff; NONCE_RANDOM_BYTES]);
        assert_eq!(nonce, "______________8");
        let nonce = encode_nonce(&[0xfb, 0xef, 0xbe, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(nonce, "----AAECAwQFBgc");
    }

    fn check(key: &str, nonce: &str, sig: Option<&str>, expect: Result<(), SignatureError>) {
        assert_eq!(verify_nonce_signature(key, nonce, sig), expect, "{sig:?}");
    }

    #[test]
    fn signatures() {
        let kp = user_key(1);
        let other = user_key(2);
        let nonce = encode_nonce(&[9; NONCE_RANDOM_BYTES]);
        let sig = kp.sign(nonce.as_bytes()).unwrap();
        let raw_url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig);
        let std_padded = base64::engine::general_purpose::STANDARD.encode(&sig);
        assert_eq!(raw_url.len(), 86);
        let pk = kp.public_key();
        check(&pk, &nonce, Some(&raw_url), Ok(()));
        check(&pk, &nonce, Some(&std_padded), Ok(()));
        check(&pk, &nonce, None, Err(SignatureError::Missing));
        check(&pk, &nonce, Some(""), Err(SignatureError::Missing));
        check(&pk, &nonce, Some("!!!"), Err(SignatureError::NotBase64));
        // Padded URL-safe is neither raw URL nor standard base64.
        let url_padded = base64::engine::general_purpose::URL_SAFE.encode(&sig);
        if url_padded.contains(['-', '_']) {
            check(
                &pk,
                &nonce,
                Some(&url_padded),
                Err(SignatureError::NotBase64),
            );
        }
        check(
            &pk,
            "other-nonce",
            Some(&raw_url),
            Err(SignatureError::NotVerified),
        );
        check(
            &other.public_key(),
            &nonce,
            Some(&raw_url),
            Err(SignatureError::NotVerified),
        );
        // The signature is over the nonce string, not its decoded bytes.
        let over_raw = kp.sign(&[9; NONCE_RANDOM_BYTES]).unwrap();
        let over_raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(over_raw);
        check(
            &pk,
            &nonce,
            Some(&over_raw),
            Err(SignatureError::NotVerified),
        );
        // Wrong length signature.
        check(&pk, &nonce, Some("AAAA"), Err(SignatureError::NotVerified));
        check(
            "UNOTAKEY",
            &nonce,
            Some(&raw_url),
            Err(SignatureError::BadNkey),
        );
    }
}
