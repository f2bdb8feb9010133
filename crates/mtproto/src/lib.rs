//! Sans-IO MTProto 2.0 (`docs/design.md §6`) for both roles.
//!
//! - [`transport`]: the TCP transports (abridged, intermediate, padded intermediate, full,
//!   obfuscated2), detected from a connection's first bytes on the server side.
//! - [`handshake`]: auth-key creation, server and client steps.
//! - [`session`]: encrypted sessions: message ids, seqno, salts, containers, acks and the
//!   service messages, server and client side.
//! - [`crypto`]: the primitives these use.
//!
//! Nothing here opens a socket or reads a clock: bytes and the current time go in, bytes,
//! events and deadlines come out.

pub mod crypto;
pub mod handshake;
pub mod session;
pub mod transport;
