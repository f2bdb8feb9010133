//! A call as each viewer sees it: `phoneCall*` with the relays offered for it
//! (`phoneCall.connections`, each reflector entry with the call's peer tag) and the parties
//! rendered for the viewer; and the call-history message (`docs/calls.md §5`).

use calls::{Call, HistoryEntry};
use tl::{enums, types};

use super::Calls;
use crate::config::CallSettings;
use crate::errors::RpcError;

/// The relays offered to every call, and the secret its peer tags are derived from.
pub(super) struct Media {
    reflectors: Vec<crate::config::Reflector>,
    webrtc: Vec<crate::config::WebrtcServer>,
    secret: [u8; 32],
}

impl Media {
    pub(super) fn new(settings: &CallSettings, secret: [u8; 32]) -> Media {
        Media {
            reflectors: settings.reflectors.clone(),
            webrtc: settings.webrtc.clone(),
            secret,
        }
    }

    /// `phoneCall.connections` for a call.
    fn connections(&self, call: &Call) -> Vec<enums::PhoneConnection> {
        let tag = mtproto::crypto::sha256(&[b"peer-tag", &self.secret, &call.id.to_le_bytes()]);
        let mut list: Vec<enums::PhoneConnection> = self
            .reflectors
            .iter()
            .map(|r| {
                types::PhoneConnection {
                    tcp: r.tcp,
                    id: r.id,
                    ip: r.ip.clone(),
                    ipv6: r.ipv6.clone(),
                    port: r.port,
                    peer_tag: tag[..16].to_vec(),
                }
                .into()
            })
            .collect();
        list.extend(self.webrtc.iter().map(|w| {
            enums::PhoneConnection::from(types::PhoneConnectionWebrtc {
                turn: w.turn,
                stun: w.stun,
                id: w.id,
                ip: w.ip.clone(),
                ipv6: w.ipv6.clone(),
                port: w.port,
                username: w.username.clone(),
                password: w.password.clone(),
            })
        }));
        list
    }
}

impl Calls {
    /// The call as `viewer` sees it.
    pub fn view(&self, call: &Call, viewer: i64) -> enums::PhoneCall {
        let connections = self.media.connections(call);
        let p2p = call.negotiated().is_some_and(|p| p.udp_p2p);
        calls::view(call, viewer, &connections, p2p)
    }

    /// Both parties of a call, as `viewer` sees them.
    pub async fn parties(&self, call: &Call, viewer: i64) -> Result<Vec<enums::User>, RpcError> {
        self.users
            .render_ids([call.admin_id, call.participant_id], viewer)
            .await
    }
}

/// `updates` carrying `list`, dated `date`.
pub(super) fn updates(
    date: i64,
    list: Vec<enums::Update>,
    users: Vec<enums::User>,
) -> enums::Updates {
    types::Updates {
        updates: list,
        users,
        chats: vec![],
        date: date as i32,
        seq: 0,
    }
    .into()
}

/// The call-history message as `viewer` sees it: from the caller, in the chat with the other
/// party, its id being the pts it was stored under.
pub(super) fn history_message(entry: &HistoryEntry, viewer: i64, id: i32) -> enums::Message {
    let other = if viewer == entry.admin_id {
        entry.participant_id
    } else {
        entry.admin_id
    };
    types::MessageService {
        out: viewer == entry.admin_id,
        id,
        from_id: Some(
            types::PeerUser {
                user_id: entry.admin_id,
            }
            .into(),
        ),
        peer_id: types::PeerUser { user_id: other }.into(),
        date: entry.date,
        action: types::MessageActionPhoneCall {
            video: entry.video,
            call_id: entry.call_id,
            reason: entry.reason.as_ref().map(calls::discard_reason_tl),
            duration: entry.duration,
        }
        .into(),
        ..Default::default()
    }
    .into()
}
