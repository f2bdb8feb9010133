//! Auth keys and message encryption (`docs/clients.md §1.3`):
//! `msg_key = SHA256(auth_key[88+x..120+x] + plaintext)[8..24]`, AES key and IV from
//! `SHA256(msg_key + auth_key[x..x+36])` and `SHA256(auth_key[40+x..76+x] + msg_key)`, with
//! x = 0 for client→server and x = 8 for server→client.

use subtle::ConstantTimeEq;

use super::{aes_ige, sha1, sha256};

/// Which way a message travels; it selects `x` in the key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (x = 0).
    ClientToServer,
    /// Server to client (x = 8).
    ServerToClient,
}

impl Direction {
    fn x(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 8,
        }
    }
}

/// A message's padded plaintext, kept after room for the `auth_key_id` and `msg_key` that
/// encryption puts before it, so that [`AuthKey::encrypt`] makes the packet in this buffer
/// instead of copying it into another.
#[derive(Clone, Debug)]
pub struct Plaintext {
    buf: Vec<u8>,
}

/// Plaintexts are equal by their bytes, whatever the room before them holds.
impl PartialEq for Plaintext {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Plaintext {}

impl Plaintext {
    /// The room before the plaintext: `auth_key_id` (8 bytes) and `msg_key` (16).
    const ROOM: usize = 24;

    /// A copy of `bytes`, which must be padded (a multiple of 16 bytes).
    pub fn new(bytes: &[u8]) -> Plaintext {
        Plaintext::build(bytes.len(), |b| b.extend_from_slice(bytes))
    }

    /// The plaintext `write` appends to an empty buffer with room for `capacity` bytes.
    pub fn build(capacity: usize, write: impl FnOnce(&mut PlaintextWriter<'_>)) -> Plaintext {
        let mut buf = Vec::with_capacity(Self::ROOM + capacity);
        buf.resize(Self::ROOM, 0);
        write(&mut PlaintextWriter { buf: &mut buf });
        Plaintext { buf }
    }

    /// The plaintext's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[Self::ROOM..]
    }

    /// The `len` bytes after the plaintext's first `skip` (fewer where it is shorter), in the
    /// plaintext's own buffer.
    pub fn into_part(self, skip: usize, len: usize) -> Vec<u8> {
        let mut buf = self.buf;
        let start = Self::ROOM.saturating_add(skip).min(buf.len());
        buf.truncate(start.saturating_add(len));
        buf.drain(..start);
        buf
    }
}

/// Appends to a [`Plaintext`] being built; lengths and offsets count from the plaintext's
/// start, not the buffer's.
pub struct PlaintextWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl PlaintextWriter<'_> {
    /// Appends `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The plaintext's length so far.
    pub fn len(&self) -> usize {
        self.buf.len() - Plaintext::ROOM
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `n` bytes and returns them, zeroed, to fill in.
    pub fn append(&mut self, n: usize) -> &mut [u8] {
        let start = self.buf.len();
        self.buf.resize(start + n, 0);
        &mut self.buf[start..]
    }
}

/// A 2048-bit authorization key with its id.
#[derive(Clone)]
pub struct AuthKey {
    bytes: [u8; 256],
    id: i64,
    aux_hash: i64,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey({:016x})", self.id as u64)
    }
}

impl PartialEq for AuthKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for AuthKey {}

impl AuthKey {
    /// The key from its 256 bytes.
    pub fn from_bytes(bytes: [u8; 256]) -> Self {
        let h = sha1(&[&bytes]);
        let id = i64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
        let aux_hash = i64::from_le_bytes(h[0..8].try_into().expect("8 bytes"));
        AuthKey {
            bytes,
            id,
            aux_hash,
        }
    }

    /// Its 256 bytes.
    pub fn bytes(&self) -> &[u8; 256] {
        &self.bytes
    }

    /// `auth_key_id`: the low 64 bits of SHA1(key), as on the wire.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// `new_nonce_hash{1,2,3}` of the handshake's last step.
    pub fn new_nonce_hash(&self, new_nonce: &[u8; 32], number: u8) -> [u8; 16] {
        let h = sha1(&[new_nonce, &[number], &self.aux_hash.to_le_bytes()]);
        h[4..20].try_into().expect("16 bytes")
    }

    fn kdf(&self, msg_key: &[u8; 16], dir: Direction) -> ([u8; 32], [u8; 32]) {
        let x = dir.x();
        let a = sha256(&[msg_key, &self.bytes[x..x + 36]]);
        let b = sha256(&[&self.bytes[40 + x..76 + x], msg_key]);
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&a[..8]);
        key[8..24].copy_from_slice(&b[8..24]);
        key[24..].copy_from_slice(&a[24..32]);
        let mut iv = [0u8; 32];
        iv[..8].copy_from_slice(&b[..8]);
        iv[8..24].copy_from_slice(&a[8..24]);
        iv[24..].copy_from_slice(&b[24..32]);
        (key, iv)
    }

    /// `msg_key` of `plaintext` (already padded) for `dir`.
    pub fn msg_key(&self, plaintext: &[u8], dir: Direction) -> [u8; 16] {
        let h = self.message_hash(plaintext, dir);
        h[8..24].try_into().expect("16 bytes")
    }

    /// `SHA256(auth_key[88+x..120+x] + plaintext)`: `msg_key` is its middle, a quick
    /// acknowledgement's token its first four bytes.
    fn message_hash(&self, plaintext: &[u8], dir: Direction) -> [u8; 32] {
        let x = dir.x();
        sha256(&[&self.bytes[88 + x..120 + x], plaintext])
    }

    /// Encrypts a padded plaintext (length a multiple of 16) into
    /// `auth_key_id + msg_key + ciphertext`, in the plaintext's own buffer.
    pub fn encrypt(&self, plaintext: Plaintext, dir: Direction) -> Vec<u8> {
        let mut packet = plaintext.buf;
        let (head, body) = packet.split_at_mut(Plaintext::ROOM);
        let msg_key = self.msg_key(body, dir);
        let (key, iv) = self.kdf(&msg_key, dir);
        aes_ige::encrypt(body, &key, &iv);
        head[..8].copy_from_slice(&self.id.to_le_bytes());
        head[8..].copy_from_slice(&msg_key);
        packet
    }

    /// Decrypts a packet, `auth_key_id + msg_key + ciphertext` (its key id checked by the
    /// caller), where it lies: the plaintext, and the first four bytes of the hash its msg_key
    /// was checked with (a client's packet is quick-acknowledged with them, so they are not
    /// hashed twice). `None` when the ciphertext is not whole blocks or the msg_key does not
    /// match (checked in constant time).
    pub fn decrypt(&self, mut packet: Vec<u8>, dir: Direction) -> Option<(Plaintext, [u8; 4])> {
        if packet.len() < Plaintext::ROOM + 16
            || !(packet.len() - Plaintext::ROOM).is_multiple_of(16)
        {
            return None;
        }
        let msg_key: [u8; 16] = packet[8..Plaintext::ROOM].try_into().ok()?;
        let (key, iv) = self.kdf(&msg_key, dir);
        let body = &mut packet[Plaintext::ROOM..];
        aes_ige::decrypt(body, &key, &iv);
        let hash = self.message_hash(body, dir);
        if bool::from(hash[8..24].ct_eq(&msg_key)) {
            let head = hash[..4].try_into().expect("4 bytes");
            Some((Plaintext { buf: packet }, head))
        } else {
            None
        }
    }

    /// MTProto 1.0's SHA-1 key derivation (client to server direction).
    fn kdf_v1(&self, msg_key: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
        let k = &self.bytes;
        let a = sha1(&[msg_key, &k[0..32]]);
        let b = sha1(&[&k[32..48], msg_key, &k[48..64]]);
        let c = sha1(&[&k[64..96], msg_key]);
        let d = sha1(&[msg_key, &k[96..128]]);
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&a[..8]);
        key[8..20].copy_from_slice(&b[8..20]);
        key[20..].copy_from_slice(&c[4..16]);
        let mut iv = [0u8; 32];
        iv[..12].copy_from_slice(&a[8..20]);
        iv[12..20].copy_from_slice(&b[..8]);
        iv[20..24].copy_from_slice(&c[16..20]);
        iv[24..].copy_from_slice(&d[..8]);
        (key, iv)
    }

    /// MTProto 1.0 decryption (SHA-1 key derivation, client to server), used only for the
    /// `encrypted_message` of `auth.bindTempAuthKey`
    /// (`docs/clients.md §3`). Returns the plaintext with its
    /// padding; the caller checks `msg_key` against the SHA-1 of the data it reads.
    pub fn decrypt_v1(&self, packet: &[u8]) -> Option<([u8; 16], Vec<u8>)> {
        if packet.len() < 16 + 16 || !(packet.len() - 16).is_multiple_of(16) {
            return None;
        }
        let msg_key: [u8; 16] = packet[..16].try_into().ok()?;
        let (key, iv) = self.kdf_v1(&msg_key);
        let mut plain = packet[16..].to_vec();
        aes_ige::decrypt(&mut plain, &key, &iv);
        Some((msg_key, plain))
    }

    /// MTProto 1.0 encryption, the mirror of [`AuthKey::decrypt_v1`] (clients binding a
    /// temporary key use it). `plaintext` must be padded to 16 bytes; `data_len` is the length
    /// of the part the msg_key hashes.
    pub fn encrypt_v1(&self, mut plaintext: Vec<u8>, data_len: usize) -> Vec<u8> {
        let h = sha1(&[&plaintext[..data_len]]);
        let msg_key: [u8; 16] = h[4..20].try_into().expect("16 bytes");
        let (key, iv) = self.kdf_v1(&msg_key);
        aes_ige::encrypt(&mut plaintext, &key, &iv);
        let mut out = msg_key.to_vec();
        out.extend_from_slice(&plaintext);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuthKey {
        let mut b = [0u8; 256];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 7 + 3) as u8;
        }
        AuthKey::from_bytes(b)
    }

    #[test]
    fn directions_do_not_mix() {
        let k = key();
        let plain = vec![5u8; 64];
        let packet = k.encrypt(Plaintext::new(&plain), Direction::ServerToClient);
        assert_eq!(&packet[..8], &k.id().to_le_bytes());
        let head: [u8; 4] = k.message_hash(&plain, Direction::ServerToClient)[..4]
            .try_into()
            .unwrap();
        assert_eq!(
            k.decrypt(packet.clone(), Direction::ServerToClient),
            Some((Plaintext::new(&plain), head))
        );
        assert_eq!(k.decrypt(packet.clone(), Direction::ClientToServer), None);
        let mut tampered = packet.clone();
        tampered[48] ^= 1;
        assert_eq!(k.decrypt(tampered, Direction::ServerToClient), None);
        assert_eq!(
            k.decrypt(packet[..38].to_vec(), Direction::ServerToClient),
            None
        );
        assert_eq!(
            k.decrypt(packet[..50].to_vec(), Direction::ServerToClient),
            None
        );
    }

    #[test]
    fn a_part_of_a_plaintext_keeps_its_buffer() {
        let plain = Plaintext::new(&(0..48).collect::<Vec<u8>>());
        assert_eq!(
            plain.clone().into_part(32, 8),
            (32..40).collect::<Vec<u8>>()
        );
        assert_eq!(
            plain.clone().into_part(40, 100),
            (40..48).collect::<Vec<u8>>()
        );
        assert_eq!(plain.into_part(60, usize::MAX), Vec::<u8>::new());
    }

    #[test]
    fn v1_round_trip() {
        let k = key();
        let plain = vec![9u8; 48];
        let packet = k.encrypt_v1(plain.clone(), 40);
        let (msg_key, decrypted) = k.decrypt_v1(&packet).unwrap();
        assert_eq!(decrypted, plain);
        assert_eq!(&sha1(&[&decrypted[..40]])[4..20], &msg_key);
    }
}
