//! `phone.*` for one-to-one calls (`docs/calls.md`): each method runs its transition
//! where calls live (`call_engine::transition`, committed when it returns), publishes it, and
//! only then has its result to answer with.
//! `phone.receivedCall` is the seed: `docs/calls.md §4`.

use calls::{SessionRef, protocol_from_tl, reason_from_tl};
use store::CallScope;
use tl::{enums, functions, types};

use crate::call_engine::transition;
use crate::call_service as service;
use crate::errors::RpcError;
use crate::render;
use crate::shared::RpcCtx;

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

async fn phone_call(
    ctx: &RpcCtx<'_>,
    call: &calls::Call,
    viewer: i64,
) -> Result<Vec<u8>, RpcError> {
    let users = service::users(ctx.shared, call, viewer).await?;
    let result = enums::phone::PhoneCall::from(types::phone::PhoneCall {
        phone_call: service::view(ctx.shared, call, viewer),
        users,
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
    r: functions::phone::RequestCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let callee = render::input_user(ctx, &r.user_id).await?;
    let now = ctx.now as i32;
    let scope = store::CallScope::Request {
        caller: me.user_id,
        callee: callee.id,
        random_id: r.random_id,
    };
    let protocol = protocol_from_tl(&r.protocol);
    let committed = transition(ctx.shared, scope, move |reg| {
        reg.request(
            me,
            callee.id,
            r.random_id,
            r.g_a_hash,
            protocol,
            r.video,
            now,
            &mut service::RandomIds,
        )
    })
    .await?;
    let busy = committed
        .events()
        .iter()
        .any(|e| matches!(e, calls::CallEvent::RefusedBusy { .. }));
    let call = committed.publish(ctx.shared, None).await?.result?;
    ctx.trace.call_id = Some(call.id);
    tracing::info!(
        call_id = call.id,
        caller = me.user_id,
        callee = callee.id,
        busy,
        "call requested"
    );
    phone_call(ctx, &call, me.user_id).await
}

pub async fn received_call(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::ReceivedCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let committed = transition(ctx.shared, CallScope::Call(id), move |reg| {
        reg.received(me, id, hash, now)
    })
    .await?;
    let ok = committed.publish(ctx.shared, None).await?.result?;
    Ok(ctx.encode(&ok))
}

pub async fn accept_call(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::AcceptCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let protocol = protocol_from_tl(&r.protocol);
    let committed = transition(ctx.shared, CallScope::Call(id), move |reg| {
        reg.accept(me, id, hash, r.g_b, protocol, now)
    })
    .await?;
    let call = committed.publish(ctx.shared, None).await?.result?;
    phone_call(ctx, &call, me.user_id).await
}

pub async fn confirm_call(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::ConfirmCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let committed = transition(ctx.shared, CallScope::Call(id), move |reg| {
        reg.confirm(me, id, hash, r.g_a, r.key_fingerprint, now)
    })
    .await?;
    // A refused confirmation may still have ended the call: its pushes go out either way.
    let call = committed.publish(ctx.shared, None).await?.result?;
    phone_call(ctx, &call, me.user_id).await
}

pub async fn discard_call(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::DiscardCall,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let now = ctx.now as i32;
    let reason = Some(reason_from_tl(&r.reason));
    let committed = transition(ctx.shared, CallScope::Call(id), move |reg| {
        reg.discard(me, id, hash, r.duration, reason, now)
    })
    .await?;
    let published = committed.publish(ctx.shared, Some(me)).await?;
    let (call, own_history) = (published.result?, published.own_history);
    let mut list = vec![enums::Update::from(types::UpdatePhoneCall {
        phone_call: service::view(ctx.shared, &call, me.user_id),
    })];
    list.extend(own_history);
    let users = service::users(ctx.shared, &call, me.user_id).await?;
    let updates = enums::Updates::from(types::Updates {
        updates: list,
        users,
        chats: vec![],
        date: ctx.now as i32,
        seq: 0,
    });
    Ok(ctx.encode(&updates))
}

pub async fn send_signaling_data(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::SendSignalingData,
) -> Result<Vec<u8>, RpcError> {
    let me = session(ctx)?;
    let (id, hash) = peer(&r.peer);
    let committed = transition(ctx.shared, CallScope::Call(id), move |reg| {
        reg.signaling(me, id, hash, r.data)
    })
    .await?;
    let ok = committed.publish(ctx.shared, None).await?.result?;
    Ok(ctx.encode(&ok))
}

async fn check_participant(ctx: &RpcCtx<'_>, p: &enums::InputPhoneCall) -> Result<(), RpcError> {
    let me = ctx.user_id()?;
    let (id, hash) = peer(p);
    let checked = transition(ctx.shared, CallScope::Call(id), move |reg| {
        calls::Effects::only(reg.check_participant(me, id, hash))
    })
    .await?;
    checked.publish(ctx.shared, None).await?.result?;
    Ok(())
}

pub async fn set_call_rating(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::SetCallRating,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, &r.peer).await?;
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
    r: functions::phone::SaveCallDebug,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, &r.peer).await?;
    Ok(ctx.encode(&true))
}

pub async fn save_call_log(
    ctx: &mut RpcCtx<'_>,
    r: functions::phone::SaveCallLog,
) -> Result<Vec<u8>, RpcError> {
    check_participant(ctx, &r.peer).await?;
    Ok(ctx.encode(&true))
}
