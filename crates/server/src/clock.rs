//! The server's one source of the time of day, passed to everything that needs it. In service
//! it is the operating system's clock; tests can follow tokio's clock instead, which
//! `tokio::time::pause` stops and `advance` moves, so timers and timeouts are tested in
//! milliseconds.

/// Where the time of day comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The operating system's clock (it follows NTP corrections, as message ids must).
    System,
    /// Tokio's clock, counted from `epoch_ms` at `start`.
    Tokio {
        /// Unix time, milliseconds, at `start`.
        epoch_ms: i64,
        /// When the clock started, on tokio's clock.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's time from now, starting at Unix time `epoch_ms`.
    pub fn tokio(epoch_ms: i64) -> Clock {
        Clock::Tokio {
            epoch_ms,
            start: tokio::time::Instant::now(),
        }
    }

    /// Unix time, milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            Clock::Tokio { epoch_ms, start } => epoch_ms + start.elapsed().as_millis() as i64,
        }
    }

    /// Unix time, seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms() / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_only_with_tokio_time() {
        let clock = Clock::tokio(1_000_000);
        assert_eq!(clock.now_ms(), 1_000_000);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now_secs(), 1_090);
    }

    #[test]
    fn the_system_clock_is_the_time_of_day() {
        assert!(Clock::System.now_secs() > 1_700_000_000);
    }
}
