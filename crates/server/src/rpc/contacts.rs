//! `contacts.*`: importing contacts by phone and resolving users by phone or username
//! (<https://core.telegram.org/method/contacts.importContacts>,
//! <https://core.telegram.org/method/contacts.resolveUsername>).

use tl::{enums, functions, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::RpcCtx;

async fn resolved(ctx: &RpcCtx<'_>, u: &store::User) -> Result<Vec<u8>, RpcError> {
    let user = render::user_for(ctx, u).await?;
    let peer = enums::contacts::ResolvedPeer::from(types::contacts::ResolvedPeer {
        peer: types::PeerUser { user_id: u.id }.into(),
        chats: vec![],
        users: vec![user],
    });
    Ok(ctx.encode(&peer))
}

pub async fn resolve_phone(
    ctx: &mut RpcCtx<'_>,
    r: functions::contacts::ResolvePhone,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let phone = render::normalize_phone(&r.phone).ok_or(RpcError::PhoneNotOccupied)?;
    let u = ctx
        .shared
        .store
        .user_by_phone(&phone)
        .await?
        .ok_or(RpcError::PhoneNotOccupied)?;
    resolved(ctx, &u).await
}

pub async fn resolve_username(
    ctx: &mut RpcCtx<'_>,
    r: functions::contacts::ResolveUsername,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let name = r.username.trim_start_matches('@');
    if !render::valid_username(name) {
        return Err(RpcError::UsernameInvalid);
    }
    let u = ctx
        .shared
        .store
        .user_by_username(name)
        .await?
        .ok_or(RpcError::UsernameNotOccupied)?;
    resolved(ctx, &u).await
}

pub async fn import_contacts(
    ctx: &mut RpcCtx<'_>,
    r: functions::contacts::ImportContacts,
) -> Result<Vec<u8>, RpcError> {
    let owner = ctx.user_id()?;
    let mut imported = Vec::new();
    let mut users = Vec::new();
    for enums::InputContact::InputPhoneContact(c) in &r.contacts {
        let Some(phone) = render::normalize_phone(&c.phone) else {
            continue;
        };
        let Some(u) = ctx.shared.store.user_by_phone(&phone).await? else {
            continue;
        };
        if u.id != owner {
            ctx.shared
                .store
                .add_contact(owner, u.id, &c.first_name, &c.last_name)
                .await?;
            ctx.shared.cache.put_contact(owner, u.id);
            if let Some(cluster) = &ctx.shared.cluster {
                // Other nodes drop their copy of this owner's contact links.
                cluster.user_changed(owner).await?;
            }
        }
        imported.push(enums::ImportedContact::from(types::ImportedContact {
            user_id: u.id,
            client_id: c.client_id,
        }));
        users.push(render::user_for(ctx, &u).await?);
    }
    let result = enums::contacts::ImportedContacts::from(types::contacts::ImportedContacts {
        imported,
        popular_invites: vec![],
        retry_contacts: vec![],
        users,
    });
    Ok(ctx.encode(&result))
}
