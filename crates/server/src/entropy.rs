//! Where the server's random numbers come from, chosen once when the server is put together
//! (like [`crate::clock::Clock`]): the operating system, or a seeded stream for tests, which
//! then see the same call ids, access hashes and login codes on every run.

use std::sync::{Arc, Mutex};

use mtproto::crypto::{Entropy, OsEntropy, sha256};

/// A source of random bytes; clones share one stream.
#[derive(Clone, Default)]
pub enum Randomness {
    /// The operating system's random source.
    #[default]
    Os,
    /// SHA-256 of a seed and a counter: reproducible, for tests only.
    Seeded(Arc<Mutex<Stream>>),
}

/// The state of a seeded stream.
pub struct Stream {
    seed: [u8; 8],
    counter: u64,
}

impl Randomness {
    /// A reproducible stream from `seed` (tests: never for keys that protect anything).
    pub fn seeded(seed: u64) -> Randomness {
        Randomness::Seeded(Arc::new(Mutex::new(Stream {
            seed: seed.to_le_bytes(),
            counter: 0,
        })))
    }
}

impl Entropy for Randomness {
    fn fill(&mut self, buf: &mut [u8]) {
        match self {
            Randomness::Os => OsEntropy.fill(buf),
            Randomness::Seeded(stream) => {
                let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
                for chunk in buf.chunks_mut(32) {
                    let block = sha256(&[b"mtcall-seeded", &s.seed, &s.counter.to_le_bytes()]);
                    s.counter += 1;
                    chunk.copy_from_slice(&block[..chunk.len()]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_bytes_and_clones_share_the_stream() {
        let (mut a, mut b) = (Randomness::seeded(7), Randomness::seeded(7));
        assert_eq!(a.array::<40>(), b.array::<40>());
        let mut shared = a.clone();
        assert_ne!(a.i64(), shared.i64());
        assert_ne!(Randomness::seeded(8).i64(), Randomness::seeded(7).i64());
    }
}
