//! The client's side of an encrypted session (mtcall's own client, and the server's tests).

use tl::{Decode, Encode, Layer, enums, types};

use super::{MsgIdGen, SessionError, build_plaintext, gunzip, is_content_related, parse_plaintext};
use crate::crypto::auth_key::Direction;
use crate::crypto::{AuthKey, Entropy};

/// One message from the server, classified.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// The answer to a request: its TL result, or an `rpc_error` as `(code, message)`.
    RpcResult {
        /// The request's msg_id.
        req_msg_id: i64,
        /// The result body, or the error.
        result: Result<Vec<u8>, (i32, String)>,
    },
    /// `pong`.
    Pong {
        /// The ping's msg_id.
        msg_id: i64,
        /// The ping's id.
        ping_id: i64,
    },
    /// `bad_server_salt`: the salt is updated; the message `bad_msg_id` must be sent again.
    BadServerSalt {
        /// The refused message.
        bad_msg_id: i64,
        /// The salt now in use.
        new_salt: i64,
    },
    /// `bad_msg_notification`.
    BadMsg {
        /// The refused message.
        bad_msg_id: i64,
        /// The error code.
        code: i32,
    },
    /// `new_session_created`.
    NewSession {
        /// The first message of the session.
        first_msg_id: i64,
        /// The current salt.
        server_salt: i64,
    },
    /// `future_salts`.
    FutureSalts(types::FutureSalts),
    /// `msgs_ack`.
    Ack(Vec<i64>),
    /// Anything else (an `Updates` push, `msgs_state_info`, `destroy_session_*`), undecoded.
    Other(Vec<u8>),
}

/// A client session over one auth key.
pub struct ClientSession {
    key: AuthKey,
    session_id: i64,
    salt: i64,
    time_offset_ms: i64,
    ids: MsgIdGen,
    sent_content: i32,
    pending_acks: Vec<i64>,
}

impl ClientSession {
    /// A new session (random session id) with the given salt and clock offset.
    pub fn new(key: AuthKey, salt: i64, time_offset_secs: i32, entropy: &mut impl Entropy) -> Self {
        ClientSession {
            key,
            session_id: entropy.i64(),
            salt,
            time_offset_ms: i64::from(time_offset_secs) * 1000,
            ids: MsgIdGen::new(),
            sent_content: 0,
            pending_acks: Vec::new(),
        }
    }

    /// The auth key.
    pub fn auth_key(&self) -> &AuthKey {
        &self.key
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The salt in use.
    pub fn salt(&self) -> i64 {
        self.salt
    }

    /// Replaces the salt.
    pub fn set_salt(&mut self, salt: i64) {
        self.salt = salt;
    }

    /// A fresh message id and the seqno for a body.
    pub fn next_id(&mut self, now_ms: i64, content: bool) -> (i64, i32) {
        let id = self.ids.next(now_ms + self.time_offset_ms, 0);
        let seqno = if content {
            self.sent_content += 1;
            self.sent_content * 2 - 1
        } else {
            self.sent_content * 2
        };
        (id, seqno)
    }

    /// Encrypts `bodies` (content-related requests) into one packet, in a container with the
    /// pending acks when there is more than one message. Returns the msg_ids of the bodies.
    pub fn encrypt(
        &mut self,
        bodies: &[Vec<u8>],
        now_ms: i64,
        entropy: &mut impl Entropy,
    ) -> (Vec<i64>, Vec<u8>) {
        let mut messages = Vec::new();
        if !self.pending_acks.is_empty() {
            let ack = enums::MsgsAck::from(types::MsgsAck {
                msg_ids: std::mem::take(&mut self.pending_acks),
            })
            .to_bytes(Layer::LATEST);
            let (msg_id, seqno) = self.next_id(now_ms, false);
            messages.push(tl::service::Message {
                msg_id,
                seqno,
                body: ack,
            });
        }
        let mut ids = Vec::new();
        for b in bodies {
            let (msg_id, seqno) = self.next_id(now_ms, is_content_related(b));
            ids.push(msg_id);
            messages.push(tl::service::Message {
                msg_id,
                seqno,
                body: b.clone(),
            });
        }
        let packet = if messages.len() == 1 {
            let m = messages.pop().expect("one");
            self.encrypt_message(m.msg_id, m.seqno, &m.body, entropy)
        } else {
            let (msg_id, seqno) = self.next_id(now_ms, false);
            let body = tl::service::MsgContainer { messages }.to_bytes(Layer::LATEST);
            self.encrypt_message(msg_id, seqno, &body, entropy)
        };
        (ids, packet)
    }

    /// Encrypts one message with exactly these fields (tests use it to send what a correct client
    /// would not).
    pub fn encrypt_message(
        &mut self,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
        entropy: &mut impl Entropy,
    ) -> Vec<u8> {
        let plain = build_plaintext(self.salt, self.session_id, msg_id, seqno, body, entropy);
        self.key.encrypt(plain, Direction::ClientToServer)
    }

    /// Decrypts one packet from the server into its messages (in its own buffer when it is
    /// handed over as a `Vec`).
    pub fn decrypt(
        &mut self,
        packet: impl Into<Vec<u8>>,
    ) -> Result<Vec<ServerMessage>, SessionError> {
        let packet = super::encrypted_packet(packet, &self.key)?;
        let (plain, _) = self
            .key
            .decrypt(packet, Direction::ServerToClient)
            .ok_or(SessionError::BadMsgKey)?;
        let pt = parse_plaintext(plain)?;
        let mut out = Vec::new();
        if pt.body.get(..4) == Some(&tl::service::MSG_CONTAINER_ID.to_le_bytes()) {
            for m in tl::service::read_container(&pt.body)? {
                self.classify(m.msg_id, m.body, &mut out)?;
            }
        } else {
            self.classify(pt.msg_id, &pt.body, &mut out)?;
        }
        Ok(out)
    }

    fn classify(
        &mut self,
        msg_id: i64,
        body: &[u8],
        out: &mut Vec<ServerMessage>,
    ) -> Result<(), SessionError> {
        if is_content_related(body) {
            self.pending_acks.push(msg_id);
        }
        let id = body
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let message = match id {
            tl::service::RPC_RESULT_ID => {
                let enums::RpcResult::RpcResult(r) = enums::RpcResult::from_bytes(body)?;
                let mut result = r.result.0;
                if result.get(..4) == Some(&tl::service::GZIP_PACKED_ID.to_le_bytes()) {
                    let enums::Object::GzipPacked(g) = enums::Object::from_bytes(&result)?;
                    result = gunzip(&g.packed_data).ok_or(SessionError::BadPlaintext)?;
                }
                let result = match enums::RpcError::from_bytes(&result) {
                    Ok(enums::RpcError::RpcError(e)) => Err((e.error_code, e.error_message)),
                    Err(_) => Ok(result),
                };
                ServerMessage::RpcResult {
                    req_msg_id: r.req_msg_id,
                    result,
                }
            }
            _ => {
                if let Ok(enums::Pong::Pong(p)) = enums::Pong::from_bytes(body) {
                    ServerMessage::Pong {
                        msg_id: p.msg_id,
                        ping_id: p.ping_id,
                    }
                } else if let Ok(b) = enums::BadMsgNotification::from_bytes(body) {
                    match b {
                        enums::BadMsgNotification::BadServerSalt(s) => {
                            self.salt = s.new_server_salt;
                            ServerMessage::BadServerSalt {
                                bad_msg_id: s.bad_msg_id,
                                new_salt: s.new_server_salt,
                            }
                        }
                        enums::BadMsgNotification::BadMsgNotification(n) => ServerMessage::BadMsg {
                            bad_msg_id: n.bad_msg_id,
                            code: n.error_code,
                        },
                    }
                } else if let Ok(enums::NewSession::NewSessionCreated(n)) =
                    enums::NewSession::from_bytes(body)
                {
                    self.salt = n.server_salt;
                    ServerMessage::NewSession {
                        first_msg_id: n.first_msg_id,
                        server_salt: n.server_salt,
                    }
                } else if let Ok(enums::FutureSalts::FutureSalts(f)) =
                    enums::FutureSalts::from_bytes(body)
                {
                    ServerMessage::FutureSalts(f)
                } else if let Ok(enums::MsgsAck::MsgsAck(a)) = enums::MsgsAck::from_bytes(body) {
                    ServerMessage::Ack(a.msg_ids)
                } else if body.get(..4) == Some(&tl::service::GZIP_PACKED_ID.to_le_bytes()) {
                    let enums::Object::GzipPacked(g) = enums::Object::from_bytes(body)?;
                    ServerMessage::Other(gunzip(&g.packed_data).ok_or(SessionError::BadPlaintext)?)
                } else {
                    ServerMessage::Other(body.to_vec())
                }
            }
        };
        out.push(message);
        Ok(())
    }
}
