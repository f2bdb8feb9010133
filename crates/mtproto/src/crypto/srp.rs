//! The server's half of Telegram's two-step verification: SRP over the 2048-bit prime of
//! [`super::dh`] with g = 3 (`passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow`).
//!
//! The server never sees the password. When one is set, the client sends the verifier
//! `v = g^x mod p`, where `x` is derived from the password and the two salts (PBKDF2 on the
//! client). To log in, the server offers `B = k·v + g^b mod p` (`k = H(p | g)`), the client
//! answers `A = g^a mod p` and the proof `M1`; the server computes
//! `S = (A · v^u)^b mod p` with `u = H(A | B)`, `K = H(S)`, and accepts when
//! `M1 = H(H(p) xor H(g) | H(salt1) | H(salt2) | A | B | K)`. `H` is SHA-256; numbers are
//! 256-byte big-endian. No clock and no I/O: the caller keeps a [`Challenge`] between the two
//! requests.

use subtle::ConstantTimeEq;

use super::dh::{self, DH_PRIME, G};
use super::{Entropy, sha256};

/// Why a verifier or an answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrpError {
    /// A verifier that is not a number in `(1, p - 1)` of 256 bytes at most.
    VerifierInvalid,
    /// The client's `A` is not a safe value modulo p (`1 < A < p - 1`, not too close to either).
    PublicValueInvalid,
    /// The proof does not match: a wrong password.
    ProofMismatch,
}

/// `g` as the 256-byte big-endian number the hashes take.
fn g_padded() -> [u8; 256] {
    let mut g = [0u8; 256];
    g[252..].copy_from_slice(&G.to_be_bytes());
    g
}

/// `value` left-padded to 256 bytes; `None` if it is longer.
fn padded(value: &[u8]) -> Option<[u8; 256]> {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let trimmed = &value[start..];
    if trimmed.len() > 256 {
        return None;
    }
    let mut out = [0u8; 256];
    out[256 - trimmed.len()..].copy_from_slice(trimmed);
    Some(out)
}

/// A 32-byte hash as a 256-byte exponent.
fn wide(h: &[u8; 32]) -> [u8; 256] {
    let mut out = [0u8; 256];
    out[224..].copy_from_slice(h);
    out
}

/// Checks a verifier a client sent with a new password and returns it padded.
pub fn verifier(v: &[u8]) -> Result<[u8; 256], SrpError> {
    let v = padded(v).ok_or(SrpError::VerifierInvalid)?;
    if !dh::is_between_one_and_p_minus_one(&v) {
        return Err(SrpError::VerifierInvalid);
    }
    Ok(v)
}

/// One login attempt's server values: the secret `b` and the public `B` offered for it.
#[derive(Clone)]
pub struct Challenge {
    b: [u8; 256],
    /// `B`, sent to the client as `srp_B`.
    pub public: [u8; 256],
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge").finish_non_exhaustive()
    }
}

impl Challenge {
    /// A fresh challenge for the verifier `v` (from [`verifier`]).
    pub fn new(v: &[u8; 256], entropy: &mut impl Entropy) -> Self {
        let k = sha256(&[&DH_PRIME, &g_padded()]);
        let kv = dh::mul_mod(&k, v);
        loop {
            let b: [u8; 256] = entropy.array();
            let public = dh::add_mod(&kv, &dh::mod_pow(&g_padded(), &b));
            // The clients refuse a B too close to 0 or p; draw again (odds about 2^-63).
            if dh::is_safe_public_value(&public) {
                return Challenge { b, public };
            }
        }
    }

    /// Checks the client's `A` and proof `m1` for the verifier `v` and the salts it was made
    /// with.
    pub fn check(
        &self,
        v: &[u8; 256],
        salt1: &[u8],
        salt2: &[u8],
        a: &[u8],
        m1: &[u8],
    ) -> Result<(), SrpError> {
        let a = padded(a).ok_or(SrpError::PublicValueInvalid)?;
        if !dh::is_safe_public_value(&a) {
            return Err(SrpError::PublicValueInvalid);
        }
        let u = wide(&sha256(&[&a, &self.public]));
        let s = dh::mod_pow(&dh::mul_mod(&a, &dh::mod_pow(v, &u)), &self.b);
        let key = sha256(&[&s]);
        let hp = sha256(&[&DH_PRIME]);
        let hg = sha256(&[&g_padded()]);
        let mut mixed = [0u8; 32];
        for (i, m) in mixed.iter_mut().enumerate() {
            *m = hp[i] ^ hg[i];
        }
        let expected = sha256(&[
            &mixed,
            &sha256(&[salt1]),
            &sha256(&[salt2]),
            &a,
            &self.public,
            &key,
        ]);
        if m1.len() == 32 && bool::from(expected.ct_eq(m1)) {
            Ok(())
        } else {
            Err(SrpError::ProofMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsEntropy;

    /// The client's half, as the spec writes it, with `x` given (the clients derive it from the
    /// password with PBKDF2; the server never does).
    fn client_proof(
        x: &[u8; 256],
        salt1: &[u8],
        salt2: &[u8],
        public_b: &[u8; 256],
    ) -> ([u8; 256], [u8; 32]) {
        let g = g_padded();
        let a_secret: [u8; 256] = OsEntropy.array();
        let a = dh::mod_pow(&g, &a_secret);
        let u = wide(&sha256(&[&a, public_b]));
        let k = sha256(&[&DH_PRIME, &g]);
        let v = dh::mod_pow(&g, x);
        let kv = dh::mul_mod(&k, &v);
        // B - k·v = g^b; S = (g^b)^(a + u·x) = (g^b)^a · ((g^b)^u)^x.
        let base = dh::sub_mod(public_b, &kv);
        let s = dh::mul_mod(
            &dh::mod_pow(&base, &a_secret),
            &dh::mod_pow(&dh::mod_pow(&base, &u), x),
        );
        let key = sha256(&[&s]);
        let hp = sha256(&[&DH_PRIME]);
        let hg = sha256(&[&g]);
        let mut mixed = [0u8; 32];
        for (i, m) in mixed.iter_mut().enumerate() {
            *m = hp[i] ^ hg[i];
        }
        let m1 = sha256(&[
            &mixed,
            &sha256(&[salt1]),
            &sha256(&[salt2]),
            &a,
            public_b,
            &key,
        ]);
        (a, m1)
    }

    #[test]
    fn the_right_password_is_accepted_and_a_wrong_one_refused() {
        let x: [u8; 256] = {
            let mut x = [0u8; 256];
            x[224..].copy_from_slice(&sha256(&[b"correct horse"]));
            x
        };
        let v = verifier(&dh::mod_pow(&g_padded(), &x)).unwrap();
        let (salt1, salt2) = (
            b"salt-one-and-client-part".as_slice(),
            b"salt-two".as_slice(),
        );
        let challenge = Challenge::new(&v, &mut OsEntropy);
        let (a, m1) = client_proof(&x, salt1, salt2, &challenge.public);
        assert_eq!(challenge.check(&v, salt1, salt2, &a, &m1), Ok(()));

        let mut wrong_x = x;
        wrong_x[255] ^= 1;
        let (a, m1) = client_proof(&wrong_x, salt1, salt2, &challenge.public);
        assert_eq!(
            challenge.check(&v, salt1, salt2, &a, &m1),
            Err(SrpError::ProofMismatch)
        );
        let (a, m1) = client_proof(&x, salt1, b"other salt", &challenge.public);
        assert_eq!(
            challenge.check(&v, salt1, salt2, &a, &m1),
            Err(SrpError::ProofMismatch)
        );
        assert_eq!(
            challenge.check(&v, salt1, salt2, &[1], &m1),
            Err(SrpError::PublicValueInvalid)
        );
        assert_eq!(
            challenge.check(&v, salt1, salt2, &a, &m1[..31]),
            Err(SrpError::ProofMismatch)
        );
    }

    #[test]
    fn verifiers_out_of_range_are_refused() {
        assert_eq!(verifier(&[]), Err(SrpError::VerifierInvalid));
        assert_eq!(verifier(&[1]), Err(SrpError::VerifierInvalid));
        assert_eq!(verifier(&DH_PRIME), Err(SrpError::VerifierInvalid));
        assert_eq!(verifier(&[1; 257]), Err(SrpError::VerifierInvalid));
        assert!(verifier(&[2]).is_ok());
    }
}
