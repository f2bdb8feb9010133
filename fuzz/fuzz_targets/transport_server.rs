//! A connection's bytes into a `ServerTransport`, in chunk sizes taken from the input: detection
//! and framing of every transport (abridged, intermediate, padded intermediate, full, each
//! inside obfuscated2 where clients use it) never panic, and every frame respects the configured
//! maximum. Streams a `ClientTransport` wrote must come out frame for frame, and what the server
//! encodes back must decode at that client.
//!
//! Input: `config` byte, `k` byte, `k` chunk sizes, then the stream part.
//! - config bits 0-1: max frame 64 / 256 / 4096 / 1 MiB; bits 2-3: mode; bits 4-5: transport
//!   kind (abridged, intermediate, padded, full) for modes 1-3; bits 6-7: random seed.
//! - mode 0: the stream part is the connection's bytes, as they are.
//! - mode 1: an obfuscated2 header for the kind (built like a client's, random keys), then the
//!   stream part encrypted with its keystream: arbitrary framing inside obfuscation (random
//!   bytes cannot reach it: the header's tag is checked after AES-CTR).
//! - mode 2 (plain) / 3 (obfuscated): the stream part is a list of payloads, each `[L][F]` + data:
//!   4 * ((L & 0x7f) + 1 + (L >> 7) * 127) bytes (up to 1020, across abridged's 0x7f-word step),
//!   quick-ack requested when F & 1. A `ClientTransport` frames them.
//! - chunk sizes (byte + 1 each) are cycled over the resulting stream; k = 0 feeds it whole.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, Rng};
use libfuzzer_sys::fuzz_target;
use mtproto::transport::{
    ClientFrame, ClientTransport, Frame, Kind, Obfuscation, ServerTransport, TransportError,
};

const MAX_FRAMES: [usize; 4] = [64, 256, 4096, 1 << 20];
const KINDS: [Kind; 4] = [
    Kind::Abridged,
    Kind::Intermediate,
    Kind::PaddedIntermediate,
    Kind::Full,
];

struct Payload {
    data: Vec<u8>,
    quick_ack: bool,
}

fn payloads(input: &mut Input<'_>) -> Vec<Payload> {
    let mut out = Vec::new();
    while !input.is_empty() && out.len() < 64 {
        let l = input.u8() as usize;
        let quick_ack = input.u8() & 1 == 1;
        let len = 4 * ((l & 0x7f) + 1 + (l >> 7) * 127);
        let mut data = input.bytes(len).to_vec();
        data.resize(len, 0);
        out.push(Payload { data, quick_ack });
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let max = MAX_FRAMES[(config & 3) as usize];
    let mode = (config >> 2) & 3;
    let kind = KINDS[((config >> 4) & 3) as usize];
    let mut rng = Rng::new(u64::from(config >> 6));
    let k = (input.u8() % 17) as usize;
    let chunks: Vec<usize> = input.bytes(k).iter().map(|b| *b as usize + 1).collect();

    // What a client sends, and (framed modes) the client that sent it.
    let mut client = None;
    let mut sent = Vec::new();
    let mut header_dc = None;
    let stream = match mode {
        0 => input.rest().to_vec(),
        1 => {
            let dc = (rng.next_u64() % 5) as i16 - 2;
            let (header, mut obfuscation) = Obfuscation::connect(kind, dc, &mut rng);
            header_dc = Some(dc);
            let mut body = input.rest().to_vec();
            obfuscation.encrypt(&mut body);
            let mut stream = header.to_vec();
            stream.extend_from_slice(&body);
            stream
        }
        _ => {
            let mut c = ClientTransport::new(kind, mode == 3, 2, &mut rng);
            sent = payloads(&mut input);
            let mut stream = Vec::new();
            for p in &sent {
                c.encode(&p.data, p.quick_ack, &mut stream);
            }
            client = Some(c);
            stream
        }
    };

    let mut server = ServerTransport::new(max, &mut rng);
    let mut frames: Vec<Frame> = Vec::new();
    let mut error: Option<TransportError> = None;
    let mut detected: Option<Kind> = None;
    let mut at = 0;
    let mut i = 0;
    'feed: while at < stream.len() {
        let n = if chunks.is_empty() {
            stream.len()
        } else {
            chunks[i % chunks.len()]
        };
        i += 1;
        let end = (at + n).min(stream.len());
        if let Err(e) = server.feed(&stream[at..end]) {
            error = Some(e);
            break;
        }
        at = end;
        if let Some(k) = detected {
            assert_eq!(server.kind(), Some(k), "the transport changed mid-stream");
        }
        detected = server.kind();
        loop {
            match server.next_frame() {
                Ok(Some(f)) => {
                    let kind = server.kind().expect("a frame before detection");
                    assert!(!f.payload.is_empty(), "empty frame");
                    assert!(
                        f.payload.len() <= max,
                        "frame of {} bytes over the {max}-byte cap ({kind:?})",
                        f.payload.len()
                    );
                    assert_eq!(f.padded, kind == Kind::PaddedIntermediate);
                    if !f.padded {
                        assert_eq!(f.payload.len() % 4, 0, "{kind:?} frame not whole words");
                    }
                    if kind == Kind::Full {
                        assert!(!f.quick_ack, "the full transport has no quick ack");
                    }
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if let Some(TransportError::FrameTooLarge { len, max: m }) = &error {
        assert_eq!(*m, max);
        assert!(*len > max);
    }

    if mode == 1 && stream.len() >= 64 {
        // The header is always accepted: the inner transport and DC are the client's.
        assert!(
            server.obfuscated(),
            "obfuscated2 header not recognised: {error:?}"
        );
        let expected = if kind == Kind::Full {
            Kind::Intermediate
        } else {
            kind
        };
        assert_eq!(server.kind(), Some(expected));
        assert_eq!(server.dc(), header_dc);
    }

    // Whatever arrived is echoed back (with quick acks where asked), as the server would answer.
    let mut down = Vec::new();
    for f in &frames {
        server.encode(&f.payload, &mut down);
        if f.quick_ack {
            server.encode_quick_ack(f.payload.len() as u32, &mut down);
        }
    }
    server.encode_error(-404, &mut down);

    let Some(mut client) = client else {
        return;
    };
    if sent.is_empty() {
        // Nothing was sent, not even the transport's tag: the server cannot know how to answer.
        return;
    }
    // A well-behaved client's stream: the payloads come out in order, unchanged (padded
    // intermediate may add up to 15 bytes), until one is over the cap.
    assert_eq!(server.kind(), Some(kind));
    assert_eq!(server.obfuscated(), mode == 3 && kind != Kind::Full);
    assert!(frames.len() <= sent.len());
    for (f, p) in frames.iter().zip(&sent) {
        assert_eq!(&f.payload[..p.data.len()], &p.data[..], "payload changed");
        let extra = f.payload.len() - p.data.len();
        assert!(
            extra == 0 || (f.padded && extra < 16),
            "{extra} extra bytes"
        );
        assert_eq!(
            f.quick_ack,
            p.quick_ack && kind != Kind::Full,
            "quick-ack flag"
        );
    }
    match (&error, sent.get(frames.len())) {
        (None, None) => {}
        (Some(TransportError::FrameTooLarge { .. }), Some(p)) => {
            let slack = if kind == Kind::PaddedIntermediate {
                15
            } else {
                0
            };
            assert!(
                p.data.len() + slack > max,
                "a {}-byte payload refused under a {max}-byte cap",
                p.data.len()
            );
        }
        (error, next) => panic!(
            "client stream not read back: {} of {} frames, error {error:?}, next {:?}",
            frames.len(),
            sent.len(),
            next.map(|p| p.data.len())
        ),
    }

    // And the echo decodes at the client.
    client.feed(&down);
    for f in &frames {
        let got = client.next_frame().expect("the server's framing decodes");
        match got {
            Some(ClientFrame::Packet(p)) => {
                assert!(p.len() >= 20 && p.starts_with(&f.payload), "echo changed");
            }
            Some(ClientFrame::Error(code)) => {
                assert!(
                    f.payload.len() < 20,
                    "a {}-byte echo read as an error",
                    f.payload.len()
                );
                assert_eq!(code.to_le_bytes(), f.payload[..4]);
            }
            other => panic!("echo of a {}-byte frame read as {other:?}", f.payload.len()),
        }
        if f.quick_ack {
            assert_eq!(
                client.next_frame().expect("quick ack decodes"),
                Some(ClientFrame::QuickAck(f.payload.len() as u32 | 0x8000_0000))
            );
        }
    }
    assert_eq!(client.next_frame(), Ok(Some(ClientFrame::Error(-404))));
    assert_eq!(client.next_frame(), Ok(None));
});
