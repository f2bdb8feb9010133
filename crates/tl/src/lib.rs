//! mtcall's TL layer: the runtime every generated type uses, plus the codec generated at build
//! time from the schema subset in `schema/` (TL: `docs/design.md §6`,
//! serialisation: `docs/design.md §6`).
//!
//! - Encoding takes the receiver's API [`Layer`] and writes that layer's constructor id and flag
//!   layout ([`Encode`], [`Writer`]).
//! - Decoding accepts every supported layer's form, chosen by the constructor id ([`Decode`],
//!   [`Reader`]). It never panics on hostile input: lengths are checked against the input before
//!   anything is allocated, nesting is bounded by [`MAX_DEPTH`], strings must be UTF-8, and every
//!   failure is a [`DecodeError`] variant.
//! - Generated items live in [`types`] (one struct per constructor), [`enums`] (one enum per boxed
//!   type), [`functions`] (one struct per method, and [`functions::Request`] for any of them) and
//!   [`CONSTRUCTORS`] (the schema as data).

#![forbid(unsafe_code)]

mod accessors;
mod error;
#[cfg(feature = "json")]
pub mod json;
mod layer;
pub mod schema;
pub mod service;
#[cfg(feature = "testgen")]
pub mod testgen;
mod wire;

pub use error::DecodeError;
pub use layer::Layer;
pub use wire::{MAX_DEPTH, Reader, Writer};

include!(concat!(env!("OUT_DIR"), "/generated.rs"));

#[cfg(feature = "testgen")]
pub use generated_testgen::{oracle_check, visit_all};

/// Constructor id of a boxed `Vector t`.
pub const VECTOR_ID: u32 = 0x1cb5c415;
/// `boolTrue#997275b5 = Bool;`
pub const BOOL_TRUE_ID: u32 = 0x997275b5;
/// `boolFalse#bc799737 = Bool;`
pub const BOOL_FALSE_ID: u32 = 0xbc799737;

/// A definition with a constructor id (its canonical, newest-layer id).
pub trait Identifiable {
    /// The id at the canonical layer; see the generated `constructor_id_at` for other layers.
    const CONSTRUCTOR_ID: u32;
    /// The TL name with namespace (`phone.receivedCall`).
    const NAME: &'static str;
}

/// A value that can be written in TL form for some layer.
///
/// Structs of constructors write their bare body; enums of boxed types and functions write
/// the constructor id first.
pub trait Encode {
    /// Appends the TL form of `self` for `w.layer()`.
    fn encode(&self, w: &mut Writer<'_>);

    /// The TL form of `self` for `layer`, as a new buffer.
    fn to_bytes(&self, layer: Layer) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        self.encode(&mut Writer::new(&mut buf, layer));
        buf
    }
}

/// A value that can be read from TL form, in any supported layer's form.
pub trait Decode: Sized {
    /// Reads one value, leaving the reader after it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Reads one value that must span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        match r.remaining() {
            0 => Ok(value),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

/// A constructor struct written with its id in front (as inside its boxed type).
pub trait Boxed {
    /// Appends the constructor id for `w.layer()` and the body.
    fn encode_boxed(&self, w: &mut Writer<'_>);
}

/// A function: what invoking it returns.
pub trait RemoteCall: Encode {
    /// The decoded result type.
    type Return: Decode;
}

/// Undecoded TL: a generic `!X` query or an `Object` result, always the rest of its message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Raw(pub Vec<u8>);

/// A type outside the schema subset. It has no values: a field of this type is always absent
/// (or an empty vector), and decoding a present one fails with [`DecodeError::Unsupported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {}

#[cfg(feature = "serde")]
impl serde::Serialize for Unsupported {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Unsupported {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "this type is outside mtcall's schema subset",
        ))
    }
}

impl Encode for bool {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_bool(*self)
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

impl Encode for i32 {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_i32(*self)
    }
}

impl Decode for i32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Encode for i64 {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_i64(*self)
    }
}

impl Decode for i64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Encode for String {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_string(self)
    }
}

impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

impl Encode for Raw {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_raw(&self.0)
    }
}

impl Decode for Raw {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Raw(r.read_rest()))
    }
}

/// A boxed `Vector<T>` of boxed values.
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put_vector_header(true, self.len());
        for x in self {
            x.encode(w);
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_vector_header(true, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(v)
    }
}
