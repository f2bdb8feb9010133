//! The server's RSA-2048 key (`docs/clients.md §1.2`):
//! generation, PKCS#1 PEM files, the fingerprint clients select it by, and the raw private
//! operation (constant time, blinded) that `req_DH_params` needs. The public half encrypts for
//! the client role.

use rsa::hazmat::{rsa_decrypt, rsa_encrypt};
use rsa::pkcs1::{
    DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};

use super::sha1;

/// Errors reading or creating a key.
#[derive(Debug)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// TL `bytes` serialisation of a big-endian number (for the fingerprint).
fn tl_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    tl::Writer::new(&mut out, tl::Layer::LATEST).put_bytes(b);
    out
}

fn trimmed(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// The fingerprint of a public key `(n, e)`: the low 64 bits of
/// `SHA1(tl_bytes(n) + tl_bytes(e))`, little-endian signed, as clients compute it.
pub fn fingerprint(n_be: &[u8], e_be: &[u8]) -> i64 {
    let h = sha1(&[&tl_bytes(trimmed(n_be)), &tl_bytes(trimmed(e_be))]);
    i64::from_le_bytes(h[12..20].try_into().expect("8 bytes"))
}

/// Whether a fingerprint's 16-digit hex form has no leading zero.
pub fn has_full_width_hex(fingerprint: i64) -> bool {
    fingerprint as u64 >= 1 << 60
}

/// A server RSA key pair.
pub struct ServerKey {
    private: RsaPrivateKey,
    fingerprint: i64,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKey(fingerprint {})", self.fingerprint)
    }
}

impl ServerKey {
    /// A new random 2048-bit key with e = 65537, whose fingerprint written as 16 hex digits
    /// does not start with `0`.
    ///
    /// mtcute stores the keys it knows under 16 hex digits but looks the server's fingerprint up
    /// by its unpadded hex form, so it never finds a key whose fingerprint is below `1 << 60`
    /// (one key in 16). Such keys are drawn again.
    pub fn generate() -> Result<Self, KeyError> {
        loop {
            let private = RsaPrivateKey::new(&mut rand::rngs::SysRng, 2048)
                .map_err(|e| KeyError(e.to_string()))?;
            let key = Self::from_private(private);
            if has_full_width_hex(key.fingerprint) {
                return Ok(key);
            }
        }
    }

    fn from_private(private: RsaPrivateKey) -> Self {
        let fingerprint = fingerprint(&private.n().to_be_bytes(), &private.e().to_be_bytes());
        ServerKey {
            private,
            fingerprint,
        }
    }

    /// Reads a PKCS#1 private key PEM (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pkcs1_pem(pem: &str) -> Result<Self, KeyError> {
        let private = RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| KeyError(format!("reading the RSA private key: {e}")))?;
        if private.n().bit_width() != 2048 {
            return Err(KeyError(format!(
                "the RSA key has {} bits; MTProto needs 2048",
                private.n().bit_width()
            )));
        }
        Ok(Self::from_private(private))
    }

    /// The private key as PKCS#1 PEM.
    pub fn to_pkcs1_pem(&self) -> Result<String, KeyError> {
        self.private
            .to_pkcs1_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.private.to_public_key(),
            fingerprint: self.fingerprint,
        }
    }

    /// The fingerprint clients send in `req_DH_params`.
    pub fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    /// The raw private operation `c^d mod n` on a 256-byte big-endian block; `None` when
    /// `c >= n` or the block is longer than 256 bytes. Blinded and constant time.
    pub fn decrypt_raw(&self, c: &[u8]) -> Option<[u8; 256]> {
        if c.len() > 256 {
            return None;
        }
        let c = BoxedUint::from_be_slice(c, 2048).ok()?;
        let m = rsa_decrypt(Some(&mut rand::rngs::SysRng), &self.private, &c).ok()?;
        let bytes = m.to_be_bytes();
        let mut out = [0u8; 256];
        let n = bytes.len().min(256);
        out[256 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
        Some(out)
    }
}

/// A public key, as a client holds it.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: RsaPublicKey,
    fingerprint: i64,
}

impl PublicKey {
    /// Reads a PKCS#1 public key PEM (`BEGIN RSA PUBLIC KEY`).
    pub fn from_pkcs1_pem(pem: &str) -> Result<Self, KeyError> {
        let key = RsaPublicKey::from_pkcs1_pem(pem)
            .map_err(|e| KeyError(format!("reading the RSA public key: {e}")))?;
        let fingerprint = fingerprint(&key.n().to_be_bytes(), &key.e().to_be_bytes());
        Ok(PublicKey { key, fingerprint })
    }

    /// As PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`), the form Telethon's `add_key` takes.
    pub fn to_pkcs1_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The fingerprint.
    pub fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn n_be(&self) -> Vec<u8> {
        trimmed(&self.key.n().to_be_bytes()).to_vec()
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn e_be(&self) -> Vec<u8> {
        trimmed(&self.key.e().to_be_bytes()).to_vec()
    }

    /// The raw public operation `m^e mod n`; `None` when `m >= n`.
    pub fn encrypt_raw(&self, m: &[u8; 256]) -> Option<[u8; 256]> {
        let m = BoxedUint::from_be_slice(m, 2048).ok()?;
        if m >= self.key.n().as_ref() {
            return None;
        }
        let c = rsa_encrypt(&self.key, &m).ok()?;
        let bytes = c.to_be_bytes();
        let mut out = [0u8; 256];
        let n = bytes.len().min(256);
        out[256 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_fingerprints_have_no_leading_hex_zero() {
        assert!(!has_full_width_hex(0x0fff_ffff_ffff_ffff));
        assert!(has_full_width_hex(0x1000_0000_0000_0000));
        assert!(has_full_width_hex(-1));
        assert_eq!(format!("{:x}", 0x1000_0000_0000_0000u64).len(), 16);
        for _ in 0..3 {
            let key = ServerKey::generate().unwrap();
            assert_eq!(format!("{:x}", key.fingerprint() as u64).len(), 16);
        }
    }

    #[test]
    fn pem_round_trip_and_raw_operations() {
        let key = ServerKey::generate().unwrap();
        let pem = key.to_pkcs1_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let again = ServerKey::from_pkcs1_pem(&pem).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        let public = PublicKey::from_pkcs1_pem(&key.public().to_pkcs1_pem().unwrap()).unwrap();
        assert!(
            public
                .to_pkcs1_pem()
                .unwrap()
                .starts_with("-----BEGIN RSA PUBLIC KEY-----")
        );
        assert_eq!(public.fingerprint(), key.fingerprint());
        let mut m = [0u8; 256];
        m[1..].fill(0x5a);
        let c = public.encrypt_raw(&m).unwrap();
        assert_eq!(key.decrypt_raw(&c), Some(m));
        assert_eq!(key.decrypt_raw(&[0xff; 256]), None, "c >= n is refused");
    }

    #[test]
    fn telegram_fingerprint_formula() {
        // Telegram's test-DC key 0xb25898df208d2603 (from the docs' example: fingerprint
        // -5595554452916591101 as a signed LE int64), n and e below.
        let n = "c8c11d635691fac091dd9489aedced2932aa8a0bcefef05fa800892d9b52ed03200865c9e97211cb2ee6c7ae96d3fb0e15aeffd66019b44a08a240cfdd2868a85e1f54d6fa5deaa041f6941ddf302690d61dc476385c2fa655142353cb4e4b59f6e5b6584db76fe8b1370263246c010c93d011014113ebdf987d093f9d37c2be48352d69a1683f8f6e6c2167983c761e3ab169fde5daaa12123fa1beab621e4da5935e9c198f82f35eae583a99386d8110ea6bd1abb0f568759f62694419ea5f69847c43462abef858b4cb5edc84e7b9226cd7bd7e183aa974a712c079dde85b9dc063b8a5c08e8f859c0ee5dcd824c7807f20153361a7f63cfd2a433a1be7f5";
        let n: Vec<u8> = (0..n.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&n[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(fingerprint(&n, &[1, 0, 1]), -5595554452916591101);
    }
}
