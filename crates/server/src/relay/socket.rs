//! The reflector's socket loop: each datagram goes to the sans-IO relay and its verdict is
//! carried out (forwarded, answered or dropped); idle relay ports are forgotten every few
//! seconds. A send that fails (an address gone, a full buffer) loses that datagram only, as
//! UDP would.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Peer, Reflector};

/// How often idle relay ports are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Reflector {
    /// Relays until `stopped`: UDP here, TCP connections in their own tasks.
    pub async fn serve(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let tcp = listener.map(|l| tokio::spawn(self.clone().serve_tcp(l, stopped.clone())));
        self.serve_udp(&mut stopped).await;
        if let Some(tcp) = tcp {
            let _ = tcp.await;
        }
    }

    async fn serve_udp(&self, stopped: &mut watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65_536];
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { continue };
                    let datagram = &mut buf[..n];
                    let now = self.now_ms();
                    let from = Peer::Udp(from);
                    let verdict = self.state().relay.handle(now, from, datagram);
                    self.deliver(verdict, from, datagram).await;
                }
                _ = sweep.tick() => {
                    let now = self.now_ms();
                    self.state().relay.sweep(now);
                }
                _ = stopped.changed() => return,
            }
        }
    }
}
