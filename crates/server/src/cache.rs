//! In-memory copies of the user records and contact links the server renders on every push,
//! so rendering a call update does not hop to the database. Writes go to the store first and
//! then update the cache; a miss reads through. With several nodes, a change on one makes the
//! others [`Cache::forget`] what they hold of that user (`topology/several.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use store::{Store, StoreError, User};

/// Cached users and contact links.
#[derive(Default)]
pub struct Cache {
    /// Shared, so a render takes a reference count rather than a copy of the strings.
    users: RwLock<HashMap<i64, Arc<User>>>,
    contacts: RwLock<HashMap<(i64, i64), bool>>,
}

impl Cache {
    /// The user with this id.
    pub async fn user(&self, store: &dyn Store, id: i64) -> Result<Option<Arc<User>>, StoreError> {
        if let Some(u) = self
            .users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Some(u.clone()));
        }
        let found = store.user(id).await?.map(Arc::new);
        if let Some(u) = &found {
            self.users
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, u.clone());
        }
        Ok(found)
    }

    /// Replaces a cached user after a change was committed.
    pub fn put_user(&self, user: User) {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.id, Arc::new(user));
    }

    /// Whether `user` is in `owner`'s contacts.
    pub async fn is_contact(
        &self,
        store: &dyn Store,
        owner: i64,
        user: i64,
    ) -> Result<bool, StoreError> {
        if let Some(c) = self
            .contacts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(owner, user))
        {
            return Ok(*c);
        }
        let c = store.is_contact(owner, user).await?;
        self.contacts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((owner, user), c);
        Ok(c)
    }

    /// Records a contact link after it was committed.
    pub fn put_contact(&self, owner: i64, user: i64) {
        self.contacts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((owner, user), true);
    }

    /// Drops what is cached of `user_id`: their record and their contact links.
    pub fn forget(&self, user_id: i64) {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user_id);
        self.contacts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(owner, _), _| *owner != user_id);
    }
}
