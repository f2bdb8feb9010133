//! The MTProto echo: what any MTProto server must spend per message, as the baseline of
//! `received` and `setup`. Over the same transports (detected as mtcall detects them), it
//! decrypts and checks every packet with mtcall's own session layer — auth key id, msg_key,
//! AES-IGE, salt, msg_id and seqno — answers each request with an `rpc_result` of the size the
//! request names, and hands the pushes the request names to the sessions of other connections
//! through a channel each, where they are encrypted and written as mtcall's pushes are. Nothing
//! else: no RPC router, no call registry, no store, no inspector.
//!
//! An echo request is `ECHO answer_len:u32 count:u32 {target:u32 len:u32}*count`, padded with
//! zeros to the size of the real request it stands for; `target` 0 is the connection that
//! registered itself as the sender's partner with `PARTNER partner_key_id:i64`, and 1 the
//! sender's own connection. The clients are mtcall's own, resumed on the echo with the auth
//! keys and salts they made with the real server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mtproto::crypto::{AuthKey, OsEntropy};
use mtproto::session::{SaltSource, ServerSession, SessionConfig};
use mtproto::transport::ServerTransport;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// An echo request's constructor.
pub const ECHO: u32 = 0xec40_ec40;
/// The request naming a connection's partner (answered with an empty result).
pub const PARTNER: u32 = 0xec40_0001;
/// Push targets.
pub const TO_PARTNER: u32 = 0;
/// The sender's own connection.
pub const TO_SELF: u32 = 1;

/// Connections by auth key id, to hand pushes to.
type Routes = Arc<Mutex<HashMap<i64, mpsc::UnboundedSender<Vec<u8>>>>>;

/// A running echo: in this process, or in a process of its own beside node processes (pinned
/// as they are), so it gets the CPU they get.
pub enum Echo {
    /// Served by this process.
    Here(SocketAddr),
    /// Served by a child process (killed when this is dropped).
    Child {
        /// The process.
        _process: super::process::Process,
        /// Its address.
        addr: SocketAddr,
    },
}

impl Echo {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Echo::Here(addr) | Echo::Child { addr, .. } => *addr,
        }
    }
}

/// Starts an echo that knows `keys` (each with the salt its client uses) where `o` runs the
/// server: in this process, or as a process of its own with `--node-processes`.
pub async fn launch(keys: Vec<(AuthKey, i64)>, o: &super::Options) -> Result<Echo, String> {
    if !o.node_processes {
        return Ok(Echo::Here(start(keys).await?));
    }
    let path = std::env::temp_dir().join(format!("mtcall-echo-keys-{}", std::process::id()));
    let lines: String = keys
        .iter()
        .map(|(k, salt)| {
            let hex: String = k.bytes().iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex} {salt}\n")
        })
        .collect();
    std::fs::write(&path, lines).map_err(|e| e.to_string())?;
    let port = super::process::free_port()?;
    let process = super::process::spawn(
        &[
            "bench-mtproto-echo",
            "--port",
            &port.to_string(),
            "--keys",
            &path.to_string_lossy(),
        ],
        "listening",
    )?;
    let _ = std::fs::remove_file(&path);
    if o.pin {
        super::pin(process.0.id(), "0")?;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Ok(Echo::Child {
        _process: process,
        addr,
    })
}

/// Serves the keys of the file at `path` (`HEX_KEY SALT` lines) on `port` until killed.
pub async fn serve_file(port: u16, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut keys = Vec::new();
    for line in text.lines() {
        let (hex, salt) = line.split_once(' ').ok_or("a line without a salt")?;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let key: [u8; 256] = bytes.try_into().map_err(|_| "a key is not 256 bytes")?;
        let salt: i64 = salt.trim().parse().map_err(|e| format!("salt: {e}"))?;
        keys.push((AuthKey::from_bytes(key), salt));
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {port}");
    accept_loop(listener, keys).await;
    Ok(())
}

/// Starts an echo server in this process on loopback that knows `keys` (each with the salt
/// its client uses) and returns its address.
pub async fn start(keys: Vec<(AuthKey, i64)>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(accept_loop(listener, keys));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, keys: Vec<(AuthKey, i64)>) {
    let keys: Arc<HashMap<i64, (AuthKey, i64)>> =
        Arc::new(keys.into_iter().map(|(k, s)| (k.id(), (k, s))).collect());
    let routes: Routes = Arc::default();
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, keys.clone(), routes.clone()));
    }
}

/// Encodes an echo request standing for a real one of `size` bytes.
pub fn request(size: usize, answer_len: usize, pushes: &[(u32, usize)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(size.max(12 + 8 * pushes.len()));
    body.extend_from_slice(&ECHO.to_le_bytes());
    body.extend_from_slice(&(answer_len as u32).to_le_bytes());
    body.extend_from_slice(&(pushes.len() as u32).to_le_bytes());
    for (target, len) in pushes {
        body.extend_from_slice(&target.to_le_bytes());
        body.extend_from_slice(&(*len as u32).to_le_bytes());
    }
    // TL bodies are whole 4-byte words.
    body.resize(size.max(body.len()).next_multiple_of(4), 0);
    body
}

/// The request naming the sender's partner.
pub fn partner(key_id: i64) -> Vec<u8> {
    let mut body = PARTNER.to_le_bytes().to_vec();
    body.extend_from_slice(&key_id.to_le_bytes());
    body
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?))
}

/// What one connection holds.
struct Conn {
    transport: ServerTransport,
    session: Option<ServerSession>,
    partner: Option<i64>,
    out: Vec<u8>,
    entropy: OsEntropy,
}

async fn serve(stream: TcpStream, keys: Arc<HashMap<i64, (AuthKey, i64)>>, routes: Routes) {
    let _ = stream.set_nodelay(true);
    let mut entropy = OsEntropy;
    let mut conn = Conn {
        transport: ServerTransport::new(1 << 20, &mut entropy),
        session: None,
        partner: None,
        out: Vec::new(),
        entropy,
    };
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (rd, mut wr) = stream.into_split();
    let mut own_key = None;
    loop {
        tokio::select! {
            ready = rd.readable() => {
                if ready.is_err() {
                    break;
                }
                let mut chunk = [0u8; 16 * 1024];
                match rd.try_read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if conn.transport.feed(&chunk[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
                if !conn.on_frames(&keys, &routes, &push_tx, &mut own_key) {
                    break;
                }
            }
            Some(body) = push_rx.recv() => {
                if let Some(session) = conn.session.as_mut() {
                    session.push_update(body);
                }
            }
        }
        conn.flush();
        if !conn.out.is_empty() {
            if tokio::io::AsyncWriteExt::write_all(&mut wr, &conn.out)
                .await
                .is_err()
            {
                break;
            }
            conn.out.clear();
        }
    }
    if let Some(key) = own_key {
        routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
}

impl Conn {
    /// Handles every whole frame read; false to close the connection.
    fn on_frames(
        &mut self,
        keys: &HashMap<i64, (AuthKey, i64)>,
        routes: &Routes,
        push_tx: &mpsc::UnboundedSender<Vec<u8>>,
        own_key: &mut Option<i64>,
    ) -> bool {
        loop {
            let frame = match self.transport.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return true,
                Err(_) => return false,
            };
            let Some(key_id) = frame
                .payload
                .get(..8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            else {
                return false;
            };
            if self.session.is_none() {
                let Some((key, salt)) = keys.get(&key_id) else {
                    return false;
                };
                self.session = Some(ServerSession::new(
                    key.clone(),
                    SessionConfig {
                        salts: SaltSource::new([0; 32]),
                        first_salt: Some((*salt, i64::MAX)),
                    },
                ));
                routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key_id, push_tx.clone());
                *own_key = Some(key_id);
            }
            let session = self.session.as_mut().expect("set above");
            let now = client::now_ms();
            let Ok(received) =
                session.receive(frame.payload, frame.quick_ack, now, &mut self.entropy)
            else {
                return false;
            };
            for r in received.requests {
                let body = &r.body;
                match u32_at(body, 0) {
                    Some(PARTNER) => {
                        self.partner = body
                            .get(4..12)
                            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
                        session.push_result(r.msg_id, &[]);
                    }
                    Some(ECHO) => {
                        let answer = u32_at(body, 4).unwrap_or(0) as usize;
                        let count = u32_at(body, 8).unwrap_or(0) as usize;
                        session.push_result(r.msg_id, &vec![0; answer]);
                        for i in 0..count.min(16) {
                            let (Some(target), Some(len)) =
                                (u32_at(body, 12 + 8 * i), u32_at(body, 16 + 8 * i))
                            else {
                                break;
                            };
                            let push = vec![0; len as usize];
                            match target {
                                TO_SELF => session.push_update(push),
                                _ => {
                                    if let Some(tx) = self.partner.and_then(|p| {
                                        routes
                                            .lock()
                                            .unwrap_or_else(|e| e.into_inner())
                                            .get(&p)
                                            .cloned()
                                    }) {
                                        let _ = tx.send(push);
                                    }
                                }
                            }
                        }
                    }
                    _ => session.push_result(r.msg_id, &[]),
                }
            }
        }
    }

    fn flush(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if !session.has_outgoing() {
            return;
        }
        for packet in session.flush(client::now_ms(), &mut self.entropy) {
            self.transport.encode(&packet, &mut self.out);
        }
    }
}

/// A client of the real server moved onto the echo: the same auth key and salt on a new
/// connection of the same transport.
pub async fn move_to(c: &mut client::Client, echo: SocketAddr) -> Result<(), String> {
    let endpoint = client::Endpoint {
        addr: echo,
        ..c.raw.endpoint
    };
    c.raw = client::Raw::open(endpoint)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The key and salt of each client, for [`start`].
pub fn keys_of<'a>(clients: impl IntoIterator<Item = &'a client::Client>) -> Vec<(AuthKey, i64)> {
    clients
        .into_iter()
        .map(|c| (c.session.auth_key().clone(), c.session.salt()))
        .collect()
}
