//! TURN REST credentials, as coturn's `use-auth-secret` checks them: the username is
//! `expiry:user` (expiry in Unix seconds), the password the base64 of HMAC-SHA1 of the
//! username under the shared secret. coturn needs no call to mtcall to check one.

use base64::Engine;
use hmac::{KeyInit, Mac};

/// A username and password valid until `expiry`.
pub fn credentials(secret: &str, user_id: i64, expiry: i64) -> (String, String) {
    let username = format!("{expiry}:{user_id}");
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rest_api_formula() {
        // HMAC-SHA1("secret", "1700000000:1000001"), computed independently with
        // Python: `base64.b64encode(hmac.new(b"secret", b"1700000000:1000001", "sha1").digest())`.
        let (user, pass) = credentials("secret", 1_000_001, 1_700_000_000);
        assert_eq!(user, "1700000000:1000001");
        assert_eq!(pass, INDEPENDENT_ANSWER);
    }

    const INDEPENDENT_ANSWER: &str = "z8fAl39XY6osFhl5OpC4mgRwjnU=";
}
