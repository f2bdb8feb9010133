//! What the server sees, for the people testing clients against it and for operators:
//! Prometheus counters and histograms ([`metrics`]), the call inspector's bounded record of
//! sessions, calls and each call's messages ([`inspector`]), and their JSON and text views
//! ([`views`], [`timeline`]) served on the admin address. Recording costs a
//! counter or a short lock; decoding TL and naming users wait until someone looks.

pub mod inspector;
pub mod metrics;
pub mod timeline;
pub mod views;

/// Metrics and the inspector, shared by every connection.
pub struct Observer {
    /// Counters and histograms.
    pub metrics: metrics::Metrics,
    /// Sessions, calls and their messages.
    pub inspector: inspector::Inspector,
    /// When the server started, Unix ms.
    pub started_at_ms: i64,
}

impl Observer {
    /// A fresh observer.
    pub fn new(settings: inspector::InspectorSettings, started_at_ms: i64) -> Self {
        Observer {
            metrics: metrics::Metrics::default(),
            inspector: inspector::Inspector::new(settings),
            started_at_ms,
        }
    }

    /// Committed call changes and their events: the inspector's record, setups and outcomes
    /// (the caller skips commits that changed nothing and read no clock for them).
    pub fn calls_committed(
        &self,
        calls: &[std::sync::Arc<calls::Call>],
        events: &[calls::CallEvent],
        now_ms: i64,
    ) {
        let (setups, outcomes) = self.inspector.calls_committed(calls, events, now_ms);
        for _ in 0..setups {
            self.metrics.call_setup();
        }
        for o in outcomes {
            self.metrics.outcome(o);
        }
    }
}
