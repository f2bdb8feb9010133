//! Two-step verification: an account's cloud password as Telegram specifies it (SRP, the
//! server's half in [`mtproto::crypto::srp`]). `account.getPassword` offers the stored salts
//! and a fresh SRP challenge (`srp_B`, `srp_id`); `auth.checkPassword` and
//! `account.updatePasswordSettings` answer it with `A` and the proof `M1`.
//!
//! A login whose code was right for an account with a password is not logged in: its auth key
//! owes the password (`401 SESSION_PASSWORD_NEEDED`) until `auth.checkPassword` succeeds. The
//! challenges and the keys owing a password are held in this node's memory for ten minutes: a
//! client that reconnects to another node between the two requests asks again
//! (`SRP_ID_INVALID`), as it does after a wrong password.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mtproto::crypto::Entropy;
use mtproto::crypto::srp::{self, Challenge, SrpError};
use store::{CloudPassword, Store, User};

use crate::entropy::Randomness;
use crate::errors::RpcError;

/// How long a challenge and a key owing its password stay valid, seconds.
const TTL_SECS: i64 = 600;
/// The length of the first salt the server offers (the client appends its own 32 bytes).
const SALT1_LEN: usize = 8;
/// The length of the second salt.
const SALT2_LEN: usize = 16;

/// What `account.getPassword` shows.
pub struct PasswordOffer {
    /// The password set, with its challenge: salts, hint, `srp_B`, `srp_id`.
    pub current: Option<CurrentPassword>,
    /// Salts for a new password.
    pub new_salt1: Vec<u8>,
    /// The second salt for a new password.
    pub new_salt2: Vec<u8>,
    /// Random bytes clients may mix into their own.
    pub secure_random: Vec<u8>,
}

/// A set password, as offered for checking.
pub struct CurrentPassword {
    /// Its first salt.
    pub salt1: Vec<u8>,
    /// Its second salt.
    pub salt2: Vec<u8>,
    /// Its hint, empty when none.
    pub hint: String,
    /// `srp_B`.
    pub public: [u8; 256],
    /// `srp_id`.
    pub srp_id: i64,
}

/// An answer to a challenge: `inputCheckPasswordSRP` (or `inputCheckPasswordEmpty`: `None`).
pub struct PasswordProof {
    /// The challenge answered.
    pub srp_id: i64,
    /// The client's `A`.
    pub a: Vec<u8>,
    /// The proof.
    pub m1: Vec<u8>,
}

/// A new password as `account.passwordInputSettings` gives it.
pub struct NewPassword {
    /// The first salt, the offered one with the client's part appended.
    pub salt1: Vec<u8>,
    /// The second salt.
    pub salt2: Vec<u8>,
    /// The generator the client used.
    pub g: i32,
    /// The prime the client used.
    pub p: Vec<u8>,
    /// `v`.
    pub verifier: Vec<u8>,
    /// The hint.
    pub hint: String,
}

struct Pending {
    srp_id: i64,
    challenge: Challenge,
    issued_at: i64,
}

/// Cloud passwords: stored verifiers, open challenges, keys owing a password.
pub struct Passwords {
    store: Arc<dyn Store>,
    entropy: Randomness,
    pending: Mutex<HashMap<i64, Pending>>,
    owing: Mutex<HashMap<i64, (User, i64)>>,
}

impl Passwords {
    /// Passwords in `store`, challenges from `entropy`.
    pub fn new(store: Arc<dyn Store>, entropy: Randomness) -> Self {
        Passwords {
            store,
            entropy,
            pending: Mutex::default(),
            owing: Mutex::default(),
        }
    }

    /// Whether `user` has a cloud password.
    pub async fn is_set(&self, user: i64) -> Result<bool, RpcError> {
        Ok(self.store.password(user).await?.is_some())
    }

    /// Records that the auth key `key_id` gave the right code for `user`, who has a password.
    pub fn owe(&self, key_id: i64, user: User, now: i64) {
        let mut owing = self.owing.lock().unwrap_or_else(|e| e.into_inner());
        owing.retain(|_, (_, since)| now - *since < TTL_SECS);
        owing.insert(key_id, (user, now));
    }

    /// The user whose password the auth key `key_id` owes, if any.
    pub fn owed_by(&self, key_id: i64, now: i64) -> Option<User> {
        let owing = self.owing.lock().unwrap_or_else(|e| e.into_inner());
        owing
            .get(&key_id)
            .filter(|(_, since)| now - *since < TTL_SECS)
            .map(|(user, _)| user.clone())
    }

    /// Forgets that `key_id` owes a password (it logged in).
    pub fn settle(&self, key_id: i64) {
        self.owing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key_id);
    }

    /// What `account.getPassword` shows `user` at `now`: with a password set, a fresh
    /// challenge (replacing the one before).
    pub async fn offer(&self, user: i64, now: i64) -> Result<PasswordOffer, RpcError> {
        let mut entropy = self.entropy.clone();
        let current = match self.store.password(user).await? {
            Some(stored) => {
                let v =
                    srp::verifier(&stored.verifier).map_err(|_| stored_verifier_invalid(user))?;
                let challenge = Challenge::new(&v, &mut entropy);
                let srp_id = i64::from_le_bytes(entropy.array());
                let public = challenge.public;
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.retain(|_, p| now - p.issued_at < TTL_SECS);
                pending.insert(
                    user,
                    Pending {
                        srp_id,
                        challenge,
                        issued_at: now,
                    },
                );
                Some(CurrentPassword {
                    salt1: stored.salt1,
                    salt2: stored.salt2,
                    hint: stored.hint,
                    public,
                    srp_id,
                })
            }
            None => None,
        };
        Ok(PasswordOffer {
            current,
            new_salt1: random(&mut entropy, SALT1_LEN),
            new_salt2: random(&mut entropy, SALT2_LEN),
            secure_random: random(&mut entropy, 256),
        })
    }

    /// Checks `proof` against `user`'s password: `PASSWORD_HASH_INVALID` when it is wrong (or
    /// there is none), `SRP_ID_INVALID` when it answers no open challenge. A challenge is
    /// answered once, right or wrong.
    pub async fn check(&self, user: i64, proof: &PasswordProof, now: i64) -> Result<(), RpcError> {
        let stored = self
            .store
            .password(user)
            .await?
            .ok_or(RpcError::PasswordHashInvalid)?;
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match pending.get(&user) {
                Some(p) if p.srp_id == proof.srp_id && now - p.issued_at < TTL_SECS => {
                    pending.remove(&user)
                }
                _ => None,
            }
        }
        .ok_or(RpcError::SrpIdInvalid)?;
        let v = srp::verifier(&stored.verifier).map_err(|_| stored_verifier_invalid(user))?;
        pending
            .challenge
            .check(&v, &stored.salt1, &stored.salt2, &proof.a, &proof.m1)
            .map_err(|e| match e {
                SrpError::PublicValueInvalid | SrpError::ProofMismatch => {
                    RpcError::PasswordHashInvalid
                }
                SrpError::VerifierInvalid => RpcError::PasswordHashInvalid,
            })
    }

    /// `account.updatePasswordSettings`: `current` must prove the password set (or be `None`
    /// when there is none); `new` replaces it, `None` removes it.
    pub async fn update(
        &self,
        user: i64,
        current: Option<&PasswordProof>,
        new: Option<NewPassword>,
        now: i64,
    ) -> Result<(), RpcError> {
        match (self.is_set(user).await?, current) {
            (true, Some(proof)) => self.check(user, proof, now).await?,
            (true, None) => return Err(RpcError::PasswordHashInvalid),
            (false, _) => {}
        }
        match new {
            None => Ok(self.store.clear_password(user).await?),
            Some(new) => {
                if new.g != mtproto::crypto::dh::G
                    || new.p.as_slice() != mtproto::crypto::dh::DH_PRIME.as_slice()
                    || new.salt1.len() < SALT1_LEN
                    || new.salt1.len() > 1024
                    || new.salt2.len() < SALT2_LEN
                    || new.salt2.len() > 1024
                {
                    return Err(RpcError::NewSaltInvalid);
                }
                let v = srp::verifier(&new.verifier).map_err(|_| RpcError::NewSettingsInvalid)?;
                let hint: String = new.hint.chars().take(128).collect();
                self.store
                    .set_password(
                        user,
                        CloudPassword {
                            salt1: new.salt1,
                            salt2: new.salt2,
                            verifier: v.to_vec(),
                            hint,
                            set_at: now,
                        },
                    )
                    .await?;
                Ok(())
            }
        }
    }
}

fn random(entropy: &mut Randomness, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    entropy.fill(&mut out);
    out
}

/// A stored verifier this version cannot use: logged, answered as a transient failure.
fn stored_verifier_invalid(user: i64) -> RpcError {
    tracing::error!(
        user_id = user,
        "the stored cloud password's verifier is invalid"
    );
    RpcError::RpcCallFail
}
