//! Token buckets: a rate per second with one second of burst, refilled from the time the
//! caller passes in.

/// A bucket of `rate` tokens a second, holding at most `rate`.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    rate: u64,
    /// Tokens, in thousandths (so refill by the millisecond loses nothing).
    milli_tokens: u64,
    at_ms: u64,
}

impl Bucket {
    pub(crate) fn full(rate: u64, now_ms: u64) -> Bucket {
        Bucket {
            rate,
            milli_tokens: rate * 1000,
            at_ms: now_ms,
        }
    }

    /// Takes `n` tokens if there are that many.
    pub(crate) fn take(&mut self, n: u64, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        self.at_ms = self.at_ms.max(now_ms);
        let cap = self.rate * 1000;
        self.milli_tokens = (self.milli_tokens + elapsed * self.rate).min(cap);
        let want = n * 1000;
        if self.milli_tokens >= want {
            self.milli_tokens -= want;
            true
        } else {
            false
        }
    }
}
