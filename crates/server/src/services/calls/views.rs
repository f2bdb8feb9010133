//! A call as each viewer sees it: `phoneCall*` with the relays offered for it
//! (`phoneCall.connections`: this node's reflector with the viewer's peer tag when the call is
//! granted there, TURN servers with the viewer's credentials, listed relays) and whether
//! direct media is allowed (the p2p policy); the parties rendered for the viewer; and the
//! call-history message (`docs/calls.md §5`).

use std::sync::Arc;

use calls::{Call, CallEvent, HistoryEntry};
use mtproto::crypto::sha256;
use relay::Party;
use tl::{enums, types};

use super::Calls;
use crate::config::{CallSettings, P2pPolicy};
use crate::errors::RpcError;
use crate::relay::{Reflector, TurnSettings, turn};

/// The relays a call is offered, and the policy for direct media.
pub(super) struct Media {
    /// This node's reflector, if it runs one.
    reflector: Option<Arc<Reflector>>,
    /// TURN servers with shared-secret credentials.
    turn: Option<TurnSettings>,
    /// Reflectors run elsewhere, listed in the configuration.
    reflectors: Vec<crate::config::Reflector>,
    /// TURN/STUN servers with fixed credentials, listed in the configuration.
    webrtc: Vec<crate::config::WebrtcServer>,
    p2p: P2pPolicy,
    /// The secret the listed reflectors' peer tags are derived from.
    secret: [u8; 32],
}

impl Media {
    pub(super) fn new(
        settings: &CallSettings,
        reflector: Option<Arc<Reflector>>,
        turn: Option<TurnSettings>,
        secret: [u8; 32],
    ) -> Media {
        Media {
            reflector,
            turn,
            reflectors: settings.reflectors.clone(),
            webrtc: settings.webrtc.clone(),
            p2p: settings.p2p,
            secret,
        }
    }

    /// This node's reflector.
    pub(super) fn reflector(&self) -> Option<&Arc<Reflector>> {
        self.reflector.as_ref()
    }

    /// Grants calls that became confirmed here on this node's reflector, and revokes calls
    /// that ended.
    pub(super) fn follow(&self, events: &[CallEvent]) {
        let Some(reflector) = &self.reflector else {
            return;
        };
        for event in events {
            match event {
                CallEvent::Confirmed { call_id } => {
                    if let Err(e) = reflector.grant(*call_id) {
                        tracing::warn!(call_id, error = ?e, "call not relayed by this node's reflector");
                    }
                }
                CallEvent::Ended { call_id, .. } => reflector.revoke(*call_id),
                _ => {}
            }
        }
    }

    /// `phoneCall.connections` for `call` as `viewer` sees it, at Unix time `now`.
    fn connections(&self, call: &Call, viewer: i64, now: i64) -> Vec<enums::PhoneConnection> {
        let party = if viewer == call.admin_id {
            Party::Caller
        } else {
            Party::Callee
        };
        let mut list: Vec<enums::PhoneConnection> = Vec::new();
        if let Some(r) = self.reflector.as_ref().filter(|r| r.is_granted(call.id)) {
            list.extend(r.connections(call.id, party).into_iter().map(Into::into));
        }
        // Reflectors run elsewhere pair both parties under one tag.
        if !self.reflectors.is_empty() {
            let tag = sha256(&[b"peer-tag", &self.secret, &call.id.to_le_bytes()]);
            list.extend(self.reflectors.iter().map(|r| {
                enums::PhoneConnection::from(types::PhoneConnection {
                    tcp: r.tcp,
                    id: r.id,
                    ip: r.ip.clone(),
                    ipv6: r.ipv6.clone(),
                    port: r.port,
                    peer_tag: tag[..16].to_vec(),
                })
            }));
        }
        if let Some(turn) = &self.turn {
            let (username, password) =
                turn::credentials(&turn.secret, viewer, now + turn.credential_ttl_secs);
            list.extend(turn.servers.iter().zip(turn.first_id..).map(|(addr, id)| {
                enums::PhoneConnection::from(types::PhoneConnectionWebrtc {
                    turn: true,
                    stun: turn.stun,
                    id,
                    ip: addr.ip().to_string(),
                    ipv6: String::new(),
                    port: i32::from(addr.port()),
                    username: username.clone(),
                    password: password.clone(),
                })
            }));
        }
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
    pub async fn view(&self, call: &Call, viewer: i64) -> Result<enums::PhoneCall, RpcError> {
        let offered = call.negotiated().is_some_and(|p| p.udp_p2p);
        let p2p = offered
            && match self.media.p2p {
                P2pPolicy::Always => true,
                P2pPolicy::Never => false,
                P2pPolicy::Contacts => {
                    let (a, b) = (call.admin_id, call.participant_id);
                    self.users.is_contact(a, b).await? && self.users.is_contact(b, a).await?
                }
            };
        let connections = self.media.connections(call, viewer, self.clock.now_secs());
        Ok(calls::view(call, viewer, &connections, p2p))
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
