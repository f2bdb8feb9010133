//! Message identifiers (`docs/clients.md §1.3`):
//! Unix time in the upper 32 bits, strictly increasing per session; client ids are divisible by
//! 4, server ids are 1 mod 4 for responses and 3 mod 4 otherwise.

/// Generates strictly increasing message ids from the time given.
#[derive(Clone, Debug, Default)]
pub struct MsgIdGen {
    last: i64,
}

impl MsgIdGen {
    /// A generator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id at `now_ms`, with low bits `residue` (0 client, 1 server response, 3 other
    /// server message).
    pub fn next(&mut self, now_ms: i64, residue: i64) -> i64 {
        let secs = now_ms.div_euclid(1000);
        let frac = (now_ms.rem_euclid(1000) << 32) / 1000;
        let mut id = (secs << 32) | (frac & !3) | residue;
        if id <= self.last {
            id = ((self.last & !3) + 4) | residue;
        }
        self.last = id;
        id
    }
}

/// The Unix time (seconds) a message id carries.
pub fn time_of(msg_id: i64) -> i64 {
    msg_id >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_with_residues() {
        let mut g = MsgIdGen::new();
        let a = g.next(1_700_000_000_500, 1);
        let b = g.next(1_700_000_000_500, 3);
        let c = g.next(1_699_999_999_000, 0); // clock went back: still increasing
        assert!(a < b && b < c);
        assert_eq!((a & 3, b & 3, c & 3), (1, 3, 0));
        assert_eq!(time_of(a), 1_700_000_000);
    }
}
