//! The reflector's datagram layout, as the clients' reflector ports write it.
//!
//! ```text
//! hello:  tag[0..12] | end tag (4) | FF x12 | anything (tgcalls: FE FF FF FF, 8-byte id)
//! hello over TCP: tag[0..12] | end tag (4) | 00 00 00 00
//! data:   tag[0..12] | to end tag (4) | from end tag (4) | length N (u32, big-endian) |
//!         payload (N bytes) | zero padding
//! ```

/// The part of a peer tag that names a call and a party (the first 12 bytes).
pub type CallTag = [u8; 12];
/// The random tag a client's relay port picks for itself (bytes 12..16 of its hello).
pub type EndTag = [u8; 4];

/// Bytes of a data packet before its payload.
pub const DATA_HEADER: usize = 24;
/// Bytes of the shortest hello.
pub const HELLO_MIN: usize = 28;

/// What a datagram says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// A hello or keepalive from the port `end` of the party holding `tag`.
    Hello {
        /// The sender's call tag.
        tag: CallTag,
        /// The sender's end tag.
        end: EndTag,
    },
    /// A packet for the end `to`, from the end `from` of the party holding `tag`.
    Data {
        /// The sender's call tag.
        tag: CallTag,
        /// The recipient's end tag.
        to: EndTag,
        /// The sender's end tag.
        from: EndTag,
        /// Payload bytes.
        len: u32,
    },
}

/// Why a datagram is not one of the reflector's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than any reflector packet.
    Short,
    /// A data packet whose length field runs past its end.
    Length,
}

/// Bytes of the hello a client's port sends over TCP: the call tag's 12 bytes, its end tag,
/// 4 zero bytes.
pub const TCP_HELLO: usize = 20;

/// Reads a datagram's header (or a TCP frame's body: the same layouts, and the short hello).
pub fn parse(bytes: &[u8]) -> Result<Datagram, Malformed> {
    if bytes.len() == TCP_HELLO && bytes[16..20] == [0; 4] {
        return Ok(Datagram::Hello {
            tag: bytes[..12].try_into().expect("12 bytes"),
            end: bytes[12..16].try_into().expect("4 bytes"),
        });
    }
    if bytes.len() < DATA_HEADER {
        return Err(Malformed::Short);
    }
    let tag: CallTag = bytes[..12].try_into().expect("12 bytes");
    let word = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().expect("4 bytes") };
    if bytes.len() >= HELLO_MIN && bytes[16..28].iter().all(|b| *b == 0xFF) {
        return Ok(Datagram::Hello { tag, end: word(12) });
    }
    let len = u32::from_be_bytes(word(20));
    if len as usize > bytes.len() - DATA_HEADER {
        return Err(Malformed::Length);
    }
    Ok(Datagram::Data {
        tag,
        to: word(12),
        from: word(16),
        len,
    })
}

/// Puts `tag` where a packet's call tag goes (the recipient's, as it forwards).
pub fn set_tag(bytes: &mut [u8], tag: &CallTag) {
    bytes[..12].copy_from_slice(tag);
}

/// A hello as a client's relay port writes it (for tests and the relay benchmark): the call
/// tag's first 12 bytes, `end`, 12 bytes of `0xFF`, then tgcalls' ping type and id.
pub fn hello(tag: &[u8; 16], end: EndTag) -> Vec<u8> {
    let mut p = tag[..12].to_vec();
    p.extend(end);
    p.extend([0xFF; 12]);
    p.extend([0xFE, 0xFF, 0xFF, 0xFF]);
    p.extend(123u64.to_be_bytes());
    p
}

/// A data packet as a client's relay port writes it, padded to a multiple of 4 bytes.
pub fn data(tag: &[u8; 16], to: EndTag, from: EndTag, payload: &[u8]) -> Vec<u8> {
    let mut p = tag[..12].to_vec();
    p.extend(to);
    p.extend(from);
    p.extend((payload.len() as u32).to_be_bytes());
    p.extend(payload);
    while !p.len().is_multiple_of(4) {
        p.push(0);
    }
    p
}
