//! `phone.*` for one-to-one calls (`docs/calls.md`): each method is one operation of the
//! calls service ([`Calls::run`]), which commits it, publishes it and only then returns its
//! result to answer with. `phone.receivedCall` is the seed: `docs/calls.md §4`.

use calls::{SessionRef, protocol_from_tl, reason_from_tl};
use store::CallScope;
use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::services::{Calls, Users};

fn session(ctx: &RpcCtx<'_>) -> Result<SessionRef, RpcError> {
    Ok(SessionRef {
        user_id: ctx.user_id()?,
        key_id: ctx.key.perm_key_id,
    })
}

fn peer(p: &enums::InputPhoneCall) -> (i64, i64) {
    let enums::InputPhoneCall::InputPhoneCall(p) = p;
    (p.id, p.access_hash)
}

/// `phone.phoneCall` for `viewer`.
async fn phone_call(
    ctx: &RpcCtx<'_>,
    calls: &Calls,
    call: &calls::Call,
    viewer: i64,
) -> Result<Vec<u8>, RpcError> {
    let result = enums::phone::PhoneCall::from(types::phone::PhoneCall {
        phone_call: calls.view(call, viewer).await?,
        users: calls.parties(call, viewer).await?,
    });
    Ok(ctx.encode(&result))
}

pub fn get_call_config(ctx: &mut RpcCtx<'_>) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    Ok(ctx.encode(&enums::DataJSON::from(types::DataJSON {
        data: "{}".into(),
    })))
}

pub async fn request_call(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    users: &Users,
    r: functions::phone::RequestCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let callee = users.resolve(me.user_id, &r.user_id).await?.id;
    let now = ctx.now as i32;
    let scope = CallScope::Request {
        caller: me.user_id,
        callee,
        random_id: r.random_id,
    };
    let protocol = protocol_from_tl(&r.protocol);
    let mut ids = calls.ids();
    let done = calls
        .run(scope, None, move |reg| {
            reg.request(
                me,
                callee,
                r.random_id,
                r.g_a_hash,
                protocol,
                r.video,
                now,
                &mut ids,
            )
        })
        .await?;
    let busy = done
        .events
        .iter()
        .any(|e| matches!(e, calls::CallEvent::RefusedBusy { .. }));
    let call = done.result?;
    ctx.trace.call_id = Some(call.id);
    tracing::info!(
        call_id = call.id,
        caller = me.user_id,
        callee,
        busy,
        "call requested"
    );
    phone_call(ctx, calls, &call, me.user_id).await
}

pub async fn received_call(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::ReceivedCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let done = calls
        .run(CallScope::Call(id), None, move |reg| {
            reg.received(me, id, hash, now)
        })
        .await?;
    Ok(ctx.encode(&done.result?))
}

pub async fn accept_call(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::AcceptCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let protocol = protocol_from_tl(&r.protocol);
    let done = calls
        .run(CallScope::Call(id), None, move |reg| {
            reg.accept(me, id, hash, r.g_b, protocol, now)
        })
        .await?;
    phone_call(ctx, calls, &*done.result?, me.user_id).await
}

pub async fn confirm_call(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::ConfirmCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    // A refused confirmation may still have ended the call: its pushes went out either way.
    let done = calls
        .run(CallScope::Call(id), None, move |reg| {
            reg.confirm(me, id, hash, r.g_a, r.key_fingerprint, now)
        })
        .await?;
    phone_call(ctx, calls, &*done.result?, me.user_id).await
}

pub async fn discard_call(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::DiscardCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let reason = Some(reason_from_tl(&r.reason));
    let done = calls
        .run(CallScope::Call(id), Some(me), move |reg| {
            reg.discard(me, id, hash, r.duration, reason, now)
        })
        .await?;
    let call = done.result?;
    let mut list = vec![enums::Update::from(types::UpdatePhoneCall {
        phone_call: calls.view(&call, me.user_id).await?,
    })];
    list.extend(done.own_history);
    let updates = enums::Updates::from(types::Updates {
        updates: list,
        users: calls.parties(&call, me.user_id).await?,
        chats: vec![],
        date: ctx.now as i32,
        seq: 0,
    });
    Ok(ctx.encode(&updates))
}

pub async fn send_signaling_data(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::SendSignalingData,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let done = calls
        .run(CallScope::Call(id), None, move |reg| {
            reg.signaling(me, id, hash, r.data)
        })
        .await?;
    Ok(ctx.encode(&done.result?))
}

async fn check_participant(
    ctx: &RpcCtx<'_>,
    calls: &Calls,
    p: &enums::InputPhoneCall,
) -> Result<(), RpcError> {
    let me = ctx.user_id()?;
    let (id, hash) = peer(p);
    calls
        .run(CallScope::Call(id), None, move |reg| {
            calls::Effects::only(reg.check_participant(me, id, hash))
        })
        .await?
        .result?;
    Ok(())
}

pub async fn set_call_rating(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::SetCallRating,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, calls, &r.peer).await?;
    let updates = enums::Updates::from(types::Updates {
        updates: vec![],
        users: vec![],
        chats: vec![],
        date: ctx.now as i32,
        seq: 0,
    });
    Ok(ctx.encode(&updates))
}

pub async fn save_call_debug(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::SaveCallDebug,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, calls, &r.peer).await?;
    Ok(ctx.encode(&true))
}

pub async fn save_call_log(
    ctx: &mut RpcCtx<'_>,
    calls: &Calls,
    r: functions::phone::SaveCallLog,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, calls, &r.peer).await?;
    Ok(ctx.encode(&true))
}
