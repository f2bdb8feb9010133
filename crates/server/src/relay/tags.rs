//! Peer tags: 16 bytes per party and call, derived from the server secret so every node
//! derives the same ones, different for the two parties so the reflector knows which side a
//! packet comes from, and never shaped like a STUN header (which the reflector's port also
//! receives).

use relay::Party;

/// The STUN magic cookie, at bytes 4..8 of every STUN message.
const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// `party`'s peer tag for `call_id`.
pub fn peer_tag(secret: &[u8; 32], call_id: i64, party: Party) -> [u8; 16] {
    let side: &[u8] = match party {
        Party::Caller => b"caller",
        Party::Callee => b"callee",
    };
    let digest =
        mtproto::crypto::sha256(&[b"reflector-peer-tag", secret, &call_id.to_le_bytes(), side]);
    let mut tag: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    if tag[4..8] == STUN_COOKIE {
        tag[4] ^= 0x80;
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_by_party_and_call_and_repeat_for_the_same_inputs() {
        let s = [7u8; 32];
        let a = peer_tag(&s, 1, Party::Caller);
        assert_ne!(a[..12], peer_tag(&s, 1, Party::Callee)[..12]);
        assert_ne!(a, peer_tag(&s, 2, Party::Caller));
        assert_ne!(a, peer_tag(&[8u8; 32], 1, Party::Caller));
        assert_eq!(a, peer_tag(&s, 1, Party::Caller));
    }
}
