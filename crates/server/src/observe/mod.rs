//! What the server sees, for the people testing clients against it and for operators (issue 8):
//! Prometheus counters and histograms ([`metrics`]), the call inspector's bounded record of
//! sessions, calls and each call's messages ([`inspector`]), and their JSON and text views
//! ([`views`], [`timeline`]) served on the admin address (`crate::admin`). Recording costs a
//! counter or a short lock; decoding TL and naming users wait until someone looks.

pub mod inspector;
pub mod metrics;
pub mod timeline;
pub mod views;

use crate::shared::Shared;

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

    /// Committed call changes: the inspector's record, setups and outcomes.
    pub fn calls_committed(&self, calls: &[calls::Call], now_ms: i64) {
        if calls.is_empty() {
            return;
        }
        let (setups, outcomes) = self.inspector.calls_committed(calls, now_ms);
        for _ in 0..setups {
            self.metrics.call_setup();
        }
        for o in outcomes {
            self.metrics.outcome(o);
        }
    }
}

/// The users busy in a call: from the call registry on one node, from the calls this node has
/// seen with several.
pub async fn busy_users(shared: &Shared) -> Vec<i64> {
    let live = match &shared.cluster {
        None => shared
            .calls
            .lock()
            .await
            .live_calls()
            .cloned()
            .collect::<Vec<_>>(),
        Some(_) => shared.observe.inspector.live_calls(),
    };
    let mut busy: Vec<i64> = live
        .iter()
        .flat_map(|c| [c.admin_id, c.participant_id].map(|u| (c, u)))
        .filter(|(c, u)| c.makes_busy(*u))
        .map(|(_, u)| u)
        .collect();
    busy.sort_unstable();
    busy.dedup();
    busy
}

/// `/metrics`: the counters, and the gauges of this moment.
pub async fn render_metrics(shared: &Shared) -> String {
    let mut gauges = metrics::Gauges::default();
    for s in shared.observe.inspector.sessions() {
        let transport = s.transport.map_or("unknown", |k| k.name());
        *gauges
            .connections
            .entry((transport, s.obfuscated))
            .or_default() += 1;
    }
    gauges.calls_live = match &shared.cluster {
        None => shared.calls.lock().await.live_calls().count() as u64,
        Some(_) => shared.observe.inspector.live_calls().len() as u64,
    };
    gauges.busy_users = busy_users(shared).await.len() as u64;
    gauges.users_online = shared.hub.users_online() as u64;
    shared.observe.metrics.render(&gauges)
}
