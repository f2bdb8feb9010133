//! The RPC router: unwraps `invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`,
//! `invokeAfterMsg(s)` and `gzip_packed` (iteratively), decodes the request in any supported
//! layer's form, and hands it to the file of its method family. Results are encoded for the
//! key's layer.

mod account;
mod auth;
mod contacts;
mod context;
mod help;
mod messages;
mod password;
mod phone;
mod updates;
mod users;

use tl::functions::Request;
use tl::{Decode, Layer, enums};

pub use context::{KeyInfo, RpcCtx};

use crate::errors::RpcError;
use crate::services::{Accounts, Services};

/// Wrappers nested deeper than this are refused (they have no legitimate use).
const MAX_WRAPPERS: usize = 8;

/// Handles one request body with `services`; returns the encoded result.
pub async fn handle(
    services: &Services,
    ctx: &mut RpcCtx<'_>,
    body: Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    ctx.trace.method = "unknown";
    let body = unwrap(&services.accounts, ctx, body).await?;
    let request = match Request::from_bytes(&body) {
        Ok(r) => r,
        Err(tl::DecodeError::UnexpectedConstructor { id, .. })
            if body.get(..4) == Some(&id.to_le_bytes()) =>
        {
            return Err(RpcError::InputMethodInvalid(id));
        }
        Err(e) => return Err(e.into()),
    };
    ctx.trace.method = request.name();
    if ctx.trace.method.starts_with("phone.") {
        // Kept for the call inspector; what the method is about is set by its handler.
        ctx.trace.request = Some(body);
        ctx.trace.call_id = call_of(&request);
    }
    dispatch(services, ctx, request).await
}

/// The call a `phone.*` request names.
fn call_of(request: &Request) -> Option<i64> {
    let peer = match request {
        Request::PhoneReceivedCall(r) => &r.peer,
        Request::PhoneAcceptCall(r) => &r.peer,
        Request::PhoneConfirmCall(r) => &r.peer,
        Request::PhoneDiscardCall(r) => &r.peer,
        Request::PhoneSendSignalingData(r) => &r.peer,
        Request::PhoneSetCallRating(r) => &r.peer,
        Request::PhoneSaveCallDebug(r) => &r.peer,
        Request::PhoneSaveCallLog(r) => &r.peer,
        _ => return None,
    };
    let enums::InputPhoneCall::InputPhoneCall(p) = peer;
    Some(p.id)
}

async fn unwrap(
    accounts: &Accounts,
    ctx: &mut RpcCtx<'_>,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    for _ in 0..MAX_WRAPPERS {
        let id = body
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        body = match id {
            0xda9b0d0d => {
                let w = tl::functions::InvokeWithLayer::from_bytes(&body)?;
                ctx.key.layer = Layer::serving(w.layer).ok_or(RpcError::ConnectionLayerInvalid)?;
                if ctx.key.announced_layer != Some(w.layer) {
                    ctx.key.announced_layer = Some(w.layer);
                    ctx.key.revision = ctx.key.revision.wrapping_add(1);
                    accounts
                        .set_key_client(ctx.key.key_id, Some(w.layer), None)
                        .await?;
                }
                w.query.0
            }
            0xc1cd5ea9 => {
                let w = tl::functions::InitConnection::from_bytes(&body)?;
                let info = store::ClientInfo {
                    api_id: w.api_id,
                    device_model: w.device_model,
                    system_version: w.system_version,
                    app_version: w.app_version,
                    lang_code: w.lang_code,
                };
                if ctx.key.client.as_deref() != Some(&info) {
                    accounts
                        .set_key_client(ctx.key.key_id, None, Some(info.clone()))
                        .await?;
                    ctx.key.client = Some(std::sync::Arc::new(info));
                    ctx.key.revision = ctx.key.revision.wrapping_add(1);
                }
                w.query.0
            }
            0xbf9459b7 => {
                ctx.without_updates = true;
                tl::functions::InvokeWithoutUpdates::from_bytes(&body)?
                    .query
                    .0
            }
            0xcb9f372d => tl::functions::InvokeAfterMsg::from_bytes(&body)?.query.0,
            0x3dc4b4f0 => tl::functions::InvokeAfterMsgs::from_bytes(&body)?.query.0,
            tl::service::GZIP_PACKED_ID => {
                let enums::Object::GzipPacked(g) = enums::Object::from_bytes(&body)?;
                mtproto::session::gunzip(&g.packed_data).ok_or(RpcError::InputFetchError)?
            }
            _ => return Ok(body),
        };
    }
    Err(RpcError::InputFetchError)
}

async fn dispatch(
    services: &Services,
    ctx: &mut RpcCtx<'_>,
    request: Request,
) -> Result<Vec<u8>, RpcError> {
    let Services {
        calls,
        users,
        updates,
        accounts,
        passwords,
        config,
    } = services;
    match request {
        Request::HelpGetConfig(_) => help::get_config(ctx, config),
        Request::HelpGetNearestDc(_) => help::get_nearest_dc(ctx, config),
        Request::AuthSendCode(r) => auth::send_code(ctx, accounts, r).await,
        Request::AuthSignIn(r) => auth::sign_in(ctx, accounts, passwords, users, r).await,
        Request::AuthCheckPassword(r) => {
            auth::check_password(ctx, accounts, passwords, users, r).await
        }
        Request::AccountGetPassword(_) => password::get_password(ctx, passwords).await,
        Request::AccountUpdatePasswordSettings(r) => {
            password::update_password_settings(ctx, passwords, r).await
        }
        Request::AuthSignUp(r) => auth::sign_up(ctx, accounts, users, r).await,
        Request::AuthLogOut(_) => auth::log_out(ctx, accounts).await,
        Request::AuthImportBotAuthorization(r) => {
            auth::import_bot_authorization(ctx, accounts, users, r).await
        }
        Request::AuthBindTempAuthKey(r) => auth::bind_temp_auth_key(ctx, accounts, r).await,
        Request::UsersGetUsers(r) => users::get_users(ctx, users, r).await,
        Request::UsersGetFullUser(r) => users::get_full_user(ctx, users, r).await,
        Request::ContactsImportContacts(r) => contacts::import_contacts(ctx, users, r).await,
        Request::ContactsGetContacts(r) => contacts::get_contacts(ctx, users, r).await,
        Request::ContactsResolvePhone(r) => contacts::resolve_phone(ctx, users, r).await,
        Request::ContactsResolveUsername(r) => contacts::resolve_username(ctx, users, r).await,
        Request::AccountCheckUsername(r) => account::check_username(ctx, users, r).await,
        Request::AccountUpdateUsername(r) => account::update_username(ctx, users, updates, r).await,
        Request::UpdatesGetState(_) => updates::get_state(ctx, updates).await,
        Request::UpdatesGetDifference(r) => {
            updates::get_difference(ctx, updates, calls, users, r).await
        }
        Request::MessagesGetDhConfig(r) => messages::get_dh_config(ctx, r),
        Request::MessagesGetDialogs(r) => messages::get_dialogs(ctx, r),
        Request::MessagesGetPinnedDialogs(r) => messages::get_pinned_dialogs(ctx, updates, r).await,
        Request::PhoneGetCallConfig(_) => phone::get_call_config(ctx),
        Request::PhoneRequestCall(r) => phone::request_call(ctx, calls, users, r).await,
        Request::PhoneReceivedCall(r) => phone::received_call(ctx, calls, r).await,
        Request::PhoneAcceptCall(r) => phone::accept_call(ctx, calls, r).await,
        Request::PhoneConfirmCall(r) => phone::confirm_call(ctx, calls, r).await,
        Request::PhoneDiscardCall(r) => phone::discard_call(ctx, calls, r).await,
        Request::PhoneSendSignalingData(r) => phone::send_signaling_data(ctx, calls, r).await,
        Request::PhoneSetCallRating(r) => phone::set_call_rating(ctx, calls, r).await,
        Request::PhoneSaveCallDebug(r) => phone::save_call_debug(ctx, calls, r).await,
        Request::PhoneSaveCallLog(r) => phone::save_call_log(ctx, calls, r).await,
        other => {
            // Everything else needs a login first, like every phone.* method.
            ctx.user_id()?;
            Err(RpcError::MethodNotSupported(other.name()))
        }
    }
}
