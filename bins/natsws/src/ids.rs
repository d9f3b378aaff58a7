//! Randomness from the OS and the ids drawn from it.

/// Fills `buf` from the OS's random source (`getrandom(2)`). There is no weaker fallback:
/// server ids, nonces and the key of the remembered password checks depend on it.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), String> {
    getrandom::getrandom(buf).map_err(|e| format!("the OS random source failed: {e}"))
}

/// A server id in nats-server's shape: `N` + 55 base32 characters.
pub(crate) fn new_server_id() -> Result<String, String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut raw = [0u8; 55];
    os_random(&mut raw)?;
    let mut id = String::with_capacity(56);
    id.push('N');
    id.extend(
        raw.iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 32)])),
    );
    Ok(id)
}

/// Fresh OS randomness for one connection's nkey/JWT nonce (`server/nkey.go`
/// `generateNonce` reads crypto/rand too). `None` only when the OS source fails; the broker
/// then draws from its own generator.
pub(crate) fn nonce_bytes() -> Option<[u8; 11]> {
    let mut bytes = [0u8; 11];
    os_random(&mut bytes).ok().map(|()| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_have_nats_server_shape_and_differ() {
        let a = new_server_id().unwrap();
        let b = new_server_id().unwrap();
        assert_eq!(a.len(), 56);
        assert!(a.starts_with('N'));
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
        );
        assert_ne!(a, b);
    }
}
