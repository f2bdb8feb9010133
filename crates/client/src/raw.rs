//! One TCP connection speaking a transport (any of the four, obfuscated or not), below the
//! session: frames out and in, plain messages, and auth-key creation.

use std::net::SocketAddr;
use std::time::Duration;

use mtproto::crypto::OsEntropy;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::handshake::{ClientHandshake, ClientKey, RsaScheme, plain};
use mtproto::transport::{ClientFrame, ClientTransport, Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ClientError, TIMEOUT, now_ms};

/// One TCP connection speaking a transport, below the session.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// The transport framing.
    pub transport: ClientTransport,
    /// Where it is connected and how, to open the same kind of connection again.
    pub endpoint: Endpoint,
    buf: Vec<u8>,
}

/// A server address and the transport spoken to it.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// The server.
    pub addr: SocketAddr,
    /// The framing.
    pub kind: Kind,
    /// Whether the obfuscated2 layer wraps it.
    pub obfuscated: bool,
}

impl Raw {
    /// Opens a connection speaking `kind` (obfuscated if asked).
    pub async fn connect(
        addr: SocketAddr,
        kind: Kind,
        obfuscated: bool,
    ) -> Result<Raw, ClientError> {
        Raw::open(Endpoint {
            addr,
            kind,
            obfuscated,
        })
        .await
    }

    /// Opens a connection to `endpoint`.
    pub async fn open(endpoint: Endpoint) -> Result<Raw, ClientError> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(endpoint.addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let _ = stream.set_nodelay(true);
        Ok(Raw {
            stream,
            transport: ClientTransport::new(endpoint.kind, endpoint.obfuscated, 2, &mut OsEntropy),
            endpoint,
            buf: vec![0; 16 * 1024],
        })
    }

    /// Sends one transport frame.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::new();
        self.transport.encode(payload, false, &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next frame, waiting up to [`TIMEOUT`]; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Result<Option<ClientFrame>, ClientError> {
        self.recv_within(TIMEOUT).await
    }

    /// The next frame, waiting up to `limit`; `None` when the server closed the connection.
    pub async fn recv_within(
        &mut self,
        limit: Duration,
    ) -> Result<Option<ClientFrame>, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(f) = self.transport.next_frame()? {
                return Ok(Some(f));
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Ok(None);
            }
            let data = self.buf[..n].to_vec();
            self.transport.feed(&data);
        }
    }

    /// The next MTProto packet (transport error codes and a close are errors).
    pub async fn recv_packet(&mut self) -> Result<Vec<u8>, ClientError> {
        self.recv_packet_within(TIMEOUT).await
    }

    /// The next MTProto packet within `limit`.
    pub async fn recv_packet_within(&mut self, limit: Duration) -> Result<Vec<u8>, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await? {
                Some(ClientFrame::Packet(p)) => return Ok(p),
                Some(ClientFrame::Error(code)) => return Err(ClientError::TransportCode(code)),
                Some(ClientFrame::QuickAck(_)) => continue,
                None => return Err(ClientError::Closed),
            }
        }
    }

    /// Sends a plain message and returns the plain body of the answer.
    pub async fn plain_call(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let msg_id = (now_ms() / 1000) << 32;
        self.send(&plain::encode(msg_id, body)).await?;
        let packet = self.recv_packet().await?;
        Ok(plain::decode(&packet)?.1.to_vec())
    }

    /// Creates an auth key with the server's public `key` (a temporary one if `temp` is set).
    pub async fn handshake(
        &mut self,
        key: &PublicKey,
        scheme: RsaScheme,
        temp: Option<i32>,
    ) -> Result<ClientKey, ClientError> {
        let e = &mut OsEntropy;
        let (mut hs, req_pq) = ClientHandshake::start(scheme, 2, temp, e);
        let res_pq = self.plain_call(&req_pq).await?;
        let req_dh = hs.on_res_pq(&res_pq, std::slice::from_ref(key), e)?;
        let dh = self.plain_call(&req_dh).await?;
        let set = hs.on_dh_params(&dh, (now_ms() / 1000) as i32, e)?;
        let answer = self.plain_call(&set).await?;
        Ok(hs.on_dh_answer(&answer)?)
    }
}
