//! `users.*`: users by `InputUser` (`docs/clients.md §5`).

use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::services::Users;

pub async fn get_users(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::users::GetUsers,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    let mut shown = Vec::with_capacity(r.id.len());
    for input in &r.id {
        if matches!(input, enums::InputUser::Empty(_)) {
            continue;
        }
        let u = users.resolve(me, input).await?;
        shown.push(users.render_for(me, &u).await?);
    }
    Ok(ctx.encode(&shown))
}

pub async fn get_full_user(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::users::GetFullUser,
) -> Result<Vec<u8>, RpcError> {
    let me = ctx.user_id()?;
    let u = users.resolve(me, &r.id).await?;
    let user = users.render_for(me, &u).await?;
    let full = enums::users::UserFull::from(types::users::UserFull {
        full_user: types::UserFull {
            phone_calls_available: true,
            video_calls_available: true,
            id: u.id,
            ..Default::default()
        }
        .into(),
        chats: vec![],
        users: vec![user],
    });
    Ok(ctx.encode(&full))
}
