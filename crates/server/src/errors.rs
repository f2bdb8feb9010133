//! The API errors mtcall answers with: each Telegram error name is a variant, mapped to its
//! `rpc_error` code and message in one place (`docs/clients.md §6`).

use std::borrow::Cow;

/// An `rpc_error` to answer a request with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// 401: the key is not logged in.
    AuthKeyUnregistered,
    /// 420: too many requests; retry after this many seconds (`FLOOD_WAIT_X`).
    FloodWait(u32),
    /// 400: the phone number is not valid.
    PhoneNumberInvalid,
    /// 400: no code was given.
    PhoneCodeEmpty,
    /// 400: the code is wrong.
    PhoneCodeInvalid,
    /// 400: the code (or its hash) expired or is unknown.
    PhoneCodeExpired,
    /// 400: no phone_code_hash was given.
    PhoneCodeHashEmpty,
    /// 400: the number has an account already (sign-up).
    PhoneNumberOccupied,
    /// 400: no account has this number (resolve).
    PhoneNotOccupied,
    /// 400: the number has no account and may not sign up (`[auth] signup`).
    PhoneNumberUnoccupied,
    /// 400: this number was sent too many codes lately (`[auth] codes_per_phone_per_hour`).
    PhoneNumberFlood,
    /// 400: the first name is empty or too long.
    FirstnameInvalid,
    /// 400: the bot token is not valid.
    AccessTokenInvalid,
    /// 400: the user is unknown or the access hash is wrong.
    UserIdInvalid,
    /// 400: the username is malformed.
    UsernameInvalid,
    /// 400: someone else has the username.
    UsernameOccupied,
    /// 400: the username is already this user's.
    UsernameNotModified,
    /// 400: no one has the username.
    UsernameNotOccupied,
    /// 400: `auth.bindTempAuthKey` data does not check out.
    EncryptedMessageInvalid,
    /// 400: `auth.bindTempAuthKey` over a permanent key.
    TempAuthKeyEmpty,
    /// 400: the permanent key to bind to is unknown.
    PermAuthKeyInvalid,
    /// 400: an unknown method (the constructor id).
    InputMethodInvalid(u32),
    /// 400: an unknown constructor inside a request.
    InputConstructorInvalid,
    /// 400: the request could not be decoded.
    InputFetchError,
    /// 400: a method mtcall knows but does not serve (its TL name).
    MethodNotSupported(&'static str),
    /// 500: a transient failure (the database); clients retry.
    RpcCallFail,
    /// 400: `messages.getDhConfig` asked for too many random bytes.
    RandomLengthInvalid,
    /// 400: `invokeWithLayer` announced a layer older than every supported one; the message
    /// names the supported range.
    ConnectionLayerInvalid,
    /// 401: the code was right, and the account has a cloud password to give next
    /// (`auth.checkPassword`).
    SessionPasswordNeeded,
    /// 400: the cloud password's proof is wrong (or no password is set).
    PasswordHashInvalid,
    /// 400: the proof answers no open SRP challenge (ask `account.getPassword` again).
    SrpIdInvalid,
    /// 400: a new password's algorithm is not the offered one (salts, generator, prime).
    NewSaltInvalid,
    /// 400: a new password's verifier is not a valid number.
    NewSettingsInvalid,
    /// A call error (`CALL_PEER_INVALID`, `CALL_ALREADY_DECLINED`, ...).
    Call(calls::CallError),
}

impl RpcError {
    /// The `error_code`.
    pub fn code(&self) -> i32 {
        match self {
            RpcError::AuthKeyUnregistered | RpcError::SessionPasswordNeeded => 401,
            RpcError::FloodWait(_) => 420,
            RpcError::RpcCallFail => 500,
            RpcError::Call(e) => e.code(),
            _ => 400,
        }
    }

    /// The error's name: the `error_message` without a number (`FLOOD_WAIT`, not
    /// `FLOOD_WAIT_5`), for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            RpcError::AuthKeyUnregistered => "AUTH_KEY_UNREGISTERED",
            RpcError::PhoneNumberInvalid => "PHONE_NUMBER_INVALID",
            RpcError::PhoneCodeEmpty => "PHONE_CODE_EMPTY",
            RpcError::PhoneCodeInvalid => "PHONE_CODE_INVALID",
            RpcError::PhoneCodeExpired => "PHONE_CODE_EXPIRED",
            RpcError::PhoneCodeHashEmpty => "PHONE_CODE_HASH_EMPTY",
            RpcError::PhoneNumberOccupied => "PHONE_NUMBER_OCCUPIED",
            RpcError::PhoneNotOccupied => "PHONE_NOT_OCCUPIED",
            RpcError::PhoneNumberUnoccupied => "PHONE_NUMBER_UNOCCUPIED",
            RpcError::PhoneNumberFlood => "PHONE_NUMBER_FLOOD",
            RpcError::FirstnameInvalid => "FIRSTNAME_INVALID",
            RpcError::AccessTokenInvalid => "ACCESS_TOKEN_INVALID",
            RpcError::UserIdInvalid => "USER_ID_INVALID",
            RpcError::UsernameInvalid => "USERNAME_INVALID",
            RpcError::UsernameOccupied => "USERNAME_OCCUPIED",
            RpcError::UsernameNotModified => "USERNAME_NOT_MODIFIED",
            RpcError::UsernameNotOccupied => "USERNAME_NOT_OCCUPIED",
            RpcError::EncryptedMessageInvalid => "ENCRYPTED_MESSAGE_INVALID",
            RpcError::TempAuthKeyEmpty => "TEMP_AUTH_KEY_EMPTY",
            RpcError::PermAuthKeyInvalid => "PERM_AUTH_KEY_INVALID",
            RpcError::InputConstructorInvalid => "INPUT_CONSTRUCTOR_INVALID",
            RpcError::InputFetchError => "INPUT_FETCH_ERROR",
            RpcError::RpcCallFail => "RPC_CALL_FAIL",
            RpcError::RandomLengthInvalid => "RANDOM_LENGTH_INVALID",
            RpcError::ConnectionLayerInvalid => "CONNECTION_LAYER_INVALID",
            RpcError::SessionPasswordNeeded => "SESSION_PASSWORD_NEEDED",
            RpcError::PasswordHashInvalid => "PASSWORD_HASH_INVALID",
            RpcError::SrpIdInvalid => "SRP_ID_INVALID",
            RpcError::NewSaltInvalid => "NEW_SALT_INVALID",
            RpcError::NewSettingsInvalid => "NEW_SETTINGS_INVALID",
            RpcError::Call(e) => e.message(),
            RpcError::FloodWait(_) => "FLOOD_WAIT",
            RpcError::InputMethodInvalid(_) => "INPUT_METHOD_INVALID",
            RpcError::MethodNotSupported(_) => "METHOD_NOT_SUPPORTED",
        }
    }

    /// The `error_message`.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            RpcError::FloodWait(seconds) => Cow::Owned(format!("FLOOD_WAIT_{seconds}")),
            RpcError::InputMethodInvalid(id) => Cow::Owned(format!("INPUT_METHOD_INVALID_{id}")),
            RpcError::MethodNotSupported(name) => Cow::Owned(format!(
                "METHOD_NOT_SUPPORTED_{}",
                name.replace('.', "_").to_uppercase()
            )),
            RpcError::ConnectionLayerInvalid => Cow::Owned(format!(
                "CONNECTION_LAYER_INVALID_SUPPORTED_{}_TO_{}",
                tl::Layer::OLDEST,
                tl::Layer::LATEST
            )),
            other => Cow::Borrowed(other.name()),
        }
    }
}

impl From<calls::CallError> for RpcError {
    fn from(e: calls::CallError) -> Self {
        RpcError::Call(e)
    }
}

impl From<store::StoreError> for RpcError {
    fn from(e: store::StoreError) -> Self {
        tracing::warn!(error = %e, "store call failed");
        RpcError::RpcCallFail
    }
}

impl From<tl::DecodeError> for RpcError {
    fn from(e: tl::DecodeError) -> Self {
        match e {
            tl::DecodeError::UnexpectedConstructor { .. } | tl::DecodeError::Unsupported { .. } => {
                RpcError::InputConstructorInvalid
            }
            _ => RpcError::InputFetchError,
        }
    }
}
