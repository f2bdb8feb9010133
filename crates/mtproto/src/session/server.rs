//! The server's side of an encrypted session on one connection.

use std::collections::VecDeque;

use tl::{Decode, Encode, Layer, enums, functions, types};

use super::msg_id::time_of;
use super::seen_ids::SeenIds;
use super::{
    DecryptedMessage, MsgIdGen, SaltSource, SessionError, build_plaintext, gunzip,
    is_content_related, is_service_message, parse_plaintext,
};
use crate::crypto::auth_key::Direction;
use crate::crypto::{AuthKey, Entropy};

/// `bad_msg_notification` error codes (`docs/clients.md §1.3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum BadMsgCode {
    /// msg_id too low: the client's clock is behind.
    MsgIdTooLow = 16,
    /// msg_id too high: the client's clock is ahead.
    MsgIdTooHigh = 17,
    /// The two lower bits of msg_id are not 0.
    MsgIdBadLowBits = 18,
    /// A container's msg_id was already used.
    ContainerIdReused = 19,
    /// The message is older than anything remembered.
    MsgTooOld = 20,
    /// seqno too low.
    SeqnoTooLow = 32,
    /// seqno too high.
    SeqnoTooHigh = 33,
    /// An even seqno was expected (message not content-related).
    EvenSeqnoExpected = 34,
    /// An odd seqno was expected (content-related message).
    OddSeqnoExpected = 35,
    /// Wrong server salt (sent as `bad_server_salt`).
    BadServerSalt = 48,
    /// Invalid container (e.g. a container inside a container).
    BadContainer = 64,
}

/// Per-session settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The salt derivation.
    pub salts: SaltSource,
    /// The handshake's first salt and the Unix time until which it is accepted.
    pub first_salt: Option<(i64, i64)>,
}

/// A request to dispatch: a content-related message that is not a service message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its msg_id (the `req_msg_id` of its `rpc_result`).
    pub msg_id: i64,
    /// Its TL body (after `gzip_packed`).
    pub body: Vec<u8>,
}

/// What one received packet produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Requests for the RPC layer, in order.
    pub requests: Vec<Request>,
    /// The quick-ack token of the packet, when the transport asked for one (it costs a
    /// SHA-256 of the whole packet, so it is computed only then).
    pub quick_ack_token: Option<u32>,
}

const REMEMBERED_IDS: usize = 4096;
const RESEND_LOG: usize = 128;
const MAX_CONTAINER_MESSAGES: usize = 1000;
const MAX_CONTAINER_BYTES: usize = 512 * 1024;

struct Outgoing {
    body: Vec<u8>,
    response: bool,
    content: bool,
    /// An `rpc_error` result: it is the last message of its container. GramJS stops reading a
    /// container at the first error result, so anything after it would be lost.
    ends_container: bool,
}

/// The server's state for one session of one auth key.
pub struct ServerSession {
    key: AuthKey,
    config: SessionConfig,
    session_id: Option<i64>,
    announced: bool,
    ids: MsgIdGen,
    sent_content: i32,
    /// The highest msg_ids received (at most [`REMEMBERED_IDS`]), to refuse replays.
    seen: SeenIds,
    pending_acks: Vec<i64>,
    outbox: Vec<Outgoing>,
    sent_log: VecDeque<(i64, Vec<u8>)>,
    disconnect_at_ms: Option<i64>,
    now_ms: i64,
}

impl ServerSession {
    /// A session for `key` (created when its first packet arrives on a connection).
    pub fn new(key: AuthKey, config: SessionConfig) -> Self {
        ServerSession {
            key,
            config,
            session_id: None,
            announced: false,
            ids: MsgIdGen::new(),
            sent_content: 0,
            seen: SeenIds::default(),
            pending_acks: Vec::new(),
            outbox: Vec::new(),
            sent_log: VecDeque::new(),
            disconnect_at_ms: None,
            now_ms: 0,
        }
    }

    /// The auth key.
    pub fn auth_key(&self) -> &AuthKey {
        &self.key
    }

    /// The client's session id, once a packet arrived.
    pub fn session_id(&self) -> Option<i64> {
        self.session_id
    }

    /// When `ping_delay_disconnect` asked the connection to close, if it did.
    pub fn disconnect_at_ms(&self) -> Option<i64> {
        self.disconnect_at_ms
    }

    /// Decrypts and processes one packet (auth_key_id included), in its own buffer when it is
    /// handed over as a `Vec`; with `quick_ack`, also computes its quick-ack token. Service messages are answered in the outbox; requests
    /// are returned.
    pub fn receive(
        &mut self,
        packet: impl Into<Vec<u8>>,
        quick_ack: bool,
        now_ms: i64,
        entropy: &mut impl Entropy,
    ) -> Result<Received, SessionError> {
        self.now_ms = now_ms;
        let packet = super::encrypted_packet(packet, &self.key)?;
        let (plain, hash_head) = self
            .key
            .decrypt(packet, Direction::ClientToServer)
            .ok_or(SessionError::BadMsgKey)?;
        let quick_ack_token = quick_ack.then(|| u32::from_le_bytes(hash_head) | 0x8000_0000);
        let pt = parse_plaintext(plain)?;
        if self.session_id != Some(pt.session_id) {
            self.start_session(pt.session_id);
        }
        let mut received = Received {
            requests: Vec::new(),
            quick_ack_token,
        };
        let now_s = now_ms.div_euclid(1000);
        if !self.salt_is_valid(pt.salt, now_s) {
            let new_salt = self.config.salts.current(self.key.id(), now_s);
            self.queue(
                enums::BadMsgNotification::from(types::BadServerSalt {
                    bad_msg_id: pt.msg_id,
                    bad_msg_seqno: pt.seqno,
                    error_code: BadMsgCode::BadServerSalt as i32,
                    new_server_salt: new_salt,
                })
                .to_bytes(Layer::LATEST),
                true,
                false,
            );
            return Ok(received);
        }
        if !self.announced && self.check_id(&pt).is_none() {
            self.announced = true;
            let salt = self.config.salts.current(self.key.id(), now_s);
            self.queue(
                enums::NewSession::from(types::NewSessionCreated {
                    first_msg_id: pt.msg_id,
                    unique_id: entropy.i64(),
                    server_salt: salt,
                })
                .to_bytes(Layer::LATEST),
                false,
                true,
            );
        }
        self.process(pt.msg_id, pt.seqno, pt.body, false, &mut received);
        Ok(received)
    }

    fn start_session(&mut self, session_id: i64) {
        self.session_id = Some(session_id);
        self.announced = false;
        self.sent_content = 0;
        self.seen.clear();
        self.pending_acks.clear();
        self.sent_log.clear();
    }

    fn salt_is_valid(&self, salt: i64, now_s: i64) -> bool {
        if let Some((first, until)) = self.config.first_salt
            && salt == first
            && now_s <= until
        {
            return true;
        }
        self.config.salts.is_valid(self.key.id(), salt, now_s)
    }

    /// The bad_msg code for a message id/seqno, if any (without recording the id).
    fn check_id(&self, pt: &DecryptedMessage) -> Option<BadMsgCode> {
        self.check(pt.msg_id, pt.seqno, &pt.body)
    }

    fn check(&self, msg_id: i64, seqno: i32, body: &[u8]) -> Option<BadMsgCode> {
        let now_s = self.now_ms.div_euclid(1000);
        if msg_id % 4 != 0 {
            return Some(BadMsgCode::MsgIdBadLowBits);
        }
        let t = time_of(msg_id);
        if t < now_s - 300 {
            return Some(BadMsgCode::MsgIdTooLow);
        }
        if t > now_s + 30 {
            return Some(BadMsgCode::MsgIdTooHigh);
        }
        if self.seen.len() >= REMEMBERED_IDS && self.seen.lowest().is_some_and(|m| msg_id < m) {
            return Some(BadMsgCode::MsgTooOld);
        }
        // Service messages are not held to their seqno parity: Pyrogram sends its opening `ping`
        // at an even seqno and mtcute acknowledges with `msgs_ack` at an odd one, and Telegram
        // serves both. Requests and containers keep the rule.
        if is_service_message(body) {
            return None;
        }
        let content = is_content_related(body);
        if content && seqno % 2 == 0 {
            return Some(BadMsgCode::OddSeqnoExpected);
        }
        if !content && seqno % 2 != 0 {
            return Some(BadMsgCode::EvenSeqnoExpected);
        }
        None
    }

    fn bad_msg(&mut self, msg_id: i64, seqno: i32, code: BadMsgCode) {
        self.queue(
            enums::BadMsgNotification::from(types::BadMsgNotification {
                bad_msg_id: msg_id,
                bad_msg_seqno: seqno,
                error_code: code as i32,
            })
            .to_bytes(Layer::LATEST),
            true,
            false,
        );
    }

    fn process(
        &mut self,
        msg_id: i64,
        seqno: i32,
        body: Vec<u8>,
        in_container: bool,
        out: &mut Received,
    ) {
        if self.seen.contains(msg_id) {
            // A resend of something already processed: acknowledge again, do nothing else.
            if is_content_related(&body) {
                self.pending_acks.push(msg_id);
            }
            return;
        }
        if let Some(code) = self.check(msg_id, seqno, &body) {
            self.bad_msg(msg_id, seqno, code);
            return;
        }
        self.remember(msg_id);
        let id = body
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if id == tl::service::MSG_CONTAINER_ID {
            if in_container {
                self.bad_msg(msg_id, seqno, BadMsgCode::BadContainer);
                return;
            }
            match tl::service::read_container(&body) {
                Ok(messages) => {
                    self.pending_acks.reserve(messages.len());
                    for m in messages {
                        self.process(m.msg_id, m.seqno, m.body.to_vec(), true, out);
                    }
                }
                Err(_) => self.bad_msg(msg_id, seqno, BadMsgCode::BadContainer),
            }
            return;
        }
        if is_content_related(&body) {
            self.pending_acks.push(msg_id);
        }
        self.handle_body(msg_id, body, 0, out);
    }

    fn remember(&mut self, msg_id: i64) {
        self.seen.insert(msg_id, REMEMBERED_IDS);
    }

    fn handle_body(&mut self, msg_id: i64, body: Vec<u8>, gzip_depth: u8, out: &mut Received) {
        let id = body
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let now_s = self.now_ms.div_euclid(1000);
        match id {
            super::MSGS_ACK_ID => {
                if let Ok(enums::MsgsAck::MsgsAck(ack)) = enums::MsgsAck::from_bytes(&body) {
                    self.sent_log.retain(|(id, _)| !ack.msg_ids.contains(id));
                }
            }
            tl::service::GZIP_PACKED_ID if gzip_depth == 0 => {
                match enums::Object::from_bytes(&body)
                    .ok()
                    .and_then(|enums::Object::GzipPacked(g)| gunzip(&g.packed_data))
                {
                    Some(inner) => self.handle_body(msg_id, inner, 1, out),
                    None => self.rpc_error(msg_id, 400, "INPUT_GZIP_INVALID"),
                }
            }
            _ if is_service_message(&body) => self.service_request(msg_id, &body, now_s),
            _ => out.requests.push(Request { msg_id, body }),
        }
    }

    fn service_request(&mut self, msg_id: i64, body: &[u8], now_s: i64) {
        let key_id = self.key.id();
        // msgs_state_req, msg_resend_req and http_wait are types, not functions: service_type.
        match functions::Request::from_bytes(body).ok() {
            Some(functions::Request::Ping(p)) => self.queue(
                enums::Pong::from(types::Pong {
                    msg_id,
                    ping_id: p.ping_id,
                })
                .to_bytes(Layer::LATEST),
                true,
                true,
            ),
            Some(functions::Request::PingDelayDisconnect(p)) => {
                self.disconnect_at_ms =
                    Some(self.now_ms + i64::from(p.disconnect_delay.max(0)) * 1000);
                self.queue(
                    enums::Pong::from(types::Pong {
                        msg_id,
                        ping_id: p.ping_id,
                    })
                    .to_bytes(Layer::LATEST),
                    true,
                    true,
                );
            }
            Some(functions::Request::GetFutureSalts(g)) => {
                let salts = self
                    .config
                    .salts
                    .future(key_id, now_s, g.num.max(0) as usize)
                    .into_iter()
                    .map(|(valid_since, valid_until, salt)| types::FutureSalt {
                        valid_since,
                        valid_until,
                        salt,
                    })
                    .collect();
                let fs = enums::FutureSalts::from(types::FutureSalts {
                    req_msg_id: msg_id,
                    now: now_s as i32,
                    salts,
                });
                self.queue(fs.to_bytes(Layer::LATEST), true, true);
            }
            Some(functions::Request::DestroySession(d)) => {
                // Session state lives with its connection: another session id is unknown here.
                let reply = enums::DestroySessionRes::from(types::DestroySessionNone {
                    session_id: d.session_id,
                });
                self.queue(reply.to_bytes(Layer::LATEST), true, true);
            }
            Some(functions::Request::RpcDropAnswer(_)) => {
                // Requests are answered as they are processed: nothing is pending to drop.
                let reply = enums::RpcDropAnswer::from(types::RpcAnswerUnknown {});
                self.push_result(msg_id, &reply.to_bytes(Layer::LATEST));
            }
            _ => self.service_type(msg_id, body),
        }
    }

    fn service_type(&mut self, msg_id: i64, body: &[u8]) {
        if let Ok(enums::MsgsStateReq::MsgsStateReq(req)) = enums::MsgsStateReq::from_bytes(body) {
            let newest = self.seen.highest().unwrap_or(0);
            let info: Vec<u8> = req
                .msg_ids
                .iter()
                .map(|id| {
                    if self.seen.contains(*id) {
                        4
                    } else if *id > newest {
                        3
                    } else {
                        1
                    }
                })
                .collect();
            let reply = enums::MsgsStateInfo::from(types::MsgsStateInfo {
                req_msg_id: msg_id,
                info,
            });
            self.queue(reply.to_bytes(Layer::LATEST), true, false);
        } else if let Ok(enums::MsgResendReq::MsgResendReq(req)) =
            enums::MsgResendReq::from_bytes(body)
        {
            let again: Vec<Vec<u8>> = self
                .sent_log
                .iter()
                .filter(|(id, _)| req.msg_ids.contains(id))
                .map(|(_, b)| b.clone())
                .collect();
            for b in again {
                self.queue(b, false, true);
            }
        }
        // http_wait and anything else service-level: nothing to answer on TCP.
    }

    fn queue(&mut self, body: Vec<u8>, response: bool, content: bool) {
        self.outbox.push(Outgoing {
            body,
            response,
            content,
            ends_container: false,
        });
    }

    /// Queues `rpc_result` for the request `req_msg_id` with an encoded result.
    pub fn push_result(&mut self, req_msg_id: i64, result: &[u8]) {
        let error_id = <types::RpcError as tl::Identifiable>::CONSTRUCTOR_ID;
        let ends_container = result.get(..4) == Some(&error_id.to_le_bytes()[..]);
        let mut body = Vec::with_capacity(12 + result.len());
        body.extend_from_slice(&tl::service::RPC_RESULT_ID.to_le_bytes());
        body.extend_from_slice(&req_msg_id.to_le_bytes());
        body.extend_from_slice(result);
        self.outbox.push(Outgoing {
            body,
            response: true,
            content: true,
            ends_container,
        });
    }

    /// Queues `rpc_result{rpc_error}`.
    pub fn rpc_error(&mut self, req_msg_id: i64, code: i32, message: &str) {
        let e = enums::RpcError::from(types::RpcError {
            error_code: code,
            error_message: message.to_owned(),
        });
        self.push_result(req_msg_id, &e.to_bytes(Layer::LATEST));
    }

    /// Queues a server-initiated content message (an `Updates` push).
    pub fn push_update(&mut self, body: Vec<u8>) {
        self.queue(body, false, true);
    }

    /// Whether anything waits to be sent.
    pub fn has_outgoing(&self) -> bool {
        !self.outbox.is_empty() || !self.pending_acks.is_empty()
    }

    /// Encrypts everything queued (with acks of received messages) into packets to frame.
    pub fn flush(&mut self, now_ms: i64, entropy: &mut impl Entropy) -> Vec<Vec<u8>> {
        let Some(session_id) = self.session_id else {
            self.outbox.clear();
            return Vec::new();
        };
        self.now_ms = now_ms;
        if !self.pending_acks.is_empty() {
            let ack = enums::MsgsAck::from(types::MsgsAck {
                msg_ids: std::mem::take(&mut self.pending_acks),
            });
            self.outbox.insert(
                0,
                Outgoing {
                    body: ack.to_bytes(Layer::LATEST),
                    response: false,
                    content: false,
                    ends_container: false,
                },
            );
        }
        // Number the messages, then group them into containers of bounded size; an error result
        // closes its container. The outbox is taken whole: an idle session keeps no capacity.
        let outbox = std::mem::take(&mut self.outbox);
        let mut left = outbox.len();
        let group = |left: usize| Vec::with_capacity(left.min(MAX_CONTAINER_MESSAGES));
        let mut groups: Vec<Vec<tl::service::Message>> = vec![group(left)];
        let mut group_bytes = 0;
        let mut closed = false;
        for m in outbox {
            let msg_id = self.ids.next(now_ms, if m.response { 1 } else { 3 });
            let seqno = self.next_seqno(m.content);
            let current = groups.last_mut().expect("never empty");
            if !current.is_empty()
                && (closed
                    || current.len() >= MAX_CONTAINER_MESSAGES
                    || group_bytes + m.body.len() > MAX_CONTAINER_BYTES)
            {
                groups.push(group(left));
                group_bytes = 0;
            }
            left -= 1;
            closed = m.ends_container;
            group_bytes += m.body.len() + 16;
            groups
                .last_mut()
                .expect("never empty")
                .push(tl::service::Message {
                    msg_id,
                    seqno,
                    body: m.body,
                });
        }
        let salt = self
            .config
            .salts
            .current(self.key.id(), now_ms.div_euclid(1000));
        let mut packets = Vec::new();
        for mut group in groups {
            match group.len() {
                0 => continue,
                1 => {
                    let m = group.pop().expect("one");
                    let plain =
                        build_plaintext(salt, session_id, m.msg_id, m.seqno, &m.body, entropy);
                    packets.push(self.key.encrypt(plain, Direction::ServerToClient));
                    self.log_sent(m);
                }
                _ => {
                    let container = tl::service::MsgContainer { messages: group };
                    let (msg_id, seqno) = (self.ids.next(now_ms, 3), self.next_seqno(false));
                    // Sized at once: a container of a full window of answers is kilobytes.
                    let size = 8 + group_size(&container.messages);
                    let mut body = Vec::with_capacity(size);
                    container.encode(&mut tl::Writer::new(&mut body, Layer::LATEST));
                    let plain = build_plaintext(salt, session_id, msg_id, seqno, &body, entropy);
                    packets.push(self.key.encrypt(plain, Direction::ServerToClient));
                    for m in container.messages {
                        self.log_sent(m);
                    }
                }
            }
        }
        packets
    }

    /// Keeps a sent content message (odd seqno) for `msg_resend_req`: moved, not copied, and
    /// trimmed to its length (it may be kept as long as the session idles).
    fn log_sent(&mut self, mut m: tl::service::Message) {
        if m.seqno % 2 == 0 {
            return;
        }
        if self.sent_log.len() >= RESEND_LOG {
            self.sent_log.pop_front();
        }
        m.body.shrink_to_fit();
        if self.sent_log.capacity() == 0 {
            // An idle session mostly holds a few unacknowledged messages (a new session's
            // `new_session_created` and first answer): room for two at first, grown if needed.
            self.sent_log.reserve_exact(2);
        }
        self.sent_log.push_back((m.msg_id, m.body));
    }

    fn next_seqno(&mut self, content: bool) -> i32 {
        if content {
            self.sent_content += 1;
            self.sent_content * 2 - 1
        } else {
            self.sent_content * 2
        }
    }
}

/// The bytes `messages` take in a container (each with its msg_id, seqno and length).
fn group_size(messages: &[tl::service::Message]) -> usize {
    messages.iter().map(|m| 16 + m.body.len()).sum()
}
