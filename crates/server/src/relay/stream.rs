//! The reflector over TCP, for clients whose networks block UDP (`phoneConnection.tcp`): a
//! client's port connects, writes the 4-byte prologue `EE EE EE EE` once, then frames each
//! packet as a little-endian `u32` length and the packet — the same layouts as over UDP, plus
//! a 20-byte hello. The reflector writes frames the same way, without a prologue. A
//! connection that sends no prologue, a zero or oversized length, or nothing for longer than a
//! relay port may stay idle, is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{Peer, Reflector};

/// The prologue a client writes first.
const PROLOGUE: [u8; 4] = [0xEE; 4];
/// Largest frame body: 64 KiB and a header, as the clients cap theirs.
const MAX_FRAME: usize = 65_540;
/// Frames queued for one connection; more are dropped.
const QUEUE: usize = 512;
/// Time to write the prologue after connecting.
const PROLOGUE_WAIT: Duration = Duration::from_secs(10);

impl Reflector {
    /// Accepts TCP connections until `stopped`.
    pub(super) async fn serve_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    while connections.try_join_next().is_some() {}
                    if connections.len() >= self.max_streams {
                        continue; // dropped: closed at once
                    }
                    let _ = stream.set_nodelay(true);
                    connections.spawn(self.clone().connection(stream, peer, stopped.clone()));
                }
                _ = stopped.changed() => break,
            }
        }
        connections.shutdown().await;
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        mut stopped: watch::Receiver<bool>,
    ) {
        let (mut reader, writer) = stream.into_split();
        let (queue, mut frames) = mpsc::channel::<Vec<u8>>(QUEUE);
        let writing = tokio::spawn(async move {
            let mut writer = BufWriter::new(writer);
            while let Some(frame) = frames.recv().await {
                let len = (frame.len() as u32).to_le_bytes();
                if writer.write_all(&len).await.is_err() || writer.write_all(&frame).await.is_err()
                {
                    return;
                }
                if frames.is_empty() && writer.flush().await.is_err() {
                    return;
                }
            }
        });
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, queue);
        tokio::select! {
            _ = self.read_frames(&mut reader, peer) => {}
            _ = stopped.changed() => {}
        }
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer);
        writing.abort();
    }

    /// Reads the prologue, then frame after frame into the relay, until the connection ends
    /// or breaks a rule.
    async fn read_frames(&self, reader: &mut tokio::net::tcp::OwnedReadHalf, peer: SocketAddr) {
        let mut prologue = [0u8; 4];
        match tokio::time::timeout(PROLOGUE_WAIT, reader.read_exact(&mut prologue)).await {
            Ok(Ok(_)) if prologue == PROLOGUE => {}
            _ => return,
        }
        let idle = Duration::from_millis(self.idle_ms());
        let mut body = vec![0u8; MAX_FRAME];
        loop {
            let mut len = [0u8; 4];
            match tokio::time::timeout(idle, reader.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 || len > MAX_FRAME {
                return;
            }
            if reader.read_exact(&mut body[..len]).await.is_err() {
                return;
            }
            let packet = &mut body[..len];
            let now = self.now_ms();
            let from = Peer::Tcp(peer);
            let verdict = self.state().relay.handle(now, from, packet);
            self.deliver(verdict, from, packet).await;
        }
    }
}
