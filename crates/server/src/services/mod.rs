//! The services the API handlers use, each owning its state behind private fields (one node
//! or several is already decided inside them, by [`crate::topology`]):
//!
//! - [`Calls`]: call operations, committed, then published, then answered.
//! - [`Users`]: user records and contacts, cached, rendered per viewer, changes announced.
//! - [`Updates`]: each user's durable update log and the pushes to sessions.
//! - [`Accounts`]: login codes, sign-up, bot tokens, what each auth key is bound to; who may
//!   log in ([`AuthSettings`]) and how codes reach phones ([`CodeDelivery`]).
//! - [`Passwords`]: cloud passwords (two-step verification, SRP).
//!
//! A handler takes the ones it uses; the router ([`crate::rpc`]) hands them out.

mod accounts;
mod auth_policy;
mod calls;
mod code_delivery;
mod passwords;
mod updates;
mod users;

use std::sync::Arc;

pub use crate::auth_settings::{AuthSettings, Signup};
pub use accounts::{Accounts, CodeCheck, LoginSettings};
pub use auth_policy::CodeLimits;
pub use calls::{CallIds, Calls, CallsParts, Published};
pub use code_delivery::{CodeDelivery, DeliveryError};
pub use passwords::{NewPassword, PasswordOffer, PasswordProof, Passwords};
pub use updates::Updates;
pub use users::Users;

use crate::config::Config;

/// What the API handlers are served from.
pub struct Services {
    /// Call operations.
    pub calls: Arc<Calls>,
    /// Users and contacts.
    pub users: Arc<Users>,
    /// Update logs and pushes.
    pub updates: Arc<Updates>,
    /// Logins and auth keys.
    pub accounts: Accounts,
    /// Cloud passwords.
    pub passwords: Passwords,
    /// What `help.getConfig` tells clients.
    pub config: Arc<Config>,
}
