//! The users service: user records and contact links through the node's cache, rendered per
//! viewer, and every change committed, cached and announced to the other nodes (which drop
//! their copies) as one call. Handlers of `users.*`, `contacts.*`, `account.*` and the call
//! renderer use it; none of them sees the store, the cache or the delivery.

use std::sync::Arc;

use store::{Store, StoreError, User};
use tl::enums;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::errors::RpcError;
use crate::hub::Hub;
use crate::render;
use crate::topology::Delivery;

/// Users as this node knows them.
pub struct Users {
    store: Arc<dyn Store>,
    cache: Arc<Cache>,
    delivery: Arc<dyn Delivery>,
    hub: Arc<Hub>,
    secret: [u8; 32],
    clock: Clock,
}

impl Users {
    /// Users of `store`, cached in `cache`, changes announced through `delivery`, presence
    /// from `hub`, access hashes keyed with `secret`.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<Cache>,
        delivery: Arc<dyn Delivery>,
        hub: Arc<Hub>,
        secret: [u8; 32],
        clock: Clock,
    ) -> Users {
        Users {
            store,
            cache,
            delivery,
            hub,
            secret,
            clock,
        }
    }

    /// The user with this id.
    pub async fn get(&self, id: i64) -> Result<Option<Arc<User>>, StoreError> {
        self.cache.user(self.store.as_ref(), id).await
    }

    /// The user with this (normalised) phone number.
    pub async fn by_phone(&self, phone: &str) -> Result<Option<User>, StoreError> {
        self.store.user_by_phone(phone).await
    }

    /// The user with this username (any case).
    pub async fn by_username(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.store.user_by_username(name).await
    }

    /// Every user, for the admin views.
    pub async fn all(&self) -> Result<Vec<User>, StoreError> {
        self.store.users().await
    }

    /// Whether `user` is in `owner`'s contacts.
    pub async fn is_contact(&self, owner: i64, user: i64) -> Result<bool, StoreError> {
        self.cache
            .is_contact(self.store.as_ref(), owner, user)
            .await
    }

    /// `owner`'s contacts, by id.
    pub async fn contacts_of(&self, owner: i64) -> Result<Vec<i64>, StoreError> {
        self.store.contacts_of(owner).await
    }

    /// Adds `user` to `owner`'s contacts: stored, cached, and the other nodes told.
    pub async fn add_contact(
        &self,
        owner: i64,
        user: i64,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), RpcError> {
        self.store
            .add_contact(owner, user, first_name, last_name)
            .await?;
        self.cache.put_contact(owner, user);
        self.delivery.user_changed(owner).await
    }

    /// Sets `user`'s username (`None` removes it): stored, cached, and the other nodes told.
    /// `USERNAME_OCCUPIED` when another user holds it.
    pub async fn set_username(&self, user: User, wanted: Option<String>) -> Result<User, RpcError> {
        match self.store.set_username(user.id, wanted.clone()).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(RpcError::UsernameOccupied),
            Err(e) => return Err(e.into()),
        }
        let user = User {
            username: wanted,
            ..user
        };
        self.cache.put_user(user.clone());
        self.delivery.user_changed(user.id).await?;
        Ok(user)
    }

    /// `u` as `viewer` sees it, `contact` being whether `viewer` has `u` in its contacts.
    pub fn render(&self, viewer: i64, u: &User, contact: bool) -> enums::User {
        let online = self.hub.is_online(u.id);
        render::user_view(
            &self.secret,
            viewer,
            u,
            contact,
            online,
            self.clock.now_secs(),
        )
    }

    /// `u` as `viewer` sees it, looking up whether it is a contact.
    pub async fn render_for(&self, viewer: i64, u: &User) -> Result<enums::User, RpcError> {
        let contact = viewer != u.id && self.is_contact(viewer, u.id).await?;
        Ok(self.render(viewer, u, contact))
    }

    /// Users `ids` as `viewer` sees them (unknown ids are left out).
    pub async fn render_ids(
        &self,
        ids: impl IntoIterator<Item = i64>,
        viewer: i64,
    ) -> Result<Vec<enums::User>, RpcError> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(u) = self.get(id).await? {
                out.push(self.render_for(viewer, &u).await?);
            }
        }
        Ok(out)
    }

    /// The user an `InputUser` names for `viewer`, checking its access hash.
    pub async fn resolve(
        &self,
        viewer: i64,
        input: &enums::InputUser,
    ) -> Result<Arc<User>, RpcError> {
        let (id, hash) = match input {
            enums::InputUser::InputUserSelf(_) => (viewer, None),
            enums::InputUser::InputUser(u) => (u.user_id, Some(u.access_hash)),
            enums::InputUser::Empty(_) => return Err(RpcError::UserIdInvalid),
        };
        if let Some(hash) = hash
            && id != viewer
            && hash != render::access_hash(&self.secret, "user", viewer, id)
        {
            return Err(RpcError::UserIdInvalid);
        }
        self.get(id).await?.ok_or(RpcError::UserIdInvalid)
    }

    /// Users with a session on this node now.
    pub fn online_here(&self) -> usize {
        self.hub.users_online()
    }
}
