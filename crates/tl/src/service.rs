//! The two MTProto framing constructors that the TL language cannot describe to a generator
//! (`docs/clients.md §1.3`):
//! `message msg_id:long seqno:int bytes:int body:Object = Message;` (no id; the body length is
//! a field) and `msg_container#73f1f8dc messages:vector<%Message> = MessageContainer;`.

use crate::{Decode, DecodeError, Encode, Reader, Writer};

/// Constructor id of `msg_container`.
pub const MSG_CONTAINER_ID: u32 = 0x73f1f8dc;
/// Constructor id of `gzip_packed`.
pub const GZIP_PACKED_ID: u32 = 0x3072cfa1;
/// Constructor id of `rpc_result`.
pub const RPC_RESULT_ID: u32 = 0xf35c6d01;

/// One message inside a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The inner message id.
    pub msg_id: i64,
    /// Its sequence number.
    pub seqno: i32,
    /// Its TL body, undecoded.
    pub body: Vec<u8>,
}

/// `msg_container`: several messages sent as one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsgContainer {
    /// The messages, in order.
    pub messages: Vec<Message>,
}

/// One message inside a container, borrowed from the container's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// The inner message id.
    pub msg_id: i64,
    /// Its sequence number.
    pub seqno: i32,
    /// Its TL body, undecoded.
    pub body: &'a [u8],
}

impl MessageRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Message {
        Message {
            msg_id: self.msg_id,
            seqno: self.seqno,
            body: self.body.to_vec(),
        }
    }
}

/// Reads a whole `msg_container` (constructor id included) without copying the bodies.
pub fn read_container(bytes: &[u8]) -> Result<Vec<MessageRef<'_>>, DecodeError> {
    let mut r = Reader::new(bytes);
    let id = r.read_u32()?;
    if id != MSG_CONTAINER_ID {
        return Err(DecodeError::UnexpectedConstructor {
            id,
            expected: "MessageContainer",
        });
    }
    let n = r.read_vector_header(false, MIN_MESSAGE)?;
    let mut messages = Vec::with_capacity(n);
    for _ in 0..n {
        let msg_id = r.read_i64()?;
        let seqno = r.read_i32()?;
        let len = r.read_i32()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength(len.into()))?;
        if len % 4 != 0 {
            return Err(DecodeError::InvalidLength(len as i64));
        }
        if len > r.remaining() {
            return Err(DecodeError::LengthExceedsInput {
                needed: len,
                remaining: r.remaining(),
            });
        }
        messages.push(MessageRef {
            msg_id,
            seqno,
            body: r.read_exact(len)?,
        });
    }
    match r.remaining() {
        0 => Ok(messages),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

/// Smallest encoded inner message: msg_id, seqno, length, and a 4-byte body.
const MIN_MESSAGE: usize = 8 + 4 + 4 + 4;

impl Encode for MsgContainer {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_u32(MSG_CONTAINER_ID);
        w.put_vector_header(false, self.messages.len());
        for m in &self.messages {
            w.put_i64(m.msg_id);
            w.put_i32(m.seqno);
            w.put_i32(m.body.len() as i32);
            w.put_raw(&m.body);
        }
    }
}

impl Decode for MsgContainer {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // A container is always a whole message body: it spans the rest of the input.
        let rest = r.read_exact(r.remaining())?;
        let messages = read_container(rest)?;
        Ok(MsgContainer {
            messages: messages.iter().map(MessageRef::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layer;

    #[test]
    fn container_round_trip_and_hostile_lengths() {
        let c = MsgContainer {
            messages: vec![
                Message {
                    msg_id: 1 << 32,
                    seqno: 1,
                    body: vec![1, 2, 3, 4],
                },
                Message {
                    msg_id: 2 << 32,
                    seqno: 3,
                    body: vec![9; 8],
                },
            ],
        };
        let bytes = c.to_bytes(Layer::LATEST);
        assert_eq!(MsgContainer::from_bytes(&bytes).unwrap(), c);
        for cut in 0..bytes.len() {
            assert!(MsgContainer::from_bytes(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[8 + 12..8 + 16].copy_from_slice(&(-4i32).to_le_bytes());
        assert_eq!(
            MsgContainer::from_bytes(&bad),
            Err(DecodeError::InvalidLength(-4))
        );
    }
}
