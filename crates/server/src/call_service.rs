//! What a call transition tells the world once committed (`call_engine.rs` runs transitions):
//! the call as each viewer sees it (relays, per-viewer rendering), the history message written
//! to both users' update logs with pts, and the pushes — collected in an outbox and sent
//! together through the node's [`crate::topology::Delivery`].

use calls::{Call, Effects, HistoryEntry, Push, PushTarget};
use mtproto::crypto::{Entropy, OsEntropy};
use tl::{Encode, Layer, enums, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::Shared;
use crate::topology::Outbox;

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
    let p2p = call.negotiated().is_some_and(|p| p.udp_p2p);
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

fn updates(date: i64, list: Vec<enums::Update>, users: Vec<enums::User>) -> enums::Updates {
    types::Updates {
        updates: list,
        users,
        chats: vec![],
        date: date as i32,
        seq: 0,
    }
    .into()
}

/// Pushes every update of an operation, rendered per viewer.
pub async fn push_all(shared: &Shared, pushes: &[Push], out: &mut Outbox) -> Result<(), RpcError> {
    let now = shared.clock.now_secs();
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
                out.push(*target, updates(now, vec![update], users));
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
                out.push(
                    *target,
                    updates(
                        now,
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
                out.push(*target, updates(now, vec![update], vec![]));
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
    out: &mut Outbox,
) -> Result<Vec<enums::Update>, RpcError> {
    let now = shared.clock.now_secs();
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
                out.push(
                    PushTarget::UserExcept(user, s.key_id),
                    updates(now, vec![update], viewer_users),
                );
            }
            _ => out.push(
                PushTarget::User(user),
                updates(now, vec![update], viewer_users),
            ),
        }
    }
    Ok(own)
}

/// Applies an operation's effects after its result is known and committed: history, then
/// pushes, each sent together.
pub async fn publish<R>(
    shared: &Shared,
    effects: &Effects<R>,
    requester: Option<calls::SessionRef>,
) -> Result<Vec<enums::Update>, RpcError> {
    if effects.history.is_empty() && effects.pushes.is_empty() {
        return Ok(Vec::new());
    }
    // History carries pts: appended and pushed under its users' locks, so each user's sessions
    // get pts in order (`user_locks.rs`).
    let users: Vec<i64> = effects
        .history
        .iter()
        .flat_map(|h| [h.admin_id, h.participant_id])
        .collect();
    let held = shared.user_locks.lock(&users).await;
    let mut out = Outbox::default();
    let own = write_history(shared, &effects.history, requester, &mut out).await?;
    shared.delivery.send(out, shared.clock.now_secs()).await?;
    drop(held);
    let mut out = Outbox::default();
    push_all(shared, &effects.pushes, &mut out).await?;
    shared.delivery.send(out, shared.clock.now_secs()).await?;
    Ok(own)
}
