//! mtcall's server (`docs/design.md`): a tokio TCP listener speaking MTProto 2.0 to
//! unmodified Telegram clients, with login, users, contacts and update delivery over the
//! [`store`] crate. The protocol work is the sans-IO [`mtproto`] crate; this crate does the I/O,
//! the clock, and the API methods (one file per family under [`rpc`]).

mod admin;
pub mod auth_settings;
mod buffers;
mod cache;
pub mod clock;
pub mod config;
mod connection;
pub mod data_dir;
pub mod entropy;
pub mod errors;
pub mod hub;
pub mod key_ring;
pub mod limits;
mod node;
pub mod observe;
mod push_queue;
mod pushed;
pub mod relay;
pub mod render;
mod rpc;
#[cfg(test)]
mod service_tests;
pub mod services;
mod sessions;
pub mod topology;
mod user_locks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
use node::Node;
use sessions::Refusal;

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    relay_addr: Option<SocketAddr>,
    keys: Arc<key_ring::KeyRing>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Held while the server lives: no restore replaces its database meanwhile.
    _lock: data_dir::DirLock,
}

impl Server {
    /// Opens the data directory and the database, binds the listener and starts serving.
    pub async fn start(config: Config) -> Result<Server, String> {
        Self::start_with_clock(config, clock::Clock::System).await
    }

    /// [`Server::start`] with the time of day from `clock`.
    pub async fn start_with_clock(config: Config, clock: clock::Clock) -> Result<Server, String> {
        Self::start_with(config, clock, entropy::Randomness::Os).await
    }

    /// [`Server::start`] with the time of day from `clock` and random bytes from `entropy`.
    pub async fn start_with(
        config: Config,
        clock: clock::Clock,
        entropy: entropy::Randomness,
    ) -> Result<Server, String> {
        config.admin.check()?;
        config.check_relays()?;
        let lock = data_dir::DirLock::serving(&config.data_dir)?;
        let mut data = data_dir::DataDir::open(&config.data_dir)?;
        let keys = Arc::new(key_ring::KeyRing::new(
            config.data_dir.clone(),
            std::mem::take(&mut data.keys),
        ));
        let (store, cluster) = config.open_store(&data.database()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("binding {}: {e}", config.listen))?;
        let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut config = config;
        if config.listen.port() == 0 && config.public_address.is_none() {
            config.public_address = Some(local_addr);
        }
        let admin_listener = bind_admin(&config).await?;
        let admin_addr = match &admin_listener {
            Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
            None => None,
        };
        let reflector = relay::Reflector::bind(
            &config.relay,
            config.listen,
            config.public_address(),
            data.secret,
            clock,
        )
        .await?;
        let relay_addr = match &reflector {
            Some(r) => Some(r.local_addr().map_err(|e| e.to_string())?),
            None => None,
        };
        let node = Arc::new(
            node::assemble(
                config,
                reflector.clone(),
                data,
                keys.clone(),
                store,
                cluster,
                clock,
                entropy,
            )
            .await?,
        );
        let (stop, stopped) = watch::channel(false);
        let calls = node.services.calls.clone();
        let timer_stopped = stopped.clone();
        let timers = tokio::spawn(async move { calls.run_timers(timer_stopped).await });
        let log = tokio::spawn(node.services.updates.clone().follow(stopped.clone()));
        let calls = node.services.calls.clone();
        let sweep_stopped = stopped.clone();
        let sweep = tokio::spawn(async move { calls.run_relay_sweep(sweep_stopped).await });
        let relaying = reflector.map(|r| tokio::spawn(r.serve(stopped.clone())));
        let admin =
            admin_listener.map(|l| tokio::spawn(admin::serve(node.clone(), l, stopped.clone())));
        let accept = tokio::spawn(accept_loop(node, listener, stopped));
        let task = tokio::spawn(async move {
            let _ = accept.await;
            if let Some(admin) = admin {
                let _ = admin.await;
            }
            let _ = timers.await;
            let _ = log.await;
            let _ = sweep.await;
            if let Some(relaying) = relaying {
                let _ = relaying.await;
            }
        });
        Ok(Server {
            local_addr,
            admin_addr,
            relay_addr,
            keys,
            stop,
            task,
            _lock: lock,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin address (inspector page, its API, `/metrics`), if it is served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The reflector's bound UDP address, if it runs.
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay_addr
    }

    /// The first RSA key's fingerprint (clients given `server.pub` know it).
    pub fn fingerprint(&self) -> i64 {
        self.keys.list().first().map_or(0, |k| k.fingerprint)
    }

    /// Every RSA key offered in key exchanges, with its public file.
    pub fn keys(&self) -> Vec<key_ring::KeyInfo> {
        self.keys.list()
    }

    /// Reads the data directory's keys again (added and retired ones); the keys on offer stay
    /// as they were if that fails.
    pub fn reload_keys(&self) -> Result<Vec<key_ring::KeyInfo>, String> {
        self.keys.reload()
    }

    /// Stops accepting, lets every connection finish the requests it has read (up to
    /// `shutdown_grace_secs`), answer them and close; then stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds the admin address of `config` (see [`config::AdminSettings::listen`]).
async fn bind_admin(config: &Config) -> Result<Option<TcpListener>, String> {
    if !config.admin.enabled {
        return Ok(None);
    }
    let (addr, must_bind) = match config.admin.listen {
        Some(addr) => (addr, true),
        None if config.listen.port() == 0 => (SocketAddr::from(([127, 0, 0, 1], 0)), true),
        None => (config::DEFAULT_ADMIN_LISTEN, false),
    };
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if !must_bind => {
            tracing::warn!(
                address = %addr,
                error = %e,
                "the admin address is taken; the inspector and /metrics are off (set --admin-listen)"
            );
            Ok(None)
        }
        Err(e) => Err(format!("binding the admin address {addr}: {e}")),
    }
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    // Each connection's queue, to tell it to stop (dead ones are pruned as they pile up).
    let mut open_queues: Vec<push_queue::WeakPushSender> = Vec::new();
    node.sessions.set_accepting(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(refusal) = node.sessions.admit(peer.ip()) {
                        match refusal {
                            Refusal::Full => tracing::warn!(%peer, "connection limit reached"),
                            Refusal::AddressFull => {
                                tracing::warn!(%peer, "connections per address limit reached")
                            }
                        }
                        refuse(stream);
                        continue;
                    }
                    let node = node.clone();
                    let queue = push_queue::push_queue(hub::QUEUE);
                    if open_queues.len() >= 2 * connections.len() + 64 {
                        open_queues.retain(push_queue::WeakPushSender::is_alive);
                    }
                    open_queues.push(queue.0.downgrade());
                    connections.spawn(connection::serve(node, stream, peer, queue));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    // No new connections; each open one answers what it has read, then closes. Those still
    // busy after the grace period (or whose queue is full) are cut.
    node.sessions.set_accepting(false);
    drop(listener);
    for queue in open_queues.iter().filter_map(|q| q.upgrade()) {
        let _ = queue.try_send(hub::Push::Stop);
    }
    let grace = Duration::from_secs(node.config.shutdown_grace_secs);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace period over: cutting the connections still busy"
        );
    }
    connections.shutdown().await;
}

/// Answers a connection over the limit with transport error -429 (flood) and closes it.
fn refuse(stream: tokio::net::TcpStream) {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        // The transport is not known before the client speaks; the intermediate framing of
        // -429 is what clients of every transport read as an error or a closed connection.
        let mut frame = 4u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&mtproto::transport::codes::FLOOD.to_le_bytes());
        let _ = stream.write_all(&frame).await;
    });
}
