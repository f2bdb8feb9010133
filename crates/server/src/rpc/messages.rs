//! `messages.*`: `messages.getDhConfig`, the Diffie–Hellman parameters clients use for call
//! keys (Telegram's 2048-bit safe prime, g = 3), and the dialog list. mtcall carries no chats,
//! so the dialog list is valid and empty: clients list dialogs at start-up and must get a
//! result they can read rather than an error.

use mtproto::crypto::{Entropy, dh};
use tl::{enums, functions, types};

use super::RpcCtx;
use crate::errors::RpcError;
use crate::services::Updates;

use super::updates;

/// The version of the parameters; they never change.
const VERSION: i32 = 1;
/// Most random bytes a client may ask for.
const MAX_RANDOM: i32 = 1024;

pub fn get_dh_config(
    ctx: &mut RpcCtx<'_>,
    r: functions::messages::GetDhConfig,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    if !(0..=MAX_RANDOM).contains(&r.random_length) {
        return Err(RpcError::RandomLengthInvalid);
    }
    let mut random = vec![0u8; r.random_length as usize];
    ctx.entropy.fill(&mut random);
    let config = if r.version == VERSION {
        enums::messages::DhConfig::from(types::messages::DhConfigNotModified { random })
    } else {
        enums::messages::DhConfig::from(types::messages::DhConfig {
            g: dh::G,
            p: dh::DH_PRIME.to_vec(),
            version: VERSION,
            random,
        })
    };
    Ok(ctx.encode(&config))
}

pub fn get_dialogs(
    ctx: &mut RpcCtx<'_>,
    _r: functions::messages::GetDialogs,
) -> Result<Vec<u8>, RpcError> {
    ctx.user_id()?;
    let dialogs = enums::messages::Dialogs::from(types::messages::Dialogs {
        dialogs: vec![],
        messages: vec![],
        chats: vec![],
        users: vec![],
    });
    Ok(ctx.encode(&dialogs))
}

pub async fn get_pinned_dialogs(
    ctx: &mut RpcCtx<'_>,
    log: &Updates,
    _r: functions::messages::GetPinnedDialogs,
) -> Result<Vec<u8>, RpcError> {
    let state = updates::current_state(ctx, log).await?;
    let dialogs = enums::messages::PeerDialogs::from(types::messages::PeerDialogs {
        dialogs: vec![],
        messages: vec![],
        chats: vec![],
        users: vec![],
        state: state.into(),
    });
    Ok(ctx.encode(&dialogs))
}
