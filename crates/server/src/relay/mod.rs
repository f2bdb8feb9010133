//! The relays a call's media can take, as `mtcall serve` offers them:
//!
//! - [`Reflector`]: this node's Telegram-protocol reflector on UDP ([`socket`]) and, for
//!   clients that cannot use UDP, on TCP at the same address ([`stream`]): the sans-IO
//!   [`relay::Relay`] behind both, one routing table. A call is granted on the node that
//!   confirms it — that node renders both parties' `phoneCall`, so both are sent to the same
//!   reflector — and revoked when it ends ([`crate::services::Calls`]).
//! - [`turn`]: time-limited credentials for TURN servers (coturn's `use-auth-secret`), one
//!   pair per viewer and call; mtcall relays nothing itself there.
//! - [`tags`]: each party's peer tag, from the server secret.

mod settings;
mod socket;
mod stream;
pub mod tags;
pub mod turn;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use relay::{CallTraffic, Grant, GrantError, Party, Relay, Verdict};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::observe::metrics::RelayFigures;
pub use settings::{RelaySettings, TurnSettings};

/// Ended calls whose relayed traffic the inspector can still show.
const FINISHED_KEPT: usize = 1_000;

/// Who sent a packet: a UDP source address, or a TCP connection by its peer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A datagram's source.
    Udp(SocketAddr),
    /// A TCP connection's remote address.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Udp(a) => write!(f, "udp {a}"),
            Peer::Tcp(a) => write!(f, "tcp {a}"),
        }
    }
}

/// This node's reflector: its sockets, the address clients are told, and the relay state.
pub struct Reflector {
    socket: UdpSocket,
    /// The TCP listener, until [`Reflector::serve`] takes it.
    listener: Mutex<Option<TcpListener>>,
    tcp: bool,
    max_streams: usize,
    idle_ms: u64,
    public: SocketAddr,
    id: i64,
    secret: [u8; 32],
    clock: Clock,
    state: Mutex<State>,
    /// Each TCP connection's queue of frames to write.
    streams: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
}

struct State {
    relay: Relay<Peer>,
    finished: VecDeque<(i64, CallTraffic<Peer>)>,
}

impl Reflector {
    /// Binds the reflector `settings` describe, next to the MTProto address `listen` as
    /// configured (announced as `public`): port 0 there means any free port here too, never the
    /// bound MTProto port + 2, which another program may hold. `None` when it is off, or when
    /// its default port is taken (a second local server still starts) or nothing reachable can
    /// be announced.
    pub async fn bind(
        settings: &RelaySettings,
        listen: SocketAddr,
        public: SocketAddr,
        secret: [u8; 32],
        clock: Clock,
    ) -> Result<Option<Arc<Reflector>>, String> {
        if !settings.enabled {
            return Ok(None);
        }
        let (addr, must_bind) = match settings.listen {
            Some(addr) => (addr, true),
            None if listen.port() == 0 => (SocketAddr::new(listen.ip(), 0), true),
            None => (
                SocketAddr::new(listen.ip(), listen.port().saturating_add(2)),
                false,
            ),
        };
        let socket = match UdpSocket::bind(addr).await {
            Ok(s) => s,
            Err(e) if !must_bind => {
                tracing::warn!(%addr, error = %e, "the reflector's port is taken; calls get no reflector (set relay.listen)");
                return Ok(None);
            }
            Err(e) => return Err(format!("binding the reflector {addr}: {e}")),
        };
        let bound = socket.local_addr().map_err(|e| e.to_string())?;
        let public = settings
            .public_address
            .unwrap_or_else(|| SocketAddr::new(public.ip(), bound.port()));
        if public.ip().is_unspecified() {
            tracing::warn!(%bound, "the reflector has no address clients can reach; calls get no reflector (set relay.public_address or public_address)");
            return Ok(None);
        }
        let listener = match settings.tcp {
            false => None,
            true => match TcpListener::bind(bound).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(%bound, error = %e, "the reflector's TCP port is taken; it relays over UDP only");
                    None
                }
            },
        };
        tracing::info!(%bound, %public, tcp = listener.is_some(), "reflector listening");
        Ok(Some(Arc::new(Reflector {
            socket,
            tcp: listener.is_some(),
            listener: Mutex::new(listener),
            max_streams: settings.max_tcp_connections,
            idle_ms: settings.end_idle_secs.max(1) * 1000,
            streams: Mutex::new(HashMap::new()),
            public,
            id: settings.id,
            secret,
            clock,
            state: Mutex::new(State {
                relay: Relay::new(settings.limits()),
                finished: VecDeque::new(),
            }),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idle_ms(&self) -> u64 {
        self.idle_ms
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms().max(0) as u64
    }

    /// The address clients are told.
    pub fn public_address(&self) -> SocketAddr {
        self.public
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Lets the parties of `call_id` relay through this reflector.
    pub fn grant(&self, call_id: i64) -> Result<(), GrantError> {
        let grant = Grant {
            call_id,
            caller: tags::peer_tag(&self.secret, call_id, Party::Caller),
            callee: tags::peer_tag(&self.secret, call_id, Party::Callee),
        };
        let now = self.now_ms();
        self.state().relay.grant(grant, now)
    }

    /// Stops relaying `call_id`; what it carried stays readable for a while.
    pub fn revoke(&self, call_id: i64) {
        let mut state = self.state();
        if let Some(traffic) = state.relay.revoke(call_id) {
            if state.finished.len() >= FINISHED_KEPT {
                state.finished.pop_front();
            }
            state.finished.push_back((call_id, traffic));
        }
    }

    /// Whether `call_id` is granted here.
    pub fn is_granted(&self, call_id: i64) -> bool {
        self.state().relay.is_granted(call_id)
    }

    /// The granted calls.
    pub fn granted(&self) -> Vec<i64> {
        self.state().relay.calls().collect()
    }

    /// The `phoneConnection`s for `party` of a granted call: UDP with the reflector's id, and
    /// TCP with the next id when it listens on TCP too.
    pub fn connections(&self, call_id: i64, party: Party) -> Vec<tl::types::PhoneConnection> {
        let entry = |tcp: bool, id: i64| tl::types::PhoneConnection {
            tcp,
            id,
            ip: self.public.ip().to_string(),
            ipv6: String::new(),
            port: i32::from(self.public.port()),
            peer_tag: tags::peer_tag(&self.secret, call_id, party).to_vec(),
        };
        let mut list = vec![entry(false, self.id)];
        if self.tcp {
            list.push(entry(true, self.id + 1));
        }
        list
    }

    /// Carries out `verdict` for `datagram`, which came from `from`: a forward goes out on
    /// the recipient's socket or connection; a hello over UDP is answered (over TCP the
    /// connection itself made the port ready, and a short answer would read as data).
    async fn deliver(&self, verdict: Verdict<Peer>, from: Peer, datagram: &[u8]) {
        let to = match (verdict, from) {
            (Verdict::Forward { to }, _) => to,
            (Verdict::Reply, Peer::Udp(_)) => from,
            (Verdict::Reply, Peer::Tcp(_)) | (Verdict::Drop(_), _) => return,
        };
        match to {
            Peer::Udp(addr) => {
                let _ = self.socket.send_to(datagram, addr).await;
            }
            Peer::Tcp(addr) => {
                let queue = self
                    .streams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&addr)
                    .cloned();
                // A connection that does not keep up loses packets, as UDP would.
                if let Some(queue) = queue {
                    let _ = queue.try_send(datagram.to_vec());
                }
            }
        }
    }

    /// What `call_id` has carried (granted now, or ended recently).
    pub fn traffic(&self, call_id: i64) -> Option<CallTraffic<Peer>> {
        let state = self.state();
        state.relay.traffic(call_id).or_else(|| {
            state
                .finished
                .iter()
                .rev()
                .find(|(id, _)| *id == call_id)
                .map(|(_, t)| t.clone())
        })
    }

    /// The figures `/metrics` shows.
    pub fn figures(&self) -> RelayFigures {
        let state = self.state();
        RelayFigures {
            totals: state.relay.totals().clone(),
            granted: state.relay.calls().count() as u64,
            relaying: state.relay.relaying() as u64,
        }
    }
}
