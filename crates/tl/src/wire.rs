//! Primitive TL serialisation (`docs/design.md §6`): little-endian
//! integers, length-prefixed `bytes`/`string` padded to 4, vectors, `Bool`. The [`Reader`]
//! checks every length against what is left before it allocates, and counts nesting.

use crate::{BOOL_FALSE_ID, BOOL_TRUE_ID, DecodeError, Layer, VECTOR_ID};

/// Deepest nesting of constructed values a [`Reader`] accepts. Legitimate messages nest fewer
/// than 10 levels; a hostile nested `JSONValue` must not reach the stack limit.
pub const MAX_DEPTH: u32 = 32;

/// Longest `bytes` the TL length prefix can express.
const MAX_BYTES_LEN: usize = 0xff_ffff;

/// Appends TL to a buffer for one API layer.
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
    layer: Layer,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`, encoding for `layer`.
    pub fn new(buf: &'a mut Vec<u8>, layer: Layer) -> Self {
        Writer { buf, layer }
    }

    /// The layer being written.
    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// `int` as unsigned (constructor ids, flags).
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `int`.
    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `long`.
    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `double`.
    pub fn put_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Bytes as they are (`int128`, `int256`, undecoded TL).
    pub fn put_raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// `bytes`: length prefix, data, zero padding to a multiple of 4. Longer than the TL
    /// maximum (16 MiB - 1) cannot be expressed: such input is cut at the maximum (no message
    /// mtcall builds comes near it; frames are capped far below).
    pub fn put_bytes(&mut self, v: &[u8]) {
        debug_assert!(v.len() <= MAX_BYTES_LEN, "TL bytes longer than 16 MiB");
        let v = &v[..v.len().min(MAX_BYTES_LEN)];
        let header = if v.len() < 254 {
            self.buf.push(v.len() as u8);
            1
        } else {
            self.buf.push(254);
            self.buf
                .extend_from_slice(&(v.len() as u32).to_le_bytes()[..3]);
            4
        };
        self.buf.extend_from_slice(v);
        let pad = (4 - (header + v.len()) % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
    }

    /// `string` (UTF-8 `bytes`).
    pub fn put_string(&mut self, v: &str) {
        self.put_bytes(v.as_bytes())
    }

    /// `Bool` (boxed `boolTrue`/`boolFalse`).
    pub fn put_bool(&mut self, v: bool) {
        self.put_u32(if v { BOOL_TRUE_ID } else { BOOL_FALSE_ID })
    }

    /// A vector's header: the `Vector` id when boxed, then the element count.
    pub fn put_vector_header(&mut self, boxed: bool, len: usize) {
        if boxed {
            self.put_u32(VECTOR_ID);
        }
        self.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
    }
}

/// Reads TL from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `n` bytes, without copying.
    pub fn read_exact(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// Fixed-size bytes (`int128`, `int256`).
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// `int` as unsigned.
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.read_array().map(u32::from_le_bytes)
    }

    /// Looks at the next `int` without consuming it.
    pub fn peek_u32(&self) -> Result<u32, DecodeError> {
        let mut copy = Reader { ..*self };
        copy.read_u32()
    }

    /// `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.read_array().map(i32::from_le_bytes)
    }

    /// `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.read_array().map(i64::from_le_bytes)
    }

    /// `double`.
    pub fn read_f64(&mut self) -> Result<f64, DecodeError> {
        self.read_array().map(f64::from_le_bytes)
    }

    /// `bytes`, without copying.
    pub fn read_bytes_ref(&mut self) -> Result<&'a [u8], DecodeError> {
        let first = self.take(1)?[0];
        let (header, len) = match first {
            255 => return Err(DecodeError::InvalidLength(255)),
            254 => {
                let l = self.take(3)?;
                (
                    4,
                    l[0] as usize | (l[1] as usize) << 8 | (l[2] as usize) << 16,
                )
            }
            n => (1, n as usize),
        };
        let padded = (header + len).div_ceil(4) * 4 - header;
        if padded > self.remaining() {
            return Err(DecodeError::LengthExceedsInput {
                needed: padded,
                remaining: self.remaining(),
            });
        }
        let data = &self.buf[self.pos..self.pos + len];
        self.pos += padded;
        Ok(data)
    }

    /// `bytes`.
    pub fn read_bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.read_bytes_ref().map(<[u8]>::to_vec)
    }

    /// `string`: `bytes` that must be UTF-8 (never altered).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let b = self.read_bytes_ref()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// `Bool`.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        match self.read_u32()? {
            BOOL_TRUE_ID => Ok(true),
            BOOL_FALSE_ID => Ok(false),
            id => Err(DecodeError::UnexpectedConstructor {
                id,
                expected: "Bool",
            }),
        }
    }

    /// Everything left (a trailing `!X` or `Object`).
    pub fn read_rest(&mut self) -> Vec<u8> {
        let rest = self.buf[self.pos..].to_vec();
        self.pos = self.buf.len();
        rest
    }

    /// A vector's header; returns the element count after checking that `count` elements of
    /// at least `min_element_size` bytes fit in what is left.
    pub fn read_vector_header(
        &mut self,
        boxed: bool,
        min_element_size: usize,
    ) -> Result<usize, DecodeError> {
        if boxed {
            let id = self.read_u32()?;
            if id != VECTOR_ID {
                return Err(DecodeError::UnexpectedConstructor {
                    id,
                    expected: "Vector",
                });
            }
        }
        let n = self.read_i32()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::InvalidLength(n.into()))?;
        let needed = n.saturating_mul(min_element_size.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::LengthExceedsInput {
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(n)
    }

    /// Enters a constructed value; fails past [`MAX_DEPTH`].
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(())
    }

    /// Leaves a constructed value entered with [`Reader::enter`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The error for a present value of a type outside the schema subset.
    pub fn unsupported<T>(&self, ty: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError::Unsupported { ty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_round_trip(len: usize) {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut buf = Vec::new();
        Writer::new(&mut buf, Layer::LATEST).put_bytes(&data);
        assert_eq!(buf.len() % 4, 0);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_bytes().unwrap(), data);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn bytes_lengths_around_the_prefix_switch() {
        for len in [0, 1, 2, 3, 4, 5, 252, 253, 254, 255, 256, 257, 1000] {
            bytes_round_trip(len);
        }
    }

    #[test]
    fn short_and_long_prefixes_are_exact() {
        let mut buf = Vec::new();
        Writer::new(&mut buf, Layer::LATEST).put_bytes(b"abc");
        assert_eq!(buf, [3, b'a', b'b', b'c']);
        let mut buf = Vec::new();
        Writer::new(&mut buf, Layer::LATEST).put_bytes(&[7u8; 254]);
        assert_eq!(&buf[..4], &[254, 254, 0, 0]);
        assert_eq!(buf.len(), 4 + 256);
    }

    #[test]
    fn hostile_lengths_are_errors_before_allocation() {
        // bytes claiming 16 MiB with 4 bytes of input
        let mut r = Reader::new(&[254, 255, 255, 255, 0, 0, 0, 0]);
        assert!(matches!(
            r.read_bytes(),
            Err(DecodeError::LengthExceedsInput { .. })
        ));
        assert_eq!(
            Reader::new(&[255, 0, 0, 0]).read_bytes(),
            Err(DecodeError::InvalidLength(255))
        );
        // vector of 2^31-1 longs
        let mut v = VECTOR_ID.to_le_bytes().to_vec();
        v.extend_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(
            Reader::new(&v).read_vector_header(true, 8),
            Err(DecodeError::LengthExceedsInput { .. })
        ));
        let mut v = VECTOR_ID.to_le_bytes().to_vec();
        v.extend_from_slice(&(-1i32).to_le_bytes());
        assert_eq!(
            Reader::new(&v).read_vector_header(true, 8),
            Err(DecodeError::InvalidLength(-1))
        );
        // invalid UTF-8 is refused, not replaced
        assert_eq!(
            Reader::new(&[2, 0xff, 0xfe, 0]).read_string(),
            Err(DecodeError::InvalidUtf8)
        );
        // truncated
        assert!(matches!(
            Reader::new(&[1, 2]).read_i32(),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let mut r = Reader::new(&[]);
        for _ in 0..MAX_DEPTH {
            r.enter().unwrap();
        }
        assert_eq!(r.enter(), Err(DecodeError::TooDeep));
    }
}
