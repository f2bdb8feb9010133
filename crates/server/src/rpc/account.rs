//! `account.*`: usernames (`docs/clients.md §5`). A change
//! is pushed as `updateUserName` to the user's other sessions.

use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::render;
use crate::services::{Updates, Users};

pub async fn check_username(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::account::CheckUsername,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    if !render::valid_username(&r.username) {
        return Err(RpcError::UsernameInvalid);
    }
    let free = match users.by_username(&r.username).await? {
        Some(u) => u.id == me,
        None => true,
    };
    Ok(ctx.encode(&free))
}

pub async fn update_username(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    updates: &Updates,
    r: functions::account::UpdateUsername,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    let user = users.get(me).await?.ok_or(RpcError::AuthKeyUnregistered)?;
    let wanted = (!r.username.is_empty()).then_some(r.username);
    if let Some(name) = &wanted
        && !render::valid_username(name)
    {
        return Err(RpcError::UsernameInvalid);
    }
    if user.username.as_deref().map(str::to_lowercase) == wanted.as_deref().map(str::to_lowercase) {
        return Err(RpcError::UsernameNotModified);
    }
    let user = users
        .set_username(store::User::clone(&user), wanted.clone())
        .await?;
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
    updates.send(out).await?;
    let rendered = users.render(me, &user, false);
    Ok(ctx.encode(&rendered))
}
