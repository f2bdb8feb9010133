//! Decoding errors: every way untrusted TL bytes can be wrong, as one typed enum.

use std::fmt;

/// Why TL bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    UnexpectedEnd {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A constructor id that is not one of the expected type's (in any supported layer).
    UnexpectedConstructor {
        /// The id read.
        id: u32,
        /// What was expected (a TL type name).
        expected: &'static str,
    },
    /// Values nested deeper than [`crate::MAX_DEPTH`].
    TooDeep,
    /// A `string` that is not UTF-8.
    InvalidUtf8,
    /// A negative vector length, or a `bytes` length prefix of 255.
    InvalidLength(i64),
    /// A vector or byte string longer than the input that holds it.
    LengthExceedsInput {
        /// Bytes the declared length needs at least.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A value of a type outside mtcall's schema subset.
    Unsupported {
        /// The TL type name.
        ty: &'static str,
    },
    /// Bytes left after a value that should have spanned the whole input.
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { needed, remaining } => {
                write!(f, "input ended: needed {needed} bytes, {remaining} left")
            }
            Self::UnexpectedConstructor { id, expected } => {
                write!(f, "constructor {id:08x} is not a {expected}")
            }
            Self::TooDeep => write!(f, "values nested deeper than {}", crate::MAX_DEPTH),
            Self::InvalidUtf8 => f.write_str("string is not UTF-8"),
            Self::InvalidLength(n) => write!(f, "invalid length {n}"),
            Self::LengthExceedsInput { needed, remaining } => {
                write!(f, "length needs {needed} bytes but {remaining} are left")
            }
            Self::Unsupported { ty } => write!(f, "type {ty} is not supported by mtcall"),
            Self::TrailingBytes { count } => write!(f, "{count} bytes after the value"),
        }
    }
}

impl std::error::Error for DecodeError {}
