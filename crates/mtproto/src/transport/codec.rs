//! Framing of each transport, for the server (detecting the transport) and the client.

use super::{Frame, Kind, Obfuscation, TransportError};
use crate::crypto::Entropy;

const ABRIDGED_TAG: u8 = 0xef;
const INTERMEDIATE_TAG: [u8; 4] = [0xee; 4];
const PADDED_TAG: [u8; 4] = [0xdd; 4];

/// Received bytes not yet parsed, with a read offset so frames are not shifted one by one.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    start: usize,
}

impl Pending {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            // Everything parsed: a large buffer is freed, a small one kept for the next bytes
            // (or taken back by a caller that pools them: [`ServerTransport::take_buffer`]).
            if self.buf.capacity() > 4096 {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    fn push(&mut self, data: &[u8]) -> &mut [u8] {
        let at = self.buf.len();
        self.buf.extend_from_slice(data);
        &mut self.buf[at..]
    }
}

/// Parses one frame of `kind` at the start of `data`: the frame and the bytes it used.
fn parse(
    kind: Kind,
    data: &[u8],
    full_seq: &mut u32,
    max: usize,
) -> Result<Option<(Frame, usize)>, TransportError> {
    let check = |len: usize| -> Result<(), TransportError> {
        if len == 0 {
            Err(TransportError::BadLength(0))
        } else if len > max {
            Err(TransportError::FrameTooLarge { len, max })
        } else {
            Ok(())
        }
    };
    match kind {
        Kind::Abridged => {
            let Some(&b0) = data.first() else {
                return Ok(None);
            };
            let quick_ack = b0 & 0x80 != 0;
            let (header, words) = if b0 & 0x7f == 0x7f {
                if data.len() < 4 {
                    return Ok(None);
                }
                (
                    4,
                    u32::from_le_bytes([data[1], data[2], data[3], 0]) as usize,
                )
            } else {
                (1, (b0 & 0x7f) as usize)
            };
            let len = words * 4;
            check(len)?;
            if data.len() < header + len {
                return Ok(None);
            }
            let payload = data[header..header + len].to_vec();
            Ok(Some((
                Frame {
                    payload,
                    quick_ack,
                    padded: false,
                },
                header + len,
            )))
        }
        Kind::Intermediate | Kind::PaddedIntermediate => {
            if data.len() < 4 {
                return Ok(None);
            }
            let raw = u32::from_le_bytes(data[..4].try_into().expect("4"));
            let quick_ack = raw & 0x8000_0000 != 0;
            let len = (raw & 0x7fff_ffff) as usize;
            check(len)?;
            let padded = kind == Kind::PaddedIntermediate;
            if !padded && !len.is_multiple_of(4) {
                return Err(TransportError::BadLength(len));
            }
            if data.len() < 4 + len {
                return Ok(None);
            }
            Ok(Some((
                Frame {
                    payload: data[4..4 + len].to_vec(),
                    quick_ack,
                    padded,
                },
                4 + len,
            )))
        }
        Kind::Full => {
            if data.len() < 4 {
                return Ok(None);
            }
            let len = u32::from_le_bytes(data[..4].try_into().expect("4")) as usize;
            if len < 12 + 4 || !len.is_multiple_of(4) {
                return Err(TransportError::BadLength(len));
            }
            check(len - 12)?;
            if data.len() < len {
                return Ok(None);
            }
            let crc = u32::from_le_bytes(data[len - 4..len].try_into().expect("4"));
            if crc32fast::hash(&data[..len - 4]) != crc {
                return Err(TransportError::BadCrc);
            }
            let seq = u32::from_le_bytes(data[4..8].try_into().expect("4"));
            if seq != *full_seq {
                return Err(TransportError::BadSeq {
                    expected: *full_seq,
                    got: seq,
                });
            }
            *full_seq = full_seq.wrapping_add(1);
            Ok(Some((
                Frame {
                    payload: data[8..len - 4].to_vec(),
                    quick_ack: false,
                    padded: false,
                },
                len,
            )))
        }
    }
}

/// Appends the framing of `payload` for `kind` to `out`.
fn write(kind: Kind, payload: &[u8], full_seq: &mut u32, padding: &mut Padding, out: &mut Vec<u8>) {
    match kind {
        Kind::Abridged => {
            let words = payload.len() / 4;
            if words < 0x7f {
                out.push(words as u8);
            } else {
                out.push(0x7f);
                out.extend_from_slice(&(words as u32).to_le_bytes()[..3]);
            }
            out.extend_from_slice(payload);
        }
        Kind::Intermediate => {
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
        }
        Kind::PaddedIntermediate => {
            let pad = padding.next() as usize % 16;
            out.extend_from_slice(&((payload.len() + pad) as u32).to_le_bytes());
            out.extend_from_slice(payload);
            for _ in 0..pad {
                out.push(padding.next());
            }
        }
        Kind::Full => {
            let start = out.len();
            out.extend_from_slice(&((payload.len() + 12) as u32).to_le_bytes());
            out.extend_from_slice(&full_seq.to_le_bytes());
            out.extend_from_slice(payload);
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_le_bytes());
            *full_seq = full_seq.wrapping_add(1);
        }
    }
}

/// Padding bytes for padded intermediate (they hide lengths, not secrets: a xorshift seeded
/// from the connection's entropy is enough).
struct Padding(u64);

impl Padding {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
}

/// The server side of one connection: detects the transport, then splits frames.
pub struct ServerTransport {
    kind: Option<Kind>,
    /// Boxed: most connections are not obfuscated, and the two ciphers' state would make
    /// every connection a kilobyte larger.
    obfuscation: Option<Box<Obfuscation>>,
    dc: Option<i16>,
    /// Received bytes not yet parsed: before the transport is known, as they came (the
    /// header included); after, without the header and decrypted.
    pending: Pending,
    seq_in: u32,
    seq_out: u32,
    max_frame: usize,
    padding: Padding,
}

impl ServerTransport {
    /// A connection that accepts frames of at most `max_frame` payload bytes.
    pub fn new(max_frame: usize, entropy: &mut impl Entropy) -> Self {
        ServerTransport {
            kind: None,
            obfuscation: None,
            dc: None,
            pending: Pending::default(),
            seq_in: 0,
            seq_out: 0,
            max_frame,
            padding: Padding(entropy.i64() as u64 | 1),
        }
    }

    /// The detected transport, once known.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// Whether the connection is obfuscated.
    pub fn obfuscated(&self) -> bool {
        self.obfuscation.is_some()
    }

    /// The DC id of the obfuscation header, if any.
    pub fn dc(&self) -> Option<i16> {
        self.dc
    }

    /// Gives the transport an empty buffer to receive into, if it has none; else returns it.
    pub fn lend_buffer(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.pending.buf.capacity() == 0 && buf.is_empty() {
            self.pending.buf = buf;
            return None;
        }
        Some(buf)
    }

    /// Takes back the receive buffer when every received byte has been parsed, so a caller
    /// that pools buffers keeps none in an idle connection.
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        (self.pending.data().is_empty() && self.pending.buf.capacity() > 0).then(|| {
            self.pending.start = 0;
            std::mem::take(&mut self.pending.buf)
        })
    }

    /// Takes received bytes.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.kind.is_some() {
            let fresh = self.pending.push(data);
            if let Some(o) = &mut self.obfuscation {
                o.decrypt(fresh);
            }
            return Ok(());
        }
        self.pending.push(data);
        self.detect()
    }

    fn detect(&mut self) -> Result<(), TransportError> {
        let d = self.pending.data();
        let (kind, skip) = if d.first() == Some(&ABRIDGED_TAG) {
            (Kind::Abridged, 1)
        } else if d.len() < 4 {
            return Ok(());
        } else if d[..4] == INTERMEDIATE_TAG {
            (Kind::Intermediate, 4)
        } else if d[..4] == PADDED_TAG {
            (Kind::PaddedIntermediate, 4)
        } else if [b"HEAD", b"POST", b"GET ", b"OPTI"]
            .iter()
            .any(|m| &d[..4] == *m)
        {
            return Err(TransportError::Unrecognised);
        } else if d.len() < 8 {
            return Ok(());
        } else if d[4..8] == [0; 4] {
            (Kind::Full, 0)
        } else if d.len() < 64 {
            return Ok(());
        } else {
            let header: [u8; 64] = d[..64].try_into().expect("64");
            let (obfuscation, kind, dc) =
                Obfuscation::accept(&header).map_err(TransportError::BadObfuscationTag)?;
            self.obfuscation = Some(Box::new(obfuscation));
            self.dc = Some(dc);
            (kind, 64)
        };
        self.kind = Some(kind);
        self.pending.consume(skip);
        if let Some(o) = &mut self.obfuscation {
            o.decrypt(self.pending.data_mut());
        }
        Ok(())
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        let Some(kind) = self.kind else {
            return Ok(None);
        };
        match parse(kind, self.pending.data(), &mut self.seq_in, self.max_frame)? {
            Some((frame, used)) => {
                self.pending.consume(used);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// Appends the bytes that send `payload`.
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let kind = self.kind.unwrap_or(Kind::Full);
        let start = out.len();
        write(kind, payload, &mut self.seq_out, &mut self.padding, out);
        if let Some(o) = &mut self.obfuscation {
            o.encrypt(&mut out[start..]);
        }
    }

    /// Appends a transport error frame (`codes::*`).
    pub fn encode_error(&mut self, code: i32, out: &mut Vec<u8>) {
        self.encode(&code.to_le_bytes(), out)
    }

    /// Appends a quick acknowledgement with `token` (the first 32 bits of the packet's
    /// SHA-256, see the session). The full transport has none.
    pub fn encode_quick_ack(&mut self, token: u32, out: &mut Vec<u8>) {
        let token = token | 0x8000_0000;
        let bytes = match self.kind {
            Some(Kind::Abridged) => token.to_be_bytes(),
            Some(Kind::Intermediate | Kind::PaddedIntermediate) => token.to_le_bytes(),
            _ => return,
        };
        let start = out.len();
        out.extend_from_slice(&bytes);
        if let Some(o) = &mut self.obfuscation {
            o.encrypt(&mut out[start..]);
        }
    }
}

/// What a client receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// An MTProto packet.
    Packet(Vec<u8>),
    /// A transport error code (`codes::*`).
    Error(i32),
    /// A quick acknowledgement token.
    QuickAck(u32),
}

/// The client side of one connection.
pub struct ClientTransport {
    kind: Kind,
    obfuscation: Option<Obfuscation>,
    init: Option<Vec<u8>>,
    pending: Pending,
    seq_in: u32,
    seq_out: u32,
    max_frame: usize,
    padding: Padding,
}

impl ClientTransport {
    /// A client speaking `kind`, obfuscated when `obfuscated` (abridged, intermediate and
    /// padded only).
    pub fn new(kind: Kind, obfuscated: bool, dc: i16, entropy: &mut impl Entropy) -> Self {
        let (init, obfuscation) = if obfuscated && kind != Kind::Full {
            let (header, o) = Obfuscation::connect(kind, dc, entropy);
            (header.to_vec(), Some(o))
        } else {
            let init = match kind {
                Kind::Abridged => vec![ABRIDGED_TAG],
                Kind::Intermediate => INTERMEDIATE_TAG.to_vec(),
                Kind::PaddedIntermediate => PADDED_TAG.to_vec(),
                Kind::Full => Vec::new(),
            };
            (init, None)
        };
        ClientTransport {
            kind,
            obfuscation,
            init: Some(init),
            pending: Pending::default(),
            seq_in: 0,
            seq_out: 0,
            max_frame: 16 * 1024 * 1024,
            padding: Padding(entropy.i64() as u64 | 1),
        }
    }

    /// Appends the bytes that send `payload` (preceded by the transport's init bytes the first
    /// time). `quick_ack` asks the server for a quick acknowledgement.
    pub fn encode(&mut self, payload: &[u8], quick_ack: bool, out: &mut Vec<u8>) {
        if let Some(init) = self.init.take() {
            out.extend_from_slice(&init);
        }
        let start = out.len();
        write(
            self.kind,
            payload,
            &mut self.seq_out,
            &mut self.padding,
            out,
        );
        if quick_ack {
            match self.kind {
                Kind::Abridged => out[start] |= 0x80,
                Kind::Intermediate | Kind::PaddedIntermediate => out[start + 3] |= 0x80,
                Kind::Full => {}
            }
        }
        if let Some(o) = &mut self.obfuscation {
            o.encrypt(&mut out[start..]);
        }
    }

    /// Takes received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        let fresh = self.pending.push(data);
        if let Some(o) = &mut self.obfuscation {
            o.decrypt(fresh);
        }
    }

    /// The next complete frame from the server.
    pub fn next_frame(&mut self) -> Result<Option<ClientFrame>, TransportError> {
        let d = self.pending.data();
        // Quick acks carry no length prefix: a set top bit where a length would be.
        match self.kind {
            Kind::Abridged if d.first().is_some_and(|b| b & 0x80 != 0) => {
                if d.len() < 4 {
                    return Ok(None);
                }
                let token = u32::from_be_bytes(d[..4].try_into().expect("4"));
                self.pending.consume(4);
                return Ok(Some(ClientFrame::QuickAck(token)));
            }
            Kind::Intermediate | Kind::PaddedIntermediate if d.len() >= 4 && d[3] & 0x80 != 0 => {
                let token = u32::from_le_bytes(d[..4].try_into().expect("4"));
                self.pending.consume(4);
                return Ok(Some(ClientFrame::QuickAck(token)));
            }
            _ => {}
        }
        match parse(self.kind, d, &mut self.seq_in, self.max_frame)? {
            Some((frame, used)) => {
                self.pending.consume(used);
                let payload = frame.payload;
                // No MTProto packet is shorter than 20 bytes; a transport error is 4 (+ padding).
                if payload.len() >= 4 && payload.len() < 20 {
                    let code = i32::from_le_bytes(payload[..4].try_into().expect("4"));
                    return Ok(Some(ClientFrame::Error(code)));
                }
                // Padding (padded intermediate) stays: the session trims packets by content.
                Ok(Some(ClientFrame::Packet(payload)))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsEntropy;

    const ALL: [(Kind, bool); 7] = [
        (Kind::Abridged, false),
        (Kind::Intermediate, false),
        (Kind::PaddedIntermediate, false),
        (Kind::Full, false),
        (Kind::Abridged, true),
        (Kind::Intermediate, true),
        (Kind::PaddedIntermediate, true),
    ];

    #[test]
    fn every_transport_both_ways_byte_by_byte() {
        for (kind, obfuscated) in ALL {
            let mut client = ClientTransport::new(kind, obfuscated, 2, &mut OsEntropy);
            let mut server = ServerTransport::new(1 << 20, &mut OsEntropy);
            let payloads: Vec<Vec<u8>> =
                vec![vec![1; 40], vec![2; 1024], vec![3; 4 * 0x7f], vec![4; 8]];
            let mut wire = Vec::new();
            for p in &payloads {
                client.encode(p, false, &mut wire);
            }
            let mut got = Vec::new();
            for b in &wire {
                server.feed(&[*b]).unwrap();
                while let Some(f) = server.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(server.kind(), Some(kind), "{kind:?} {obfuscated}");
            assert_eq!(server.obfuscated(), obfuscated);
            assert_eq!(got.len(), payloads.len());
            for (f, p) in got.iter().zip(&payloads) {
                // Padded intermediate may add 0-15 bytes; the session trims them by content.
                let extra = f.payload.len() - p.len();
                assert!(
                    extra == 0 || (f.padded && extra < 16),
                    "{kind:?} {obfuscated}"
                );
                assert_eq!(&f.payload[..p.len()], &p[..], "{kind:?} {obfuscated}");
            }

            let mut down = Vec::new();
            server.encode(&[9; 48], &mut down);
            server.encode_error(super::super::codes::AUTH_KEY_NOT_FOUND, &mut down);
            server.encode_quick_ack(0x1234_5678, &mut down);
            client.feed(&down);
            match client.next_frame().unwrap() {
                Some(ClientFrame::Packet(p)) => assert_eq!(&p[..48], &[9; 48]),
                other => panic!("{other:?}"),
            }
            assert_eq!(client.next_frame().unwrap(), Some(ClientFrame::Error(-404)));
            if kind != Kind::Full {
                assert_eq!(
                    client.next_frame().unwrap(),
                    Some(ClientFrame::QuickAck(0x9234_5678))
                );
            }
            assert_eq!(client.next_frame().unwrap(), None);
        }
    }

    #[test]
    fn quick_ack_request_is_seen() {
        for kind in [Kind::Abridged, Kind::Intermediate] {
            let mut client = ClientTransport::new(kind, false, 2, &mut OsEntropy);
            let mut server = ServerTransport::new(1 << 20, &mut OsEntropy);
            let mut wire = Vec::new();
            client.encode(&[1; 16], true, &mut wire);
            server.feed(&wire).unwrap();
            assert!(server.next_frame().unwrap().unwrap().quick_ack);
        }
    }

    #[test]
    fn hostile_streams_are_typed_errors() {
        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        assert_eq!(
            s.feed(b"GET / HTTP/1.1\r\n"),
            Err(TransportError::Unrecognised)
        );

        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        s.feed(&[0xee, 0xee, 0xee, 0xee]).unwrap();
        s.feed(&(1u32 << 20).to_le_bytes()).unwrap();
        assert_eq!(
            s.next_frame(),
            Err(TransportError::FrameTooLarge {
                len: 1 << 20,
                max: 1024
            })
        );

        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        s.feed(&[0xee, 0xee, 0xee, 0xee, 6, 0, 0, 0]).unwrap();
        assert_eq!(s.next_frame(), Err(TransportError::BadLength(6)));

        let mut client = ClientTransport::new(Kind::Full, false, 2, &mut OsEntropy);
        let mut wire = Vec::new();
        client.encode(&[1; 16], false, &mut wire);
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        s.feed(&wire).unwrap();
        assert_eq!(s.next_frame(), Err(TransportError::BadCrc));

        let mut client = ClientTransport::new(Kind::Full, false, 2, &mut OsEntropy);
        let mut wire = Vec::new();
        client.encode(&[1; 16], false, &mut wire);
        let mut second = Vec::new();
        client.encode(&[1; 16], false, &mut second);
        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        s.feed(&wire).unwrap();
        s.next_frame().unwrap();
        s.feed(&wire).unwrap(); // replayed seq 0
        assert_eq!(
            s.next_frame(),
            Err(TransportError::BadSeq {
                expected: 1,
                got: 0
            })
        );

        let mut s = ServerTransport::new(1024, &mut OsEntropy);
        let mut header = [7u8; 64];
        header[0] = 1;
        assert!(matches!(
            s.feed(&header),
            Err(TransportError::BadObfuscationTag(_))
        ));
    }
}
