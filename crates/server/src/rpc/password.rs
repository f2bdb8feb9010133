//! Cloud passwords (two-step verification, `docs/clients.md §3`): `account.getPassword`,
//! `account.updatePasswordSettings` and `auth.checkPassword`, the last for a key whose
//! `auth.signIn` answered `SESSION_PASSWORD_NEEDED`. The SRP work is in the passwords service.

use mtproto::crypto::dh::{DH_PRIME, G};
use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::services::{NewPassword, PasswordProof, Passwords};

/// The algorithm object for `salt1`, `salt2` over mtcall's prime and generator.
fn algo(salt1: Vec<u8>, salt2: Vec<u8>) -> enums::PasswordKdfAlgo {
    types::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
        salt1,
        salt2,
        g: G,
        p: DH_PRIME.to_vec(),
    }
    .into()
}

/// The user a request speaks for: the logged-in one, or the one whose password this key owes.
fn whose(ctx: &RpcCtx<'_>, passwords: &Passwords) -> Result<i64, RpcError> {
    match ctx.key.user_id {
        Some(user) => Ok(user),
        None => passwords
            .owed_by(ctx.key.perm_key_id, ctx.now)
            .map(|u| u.id)
            .ok_or(RpcError::AuthKeyUnregistered),
    }
}

/// `inputCheckPasswordSRP` as a proof; `inputCheckPasswordEmpty` as none.
pub fn proof(input: enums::InputCheckPasswordSRP) -> Option<PasswordProof> {
    match input {
        enums::InputCheckPasswordSRP::InputCheckPasswordEmpty(_) => None,
        enums::InputCheckPasswordSRP::InputCheckPasswordSRP(p) => Some(PasswordProof {
            srp_id: p.srp_id,
            a: p.a,
            m1: p.m1,
        }),
    }
}

pub async fn get_password(
    ctx: &mut RpcCtx<'_>,
    passwords: &Passwords,
) -> Result<Vec<u8>, RpcError> {
    let user = whose(ctx, passwords)?;
    let offer = passwords.offer(user, ctx.now).await?;
    let mut password = types::account::Password {
        new_algo: algo(offer.new_salt1, offer.new_salt2),
        new_secure_algo: types::SecurePasswordKdfAlgoUnknown {}.into(),
        secure_random: offer.secure_random,
        ..Default::default()
    };
    if let Some(current) = offer.current {
        password.has_password = true;
        password.current_algo = Some(algo(current.salt1, current.salt2));
        password.srp_b = Some(current.public.to_vec());
        password.srp_id = Some(current.srp_id);
        password.hint = Some(current.hint).filter(|h| !h.is_empty());
    }
    Ok(ctx.encode(&enums::account::Password::from(password)))
}

pub async fn update_password_settings(
    ctx: &mut RpcCtx<'_>,
    passwords: &Passwords,
    r: functions::account::UpdatePasswordSettings,
) -> Result<Vec<u8>, RpcError> {
    let user = ctx.user_id()?;
    let enums::account::PasswordInputSettings::PasswordInputSettings(settings) = r.new_settings;
    let new = match (settings.new_algo, settings.new_password_hash) {
        (
            Some(enums::PasswordKdfAlgo::SHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(a)),
            Some(v),
        ) if !v.is_empty() => Some(NewPassword {
            salt1: a.salt1,
            salt2: a.salt2,
            g: a.g,
            p: a.p,
            verifier: v,
            hint: settings.hint.unwrap_or_default(),
        }),
        // No algorithm, the unknown one or an empty hash: remove the password.
        _ => None,
    };
    passwords
        .update(user, proof(r.password).as_ref(), new, ctx.now)
        .await?;
    Ok(ctx.encode(&true))
}

/// `auth.checkPassword`: the password of the account this key gave the right code for.
pub async fn check(
    ctx: &mut RpcCtx<'_>,
    passwords: &Passwords,
    r: functions::auth::CheckPassword,
) -> Result<store::User, RpcError> {
    let user = passwords
        .owed_by(ctx.key.perm_key_id, ctx.now)
        .ok_or(RpcError::AuthKeyUnregistered)?;
    let proof = proof(r.password).ok_or(RpcError::PasswordHashInvalid)?;
    passwords.check(user.id, &proof, ctx.now).await?;
    passwords.settle(ctx.key.perm_key_id);
    Ok(user)
}
