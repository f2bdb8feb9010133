//! `contacts.*`: importing contacts by phone, listing them, and resolving users by phone or
//! username (`docs/clients.md §5`,
//! `docs/clients.md §5`,
//! `docs/clients.md §5`).

use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::render;
use crate::services::Users;

/// `contacts.resolvedPeer` for `u`. Resolved by phone, the user carries the number the viewer
/// gave, as Telegram's does: clients find users by the stored phone afterwards.
async fn resolved(
    ctx: &RpcCtx<'_>,
    users: &Users,
    u: &store::User,
    by_phone: bool,
) -> Result<Vec<u8>, RpcError> {
    let mut user = users.render_for(ctx.user_id()?, u).await?;
    if by_phone && let enums::User::User(shown) = &mut user {
        shown.phone = u.phone.clone();
    }
    let peer = enums::contacts::ResolvedPeer::from(types::contacts::ResolvedPeer {
        peer: types::PeerUser { user_id: u.id }.into(),
        chats: vec![],
        users: vec![user],
    });
    Ok(ctx.encode(&peer))
}

pub async fn resolve_phone(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::contacts::ResolvePhone,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let phone = render::normalize_phone(&r.phone).ok_or(RpcError::PhoneNotOccupied)?;
    let u = users
        .by_phone(&phone)
        .await?
        .ok_or(RpcError::PhoneNotOccupied)?;
    resolved(ctx, users, &u, true).await
}

pub async fn resolve_username(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::contacts::ResolveUsername,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let name = r.username.trim_start_matches('@');
    if !render::valid_username(name) {
        return Err(RpcError::UsernameInvalid);
    }
    let u = users
        .by_username(name)
        .await?
        .ok_or(RpcError::UsernameNotOccupied)?;
    resolved(ctx, users, &u, false).await
}

pub async fn import_contacts(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::contacts::ImportContacts,
) -> Result<Vec<u8>, RpcError> {
    let owner = ctx.user_id()?;
    let mut imported = Vec::new();
    let mut shown = Vec::new();
    for enums::InputContact::InputPhoneContact(c) in &r.contacts {
        let Some(phone) = render::normalize_phone(&c.phone) else {
            continue;
        };
        let Some(u) = users.by_phone(&phone).await? else {
            continue;
        };
        if u.id != owner {
            users
                .add_contact(owner, u.id, &c.first_name, &c.last_name)
                .await?;
        }
        imported.push(enums::ImportedContact::from(types::ImportedContact {
            user_id: u.id,
            client_id: c.client_id,
        }));
        shown.push(users.render_for(owner, &u).await?);
    }
    let result = enums::contacts::ImportedContacts::from(types::contacts::ImportedContacts {
        imported,
        popular_invites: vec![],
        retry_contacts: vec![],
        users: shown,
    });
    Ok(ctx.encode(&result))
}

/// Contacts listed by one `contacts.getContacts`, as Telegram caps them.
const MAX_CONTACTS: usize = 100_000;

pub async fn get_contacts(
    ctx: &mut RpcCtx<'_>,
    users: &Users,
    r: functions::contacts::GetContacts,
) -> Result<Vec<u8>, RpcError> {
    let owner = ctx.user_id()?;
    let mut ids = users.contacts_of(owner).await?;
    ids.truncate(MAX_CONTACTS);
    // The documented cache hash: `saved_count` (always 0 here), then the sorted contact ids.
    let hash = list_hash(std::iter::once(0).chain(ids.iter().copied()));
    if r.hash != 0 && r.hash == hash {
        return Ok(ctx.encode(&enums::contacts::Contacts::from(
            types::contacts::ContactsNotModified {},
        )));
    }
    let mut contacts = Vec::with_capacity(ids.len());
    let mut shown = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(u) = users.get(id).await? else {
            continue;
        };
        let mutual = users.is_contact(id, owner).await?;
        contacts.push(enums::Contact::from(types::Contact {
            user_id: id,
            mutual,
        }));
        shown.push(users.render_for(owner, &u).await?);
    }
    let result = enums::contacts::Contacts::from(types::contacts::Contacts {
        contacts,
        saved_count: 0,
        users: shown,
    });
    Ok(ctx.encode(&result))
}

/// Telegram's hash of a list of ids for `hash` parameters: clients compute the same over
/// what they hold and get a not-modified answer when it matches.
fn list_hash(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0u64, |mut h, v| {
        h ^= h >> 21;
        h ^= h << 35;
        h ^= h >> 4;
        h.wrapping_add(v as u64)
    }) as i64
}

#[cfg(test)]
mod tests {
    use super::list_hash;

    #[test]
    fn list_hash_follows_the_documented_steps() {
        assert_eq!(list_hash([]), 0);
        assert_eq!(list_hash([5]), 5);
        // 5, then 7: h = 5; h ^= 5 >> 21 (0); h ^= 5 << 35; h ^= h >> 4; h += 7.
        let mut h: u64 = 5;
        h ^= h << 35;
        h ^= h >> 4;
        assert_eq!(list_hash([5, 7]), h.wrapping_add(7) as i64);
    }
}
