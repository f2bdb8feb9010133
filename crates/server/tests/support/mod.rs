//! A minimal MTProto client over real TCP for black-box tests, built on the sans-IO client role
//! of the `mtproto` crate, and a server started on a free port with a temporary data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{Entropy, OsEntropy};
use mtproto::handshake::{ClientHandshake, ClientKey, RsaScheme, plain};
use mtproto::session::{ClientSession, ServerMessage};
use mtproto::transport::{ClientFrame, ClientTransport, Kind};
use server::{Config, Server};
use tl::{Decode, Encode, Layer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A server on 127.0.0.1 with its own data directory (removed on drop).
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = std::env::temp_dir().join(format!(
            "mtcall-test-{}-{}",
            std::process::id(),
            OsEntropy.i64() as u64
        ));
        Self::start_in(dir, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_in(dir: PathBuf, listen: SocketAddr) -> TestServer {
        let config = Config {
            data_dir: dir.clone(),
            listen,
            ..Config::default()
        };
        let server = Server::start(config).await.expect("server starts");
        let addr = server.local_addr();
        TestServer {
            server: Some(server),
            dir,
            addr,
        }
    }

    /// Stops and starts again on the same directory and port.
    pub async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await;
        let config = Config {
            data_dir: self.dir.clone(),
            listen: self.addr,
            ..Config::default()
        };
        self.server = Some(Server::start(config).await.expect("server restarts"));
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_pkcs1_pem(&std::fs::read_to_string(self.dir.join("server.pub")).unwrap())
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One TCP connection speaking a transport.
pub struct Raw {
    pub stream: TcpStream,
    pub transport: ClientTransport,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, kind: Kind, obfuscated: bool) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        Raw {
            stream,
            transport: ClientTransport::new(kind, obfuscated, 2, &mut OsEntropy),
            buf: vec![0; 65536],
        }
    }

    pub async fn send(&mut self, payload: &[u8]) {
        let mut out = Vec::new();
        self.transport.encode(payload, false, &mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next frame, or `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<ClientFrame> {
        loop {
            if let Some(f) = self.transport.next_frame().unwrap() {
                return Some(f);
            }
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut self.buf))
                .await
                .expect("server answers in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            let data = self.buf[..n].to_vec();
            self.transport.feed(&data);
        }
    }

    pub async fn recv_packet(&mut self) -> Vec<u8> {
        match self.recv().await {
            Some(ClientFrame::Packet(p)) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// Sends a plain message and returns the plain body of the answer.
    pub async fn plain_call(&mut self, body: &[u8]) -> Vec<u8> {
        let msg_id = (now_ms() / 1000) << 32;
        self.send(&plain::encode(msg_id, body)).await;
        let packet = self.recv_packet().await;
        plain::decode(&packet).unwrap().1.to_vec()
    }

    pub async fn handshake(
        &mut self,
        key: &PublicKey,
        scheme: RsaScheme,
        temp: Option<i32>,
    ) -> ClientKey {
        let e = &mut OsEntropy;
        let (mut hs, req_pq) = ClientHandshake::start(scheme, 2, temp, e);
        let res_pq = self.plain_call(&req_pq).await;
        let req_dh = hs.on_res_pq(&res_pq, std::slice::from_ref(key), e).unwrap();
        let dh = self.plain_call(&req_dh).await;
        let set = hs.on_dh_params(&dh, (now_ms() / 1000) as i32, e).unwrap();
        let answer = self.plain_call(&set).await;
        hs.on_dh_answer(&answer).unwrap()
    }
}

/// An encrypted client.
pub struct Client {
    pub raw: Raw,
    pub session: ClientSession,
    /// Pushes and other unsolicited messages received while waiting for results.
    pub pushes: Vec<Vec<u8>>,
    pub layer: Layer,
}

pub type RpcResult = Result<Vec<u8>, (i32, String)>;

impl Client {
    pub async fn connect(server: &TestServer, kind: Kind, obfuscated: bool) -> Client {
        let mut raw = Raw::connect(server.addr, kind, obfuscated).await;
        let key = raw
            .handshake(&server.public_key(), RsaScheme::Pad, None)
            .await;
        // Start with salt 0 like GramJS and Telethon; the first call corrects it.
        let session = ClientSession::new(key.auth_key, 0, key.time_offset, &mut OsEntropy);
        Client {
            raw,
            session,
            pushes: Vec::new(),
            layer: Layer::LATEST,
        }
    }

    /// Reconnects with the same key on a new connection and a new session.
    pub async fn reconnect(self, server: &TestServer) -> Client {
        let raw = Raw::connect(server.addr, Kind::Full, false).await;
        let session = ClientSession::new(self.session.auth_key().clone(), 0, 0, &mut OsEntropy);
        Client {
            raw,
            session,
            pushes: Vec::new(),
            layer: self.layer,
        }
    }

    /// Invokes a raw request body, resending after bad_server_salt.
    pub async fn call_raw(&mut self, body: Vec<u8>) -> RpcResult {
        for _ in 0..3 {
            let (ids, packet) =
                self.session
                    .encrypt(std::slice::from_ref(&body), now_ms(), &mut OsEntropy);
            self.raw.send(&packet).await;
            loop {
                let packet = match self.raw.recv().await {
                    Some(ClientFrame::Packet(p)) => p,
                    Some(ClientFrame::Error(code)) => return Err((code, "transport error".into())),
                    Some(ClientFrame::QuickAck(_)) => continue,
                    None => return Err((0, "connection closed".into())),
                };
                let mut resend = false;
                for m in self
                    .session
                    .decrypt(&packet)
                    .expect("server packets decrypt")
                {
                    match m {
                        ServerMessage::RpcResult { req_msg_id, result } if req_msg_id == ids[0] => {
                            return result;
                        }
                        ServerMessage::BadServerSalt { bad_msg_id, .. } if bad_msg_id == ids[0] => {
                            resend = true
                        }
                        ServerMessage::Other(b) => self.pushes.push(b),
                        _ => {}
                    }
                }
                if resend {
                    break;
                }
            }
        }
        panic!("no answer after three salt corrections")
    }

    pub async fn call<R: tl::RemoteCall>(
        &mut self,
        request: &R,
    ) -> Result<R::Return, (i32, String)> {
        let body = request.to_bytes(self.layer);
        let bytes = self.call_raw(body).await?;
        Ok(R::Return::from_bytes(&bytes).expect("result decodes"))
    }

    /// Waits for a pushed message (e.g. `updates`) up to `TIMEOUT`.
    pub async fn next_push(&mut self) -> Vec<u8> {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0);
        }
        loop {
            let packet = self.raw.recv_packet().await;
            for m in self.session.decrypt(&packet).unwrap() {
                if let ServerMessage::Other(b) = m {
                    return b;
                }
            }
        }
    }

    /// Signs in (or up) with a test number `99966XYYYY`.
    pub async fn login(&mut self, phone: &str, first_name: &str) -> tl::enums::User {
        use tl::{enums, functions, types};
        let code: String = std::iter::repeat_n(phone.as_bytes()[5] as char, 5).collect();
        let enums::auth::SentCode::SentCode(sent) = self
            .call(&functions::auth::SendCode {
                phone_number: phone.into(),
                api_id: 1,
                api_hash: "x".into(),
                settings: types::CodeSettings::default().into(),
            })
            .await
            .unwrap()
        else {
            panic!("expected sentCode")
        };
        let signed = self
            .call(&functions::auth::SignIn {
                phone_number: phone.into(),
                phone_code_hash: sent.phone_code_hash.clone(),
                phone_code: Some(code),
                email_verification: None,
            })
            .await
            .unwrap();
        let auth = match signed {
            enums::auth::Authorization::Authorization(a) => a,
            enums::auth::Authorization::SignUpRequired(_) => {
                let enums::auth::Authorization::Authorization(a) = self
                    .call(&functions::auth::SignUp {
                        no_joined_notifications: false,
                        phone_number: phone.into(),
                        phone_code_hash: sent.phone_code_hash,
                        first_name: first_name.into(),
                        last_name: String::new(),
                    })
                    .await
                    .unwrap()
                else {
                    panic!("sign-up did not authorize")
                };
                a
            }
        };
        auth.user
    }
}

pub fn user_id(u: &tl::enums::User) -> i64 {
    match u {
        tl::enums::User::User(u) => u.id,
        tl::enums::User::Empty(u) => u.id,
    }
}

pub fn wrap_layer(layer: i32, query: Vec<u8>) -> Vec<u8> {
    tl::functions::InvokeWithLayer {
        layer,
        query: tl::Raw(query),
    }
    .to_bytes(Layer::LATEST)
}
