//! The accounts service: logging in by phone code (codes issued, checked, spent), signing up,
//! bot tokens, and what each auth key is bound to (its user, its temporary keys, the client
//! and layer it announced). The `auth.*` handlers and the router use it.

use std::sync::Arc;

use mtproto::crypto::Entropy;
use store::{AuthKeyRow, ClientInfo, LoginCode, NewUser, Store, StoreError, User};

use super::auth_policy::CodeLimits;
use super::code_delivery::CodeDelivery;
use crate::auth_settings::Signup;
use crate::entropy::Randomness;
use crate::errors::RpcError;

/// How login codes are issued and who may use them.
#[derive(Clone, Debug)]
pub struct LoginSettings {
    /// Every code is this one (development servers), unless the number is a test number.
    pub fixed_code: Option<String>,
    /// How long a code stays valid, seconds.
    pub code_ttl_secs: i64,
    /// Whether test numbers (`99966XYYYY`) log in; when not, they are `PHONE_NUMBER_INVALID`.
    pub test_numbers: bool,
    /// Who may create an account.
    pub signup: Signup,
    /// Where codes go.
    pub delivery: CodeDelivery,
}

/// Logins and auth keys.
pub struct Accounts {
    store: Arc<dyn Store>,
    login: LoginSettings,
    limits: CodeLimits,
    entropy: Randomness,
}

/// Wrong codes a login code survives.
const MAX_ATTEMPTS: i32 = 5;

/// A test number's code: `99966XYYYY` logs in with `X` five times (as Telegram's test DCs).
pub fn test_number_code(phone: &str) -> Option<String> {
    let b = phone.as_bytes();
    (b.len() == 10 && phone.starts_with("99966"))
        .then(|| std::iter::repeat_n(b[5] as char, 5).collect())
}

/// What checking a login code found.
pub enum CodeCheck {
    /// Right, and the number has an account.
    Known(User),
    /// Right, and the number has no account yet (the code now allows `auth.signUp`).
    Unknown,
}

impl Accounts {
    /// Accounts in `store`, codes limited by `limits`.
    pub fn new(
        store: Arc<dyn Store>,
        login: LoginSettings,
        limits: CodeLimits,
        entropy: Randomness,
    ) -> Accounts {
        Accounts {
            store,
            login,
            limits,
            entropy,
        }
    }

    /// Whether `phone` may have an account made for it now: `PHONE_NUMBER_UNOCCUPIED` when
    /// sign-up is closed, or by allowlist and the number is not on it.
    async fn may_sign_up(&self, phone: &str) -> Result<(), RpcError> {
        let allowed = match self.login.signup {
            Signup::Open => true,
            Signup::Closed => false,
            Signup::Allowlist => self.store.phone_allowed(phone).await?,
        };
        if allowed {
            Ok(())
        } else {
            Err(RpcError::PhoneNumberUnoccupied)
        }
    }

    /// Issues a login code for `phone`, asked for from `peer` at `now`, and delivers it: its
    /// hash (the client's `phone_code_hash`) and the code's length. Refused before any code
    /// exists: a test number while they are off (`PHONE_NUMBER_INVALID`), over a limit
    /// (`FLOOD_WAIT_X` per address, `PHONE_NUMBER_FLOOD` per number), a number that may
    /// not sign up and has no account (`PHONE_NUMBER_UNOCCUPIED`). A delivery that fails
    /// spends the code and answers `RPC_CALL_FAIL`.
    pub async fn issue_code(
        &self,
        phone: &str,
        peer: std::net::IpAddr,
        now: i64,
    ) -> Result<(String, usize), RpcError> {
        let test_code = test_number_code(phone);
        if test_code.is_some() && !self.login.test_numbers {
            return Err(RpcError::PhoneNumberInvalid);
        }
        self.limits.check(phone, peer, now)?;
        if self.login.signup != Signup::Open && self.store.user_by_phone(phone).await?.is_none() {
            self.may_sign_up(phone).await?;
        }
        let mut entropy = self.entropy.clone();
        let generated = test_code.is_none();
        let code = test_code
            .or_else(|| self.login.fixed_code.clone())
            .unwrap_or_else(|| {
                let n = u32::from_le_bytes(entropy.array()) % 100_000;
                format!("{n:05}")
            });
        let hash: [u8; 9] = entropy.array();
        let hash: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.store
            .save_login_code(LoginCode {
                hash: hash.clone(),
                phone: phone.to_owned(),
                code: code.clone(),
                created_at: now,
                expires_at: now + self.login.code_ttl_secs,
                attempts: 0,
                verified: false,
            })
            .await?;
        if generated {
            // `deliver` logs why it failed.
            if self.login.delivery.deliver(phone, &code).await.is_err() {
                self.store.delete_login_code(&hash).await?;
                return Err(RpcError::RpcCallFail);
            }
        } else {
            tracing::info!(phone = %phone, "login code issued (test number)");
        }
        Ok((hash, code.len()))
    }

    /// The unexpired code `hash` names for `phone`.
    pub async fn live_code(
        &self,
        phone: &str,
        hash: &str,
        now: i64,
    ) -> Result<LoginCode, RpcError> {
        if hash.is_empty() {
            return Err(RpcError::PhoneCodeHashEmpty);
        }
        let code = self
            .store
            .login_code(hash)
            .await?
            .ok_or(RpcError::PhoneCodeExpired)?;
        if code.phone != phone || code.expires_at < now {
            return Err(RpcError::PhoneCodeExpired);
        }
        Ok(code)
    }

    /// Checks `given` against the live code: a wrong one counts (the fifth spends the code:
    /// `PHONE_CODE_EXPIRED`); a right one is spent if the number has an account, or marked
    /// as allowing sign-up if not.
    pub async fn check_code(
        &self,
        phone: &str,
        hash: &str,
        given: &str,
        now: i64,
    ) -> Result<CodeCheck, RpcError> {
        let code = self.live_code(phone, hash, now).await?;
        if !ct_eq(given.as_bytes(), code.code.as_bytes()) {
            let attempts = code.attempts + 1;
            if attempts >= MAX_ATTEMPTS {
                self.store.delete_login_code(&code.hash).await?;
                return Err(RpcError::PhoneCodeExpired);
            }
            self.store
                .update_login_code(&code.hash, attempts, false)
                .await?;
            return Err(RpcError::PhoneCodeInvalid);
        }
        match self.store.user_by_phone(phone).await? {
            Some(user) => {
                self.store.delete_login_code(&code.hash).await?;
                Ok(CodeCheck::Known(user))
            }
            None => {
                self.may_sign_up(phone).await?;
                self.store
                    .update_login_code(&code.hash, code.attempts, true)
                    .await?;
                Ok(CodeCheck::Unknown)
            }
        }
    }

    /// Creates the account a verified code allows, and spends the code.
    /// `PHONE_NUMBER_OCCUPIED` if the number got an account meanwhile.
    pub async fn sign_up(
        &self,
        code: &LoginCode,
        new: NewUser,
        now: i64,
    ) -> Result<User, RpcError> {
        if !code.verified {
            return Err(RpcError::PhoneCodeInvalid);
        }
        self.may_sign_up(&code.phone).await?;
        let user = match self.store.create_user(new, now).await {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => return Err(RpcError::PhoneNumberOccupied),
            Err(e) => return Err(e.into()),
        };
        self.store.delete_login_code(&code.hash).await?;
        Ok(user)
    }

    /// The bot a token (`id:secret`) names. `ACCESS_TOKEN_INVALID` otherwise.
    pub async fn bot_by_token(&self, token: &str) -> Result<User, RpcError> {
        let (id, secret) = token.split_once(':').ok_or(RpcError::AccessTokenInvalid)?;
        let id: i64 = id.parse().map_err(|_| RpcError::AccessTokenInvalid)?;
        let user = self
            .store
            .user(id)
            .await?
            .ok_or(RpcError::AccessTokenInvalid)?;
        let valid = user.bot
            && user
                .bot_secret
                .as_deref()
                .is_some_and(|s| ct_eq(s.as_bytes(), secret.as_bytes()));
        if !valid {
            return Err(RpcError::AccessTokenInvalid);
        }
        Ok(user)
    }

    /// Whether the store answers a trivial statement (readiness).
    pub async fn ping_store(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Binds `key_id` to `user_id` (log in) or to nobody (log out).
    pub async fn bind_user(&self, key_id: i64, user_id: Option<i64>) -> Result<(), StoreError> {
        self.store.set_key_user(key_id, user_id).await
    }

    /// A stored auth key.
    pub async fn auth_key(&self, key_id: i64) -> Result<Option<AuthKeyRow>, StoreError> {
        self.store.auth_key(key_id).await
    }

    /// Binds temporary key `temp` to permanent key `perm` until `expires_at`.
    pub async fn bind_temp_key(
        &self,
        temp: i64,
        perm: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.store.bind_temp_key(temp, perm, expires_at).await
    }

    /// Records the layer or client a key announced.
    pub async fn set_key_client(
        &self,
        key_id: i64,
        layer: Option<i32>,
        client: Option<ClientInfo>,
    ) -> Result<(), StoreError> {
        self.store.set_key_client(key_id, layer, client).await
    }
}

/// Compares in time independent of where the bytes differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_and_comparison() {
        assert_eq!(test_number_code("9996621234").as_deref(), Some("22222"));
        assert_eq!(test_number_code("9996651234").as_deref(), Some("55555"));
        assert_eq!(test_number_code("15550001"), None);
        assert_eq!(test_number_code("99966212345"), None);
        assert!(ct_eq(b"123", b"123") && !ct_eq(b"123", b"124") && !ct_eq(b"1", b"12"));
    }
}
