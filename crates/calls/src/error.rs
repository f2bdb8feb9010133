//! Call errors: each Telegram error name of the `phone.*` pages is a variant with its code
//! (`docs/calls.md` §3.2, §4.4, §5).

use std::fmt;

/// Why a call request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// 400 CALL_PEER_INVALID: unknown call, wrong access hash, or not this user's role.
    CallPeerInvalid,
    /// 400 CALL_ALREADY_DECLINED: the call has ended.
    CallAlreadyDeclined,
    /// 400 CALL_ALREADY_ACCEPTED: another device accepted it.
    CallAlreadyAccepted,
    /// 500 CALL_OCCUPY_FAILED: the user is already in another accepted call.
    CallOccupyFailed,
    /// 400 CALL_NOT_ACTIVE: signalling before the call was accepted.
    CallNotActive,
    /// 400 CALL_PROTOCOL_FLAGS_INVALID: neither udp_p2p nor udp_reflector.
    CallProtocolFlagsInvalid,
    /// 400 CALL_PROTOCOL_LAYER_INVALID: min_layer above max_layer.
    CallProtocolLayerInvalid,
    /// 406 CALL_PROTOCOL_COMPAT_LAYER_INVALID: no layer or library version in common.
    CallProtocolCompatLayerInvalid,
    /// 400 USER_ID_INVALID: calling oneself or an unknown user.
    UserIdInvalid,
    /// 400 DH_G_A_INVALID: `g_a_hash` is not 32 bytes, or `g_a` is not a DH value in the safe
    /// range (the call ends).
    DhGAInvalid,
    /// 400 DH_G_B_INVALID: `g_b` is not a DH value in the safe range (mtcall's name; Telegram
    /// documents none).
    DhGBInvalid,
    /// 500 RANDOM_ID_DUPLICATE: `random_id` reused for a call that ended.
    RandomIdDuplicate,
}

impl CallError {
    /// The `rpc_error` code.
    pub fn code(self) -> i32 {
        match self {
            CallError::CallOccupyFailed | CallError::RandomIdDuplicate => 500,
            CallError::CallProtocolCompatLayerInvalid => 406,
            _ => 400,
        }
    }

    /// The `rpc_error` message.
    pub fn message(self) -> &'static str {
        match self {
            CallError::CallPeerInvalid => "CALL_PEER_INVALID",
            CallError::CallAlreadyDeclined => "CALL_ALREADY_DECLINED",
            CallError::CallAlreadyAccepted => "CALL_ALREADY_ACCEPTED",
            CallError::CallOccupyFailed => "CALL_OCCUPY_FAILED",
            CallError::CallNotActive => "CALL_NOT_ACTIVE",
            CallError::CallProtocolFlagsInvalid => "CALL_PROTOCOL_FLAGS_INVALID",
            CallError::CallProtocolLayerInvalid => "CALL_PROTOCOL_LAYER_INVALID",
            CallError::CallProtocolCompatLayerInvalid => "CALL_PROTOCOL_COMPAT_LAYER_INVALID",
            CallError::UserIdInvalid => "USER_ID_INVALID",
            CallError::DhGAInvalid => "DH_G_A_INVALID",
            CallError::DhGBInvalid => "DH_G_B_INVALID",
            CallError::RandomIdDuplicate => "RANDOM_ID_DUPLICATE",
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.message())
    }
}

impl std::error::Error for CallError {}
