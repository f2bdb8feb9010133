//! Unencrypted packets (`docs/clients.md §1.3`):
//! `auth_key_id = 0 | message_id | message_data_length | message_data`.

use tl::DecodeError;

/// A plain packet carrying `body`.
pub fn encode(msg_id: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&(body.len() as i32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The message id and body of a plain packet. Bytes after the declared length (padded
/// intermediate) are ignored.
pub fn decode(packet: &[u8]) -> Result<(i64, &[u8]), DecodeError> {
    let mut r = tl::Reader::new(packet);
    let key_id = r.read_i64()?;
    if key_id != 0 {
        return Err(DecodeError::UnexpectedConstructor {
            id: 0,
            expected: "plain message (auth_key_id 0)",
        });
    }
    let msg_id = r.read_i64()?;
    let len = r.read_i32()?;
    let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength(len.into()))?;
    let body = r.read_exact(len)?;
    Ok((msg_id, body))
}
