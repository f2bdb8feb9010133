//! Build-time generator of mtcall's TL codec.
//!
//! Reads the schema subset in `crates/tl/schema` (TL language:
//! `docs/design.md §6`), checks every constructor id against the CRC32 of its
//! normalised line, resolves the form each definition takes at each supported API layer
//! ([`model`]), and emits Rust source ([`emit`]) that the `tl` crate includes.
//!
//! It is a library so that its parser and checks have unit tests of their own; the `tl` crate's
//! `build.rs` is its only caller.

pub mod crc;
pub mod emit;
pub mod model;
pub mod names;
pub mod parse;

use std::fs;
use std::path::Path;

pub use model::SchemaError;

/// Reads the schema directory (`api.tl`, `mtproto.tl`, `layers/*.tl`) and returns the generated
/// Rust source, or the first schema error.
pub fn generate_from_dir(dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let api = fs::read_to_string(dir.join("api.tl"))?;
    let mtproto = fs::read_to_string(dir.join("mtproto.tl"))?;
    let mut layer_texts = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir.join("layers"))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tl"))
        .collect();
    entries.sort();
    for path in entries {
        layer_texts.push((path.display().to_string(), fs::read_to_string(&path)?));
    }
    let layers: Vec<model::Source> = layer_texts
        .iter()
        .map(|(name, text)| model::Source { name, text })
        .collect();
    let schema = model::build(
        &[model::Source {
            name: "api.tl",
            text: &api,
        }],
        &[model::Source {
            name: "mtproto.tl",
            text: &mtproto,
        }],
        &layers,
    )?;
    Ok(emit::emit(&schema))
}
