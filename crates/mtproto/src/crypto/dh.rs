//! Diffie–Hellman over Telegram's 2048-bit safe prime with g = 3
//! (`docs/clients.md §1.2`), constant time in the
//! secret exponent, with the range checks the clients and the spec require.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd, Resize};

use super::Entropy;

/// The generator mtcall uses (valid: the prime is 2 mod 3).
pub const G: i32 = 3;

/// Telegram's well-known 2048-bit safe prime, big-endian. Checked prime and safe by the tests.
pub const DH_PRIME: [u8; 256] = hex_256(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b",
);

const fn hex_256(s: &str) -> [u8; 256] {
    let b = s.as_bytes();
    let mut out = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex"),
    }
}

const BITS: u32 = 2048;

fn uint(be: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(be).resize(BITS)
}

/// Montgomery parameters of the prime, computed once.
fn params() -> &'static BoxedMontyParams {
    static PARAMS: std::sync::OnceLock<BoxedMontyParams> = std::sync::OnceLock::new();
    PARAMS
        .get_or_init(|| BoxedMontyParams::new(Odd::new(uint(&DH_PRIME)).expect("the prime is odd")))
}

fn to_256(x: &BoxedUint) -> [u8; 256] {
    let bytes = x.to_be_bytes();
    let mut out = [0u8; 256];
    let n = bytes.len().min(256);
    out[256 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    out
}

/// `base ^ exp mod p`, big-endian 256-byte result; constant time in `exp`.
pub fn mod_pow(base: &[u8], exp: &[u8; 256]) -> [u8; 256] {
    let b = BoxedMontyForm::new(uint(base), params());
    to_256(&b.pow(&uint(exp)).retrieve())
}

fn monty(x: &[u8]) -> BoxedMontyForm {
    BoxedMontyForm::new(uint(x), params())
}

/// `a · b mod p` for `a`, `b` below p (big-endian), as 256 bytes.
pub fn mul_mod(a: &[u8], b: &[u8]) -> [u8; 256] {
    to_256(&(monty(a) * monty(b)).retrieve())
}

/// `a + b mod p` for `a`, `b` below p (big-endian), as 256 bytes.
pub fn add_mod(a: &[u8], b: &[u8]) -> [u8; 256] {
    to_256(&(monty(a) + monty(b)).retrieve())
}

/// `a - b mod p` for `a`, `b` below p (big-endian), as 256 bytes.
pub fn sub_mod(a: &[u8], b: &[u8]) -> [u8; 256] {
    to_256(&(monty(a) - monty(b)).retrieve())
}

/// Whether `1 < value < p - 1` (big-endian, 256 bytes at most).
pub fn is_between_one_and_p_minus_one(value: &[u8]) -> bool {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    if value.len() - start > 256 {
        return false;
    }
    let v = uint(&value[start..]);
    let one = BoxedUint::one().resize(BITS);
    let p_minus_one = uint(&DH_PRIME).wrapping_sub(&one);
    v > one && v < p_minus_one
}

/// Whether `value` (big-endian) is a safe DH public value:
/// `1 < v < p - 1` and `2^(2048-64) <= v <= p - 2^(2048-64)`.
pub fn is_safe_public_value(value: &[u8]) -> bool {
    let trimmed: &[u8] = {
        let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
        &value[start..]
    };
    if trimmed.len() > 256 {
        return false;
    }
    let v = uint(trimmed);
    let p = uint(&DH_PRIME);
    let low = BoxedUint::one().resize(BITS).shl(BITS - 64);
    let high = p.wrapping_sub(&low);
    v >= low && v <= high
}

/// A fresh secret exponent `a` and `g^a mod p`, drawn again until `g^a` is in the safe range.
pub fn keypair(entropy: &mut impl Entropy) -> ([u8; 256], [u8; 256]) {
    loop {
        let a: [u8; 256] = entropy.array();
        let g_a = mod_pow(&[G as u8], &a);
        if is_safe_public_value(&g_a) {
            return (a, g_a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement() {
        let mut e = crate::crypto::OsEntropy;
        let (a, g_a) = keypair(&mut e);
        let (b, g_b) = keypair(&mut e);
        assert_eq!(mod_pow(&g_b, &a), mod_pow(&g_a, &b));
        assert_eq!(&DH_PRIME[..4], &[0xc7, 0x1c, 0xae, 0xb9]);
    }

    #[test]
    fn range_checks() {
        assert!(!is_safe_public_value(&[1]));
        assert!(!is_safe_public_value(&[0]));
        assert!(!is_safe_public_value(&DH_PRIME));
        let mut p_minus_1 = DH_PRIME;
        p_minus_1[255] -= 1;
        assert!(!is_safe_public_value(&p_minus_1));
        assert!(!is_safe_public_value(&[0xff; 257]));
        let mut mid = [0u8; 256];
        mid[0] = 0x40;
        assert!(is_safe_public_value(&mid));
    }
}
