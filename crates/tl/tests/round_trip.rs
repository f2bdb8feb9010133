//! Property tests over every generated type, at every supported layer:
//! - at the canonical layer, `decode(encode(v)) == v`;
//! - at every layer, encoding what was decoded reproduces the bytes (older forms drop newer
//!   optional fields, so equality of values holds only at the canonical layer);
//! - every truncation of a valid encoding is an error, never a panic;
//! - random byte flips decode to a value or an error, never a panic.
//!
//! Values come from a seeded generator ([`tl::testgen::Gen`]); a failure names the seed.

use std::fmt::Debug;

use tl::testgen::{Gen, Random, Visitor, hex};
use tl::{Decode, Encode, Layer};

const VALUES_PER_TYPE: u64 = 150;

struct RoundTrip {
    checked: usize,
    failures: Vec<String>,
}

impl Visitor for RoundTrip {
    fn visit<T>(&mut self, name: &'static str)
    where
        T: Random + Encode + Decode + PartialEq + Debug + Clone,
    {
        for seed in 0..VALUES_PER_TYPE {
            let mut g = Gen::new(seed ^ (name.len() as u64) << 32, 3);
            let value = T::random(&mut g);
            for layer in Layer::all() {
                let bytes = value.to_bytes(layer);
                let decoded = match T::from_bytes(&bytes) {
                    Ok(d) => d,
                    Err(e) => {
                        self.failures.push(format!(
                            "{name} seed {seed} layer {layer}: {e}\n  {}",
                            hex(&bytes)
                        ));
                        continue;
                    }
                };
                if layer == Layer::LATEST && decoded != value {
                    self.failures
                        .push(format!("{name} seed {seed}: {decoded:?} != {value:?}"));
                }
                if decoded.to_bytes(layer) != bytes {
                    self.failures.push(format!(
                        "{name} seed {seed} layer {layer}: re-encoding differs"
                    ));
                }
                if seed % 10 == 0 && !ends_with_raw(name) {
                    for cut in 0..bytes.len() {
                        if T::from_bytes(&bytes[..cut]).is_ok() && !bytes.is_empty() {
                            // A prefix may be a valid shorter value only if trailing data is
                            // what made the full input longer; from_bytes would then fail on
                            // the full input, which it did not.
                            self.failures
                                .push(format!("{name} seed {seed}: prefix of {cut} bytes decoded"));
                            break;
                        }
                    }
                }
                let mut g = Gen::new(seed, 0);
                for _ in 0..8 {
                    let mut flipped = bytes.clone();
                    if flipped.is_empty() {
                        break;
                    }
                    let at = g.below(flipped.len());
                    flipped[at] ^= 1 << g.below(8);
                    let _ = T::from_bytes(&flipped);
                }
                self.checked += 1;
            }
        }
    }
}

/// Whether the definition ends in an undecoded tail (`!X`, `Object`), of which every prefix is
/// valid.
fn ends_with_raw(name: &str) -> bool {
    tl::CONSTRUCTORS.iter().any(|c| {
        (c.name == name || c.result == name)
            && c.params
                .last()
                .is_some_and(|p| p.ty.starts_with('!') || p.ty == "Object")
    })
}

#[test]
fn every_type_round_trips_at_every_layer() {
    let mut v = RoundTrip {
        checked: 0,
        failures: Vec::new(),
    };
    tl::visit_all(&mut v);
    assert!(
        v.failures.is_empty(),
        "{} failures:\n{}",
        v.failures.len(),
        v.failures.join("\n")
    );
    assert!(v.checked > 1000, "only {} values checked", v.checked);
}
