//! What the admin address reads from the running server: the calls (this node's record, and
//! with several nodes each call as the shared database holds it now), who is busy, the JSON of
//! the page's views, and `/metrics` with the gauges of this moment.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::media::with_media;
use crate::node::Node;
use crate::observe::inspector::CallRecord;
use crate::observe::metrics;
use crate::observe::views::{Names, call_summary, display_name, event, session, user_ids};

/// Live calls, then ended ones newest first: what this node recorded and, with several nodes,
/// each call in the state the shared database holds now (another node may have changed it
/// since), including calls only other nodes handled (without their messages).
pub async fn calls(node: &Node) -> (Vec<CallRecord>, Vec<CallRecord>) {
    let (live, recent) = node.observe.inspector.calls();
    let kept = u32::try_from(node.config.admin.inspector().recent_calls).unwrap_or(u32::MAX);
    let Some(stored) = node.services.calls.stored_calls(kept).await else {
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
                    record.ended_at_ms = call.discard().map(|d| i64::from(d.at) * 1000);
                }
                record.call = Arc::new(call);
            }
            None => {
                records.insert(call.id, CallRecord::stored(call));
            }
        }
    }
    let (mut live, mut recent): (Vec<_>, Vec<_>) = records
        .into_values()
        .partition(|r| r.call.state().is_live());
    live.sort_by_key(|r| std::cmp::Reverse(r.seen_at_ms));
    recent.sort_by_key(|r| std::cmp::Reverse(r.ended_at_ms));
    (live, recent)
}

/// Looks up the names of `ids` not yet in `names`.
pub(super) async fn load_names(node: &Node, names: &mut Names, ids: impl IntoIterator<Item = i64>) {
    for id in ids {
        if names.contains(id) {
            continue;
        }
        let name = match node.services.users.get(id).await {
            Ok(Some(u)) => display_name(&u),
            _ => format!("user {id}"),
        };
        names.insert(id, name);
    }
}

/// The calls that have not ended, wherever they live.
async fn live_calls(node: &Node) -> Vec<calls::Call> {
    node.services.calls.live_calls().await.unwrap_or_else(|e| {
        tracing::warn!(error = ?e, "cannot list the live calls");
        Vec::new()
    })
}

/// The users busy in a call.
pub async fn busy_users(node: &Node) -> Vec<i64> {
    busy_in(&live_calls(node).await)
}

/// The users the live calls `live` make busy, ascending.
fn busy_in(live: &[calls::Call]) -> Vec<i64> {
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
pub async fn render_metrics(node: &Node) -> String {
    let mut gauges = metrics::Gauges::default();
    for s in node.observe.inspector.sessions() {
        let transport = s.transport.map_or("unknown", |k| k.name());
        *gauges
            .connections
            .entry((transport, s.obfuscated))
            .or_default() += 1;
    }
    let live = live_calls(node).await;
    gauges.calls_live = live.len() as u64;
    gauges.busy_users = busy_in(&live).len() as u64;
    gauges.users_online = node.services.users.online_here() as u64;
    gauges.relay = node.services.calls.reflector().map(|r| r.figures());
    gauges.memory = node.services.calls.memory().await;
    gauges.transition_groups = node.services.calls.transition_groups();
    node.observe.metrics.render(&gauges)
}

/// The page's start: node, sessions, calls, busy users and the latest events.
pub async fn overview(node: &Node) -> Value {
    let inspector = &node.observe.inspector;
    let sessions = inspector.sessions();
    let (live, recent) = calls(node).await;
    let feed = inspector.feed(200);
    let busy = busy_users(node).await;
    let mut names = Names::default();
    let mut ids = user_ids(live.iter().chain(&recent), feed.iter().map(|e| e.as_ref()));
    ids.extend(sessions.iter().filter_map(|s| s.keyed.as_ref()?.user_id));
    ids.extend(&busy);
    load_names(node, &mut names, ids).await;
    json!({
        "node": {
            "version": env!("CARGO_PKG_VERSION"),
            "mtproto_address": node.config.public_address().to_string(),
            "store": if node.config.database.is_some() { "postgres" } else { "sqlite" },
            "started_at_ms": node.observe.started_at_ms,
            "now_ms": node.clock.now_ms(),
            "rsa_keys": node.sessions.rsa_key_list().iter().map(|k| json!({
                "fingerprint": k.fingerprint.to_string(),
                "public_key": k.public_path.display().to_string(),
            })).collect::<Vec<_>>(),
        },
        "sessions": sessions.iter().map(|s| session(s, &names, &busy)).collect::<Vec<_>>(),
        "calls": {
            "live": live.iter().map(|r| with_media(node, &r.call, call_summary(r, &names))).collect::<Vec<_>>(),
            "recent": recent.iter().map(|r| with_media(node, &r.call, call_summary(r, &names))).collect::<Vec<_>>(),
        },
        "busy_users": busy.iter().map(|u| names.user(*u)).collect::<Vec<_>>(),
        "feed": feed.iter().map(|e| event(e, &names)).collect::<Vec<_>>(),
    })
}

/// Live and recent calls, as the API lists them.
pub async fn calls_json(node: &Node) -> Value {
    let (live, recent) = calls(node).await;
    let mut names = Names::default();
    load_names(node, &mut names, user_ids(live.iter().chain(&recent), [])).await;
    json!({
        "live": live.iter().map(|r| with_media(node, &r.call, call_summary(r, &names))).collect::<Vec<_>>(),
        "recent": recent.iter().map(|r| with_media(node, &r.call, call_summary(r, &names))).collect::<Vec<_>>(),
    })
}

/// Every registered user, with their sessions on this node and whether they are busy.
pub async fn users(node: &Node) -> Result<Value, store::StoreError> {
    let users = node.services.users.all().await?;
    let sessions = node.observe.inspector.sessions();
    let busy = busy_users(node).await;
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            let n = sessions
                .iter()
                .filter(|s| s.keyed.as_ref().and_then(|k| k.user_id) == Some(u.id))
                .count();
            json!({
                "id": u.id,
                "name": display_name(u),
                "phone": u.phone,
                "username": u.username,
                "bot": u.bot,
                "sessions": n,
                "busy": busy.contains(&u.id),
            })
        })
        .collect();
    Ok(json!({ "users": list }))
}
