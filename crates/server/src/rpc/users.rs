//! `users.*`: users by `InputUser` (`docs/clients.md §5`).

use tl::{enums, functions, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::RpcCtx;

pub async fn get_users(
    ctx: &mut RpcCtx<'_>,
    r: functions::users::GetUsers,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let mut users = Vec::with_capacity(r.id.len());
    for input in &r.id {
        if matches!(input, enums::InputUser::Empty(_)) {
            continue;
        }
        let u = render::input_user(ctx, input).await?;
        users.push(render::user_for(ctx, &u).await?);
    }
    Ok(ctx.encode(&users))
}

pub async fn get_full_user(
    ctx: &mut RpcCtx<'_>,
    r: functions::users::GetFullUser,
) -> Result<Vec<u8>, RpcError> {
    let u = render::input_user(ctx, &r.id).await?;
    let user = render::user_for(ctx, &u).await?;
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
