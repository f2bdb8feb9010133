//! One client connection: bytes in → transport → handshake (plain) or session (encrypted) →
//! RPC router → session → transport → bytes out, plus pushes from the hub and the timeouts.

use std::sync::Arc;
use std::time::Duration;

use mtproto::handshake::{ServerHandshake, plain};
use mtproto::session::{MsgIdGen, ServerSession};
use mtproto::transport::{Frame, ServerTransport, codes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use crate::buffers;
use crate::entropy::Randomness;
use crate::hub::Push;
use crate::node::Node;
use crate::observe::inspector::{Event, EventBody, KeyedInfo, call_ids, update_list};
use crate::push_queue::{PushReceiver, PushSender};
use crate::rpc::{self, KeyInfo, RpcCtx};

/// An encrypted session on this connection.
struct Keyed {
    info: KeyInfo,
    session: ServerSession,
    wants_updates: bool,
}

struct Connection {
    node: Arc<Node>,
    entropy: Randomness,
    conn_id: u64,
    peer: std::net::SocketAddr,
    transport: ServerTransport,
    /// A key being created: boxed, and only while one is (most connections never make one).
    handshake: Option<Box<ServerHandshake>>,
    keyed: Option<Keyed>,
    plain_ids: MsgIdGen,
    push_tx: PushSender,
    registered_user: Option<i64>,
    out: Vec<u8>,
    close: bool,
    /// What the inspector was last told about this connection's transport and session.
    reported: Reported,
}

/// What the inspector last heard from a connection (so it hears only of changes).
#[derive(Default)]
struct Reported {
    transport: bool,
    /// (key, session, user, revision) when last told.
    session: Option<(i64, i64, Option<i64>, u32)>,
}

/// Serves one accepted TCP connection until it closes, or until [`Push::Stop`] arrives on its
/// queue (`push_tx`/`push_rx`, made by the caller): then the requests already read are
/// answered first. At the end the connection is counted off its address.
///
/// The connection is set up here, before the future exists, so the future holds each piece
/// once (an `async fn` keeps its arguments beside what it builds from them, and every idle
/// connection would pay for both).
pub fn serve(
    node: Arc<Node>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    (push_tx, mut push_rx): (PushSender, PushReceiver),
) -> impl Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    let conn_id = node.sessions.conn_id();
    let mut entropy = node.entropy.clone();
    let transport = ServerTransport::new(node.config.max_frame_bytes, &mut entropy);
    node.observe.metrics.connection_accepted();
    node.observe
        .inspector
        .session_opened(conn_id, peer, node.clock.now_ms());
    let mut conn = Connection {
        node,
        entropy,
        conn_id,
        peer,
        transport,
        handshake: None,
        keyed: None,
        plain_ids: MsgIdGen::new(),
        push_tx,
        registered_user: None,
        out: Vec::new(),
        close: false,
        reported: Reported::default(),
    };
    let (rd, mut wr) = stream.into_split();
    async move {
        conn.run(&rd, &mut wr, &mut push_rx).await;
        if let Some(user) = conn.registered_user.take() {
            conn.node.sessions.unregister(user, conn.conn_id);
        }
        conn.node.observe.inspector.session_closed(conn.conn_id);
        conn.node.sessions.closed(conn.peer.ip());
    }
}

impl Connection {
    async fn run(
        &mut self,
        rd: &OwnedReadHalf,
        wr: &mut OwnedWriteHalf,
        push_rx: &mut PushReceiver,
    ) {
        let started = Instant::now();
        let mut last_activity = started;
        // One timer for the connection's life, moved only when it fires early (activity since
        // pushed the deadline back) or when the deadline came closer: requests cost no timer
        // work.
        let mut armed = self.deadline(started, last_activity);
        let timer = tokio::time::sleep_until(armed);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                ready = rd.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    // The read buffer lives on the stack only while bytes are copied into the
                    // transport, so an idle connection holds no buffer of its own.
                    let read = {
                        let mut chunk = [0u8; 16 * 1024];
                        match rd.try_read(&mut chunk) {
                            Ok(0) => Err(()),
                            Ok(n) => Ok(self.feed(&chunk[..n])),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                            Err(_) => Err(()),
                        }
                    };
                    match read {
                        Err(()) => break,
                        Ok(false) => {}
                        Ok(true) => {
                            last_activity = Instant::now();
                            self.on_frames().await;
                            // Pushes that came meanwhile go out with the answers.
                            self.on_queued_pushes(push_rx);
                        }
                    }
                    if let Some(buf) = self.transport.take_buffer() {
                        buffers::give(buf);
                    }
                },
                // Requests are handled to the end before the loop comes back here: when `Stop`
                // arrives, what was read has been answered (and goes out below).
                push = push_rx.recv() => {
                    self.on_push(push);
                    self.on_queued_pushes(push_rx);
                }
                _ = &mut timer => {
                    if self.deadline(started, last_activity) <= Instant::now() {
                        tracing::debug!(conn = self.conn_id, "connection timed out");
                        break;
                    }
                }
            }
            self.flush_session();
            if !self.out.is_empty() {
                if wr.write_all(&self.out).await.is_err() {
                    break;
                }
                // Given back: an idle connection holds no write buffer.
                buffers::give(std::mem::take(&mut self.out));
            }
            if self.close {
                break;
            }
            let deadline = self.deadline(started, last_activity);
            if deadline < armed || timer.is_elapsed() {
                armed = deadline;
                timer.as_mut().reset(deadline);
            }
        }
    }

    fn deadline(&self, started: Instant, last_activity: Instant) -> Instant {
        let cfg = &self.node.config;
        let mut deadline = match &self.keyed {
            None => started + Duration::from_secs(cfg.handshake_timeout_secs),
            Some(_) => last_activity + Duration::from_secs(cfg.idle_timeout_secs),
        };
        if let Some(at) = self
            .keyed
            .as_ref()
            .and_then(|k| k.session.disconnect_at_ms())
        {
            let left = (at - self.node.clock.now_ms()).max(0) as u64;
            deadline = deadline.min(Instant::now() + Duration::from_millis(left));
        }
        deadline
    }

    /// Takes received bytes into the transport; false if they were refused (the connection
    /// is then closed after what is queued goes out).
    fn feed(&mut self, data: &[u8]) -> bool {
        if let Some(unused) = self.transport.lend_buffer(buffers::take()) {
            buffers::give(unused);
        }
        if let Err(e) = self.transport.feed(data) {
            tracing::debug!(conn = self.conn_id, error = %e, "transport error");
            self.close = true;
            return false;
        }
        if !self.reported.transport
            && let Some(kind) = self.transport.kind()
        {
            self.reported.transport = true;
            let obfuscated = self.transport.obfuscated();
            self.node
                .observe
                .inspector
                .session_transport(self.conn_id, kind, obfuscated);
        }
        true
    }

    async fn on_frames(&mut self) {
        while !self.close {
            match self.transport.next_frame() {
                // Boxed: the connection's own future stays small while it idles.
                Ok(Some(frame)) => Box::pin(self.on_frame(frame)).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(conn = self.conn_id, error = %e, "transport error");
                    self.close = true;
                }
            }
        }
    }

    async fn on_frame(&mut self, frame: Frame) {
        let Some(key_id) = frame
            .payload
            .get(..8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8")))
        else {
            self.close = true;
            return;
        };
        if key_id == 0 {
            self.on_plain(&frame.payload).await;
        } else {
            self.on_encrypted(frame.payload, key_id, frame.quick_ack)
                .await;
        }
    }

    /// A handshake step. The RSA and DH work runs on the blocking pool, off the reactor.
    async fn on_plain(&mut self, packet: &[u8]) {
        let Ok((_, body)) = plain::decode(packet) else {
            self.close = true;
            return;
        };
        // A new key's first step (req_pq / req_pq_multi) counts against the address.
        let starts_a_key = body.get(..4).is_some_and(|id| {
            use tl::Identifiable;
            id == tl::functions::ReqPqMulti::CONSTRUCTOR_ID.to_le_bytes()
                || id == tl::functions::ReqPq::CONSTRUCTOR_ID.to_le_bytes()
        });
        if starts_a_key
            && let Err(wait) = self
                .node
                .sessions
                .handshake_allowed(self.peer.ip(), self.node.clock.now_ms())
        {
            tracing::debug!(conn = self.conn_id, peer = %self.peer, wait, "handshake rate limit");
            self.transport
                .encode_error(codes::FLOOD, buffers::ready(&mut self.out));
            self.close = true;
            return;
        }
        let mut handshake = self.handshake.take().unwrap_or_default();
        let rsa = self.node.sessions.rsa_keys();
        let mut entropy = self.entropy.clone();
        let body = body.to_vec();
        let now = self.node.clock.now_ms() / 1000;
        let step = tokio::task::spawn_blocking(move || {
            let result = handshake.handle(&body, &rsa, now as i32, &mut entropy);
            (handshake, result)
        })
        .await;
        let (handshake, result) = match step {
            Ok(x) => x,
            Err(_) => {
                self.close = true;
                return;
            }
        };
        match result {
            Ok((reply, created)) => {
                // A finished handshake is dropped; a new `req_pq` starts a fresh one.
                if created.is_none() {
                    self.handshake = Some(handshake);
                }
                if let Some(key) = created {
                    self.node
                        .observe
                        .metrics
                        .auth_key_created(key.expires_in.is_some());
                    let row = store::AuthKeyRow {
                        id: key.auth_key.id(),
                        key: key.auth_key.bytes().to_vec(),
                        created_at: now,
                        first_salt: key.first_salt,
                        expires_at: key.expires_in.map(|e| now + i64::from(e)),
                        perm_key_id: None,
                        user_id: None,
                        layer: None,
                        client: None,
                    };
                    // The key is committed before the client is told it exists.
                    if let Err(e) = self.node.sessions.store_key(row).await {
                        tracing::warn!(error = %e, "could not store a new auth key");
                        self.close = true;
                        return;
                    }
                    tracing::debug!(
                        conn = self.conn_id,
                        key = format_args!("{:016x}", key.auth_key.id() as u64),
                        temp = key.expires_in.is_some(),
                        "auth key created"
                    );
                }
                let msg_id = self.plain_ids.next(self.node.clock.now_ms(), 1);
                self.transport.encode(
                    &plain::encode(msg_id, &reply),
                    buffers::ready(&mut self.out),
                );
            }
            Err(e) => {
                tracing::debug!(conn = self.conn_id, error = %e, "handshake failed");
                self.close = true;
            }
        }
    }

    async fn load_key(&self, key_id: i64) -> Result<Option<Keyed>, store::StoreError> {
        let now = self.node.clock.now_ms() / 1000;
        Ok(self
            .node
            .sessions
            .load_key(key_id, now)
            .await?
            .map(|k| Keyed {
                info: k.info,
                session: ServerSession::new(k.key, k.config),
                wants_updates: true,
            }))
    }

    async fn on_encrypted(&mut self, packet: Vec<u8>, key_id: i64, quick_ack: bool) {
        if self.keyed.as_ref().map(|k| k.info.key_id) != Some(key_id) {
            match self.load_key(key_id).await {
                Ok(Some(keyed)) => self.keyed = Some(keyed),
                Ok(None) => {
                    // Unknown key: clients create a new one (GramJS, grammers) or report it.
                    self.transport
                        .encode_error(codes::AUTH_KEY_NOT_FOUND, buffers::ready(&mut self.out));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not load an auth key");
                    self.close = true;
                    return;
                }
            }
        }
        let Some(keyed) = self.keyed.as_mut() else {
            return;
        };
        let now = self.node.clock.now_ms();
        let received = match keyed
            .session
            .receive(packet, quick_ack, now, &mut self.entropy)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(conn = self.conn_id, error = %e, "packet refused");
                self.close = true;
                return;
            }
        };
        if let Some(token) = received.quick_ack_token {
            self.transport
                .encode_quick_ack(token, buffers::ready(&mut self.out));
        }
        keyed.info.session_id = keyed.session.session_id().unwrap_or(0);
        for request in received.requests {
            let seq = self.node.observe.inspector.next_seq();
            let started = std::time::Instant::now();
            let mut ctx = RpcCtx {
                key: &mut keyed.info,
                entropy: &mut self.entropy,
                peer: self.peer.ip(),
                msg_id: request.msg_id,
                now: now / 1000,
                without_updates: false,
                trace: Default::default(),
            };
            let limited = self
                .node
                .sessions
                .request_allowed(self.peer.ip(), ctx.key, now);
            let result = match limited {
                Ok(()) => rpc::handle(&self.node.services, &mut ctx, request.body).await,
                Err(wait) => Err(crate::errors::RpcError::FloodWait(wait)),
            };
            keyed.wants_updates = !ctx.without_updates;
            let trace = std::mem::take(&mut ctx.trace);
            let elapsed = started.elapsed();
            let label = result.as_ref().err().map(|e| e.name());
            self.node.observe.metrics.rpc(trace.method, label, elapsed);
            tracing::debug!(
                target: "mtcall::rpc",
                method = trace.method,
                user = keyed.info.user_id,
                key = %crate::observe::views::short_key(keyed.info.key_id),
                conn = self.conn_id,
                result = %result.as_ref().map_or_else(|e| e.message(), |_| "ok".into()),
                us = elapsed.as_micros() as u64,
                "rpc"
            );
            match &result {
                Ok(bytes) => keyed.session.push_result(request.msg_id, bytes),
                Err(e) => keyed
                    .session
                    .rpc_error(request.msg_id, e.code(), &e.message()),
            }
            if let Some(body) = trace.request {
                let error = result
                    .as_ref()
                    .err()
                    .map(|e| (e.code(), e.message().into_owned()));
                self.node.observe.inspector.record(Event {
                    seq,
                    at_ms: now,
                    call_id: trace.call_id,
                    conn_id: Some(self.conn_id),
                    user_id: keyed.info.user_id,
                    key_id: Some(keyed.info.key_id),
                    client: None,
                    body: EventBody::Rpc {
                        method: trace.method,
                        request: body,
                        result: result.ok(),
                        error,
                        duration_us: elapsed.as_micros() as u64,
                    },
                });
            }
        }
        self.report_session();
        self.sync_registration();
    }

    /// Tells the inspector when the key, session, login, layer or client changed.
    fn report_session(&mut self) {
        let Some(keyed) = &self.keyed else {
            return;
        };
        let k = &keyed.info;
        let digest = (k.key_id, k.session_id, k.user_id, k.revision);
        if self.reported.session == Some(digest) {
            return;
        }
        self.reported.session = Some(digest);
        let info = KeyedInfo {
            key_id: k.key_id,
            session_id: k.session_id,
            user_id: k.user_id,
            layer: k.announced_layer,
            client: k.client.clone(),
        };
        self.node
            .observe
            .inspector
            .session_keyed(self.conn_id, info);
    }

    /// Keeps the hub registration in step with who is logged in on this connection.
    fn sync_registration(&mut self) {
        let wanted = self
            .keyed
            .as_ref()
            .filter(|k| k.wants_updates)
            .and_then(|k| k.info.user_id);
        if wanted == self.registered_user {
            return;
        }
        if let Some(old) = self.registered_user.take() {
            self.node.sessions.unregister(old, self.conn_id);
        }
        if let Some(new) = wanted {
            let key_id = self.keyed.as_ref().map_or(0, |k| k.info.perm_key_id);
            self.node
                .sessions
                .register(new, self.conn_id, key_id, self.push_tx.clone());
            self.registered_user = Some(new);
        }
    }

    /// Takes the pushes already queued (at most a queue's worth, so senders that keep up
    /// cannot hold the connection here), so pushes that arrive together leave in one packet
    /// (one container, one encryption, one write) rather than one packet each.
    fn on_queued_pushes(&mut self, push_rx: &mut PushReceiver) {
        for _ in 0..crate::hub::QUEUE {
            if self.close {
                return;
            }
            let Some(push) = push_rx.try_recv() else {
                return;
            };
            self.on_push(push);
        }
    }

    fn on_push(&mut self, push: Push) {
        if matches!(push, Push::Stop) {
            self.close = true;
            return;
        }
        let Some(keyed) = self.keyed.as_mut() else {
            return;
        };
        match push {
            Push::Stop => {}
            Push::Updates(pushed) => {
                let bytes = pushed.encode(keyed.info.layer);
                let updates = pushed.updates();
                keyed.session.push_update(bytes);
                let observe = &self.node.observe;
                for update in update_list(updates) {
                    observe.metrics.update_pushed(update.constructor_name());
                }
                if let Some(call_id) = call_ids(updates).first().copied() {
                    observe.inspector.record(Event {
                        seq: observe.inspector.next_seq(),
                        at_ms: self.node.clock.now_ms(),
                        call_id: Some(call_id),
                        conn_id: Some(self.conn_id),
                        user_id: keyed.info.user_id,
                        key_id: Some(keyed.info.key_id),
                        client: None,
                        body: EventBody::Push(updates.clone()),
                    });
                }
            }
        }
    }

    fn flush_session(&mut self) {
        let Some(keyed) = self.keyed.as_mut() else {
            return;
        };
        if !keyed.session.has_outgoing() {
            return;
        }
        let packets = keyed
            .session
            .flush(self.node.clock.now_ms(), &mut self.entropy);
        // Room for the batch at once; each frame adds at most a 4-byte length, a 4-byte
        // sequence number, 4 of CRC and 15 of padding.
        buffers::ready(&mut self.out).reserve(packets.iter().map(|p| p.len() + 27).sum::<usize>());
        for packet in packets {
            self.transport
                .encode(&packet, buffers::ready(&mut self.out));
        }
    }
}
