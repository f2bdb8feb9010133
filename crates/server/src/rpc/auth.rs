//! `auth.*`: login by phone code (`docs/clients.md §3`), bot login, log-out and
//! temporary-key binding (`docs/clients.md §3`).
//!
//! Numbers of Telegram's test form `99966XYYYY` take the code `XXXXX`, so client test suites
//! written for the test DCs run unchanged. Other numbers get a random code, logged by the
//! server and shown by `mtcall code PHONE` (or the configured fixed code).

use subtle_free::ct_eq;
use tl::{Encode, enums, functions, types};

use crate::errors::RpcError;
use crate::render;
use crate::shared::RpcCtx;
use mtproto::crypto::{Entropy, OsEntropy};

/// Wrong codes allowed before a code is burnt.
const MAX_ATTEMPTS: i32 = 5;

/// The code a number of the test form `99966XYYYY` accepts.
pub fn test_number_code(phone: &str) -> Option<String> {
    let b = phone.as_bytes();
    (b.len() == 10 && phone.starts_with("99966"))
        .then(|| std::iter::repeat_n(b[5] as char, 5).collect())
}

fn random_code() -> String {
    let n = u32::from_le_bytes(OsEntropy.array()) % 100_000;
    format!("{n:05}")
}

pub async fn send_code(
    ctx: &mut RpcCtx<'_>,
    r: functions::auth::SendCode,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let code = test_number_code(&phone)
        .or_else(|| ctx.shared.config.fixed_login_code.clone())
        .unwrap_or_else(random_code);
    let hash: [u8; 9] = OsEntropy.array();
    let hash: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    ctx.shared
        .store
        .save_login_code(store::LoginCode {
            hash: hash.clone(),
            phone: phone.clone(),
            code: code.clone(),
            created_at: ctx.now,
            expires_at: ctx.now + ctx.shared.config.login_code_ttl_secs,
            attempts: 0,
            verified: false,
        })
        .await?;
    tracing::info!(phone = %phone, code = %code, "login code sent");
    let sent = enums::auth::SentCode::from(types::auth::SentCode {
        r#type: types::auth::SentCodeTypeApp {
            length: code.len() as i32,
        }
        .into(),
        phone_code_hash: hash,
        next_type: None,
        timeout: None,
    });
    Ok(ctx.encode(&sent))
}

/// The code row for `hash`, checked against the phone and its expiry.
async fn live_code(
    ctx: &RpcCtx<'_>,
    phone: &str,
    hash: &str,
) -> Result<store::LoginCode, RpcError> {
    if hash.is_empty() {
        return Err(RpcError::PhoneCodeHashEmpty);
    }
    let code = ctx
        .shared
        .store
        .login_code(hash)
        .await?
        .ok_or(RpcError::PhoneCodeExpired)?;
    if code.phone != phone || code.expires_at < ctx.now {
        return Err(RpcError::PhoneCodeExpired);
    }
    Ok(code)
}

async fn log_in(ctx: &mut RpcCtx<'_>, user: &store::User) -> Result<Vec<u8>, RpcError> {
    ctx.shared
        .store
        .set_key_user(ctx.key.perm_key_id, Some(user.id))
        .await?;
    ctx.key.user_id = Some(user.id);
    tracing::info!(
        user_id = user.id,
        key = format_args!("{:016x}", ctx.key.perm_key_id as u64),
        "logged in"
    );
    let auth = enums::auth::Authorization::from(types::auth::Authorization {
        setup_password_required: false,
        otherwise_relogin_days: None,
        tmp_sessions: None,
        future_auth_token: None,
        user: render::user(ctx, user.id, user, false),
    });
    Ok(ctx.encode(&auth))
}

pub async fn sign_in(
    ctx: &mut RpcCtx<'_>,
    r: functions::auth::SignIn,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let code = live_code(ctx, &phone, &r.phone_code_hash).await?;
    let given = r
        .phone_code
        .filter(|c| !c.is_empty())
        .ok_or(RpcError::PhoneCodeEmpty)?;
    if !ct_eq(given.as_bytes(), code.code.as_bytes()) {
        let attempts = code.attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            ctx.shared.store.delete_login_code(&code.hash).await?;
            return Err(RpcError::PhoneCodeExpired);
        }
        ctx.shared
            .store
            .update_login_code(&code.hash, attempts, false)
            .await?;
        return Err(RpcError::PhoneCodeInvalid);
    }
    match ctx.shared.store.user_by_phone(&phone).await? {
        Some(user) => {
            ctx.shared.store.delete_login_code(&code.hash).await?;
            log_in(ctx, &user).await
        }
        None => {
            ctx.shared
                .store
                .update_login_code(&code.hash, code.attempts, true)
                .await?;
            let required =
                enums::auth::Authorization::from(types::auth::AuthorizationSignUpRequired {
                    terms_of_service: None,
                });
            Ok(required.to_bytes(ctx.key.layer))
        }
    }
}

pub async fn sign_up(
    ctx: &mut RpcCtx<'_>,
    r: functions::auth::SignUp,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let code = live_code(ctx, &phone, &r.phone_code_hash).await?;
    if !code.verified {
        return Err(RpcError::PhoneCodeInvalid);
    }
    let first_name = r.first_name.trim();
    if first_name.is_empty() || first_name.chars().count() > 64 {
        return Err(RpcError::FirstnameInvalid);
    }
    let new = store::NewUser {
        phone: Some(phone),
        first_name: first_name.to_owned(),
        last_name: r.last_name.trim().chars().take(64).collect(),
        ..Default::default()
    };
    let user = match ctx.shared.store.create_user(new, ctx.now).await {
        Ok(u) => u,
        Err(store::StoreError::Conflict(_)) => return Err(RpcError::PhoneNumberOccupied),
        Err(e) => return Err(e.into()),
    };
    ctx.shared.store.delete_login_code(&code.hash).await?;
    log_in(ctx, &user).await
}

pub async fn log_out(ctx: &mut RpcCtx<'_>) -> Result<Vec<u8>, RpcError> {
    let user_id = ctx.user_id()?;
    ctx.shared
        .store
        .set_key_user(ctx.key.perm_key_id, None)
        .await?;
    ctx.key.user_id = None;
    tracing::info!(user_id, "logged out");
    Ok(
        ctx.encode(&enums::auth::LoggedOut::from(types::auth::LoggedOut {
            future_auth_token: None,
        })),
    )
}

pub async fn import_bot_authorization(
    ctx: &mut RpcCtx<'_>,
    r: functions::auth::ImportBotAuthorization,
) -> Result<Vec<u8>, RpcError> {
    let (id, secret) = r
        .bot_auth_token
        .split_once(':')
        .ok_or(RpcError::AccessTokenInvalid)?;
    let id: i64 = id.parse().map_err(|_| RpcError::AccessTokenInvalid)?;
    let user = ctx
        .shared
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
    log_in(ctx, &user).await
}

/// `auth.bindTempAuthKey`: the request must come over the temporary key; `encrypted_message`
/// is `bind_auth_key_inner` encrypted with the permanent key in MTProto 1.0 form.
pub async fn bind_temp_auth_key(
    ctx: &mut RpcCtx<'_>,
    r: functions::auth::BindTempAuthKey,
) -> Result<Vec<u8>, RpcError> {
    if ctx.key.expires_at.is_none() {
        return Err(RpcError::TempAuthKeyEmpty);
    }
    let perm = ctx
        .shared
        .store
        .auth_key(r.perm_auth_key_id)
        .await?
        .ok_or(RpcError::PermAuthKeyInvalid)?;
    if perm.expires_at.is_some() {
        return Err(RpcError::PermAuthKeyInvalid);
    }
    let key_bytes: [u8; 256] = perm
        .key
        .as_slice()
        .try_into()
        .map_err(|_| RpcError::PermAuthKeyInvalid)?;
    let perm_key = mtproto::crypto::AuthKey::from_bytes(key_bytes);
    let m = &r.encrypted_message;
    if m.len() < 8 || m[..8] != perm_key.id().to_le_bytes() {
        return Err(RpcError::EncryptedMessageInvalid);
    }
    let (msg_key, plain) = perm_key
        .decrypt_v1(&m[8..])
        .ok_or(RpcError::EncryptedMessageInvalid)?;
    let mut rd = tl::Reader::new(&plain);
    let (_salt, _session, msg_id, _seqno, len) = (
        rd.read_i64()?,
        rd.read_i64()?,
        rd.read_i64()?,
        rd.read_i32()?,
        rd.read_i32()?,
    );
    let len = usize::try_from(len).map_err(|_| RpcError::EncryptedMessageInvalid)?;
    let data_len = 32 + len;
    if data_len > plain.len() || mtproto::crypto::sha1(&[&plain[..data_len]])[4..20] != msg_key {
        return Err(RpcError::EncryptedMessageInvalid);
    }
    let enums::BindAuthKeyInner::BindAuthKeyInner(inner) =
        tl::Decode::from_bytes(&plain[32..data_len])?;
    let valid = msg_id == ctx.msg_id
        && inner.nonce == r.nonce
        && inner.temp_auth_key_id == ctx.key.key_id
        && inner.perm_auth_key_id == r.perm_auth_key_id
        && inner.temp_session_id == ctx.key.session_id
        && inner.expires_at == r.expires_at;
    if !valid {
        return Err(RpcError::EncryptedMessageInvalid);
    }
    ctx.shared
        .store
        .bind_temp_key(ctx.key.key_id, r.perm_auth_key_id, i64::from(r.expires_at))
        .await?;
    ctx.key.perm_key_id = r.perm_auth_key_id;
    ctx.key.user_id = perm.user_id;
    Ok(ctx.encode(&true))
}

/// Constant-time equality for codes and secrets.
mod subtle_free {
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers() {
        assert_eq!(test_number_code("9996621234").as_deref(), Some("22222"));
        assert_eq!(test_number_code("9996651234").as_deref(), Some("55555"));
        assert_eq!(test_number_code("15550001"), None);
        assert_eq!(test_number_code("99966212345"), None);
        assert!(ct_eq(b"123", b"123") && !ct_eq(b"123", b"124") && !ct_eq(b"1", b"12"));
        assert_eq!(random_code().len(), 5);
    }
}
