//! The proof-of-work of auth-key creation (`docs/clients.md §1.2`):
//! the server sends `pq`, a product of two random 31-bit primes; the client factors it. `pq`
//! stays below 2^62: GramJS and Telethon read it as a signed 64-bit number (Telethon then fails,
//! GramJS's factoriser never returns), as Telegram's own `pq` always fits.

use super::Entropy;

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

fn pow_mod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1u64;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, m);
        }
        b = mul_mod(b, b, m);
        e >>= 1;
    }
    r
}

/// Deterministic Miller–Rabin for 64-bit numbers.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let (mut d, mut s) = (n - 1, 0);
    while d % 2 == 0 {
        d /= 2;
        s += 1;
    }
    'witness: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// A fresh `(pq, p, q)` with `p < q`, both primes in `(2^30, 2^31)`, so `pq < 2^62`.
pub fn generate(entropy: &mut impl Entropy) -> (u64, u32, u32) {
    let mut prime = || loop {
        let mut b = [0u8; 4];
        entropy.fill(&mut b);
        let c = (u32::from_le_bytes(b) & 0x7fff_ffff) | 0x4000_0001;
        if is_prime(c as u64) {
            return c;
        }
    };
    loop {
        let (a, b) = (prime(), prime());
        if a != b {
            let (p, q) = (a.min(b), a.max(b));
            return (p as u64 * q as u64, p, q);
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Factors `pq` into `(p, q)`, `p <= q` (Pollard's rho, Brent's variant). `None` if `pq` is not
/// a product of two primes it can split.
pub fn factorize(pq: u64) -> Option<(u64, u64)> {
    if pq < 4 {
        return None;
    }
    if pq.is_multiple_of(2) {
        return Some((2, pq / 2));
    }
    for c in 1..64u64 {
        let f = |x: u64| (mul_mod(x, x, pq) + c) % pq;
        let (mut x, mut y, mut d) = (2u64, 2u64, 1u64);
        while d == 1 {
            x = f(x);
            y = f(f(y));
            d = gcd(x.abs_diff(y), pq);
        }
        if d != pq {
            let (a, b) = (d, pq / d);
            return Some((a.min(b), a.max(b)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_factors() {
        assert_eq!(
            factorize(0x17ED48941A08F981),
            Some((0x494C553B, 0x53911073))
        );
    }

    #[test]
    fn generated_pq_factors_back() {
        let mut e = crate::crypto::OsEntropy;
        for _ in 0..200 {
            let (pq, p, q) = generate(&mut e);
            assert!(is_prime(p as u64) && is_prime(q as u64));
            assert_eq!(factorize(pq), Some((p as u64, q as u64)));
            assert!(
                pq < 1 << 62,
                "pq must read as a positive signed 64-bit number"
            );
        }
    }
}
