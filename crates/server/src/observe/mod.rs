//! What the server sees, for the people testing clients against it and for operators:
//! Prometheus counters and histograms ([`metrics`]), the call inspector's bounded record of
//! sessions, calls and each call's messages ([`inspector`]), and their JSON and text views
//! ([`views`], [`timeline`]) served on the admin address (`crate::admin`). Recording costs a
//! counter or a short lock; decoding TL and naming users wait until someone looks.

pub mod inspector;
pub mod metrics;
pub mod timeline;
pub mod views;

use std::collections::HashMap;

use crate::shared::Shared;
use inspector::CallRecord;

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

/// Live calls, then ended ones newest first: what this node recorded and, with several nodes,
/// each call in the state the shared database holds now (another node may have changed it
/// since), including calls only other nodes handled (without their messages).
pub async fn calls(shared: &Shared) -> (Vec<CallRecord>, Vec<CallRecord>) {
    let (live, recent) = shared.observe.inspector.calls();
    let Some(stored) = shared.calls.stored_calls().await else {
        return (live, recent);
    };
    let mut records: HashMap<i64, CallRecord> = live
        .into_iter()
        .chain(recent)
        .map(|r| (r.call.id, r))
        .collect();
    for call in stored {
        match records.get_mut(&call.id) {
            Some(record) => {
                if record.ended_at_ms.is_none() {
                    record.ended_at_ms = call.discard.as_ref().map(|d| i64::from(d.at) * 1000);
                }
                record.call = call;
            }
            None => {
                records.insert(call.id, CallRecord::stored(call));
            }
        }
    }
    let (mut live, mut recent): (Vec<_>, Vec<_>) =
        records.into_values().partition(|r| r.call.state.is_live());
    live.sort_by_key(|r| std::cmp::Reverse(r.seen_at_ms));
    recent.sort_by_key(|r| std::cmp::Reverse(r.ended_at_ms));
    (live, recent)
}

/// The calls that have not ended, wherever they live.
async fn live_calls(shared: &Shared) -> Vec<calls::Call> {
    shared.calls.live_calls().await.unwrap_or_else(|e| {
        tracing::warn!(error = ?e, "cannot list the live calls");
        Vec::new()
    })
}

/// The users busy in a call.
pub async fn busy_users(shared: &Shared) -> Vec<i64> {
    let live = live_calls(shared).await;
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
    gauges.calls_live = live_calls(shared).await.len() as u64;
    gauges.busy_users = busy_users(shared).await.len() as u64;
    gauges.users_online = shared.hub.users_online() as u64;
    shared.observe.metrics.render(&gauges)
}
