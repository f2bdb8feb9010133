//! Runs the sans-IO call registry for the server: one lock serialises every transition (so the
//! busy check and a new call's creation are one step); each changed call is queued for storage
//! under the lock, in transition order, and committed before anyone hears of it; then history
//! is written and updates pushed — each rendered for its viewer.

use std::sync::Arc;

use calls::{Call, CallRegistry, Effects, HistoryEntry, Push, PushTarget};
use mtproto::crypto::{Entropy, OsEntropy};
use tl::{Encode, Layer, enums, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::{Shared, now_secs};

/// Random call ids and access hashes.
pub struct RandomIds;

impl calls::Ids for RandomIds {
    fn call_id(&mut self) -> i64 {
        OsEntropy.i64() & i64::MAX
    }
    fn access_hash(&mut self) -> i64 {
        OsEntropy.i64()
    }
}

/// Queues the writes of what an operation changed and returns the wait for their commit.
/// Call it while holding the registry lock and await the result after releasing it: the store
/// applies writes in the order they were queued (the [`store::Store`] contract), so calls are
/// stored in the order the registry changed them, while the next transition need not wait for
/// this one's commit — and concurrent transitions share one commit. Nobody hears of a change
/// before its commit: results and pushes come after the wait.
pub fn queue_persist<'a, R>(
    shared: &'a Shared,
    effects: &Effects<R>,
) -> impl std::future::Future<Output = Result<(), RpcError>> + 'a {
    let now = now_secs();
    let mut writes: Vec<store::StoreFuture<'a, ()>> = effects
        .persist
        .iter()
        .map(|call| {
            shared.store.save_call(store::CallRow {
                id: call.id,
                admin_id: call.admin_id,
                participant_id: call.participant_id,
                state: call.state.name().into(),
                body: call.to_bytes(),
                updated_at: now,
            })
        })
        .collect();
    writes.extend(
        effects
            .forget
            .iter()
            .map(|id| shared.store.delete_call(*id)),
    );
    async move {
        for write in writes {
            write.await?;
        }
        Ok(())
    }
}

/// Restores stored calls into the registry at start-up.
pub async fn load(shared: &Shared, registry: &mut CallRegistry) -> Result<usize, String> {
    let rows = shared.store.load_calls().await.map_err(|e| e.to_string())?;
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        match Call::from_bytes(&row.body) {
            Ok(c) => calls.push(c),
            Err(e) => {
                tracing::warn!(call_id = row.id, error = %e, "stored call does not decode; skipped")
            }
        }
    }
    let n = calls.len();
    registry.load(calls);
    Ok(n)
}

/// `phoneCall.connections` and `p2p_allowed` for a call.
pub fn connections(shared: &Shared, call: &Call) -> (Vec<enums::PhoneConnection>, bool) {
    let tag = mtproto::crypto::sha256(&[b"peer-tag", &shared.secret, &call.id.to_le_bytes()]);
    let mut list: Vec<enums::PhoneConnection> = shared
        .config
        .calls
        .reflectors
        .iter()
        .map(|r| {
            types::PhoneConnection {
                tcp: r.tcp,
                id: r.id,
                ip: r.ip.clone(),
                ipv6: r.ipv6.clone(),
                port: r.port,
                peer_tag: tag[..16].to_vec(),
            }
            .into()
        })
        .collect();
    list.extend(shared.config.calls.webrtc.iter().map(|w| {
        enums::PhoneConnection::from(types::PhoneConnectionWebrtc {
            turn: w.turn,
            stun: w.stun,
            id: w.id,
            ip: w.ip.clone(),
            ipv6: w.ipv6.clone(),
            port: w.port,
            username: w.username.clone(),
            password: w.password.clone(),
        })
    }));
    let p2p = call.negotiated.as_ref().is_some_and(|p| p.udp_p2p);
    (list, p2p)
}

/// The call as `viewer` sees it.
pub fn view(shared: &Shared, call: &Call, viewer: i64) -> enums::PhoneCall {
    let (connections, p2p) = connections(shared, call);
    calls::view(call, viewer, &connections, p2p)
}

/// Both parties of a call, as `viewer` sees them.
pub async fn users(
    shared: &Shared,
    call: &Call,
    viewer: i64,
) -> Result<Vec<enums::User>, RpcError> {
    parties(shared, [call.admin_id, call.participant_id], viewer).await
}

/// Users `ids` as `viewer` sees them (unknown ids are left out).
async fn parties(
    shared: &Shared,
    ids: [i64; 2],
    viewer: i64,
) -> Result<Vec<enums::User>, RpcError> {
    let mut out = Vec::with_capacity(2);
    for id in ids {
        if let Some(u) = shared.cache.user(shared.store.as_ref(), id).await? {
            let contact = viewer != id
                && shared
                    .cache
                    .is_contact(shared.store.as_ref(), viewer, id)
                    .await?;
            out.push(render::user_for_viewer(shared, viewer, &u, contact));
        }
    }
    Ok(out)
}

fn updates(list: Vec<enums::Update>, users: Vec<enums::User>) -> enums::Updates {
    types::Updates {
        updates: list,
        users,
        chats: vec![],
        date: now_secs() as i32,
        seq: 0,
    }
    .into()
}

fn deliver(shared: &Shared, target: PushTarget, value: enums::Updates) {
    let value = Arc::new(value);
    match target {
        PushTarget::User(u) => shared.hub.push_where(u, value, |_, _| true),
        PushTarget::UserExcept(u, key) => shared.hub.push_where(u, value, |_, k| k != key),
        PushTarget::Session(s) => shared
            .hub
            .push_where(s.user_id, value, |_, k| k == s.key_id),
    };
}

/// Pushes every update of an operation, rendered per viewer.
pub async fn push_all(shared: &Shared, pushes: &[Push]) -> Result<(), RpcError> {
    for p in pushes {
        match p {
            Push::Call {
                target,
                viewer,
                call,
            } => {
                let users = users(shared, call, *viewer).await?;
                let update = types::UpdatePhoneCall {
                    phone_call: view(shared, call, *viewer),
                }
                .into();
                deliver(shared, *target, updates(vec![update], users));
            }
            Push::AnsweredElsewhere {
                target,
                call_id,
                video,
            } => {
                let discarded = types::PhoneCallDiscarded {
                    need_rating: false,
                    need_debug: false,
                    video: *video,
                    id: *call_id,
                    reason: None,
                    duration: None,
                };
                deliver(
                    shared,
                    *target,
                    updates(
                        vec![
                            types::UpdatePhoneCall {
                                phone_call: discarded.into(),
                            }
                            .into(),
                        ],
                        vec![],
                    ),
                );
            }
            Push::Signaling {
                target,
                call_id,
                data,
            } => {
                let update = types::UpdatePhoneCallSignalingData {
                    phone_call_id: *call_id,
                    data: data.clone(),
                }
                .into();
                deliver(shared, *target, updates(vec![update], vec![]));
            }
        }
    }
    Ok(())
}

/// The call-history message as `viewer` sees it (spec §5.5): from the caller, in the chat with
/// the other party, its id being the pts it was stored under.
fn history_message(entry: &HistoryEntry, viewer: i64, id: i32) -> enums::Message {
    let other = if viewer == entry.admin_id {
        entry.participant_id
    } else {
        entry.admin_id
    };
    types::MessageService {
        out: viewer == entry.admin_id,
        id,
        from_id: Some(
            types::PeerUser {
                user_id: entry.admin_id,
            }
            .into(),
        ),
        peer_id: types::PeerUser { user_id: other }.into(),
        date: entry.date,
        action: types::MessageActionPhoneCall {
            video: entry.video,
            call_id: entry.call_id,
            reason: entry.reason.as_ref().map(calls::discard_reason_tl),
            duration: entry.duration,
        }
        .into(),
        ..Default::default()
    }
    .into()
}

/// Writes the history entries to both users' update logs (durable, with pts) and pushes them.
/// Returns, for `requester` (if given), its own `updateNewMessage` for an RPC result; the
/// requester's session gets that one in its result rather than as a push.
pub async fn write_history(
    shared: &Shared,
    history: &[HistoryEntry],
    requester: Option<calls::SessionRef>,
) -> Result<Vec<enums::Update>, RpcError> {
    // Every row is queued before any is awaited, so they share one commit.
    let mut appends = Vec::new();
    for entry in history {
        for user in [entry.admin_id, entry.participant_id] {
            let e = entry.clone();
            let append = shared.store.append_update(
                user,
                1,
                entry.date,
                Box::new(move |pts| {
                    enums::Update::from(types::UpdateNewMessage {
                        message: history_message(&e, user, pts),
                        pts,
                        pts_count: 1,
                    })
                    .to_bytes(Layer::LATEST)
                }),
            );
            appends.push((entry, user, append));
        }
    }
    let mut own = Vec::new();
    for (entry, user, append) in appends {
        let (_pts, body) = append.await?;
        let update: enums::Update =
            tl::Decode::from_bytes(&body).map_err(|_| RpcError::RpcCallFail)?;
        let viewer_users = parties(shared, [entry.admin_id, entry.participant_id], user).await?;
        match requester {
            Some(s) if s.user_id == user => {
                own.push(update.clone());
                deliver(
                    shared,
                    PushTarget::UserExcept(user, s.key_id),
                    updates(vec![update], viewer_users),
                );
            }
            _ => deliver(
                shared,
                PushTarget::User(user),
                updates(vec![update], viewer_users),
            ),
        }
    }
    Ok(own)
}

/// Applies an operation's effects after its result is known: history, then pushes. (Persisting
/// happened under the lock.)
pub async fn publish<R>(
    shared: &Shared,
    effects: &Effects<R>,
    requester: Option<calls::SessionRef>,
) -> Result<Vec<enums::Update>, RpcError> {
    let own = write_history(shared, &effects.history, requester).await?;
    push_all(shared, &effects.pushes).await?;
    Ok(own)
}

/// The server's call timer: ends calls past their deadline (spec §6.3), forever.
pub async fn run_timers(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = now_secs() as i32;
        let next = {
            let mut registry = shared.calls.lock().await;
            let effects = registry.tick(now);
            if !effects.is_empty() {
                let committed = queue_persist(&shared, &effects);
                drop(registry);
                if let Err(e) = committed.await {
                    tracing::warn!(error = ?e, "could not persist expired calls");
                }
                if let Err(e) = publish(&shared, &effects, None).await {
                    tracing::warn!(error = ?e, "could not publish expired calls");
                }
                for p in &effects.persist {
                    tracing::info!(call_id = p.id, reason = ?p.discard.as_ref().and_then(|d| d.reason.clone()), "call ended by the server's timer");
                }
                shared.calls.lock().await.next_deadline()
            } else {
                registry.next_deadline()
            }
        };
        let wait = next.map_or(60, |d| (d - now).clamp(0, 60)) as u64;
        let notified = shared.calls_changed.notified();
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 50)) => {}
            _ = notified => {}
            _ = stopped.changed() => return,
        }
    }
}
