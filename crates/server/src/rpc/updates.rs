//! `updates.*`: the state and difference of a user's durable update log
//! (`docs/clients.md §4`). Updates that carry pts are stored and replayed;
//! pushes without pts go out with `seq = 0` (clients apply them at once, and never wait for a
//! seq gap to fill), so `updates.state.seq` stays 0.

use tl::{Decode, enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::services::{Calls, Updates, Users};

/// Updates returned by one `updates.getDifference`.
const DIFFERENCE_LIMIT: u32 = 100;

pub async fn get_state(ctx: &mut RpcCtx<'_>, updates: &Updates) -> Result<Vec<u8>, RpcError> {
    let state = current_state(ctx, updates).await?;
    Ok(ctx.encode(&enums::updates::State::from(state)))
}

/// The logged-in user's update state now.
pub(super) async fn current_state(
    ctx: &RpcCtx<'_>,
    updates: &Updates,
) -> Result<types::updates::State, RpcError> {
    let me = ctx.user_id()?;
    let pts = updates.pts(me).await?;
    Ok(types::updates::State {
        pts,
        qts: 0,
        date: ctx.now as i32,
        seq: 0,
        unread_count: 0,
    })
}

/// The logged updates after the client's pts, and the user's live calls in their current
/// state: a callee who was offline learns of a ringing call here (`docs/calls.md §6`), and
/// either side that lost its connection learns what happened to its call meanwhile
/// (accepted, confirmed) — only the current state, never a stale one. An ended call reaches
/// them as its history message.
pub async fn get_difference(
    ctx: &mut RpcCtx<'_>,
    updates: &Updates,
    calls: &Calls,
    users: &Users,
    r: functions::updates::GetDifference,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    let current = updates.pts(me).await?;
    let date = ctx.now as i32;
    let live = calls.live_calls_of(me).await?;
    if r.pts >= current && live.is_empty() {
        return Ok(ctx.encode(&enums::updates::Difference::from(
            types::updates::DifferenceEmpty { date, seq: 0 },
        )));
    }
    let rows = if r.pts < current {
        updates.after(me, r.pts, DIFFERENCE_LIMIT).await?
    } else {
        Vec::new()
    };
    let last_pts = rows.last().map_or(current, |u| u.pts);
    let mut new_messages = Vec::new();
    let mut other_updates = Vec::new();
    let mut user_ids = vec![me];
    for row in rows {
        match enums::Update::from_bytes(&row.body) {
            Ok(enums::Update::NewMessage(m)) => {
                if let enums::Message::Service(s) = &m.message {
                    if let Some(enums::Peer::User(p)) = &s.from_id {
                        user_ids.push(p.user_id);
                    }
                    let enums::Peer::User(p) = &s.peer_id;
                    user_ids.push(p.user_id);
                }
                new_messages.push(m.message);
            }
            Ok(other) => other_updates.push(other),
            Err(e) => {
                tracing::warn!(user_id = me, pts = row.pts, error = %e, "stored update does not decode")
            }
        }
    }
    for call in &live {
        user_ids.extend([call.admin_id, call.participant_id]);
        other_updates.push(
            types::UpdatePhoneCall {
                phone_call: calls.view(call, me).await?,
            }
            .into(),
        );
    }
    user_ids.sort_unstable();
    user_ids.dedup();
    let users = users.render_ids(user_ids, me).await?;
    let state = enums::updates::State::from(types::updates::State {
        pts: last_pts,
        qts: 0,
        date,
        seq: 0,
        unread_count: 0,
    });
    let difference = if last_pts < current {
        enums::updates::Difference::from(types::updates::DifferenceSlice {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates,
            chats: vec![],
            users,
            intermediate_state: state,
        })
    } else {
        enums::updates::Difference::from(types::updates::Difference {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates,
            chats: vec![],
            users,
            state,
        })
    };
    Ok(ctx.encode(&difference))
}
