//! Test support over every generated type: a seeded random value generator ([`Gen`],
//! [`Random`]), a [`Visitor`] called once per boxed type and function, and [`check`], which
//! compares mtcall's encoding with another implementation's bytes (the oracle vectors).
//! Compiled only with the `testgen` feature.

use std::fmt::Debug;

use serde::de::DeserializeOwned;

use crate::{Decode, Encode, Layer};

/// Seeded generator of random TL values (SplitMix64), bounded in depth and size.
pub struct Gen {
    state: u64,
    depth: u32,
    max_depth: u32,
}

impl Gen {
    /// A generator from `seed`; nested vectors and optional values stop after `max_depth`.
    pub fn new(seed: u64, max_depth: u32) -> Self {
        Gen {
            state: seed,
            depth: 0,
            max_depth,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A coin flip.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// An `int`, often an edge value.
    pub fn i32(&mut self) -> i32 {
        match self.below(6) {
            0 => 0,
            1 => i32::MIN,
            2 => i32::MAX,
            3 => -1,
            _ => self.next_u64() as i32,
        }
    }

    /// A `long`, often an edge value.
    pub fn i64(&mut self) -> i64 {
        match self.below(6) {
            0 => 0,
            1 => i64::MIN,
            2 => i64::MAX,
            3 => -1,
            _ => self.next_u64() as i64,
        }
    }

    /// A finite `double` (NaN is not equal to itself).
    pub fn f64(&mut self) -> f64 {
        loop {
            let v = f64::from_bits(self.next_u64());
            if v.is_finite() {
                return v;
            }
        }
    }

    fn len(&mut self) -> usize {
        // Lengths straddle the 254-byte switch of the `bytes` prefix.
        match self.below(8) {
            0 => 0,
            1 => 250 + self.below(10),
            2 => 300 + self.below(800),
            _ => self.below(20),
        }
    }

    /// `bytes`.
    pub fn bytes(&mut self) -> Vec<u8> {
        let n = self.len();
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A `string` with multi-byte characters.
    pub fn string(&mut self) -> String {
        let n = self.len();
        (0..n)
            .map(|_| match self.below(4) {
                0 => 'é',
                1 => '☎',
                2 => char::from_u32(0x1f4de).unwrap_or('x'),
                _ => (b'a' + self.below(26) as u8) as char,
            })
            .collect()
    }

    /// `int128` / `int256`.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = self.next_u64() as u8;
        }
        a
    }

    /// A conditional value: absent past the depth bound.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.depth >= self.max_depth || self.bool() {
            None
        } else {
            Some(f(self))
        }
    }

    /// A vector of 0–3 values: empty past the depth bound.
    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        if self.depth >= self.max_depth {
            return Vec::new();
        }
        let n = self.below(4);
        (0..n).map(|_| f(self)).collect()
    }

    /// Entering a constructed value.
    pub fn enter(&mut self) {
        self.depth += 1;
    }

    /// Leaving a constructed value.
    pub fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// A type with random values.
pub trait Random {
    /// A random value.
    fn random(g: &mut Gen) -> Self;
}

/// Called with every boxed type and function of the schema ([`crate::visit_all`]).
pub trait Visitor {
    /// One type, by TL name.
    fn visit<T>(&mut self, name: &'static str)
    where
        T: Random + Encode + Decode + PartialEq + Debug + Clone;
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The oracle check of one vector: the JSON `value` (read as `S`, the constructor's struct)
/// encodes at `layer` to exactly `bytes` as the boxed `E`, and `bytes` decode to the same value.
pub fn check<S, E>(layer: Layer, value: &serde_json::Value, bytes: &[u8]) -> Result<(), String>
where
    S: DeserializeOwned,
    E: From<S> + Encode + Decode + PartialEq + Debug,
{
    let s: S = serde_json::from_value(value.clone())
        .map_err(|e| format!("reading the JSON value: {e}"))?;
    let value = E::from(s);
    let ours = value.to_bytes(layer);
    if ours != bytes {
        return Err(format!(
            "encodings differ at layer {layer}\n  mtcall: {}\n  oracle: {}",
            hex(&ours),
            hex(bytes)
        ));
    }
    let decoded = E::from_bytes(bytes).map_err(|e| format!("decoding the oracle's bytes: {e}"))?;
    if decoded != value {
        return Err(format!(
            "decoded value differs:\n  {decoded:?}\n  {value:?}"
        ));
    }
    Ok(())
}
