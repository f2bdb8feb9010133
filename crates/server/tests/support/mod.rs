//! A server started on a free port with a temporary data directory, and the client library
//! (`mtcall-client`) to talk to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

pub use client::*;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{Entropy, OsEntropy};
use mtproto::transport::Kind;
use server::{Config, Server};

/// A server on 127.0.0.1 with its own data directory (removed on drop).
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    /// What it was started with (a restart uses it again).
    pub config: Config,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Config::default()).await
    }

    /// A server with `config` (its data directory and address are set here).
    pub async fn start_with(mut config: Config) -> TestServer {
        config.data_dir = fresh_dir();
        config.listen = "127.0.0.1:0".parse().unwrap();
        Self::launch(config).await
    }

    /// A server with `config` exactly as given.
    pub async fn launch(config: Config) -> TestServer {
        let server = Server::start(config.clone()).await.expect("server starts");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            dir: config.data_dir.clone(),
            config,
        }
    }

    /// Another node beside this one: the same configuration (and so the same database, when
    /// it is PostgreSQL) and copies of its key files, on its own port.
    pub async fn another_node(&self) -> TestServer {
        let dir = fresh_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["server.key", "server.pub", "server.secret"] {
            std::fs::copy(self.dir.join(f), dir.join(f)).unwrap();
        }
        Self::launch(Config {
            data_dir: dir,
            listen: "127.0.0.1:0".parse().unwrap(),
            ..self.config.clone()
        })
        .await
    }

    /// Stops and starts again on the same directory and port, the reflector and the admin
    /// address too (on a fixed port they would move to their defaults, which another server
    /// on this machine may hold).
    pub async fn restart(&mut self) {
        let server = self.server.take().unwrap();
        let mut config = Config {
            listen: self.addr,
            ..self.config.clone()
        };
        config.relay.listen = config.relay.listen.or(server.relay_addr());
        config.admin.listen = config.admin.listen.or(server.admin_addr());
        server.shutdown().await;
        self.server = Some(Server::start(config).await.expect("server restarts"));
    }

    /// The admin address (inspector, API, /metrics).
    pub fn admin_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .and_then(|s| s.admin_addr())
            .expect("the admin address is served")
    }

    /// The reflector's UDP address.
    pub fn relay_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .and_then(|s| s.relay_addr())
            .expect("the reflector runs")
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

/// A new client of `server` on a new key.
pub async fn connect(server: &TestServer, kind: Kind, obfuscated: bool) -> Client {
    let mut c = Client::connect(server.addr, &server.public_key(), kind, obfuscated)
        .await
        .expect("connects");
    // A test waits for an update at most this long, so a missing one fails instead of hanging.
    c.update_wait_limit = Some(TIMEOUT);
    c
}

/// The `rpc_error` of a failed call, as `(code, message)`.
pub trait RpcErr {
    /// Panics unless the call failed with an `rpc_error`.
    fn rpc_err(self) -> (i32, String);
}

impl<T: std::fmt::Debug> RpcErr for Result<T, ClientError> {
    fn rpc_err(self) -> (i32, String) {
        match self {
            Err(ClientError::Rpc { code, message }) => (code, message),
            Err(ClientError::TransportCode(code)) => (code, "transport error".into()),
            other => panic!("expected an rpc_error, got {other:?}"),
        }
    }
}

/// The user with this phone, as `c` may address them.
pub async fn user_of(c: &mut Client, phone: &str) -> tl::enums::InputUser {
    use tl::{enums, functions, types};
    let enums::contacts::ResolvedPeer::ResolvedPeer(r) = c
        .call(&functions::contacts::ResolvePhone {
            phone: phone.into(),
        })
        .await
        .unwrap();
    let enums::User::User(u) = &r.users[0] else {
        panic!("{phone} resolves to an empty user")
    };
    types::InputUser {
        user_id: u.id,
        access_hash: u.access_hash.unwrap(),
    }
    .into()
}

/// The logged-in user's id, asked of the server.
pub async fn me(c: &mut Client) -> i64 {
    use tl::{functions, types};
    let users = c
        .call(&functions::users::GetUsers {
            id: vec![types::InputUserSelf {}.into()],
        })
        .await
        .unwrap();
    user_id(&users[0])
}

/// A fresh database on the test PostgreSQL server (`MTCALL_TEST_POSTGRES`), or `None` when
/// there is none — which fails instead when `MTCALL_REQUIRE_POSTGRES=1`.
pub async fn postgres_database() -> Option<String> {
    match std::env::var("MTCALL_TEST_POSTGRES") {
        Ok(url) => Some(store::fresh_test_database(&url).await.unwrap()),
        Err(_) if std::env::var("MTCALL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("MTCALL_REQUIRE_POSTGRES=1 but MTCALL_TEST_POSTGRES is not set")
        }
        Err(_) => {
            eprintln!("skipped: no MTCALL_TEST_POSTGRES");
            None
        }
    }
}

/// One HTTP request to `addr` with extra header lines; `(status, body)`.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// A data directory of this process's own under the temporary directory.
fn fresh_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "mtcall-test-{}-{}",
        std::process::id(),
        OsEntropy.i64() as u64
    ))
}
