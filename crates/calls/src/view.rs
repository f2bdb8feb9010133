//! Per-viewer rendering of a call as `PhoneCall` (spec §2 "Per-viewer rendering", §3): the same
//! call is `phoneCallWaiting` to the caller and `phoneCallRequested` to the callee, and so on.

use sha2::Digest as _;
use tl::{enums, types};

use crate::{Call, Phase, Protocol, Reason, Stage};

/// `PhoneCallProtocol` in TL form.
pub fn protocol_tl(p: &Protocol) -> enums::PhoneCallProtocol {
    types::PhoneCallProtocol {
        udp_p2p: p.udp_p2p,
        udp_reflector: p.udp_reflector,
        min_layer: p.min_layer,
        max_layer: p.max_layer,
        library_versions: p.library_versions.clone(),
    }
    .into()
}

/// A TL `PhoneCallProtocol` as a [`Protocol`].
pub fn protocol_from_tl(p: &enums::PhoneCallProtocol) -> Protocol {
    let enums::PhoneCallProtocol::PhoneCallProtocol(p) = p;
    Protocol {
        udp_p2p: p.udp_p2p,
        udp_reflector: p.udp_reflector,
        min_layer: p.min_layer,
        max_layer: p.max_layer,
        library_versions: p.library_versions.clone(),
    }
}

/// A discard reason in TL form.
pub fn discard_reason_tl(r: &Reason) -> enums::PhoneCallDiscardReason {
    match r {
        Reason::Missed => types::PhoneCallDiscardReasonMissed {}.into(),
        Reason::Disconnect => types::PhoneCallDiscardReasonDisconnect {}.into(),
        Reason::Hangup => types::PhoneCallDiscardReasonHangup {}.into(),
        Reason::Busy => types::PhoneCallDiscardReasonBusy {}.into(),
        Reason::MigrateConferenceCall(slug) => {
            types::PhoneCallDiscardReasonMigrateConferenceCall { slug: slug.clone() }.into()
        }
    }
}

/// A TL discard reason as a [`Reason`].
pub fn reason_from_tl(r: &enums::PhoneCallDiscardReason) -> Reason {
    match r {
        enums::PhoneCallDiscardReason::Missed(_) => Reason::Missed,
        enums::PhoneCallDiscardReason::Disconnect(_) => Reason::Disconnect,
        enums::PhoneCallDiscardReason::Hangup(_) => Reason::Hangup,
        enums::PhoneCallDiscardReason::Busy(_) => Reason::Busy,
        enums::PhoneCallDiscardReason::MigrateConferenceCall(m) => {
            Reason::MigrateConferenceCall(m.slug.clone())
        }
    }
}

/// `call` as `viewer` sees it. `connections` are the reflectors and TURN/STUN servers offered
/// in `phoneCall`; `p2p_allowed` whether both sides may talk directly.
pub fn view(
    call: &Call,
    viewer: i64,
    connections: &[enums::PhoneConnection],
    p2p_allowed: bool,
) -> enums::PhoneCall {
    let access_hash = call.hash_for(viewer).unwrap_or_default();
    let is_admin = viewer == call.admin_id;
    let stage = match &call.phase {
        Phase::Ended(_, d) => {
            return types::PhoneCallDiscarded {
                need_rating: d.need_rating,
                need_debug: d.need_debug,
                video: call.video,
                id: call.id,
                reason: d.reason.as_ref().map(discard_reason_tl),
                duration: d.duration,
            }
            .into();
        }
        Phase::Live(stage) => stage,
    };
    let waiting = |protocol: &Protocol, receive_date: Option<i32>| -> enums::PhoneCall {
        types::PhoneCallWaiting {
            video: call.video,
            id: call.id,
            access_hash,
            date: call.date,
            admin_id: call.admin_id,
            participant_id: call.participant_id,
            protocol: protocol_tl(protocol),
            receive_date,
        }
        .into()
    };
    match (stage, is_admin) {
        (Stage::Requested, true) => waiting(&call.caller_protocol, None),
        (Stage::Received { at }, true) => waiting(&call.caller_protocol, Some(*at)),
        (Stage::Requested | Stage::Received { .. }, false) => types::PhoneCallRequested {
            video: call.video,
            id: call.id,
            access_hash,
            date: call.date,
            admin_id: call.admin_id,
            participant_id: call.participant_id,
            g_a_hash: call.g_a_hash.clone(),
            protocol: protocol_tl(&call.caller_protocol),
        }
        .into(),
        (
            Stage::Accepted {
                received_at,
                answer,
            },
            false,
        ) => waiting(&answer.negotiated, Some(*received_at)),
        (Stage::Accepted { answer, .. }, true) => types::PhoneCallAccepted {
            video: call.video,
            id: call.id,
            access_hash,
            date: call.date,
            admin_id: call.admin_id,
            participant_id: call.participant_id,
            g_b: answer.g_b.clone(),
            protocol: protocol_tl(&answer.negotiated),
        }
        .into(),
        (Stage::Confirmed { answer, keys, .. }, _) => types::PhoneCall {
            p2p_allowed,
            video: call.video,
            conference_supported: false,
            id: call.id,
            access_hash,
            date: call.date,
            admin_id: call.admin_id,
            participant_id: call.participant_id,
            // The callee gets g_a (spec §5.4); the caller g_b.
            g_a_or_b: if is_admin {
                answer.g_b.clone()
            } else {
                keys.g_a.clone()
            },
            key_fingerprint: keys.fingerprint,
            protocol: protocol_tl(&answer.negotiated),
            connections: connections.to_vec(),
            start_date: keys.date,
            custom_parameters: None,
        }
        .into(),
    }
}

/// SHA-256 of `g_a`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}
