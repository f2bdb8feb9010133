//! `auth.*`: login by phone code (`docs/clients.md §3`), bot login, log-out and
//! temporary-key binding (`docs/clients.md §3`).
//!
//! Numbers of Telegram's test form `99966XYYYY` take the code `XXXXX` (while `[auth]
//! test_numbers` is on), so client test suites written for the test DCs run unchanged. Other
//! numbers get a random code, delivered by the code command or logged by the server, and shown
//! by `mtcall code PHONE` (or the configured fixed code). Who may ask and sign up: the
//! accounts service's `[auth]` policy.

use tl::{Encode, enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::render;
use crate::services::{Accounts, CodeCheck, Passwords, Users};

pub async fn send_code(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    r: functions::auth::SendCode,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let (hash, length) = accounts.issue_code(&phone, ctx.peer, ctx.now).await?;
    let sent = enums::auth::SentCode::from(types::auth::SentCode {
        r#type: types::auth::SentCodeTypeApp {
            length: length as i32,
        }
        .into(),
        phone_code_hash: hash,
        next_type: None,
        timeout: None,
    });
    Ok(ctx.encode(&sent))
}

async fn log_in(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    users: &Users,
    user: &store::User,
) -> Result<Vec<u8>, RpcError> {
    accounts
        .bind_user(ctx.key.perm_key_id, Some(user.id))
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
        user: users.render(user.id, user, false),
    });
    Ok(ctx.encode(&auth))
}

pub async fn sign_in(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    passwords: &Passwords,
    users: &Users,
    r: functions::auth::SignIn,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let given = r.phone_code.filter(|c| !c.is_empty());
    // The code hash is checked first: an empty code on a dead hash is an expired code.
    let Some(given) = given else {
        accounts
            .live_code(&phone, &r.phone_code_hash, ctx.now)
            .await?;
        return Err(RpcError::PhoneCodeEmpty);
    };
    match accounts
        .check_code(&phone, &r.phone_code_hash, &given, ctx.now)
        .await?
    {
        CodeCheck::Known(user) if passwords.is_set(user.id).await? => {
            // The code is spent; the key owes the password (`auth.checkPassword`).
            passwords.owe(ctx.key.perm_key_id, user, ctx.now);
            Err(RpcError::SessionPasswordNeeded)
        }
        CodeCheck::Known(user) => log_in(ctx, accounts, users, &user).await,
        CodeCheck::Unknown => {
            let required =
                enums::auth::Authorization::from(types::auth::AuthorizationSignUpRequired {
                    terms_of_service: None,
                });
            Ok(required.to_bytes(ctx.key.layer))
        }
    }
}

pub async fn check_password(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    passwords: &Passwords,
    users: &Users,
    r: functions::auth::CheckPassword,
) -> Result<Vec<u8>, RpcError> {
    let user = super::password::check(ctx, passwords, r).await?;
    log_in(ctx, accounts, users, &user).await
}

pub async fn sign_up(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    users: &Users,
    r: functions::auth::SignUp,
) -> Result<Vec<u8>, RpcError> {
    let phone = render::normalize_phone(&r.phone_number).ok_or(RpcError::PhoneNumberInvalid)?;
    let code = accounts
        .live_code(&phone, &r.phone_code_hash, ctx.now)
        .await?;
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
    let user = accounts.sign_up(&code, new, ctx.now).await?;
    log_in(ctx, accounts, users, &user).await
}

pub async fn log_out(ctx: &mut RpcCtx<'_>, accounts: &Accounts) -> Result<Vec<u8>, RpcError> {
    let user_id = ctx.user_id()?;
    accounts.bind_user(ctx.key.perm_key_id, None).await?;
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
    accounts: &Accounts,
    users: &Users,
    r: functions::auth::ImportBotAuthorization,
) -> Result<Vec<u8>, RpcError> {
    let user = accounts.bot_by_token(&r.bot_auth_token).await?;
    log_in(ctx, accounts, users, &user).await
}

pub async fn bind_temp_auth_key(
    ctx: &mut RpcCtx<'_>,
    accounts: &Accounts,
    r: functions::auth::BindTempAuthKey,
) -> Result<Vec<u8>, RpcError> {
    if ctx.key.expires_at.is_none() {
        return Err(RpcError::TempAuthKeyEmpty);
    }
    let perm = accounts
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
    accounts
        .bind_temp_key(ctx.key.key_id, r.perm_auth_key_id, i64::from(r.expires_at))
        .await?;
    ctx.key.perm_key_id = r.perm_auth_key_id;
    ctx.key.user_id = perm.user_id;
    Ok(ctx.encode(&true))
}
