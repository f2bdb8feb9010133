//! Transport obfuscation: a 64-byte random header carries AES-256-CTR keys for each direction
//! and, encrypted, the tag of the transport inside
//! (`docs/clients.md §1.1`).

use aes::Aes256;
use aes::cipher::{KeyIvInit, StreamCipher};

use super::Kind;
use crate::crypto::Entropy;

type Ctr = ctr::Ctr128BE<Aes256>;

/// The two keystreams of an obfuscated connection, from one side's point of view.
pub struct Obfuscation {
    incoming: Ctr,
    outgoing: Ctr,
}

impl std::fmt::Debug for Obfuscation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Obfuscation")
    }
}

fn tag_of(kind: Kind) -> [u8; 4] {
    match kind {
        Kind::Abridged => [0xef; 4],
        Kind::Intermediate => [0xee; 4],
        Kind::PaddedIntermediate => [0xdd; 4],
        Kind::Full => [0xee; 4], // never used: clients obfuscate abridged or intermediate only
    }
}

fn ciphers(header: &[u8; 64]) -> (Ctr, Ctr) {
    let forward = Ctr::new(
        (&header[8..40]).try_into().expect("32"),
        (&header[40..56]).try_into().expect("16"),
    );
    let mut reversed = [0u8; 48];
    reversed.copy_from_slice(&header[8..56]);
    reversed.reverse();
    let backward = Ctr::new(
        (&reversed[..32]).try_into().expect("32"),
        (&reversed[32..48]).try_into().expect("16"),
    );
    (forward, backward)
}

impl Obfuscation {
    /// The server side of a received 64-byte header: the inner transport and the DC id.
    pub fn accept(header: &[u8; 64]) -> Result<(Self, Kind, i16), [u8; 4]> {
        let (mut incoming, outgoing) = ciphers(header);
        let mut decrypted = *header;
        incoming.apply_keystream(&mut decrypted);
        let tag: [u8; 4] = decrypted[56..60].try_into().expect("4");
        let kind = match tag {
            [0xef, 0xef, 0xef, 0xef] => Kind::Abridged,
            [0xee, 0xee, 0xee, 0xee] => Kind::Intermediate,
            [0xdd, 0xdd, 0xdd, 0xdd] => Kind::PaddedIntermediate,
            _ => return Err(tag),
        };
        let dc = i16::from_le_bytes([decrypted[60], decrypted[61]]);
        Ok((Obfuscation { incoming, outgoing }, kind, dc))
    }

    /// A client header for `kind` and `dc`, and the client side's keystreams.
    pub fn connect(kind: Kind, dc: i16, entropy: &mut impl Entropy) -> ([u8; 64], Self) {
        let mut header = [0u8; 64];
        loop {
            entropy.fill(&mut header);
            let first4 = &header[..4];
            let forbidden = header[0] == 0xef
                || first4 == b"HEAD"
                || first4 == b"POST"
                || first4 == b"GET "
                || first4 == b"OPTI"
                || first4 == [0xee; 4]
                || first4 == [0xdd; 4]
                || first4 == [0x16, 0x03, 0x01, 0x02]
                || header[4..8] == [0; 4];
            if !forbidden {
                break;
            }
        }
        header[56..60].copy_from_slice(&tag_of(kind));
        header[60..62].copy_from_slice(&dc.to_le_bytes());
        let (mut outgoing, incoming) = ciphers(&header);
        let mut encrypted = header;
        outgoing.apply_keystream(&mut encrypted);
        header[56..64].copy_from_slice(&encrypted[56..64]);
        (header, Obfuscation { incoming, outgoing })
    }

    /// Decrypts received bytes in place.
    pub fn decrypt(&mut self, buf: &mut [u8]) {
        self.incoming.apply_keystream(buf);
    }

    /// Encrypts bytes to send in place.
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.outgoing.apply_keystream(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_agree() {
        let (header, mut client) =
            Obfuscation::connect(Kind::PaddedIntermediate, -2, &mut crate::crypto::OsEntropy);
        let (mut server, kind, dc) = Obfuscation::accept(&header).unwrap();
        assert_eq!((kind, dc), (Kind::PaddedIntermediate, -2));
        let mut up = b"hello server".to_vec();
        client.encrypt(&mut up);
        server.decrypt(&mut up);
        assert_eq!(up, b"hello server");
        let mut down = b"hello client".to_vec();
        server.encrypt(&mut down);
        client.decrypt(&mut down);
        assert_eq!(down, b"hello client");
    }

    #[test]
    fn garbage_header_is_refused() {
        assert!(Obfuscation::accept(&[7u8; 64]).is_err());
    }
}
