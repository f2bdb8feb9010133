//! A Telegram-protocol reflector, sans-IO: the relay that `phoneConnection` entries name.
//!
//! Each party of a call is handed its own 16-byte peer tag. A client's relay port (tgcalls'
//! and ntgcalls' reflector port) adds a random 4-byte *end tag* of its own and sends:
//!
//! - **hellos** (keepalives): its call tag's first 12 bytes, its end tag, then 12 bytes of
//!   `0xFF`; the port counts as ready once the reflector answers one;
//! - **data**: the call tag's 12 bytes, the destination end tag, its own end tag, a big-endian
//!   payload length, the payload (ICE, DTLS, SRTP — opaque here), zero padding.
//!
//! A receiving port checks only that the first 12 bytes are its own call tag, so the reflector
//! rewrites them to the recipient's tag as it forwards ([`packet`]). [`Relay`] decides, for one
//! datagram at a time and with the time passed in, what happens to it: forwarded to the other
//! party's end, answered (a hello), or dropped for a named reason. It opens no socket and
//! reads no clock; its caller owns the socket and calls [`Relay::sweep`] now and then.
//!
//! Nothing is relayed for a tag that was not [granted](Relay::grant) for a live call, nothing
//! is sent to an address that has not presented its party's tag, and nothing is ever sent in
//! answer to an unknown tag: a forged source address gets no traffic aimed at it.

mod limits;
pub mod packet;
mod relay;

pub use packet::{CallTag, Datagram, EndTag, Malformed};
pub use relay::{CallTraffic, Dropped, Grant, GrantError, Party, Relay, Settings, Totals, Verdict};

#[cfg(test)]
mod tests;
