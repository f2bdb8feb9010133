//! Cryptography of MTProto 2.0 (`docs/clients.md §1.3`): hashes,
//! AES-256-IGE, the message-key derivation for both directions, auth keys, the server's RSA
//! key, Diffie–Hellman over Telegram's 2048-bit safe prime, the pq factoring puzzle, and
//! the server's half of SRP for cloud passwords.
//! Randomness comes from the caller ([`Entropy`]); nothing here reads a clock.

pub mod aes_ige;
pub mod auth_key;
pub mod dh;
pub mod pq;
pub mod rsa_key;
pub mod srp;

pub use auth_key::{AuthKey, Plaintext};

use sha1::Digest as _;

/// A source of random bytes, given to the sans-IO state machines.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A random `i64`.
    fn i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        i64::from_le_bytes(b)
    }

    /// `N` random bytes.
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// The operating system's random source.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

/// Bytes read from the OS ahead, per thread, so the few random bytes of each message's padding
/// do not cost a system call each (they did: 4% of the server's time under load). Every byte
/// is still the OS's and is handed out once.
struct Reserve {
    bytes: [u8; 4096],
    used: usize,
}

thread_local! {
    static RESERVE: std::cell::RefCell<Reserve> = const {
        std::cell::RefCell::new(Reserve { bytes: [0; 4096], used: 4096 })
    };
}

fn os_fill(buf: &mut [u8]) {
    // getrandom only fails when the OS has no entropy source at all; nothing sensible can
    // continue then.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        if buf.len() > 256 {
            return os_fill(buf);
        }
        RESERVE.with_borrow_mut(|r| {
            if r.bytes.len() - r.used < buf.len() {
                os_fill(&mut r.bytes);
                r.used = 0;
            }
            let taken = &mut r.bytes[r.used..r.used + buf.len()];
            buf.copy_from_slice(taken);
            // Handed out once: forget them.
            taken.fill(0);
            r.used += buf.len();
        });
    }
}

/// SHA-1 of the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}
