//! AES-256 in IGE mode (`docs/clients.md §1.3`),
//! in place, over whole 16-byte blocks.

use aes::Aes256;
use aes::cipher::{Array, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

/// Encrypts `buf` in place. `buf.len()` must be a multiple of 16 (callers pad first).
pub fn encrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    debug_assert_eq!(buf.len() % 16, 0);
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    ige::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_blocks(blocks);
}

/// Decrypts `buf` in place. `buf.len()` must be a multiple of 16 (callers check first).
pub fn decrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    debug_assert_eq!(buf.len() % 16, 0);
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    ige::Decryptor::<Aes256>::new(key.into(), iv.into()).decrypt_blocks(blocks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_vector() {
        // Vector from the IGE paper's AES-128 example is not applicable to AES-256; use the
        // property that IGE with a zero IV on one block equals plain AES of that block.
        let key = [7u8; 32];
        let iv = [0u8; 32];
        let mut one = [0x42u8; 16];
        encrypt(&mut one, &key, &iv);
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let mut expected = Array::from([0x42u8; 16]);
        Aes256::new(&key.into()).encrypt_block(&mut expected);
        assert_eq!(one, expected.0);

        let mut buf: Vec<u8> = (0..64u8).collect();
        let original = buf.clone();
        let iv = [9u8; 32];
        encrypt(&mut buf, &key, &iv);
        assert_ne!(buf, original);
        decrypt(&mut buf, &key, &iv);
        assert_eq!(buf, original);
    }
}
