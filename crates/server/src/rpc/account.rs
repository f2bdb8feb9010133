//! `account.*`: usernames (`docs/clients.md §5`). A change
//! is pushed as `updateUserName` to the user's other sessions.

use tl::{enums, functions, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::RpcCtx;

pub async fn check_username(
    ctx: &mut RpcCtx<'_>,
    r: functions::account::CheckUsername,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    if !render::valid_username(&r.username) {
        return Err(RpcError::UsernameInvalid);
    }
    let free = match ctx.shared.store.user_by_username(&r.username).await? {
        Some(u) => u.id == me,
        None => true,
    };
    Ok(ctx.encode(&free))
}

pub async fn update_username(
    ctx: &mut RpcCtx<'_>,
    r: functions::account::UpdateUsername,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    let user = ctx
        .shared
        .store
        .user(me)
        .await?
        .ok_or(RpcError::AuthKeyUnregistered)?;
    let wanted = (!r.username.is_empty()).then_some(r.username);
    if let Some(name) = &wanted
        && !render::valid_username(name)
    {
        return Err(RpcError::UsernameInvalid);
    }
    if user.username.as_deref().map(str::to_lowercase) == wanted.as_deref().map(str::to_lowercase) {
        return Err(RpcError::UsernameNotModified);
    }
    match ctx.shared.store.set_username(me, wanted.clone()).await {
        Ok(()) => {}
        Err(store::StoreError::Conflict(_)) => return Err(RpcError::UsernameOccupied),
        Err(e) => return Err(e.into()),
    }
    let user = store::User {
        username: wanted.clone(),
        ..user
    };
    ctx.shared.cache.put_user(user.clone());
    let usernames = wanted
        .iter()
        .map(|u| {
            enums::Username::from(types::Username {
                editable: true,
                active: true,
                deletable: false,
                expired: false,
                username: u.clone(),
            })
        })
        .collect();
    let push = enums::Updates::from(types::Updates {
        updates: vec![
            types::UpdateUserName {
                user_id: me,
                first_name: user.first_name.clone(),
                last_name: user.last_name.clone(),
                usernames,
            }
            .into(),
        ],
        users: vec![],
        chats: vec![],
        date: ctx.now as i32,
        seq: 0,
    });
    // The user's other sessions, on whichever node (the key that asked has its answer).
    let mut out = crate::topology::Outbox::default();
    out.push(calls::PushTarget::UserExcept(me, ctx.key.perm_key_id), push);
    ctx.shared.delivery.send(out, ctx.now).await?;
    ctx.shared.delivery.user_changed(me).await?;
    let rendered = render::user(ctx, me, &user, false);
    Ok(ctx.encode(&rendered))
}
