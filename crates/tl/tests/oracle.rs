//! Oracle tests: vectors produced by the real client libraries (Pyrogram at layer 158, Hydrogram
//! at 181, GramJS at 198, Pyrofork at 220, mtcute at 227, Telethon and Kurigram at 229; scripts
//! in `interop/oracle/`, run by `scripts/test`) must encode to exactly the library's bytes and
//! decode back to the same value — for every definition of the subset the library knows.
//!
//! The vectors are read from `$MTCALL_ORACLE_DIR/*.json`. Without that variable the test says
//! so and passes, unless `MTCALL_REQUIRE_ORACLES=1` (as the test command sets it), where missing
//! vectors fail.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use tl::Layer;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The vector files the test command writes, one per library.
const LIBRARIES: [&str; 7] = [
    "pyrogram",
    "hydrogram",
    "gramjs",
    "pyrofork",
    "mtcute",
    "telethon",
    "kurigram",
];

#[test]
fn library_vectors_match() {
    let Some(dir) = std::env::var_os("MTCALL_ORACLE_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var_os("MTCALL_REQUIRE_ORACLES").is_none(),
            "MTCALL_REQUIRE_ORACLES is set but MTCALL_ORACLE_DIR is not"
        );
        eprintln!(
            "oracle vectors not given (MTCALL_ORACLE_DIR unset): skipped; scripts/test runs them"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("oracle directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n != "manifest.json")
        })
        .collect();
    files.sort();
    for client in LIBRARIES {
        assert!(
            files.iter().any(|p| p
                .file_stem()
                .is_some_and(|s| s == std::ffi::OsStr::new(client))),
            "no {client}.json in {}",
            dir.display()
        );
    }
    let mut failures = Vec::new();
    for path in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON");
        let client = doc["client"].as_str().unwrap_or("?").to_owned();
        let layer_number = doc["layer"].as_i64().expect("layer") as i32;
        let layer = Layer::exact(layer_number).expect("a supported layer");
        let vectors = doc["vectors"].as_array().expect("vectors");
        let mut covered = BTreeSet::new();
        for v in vectors {
            let name = v["name"].as_str().expect("name");
            covered.insert(name.to_owned());
            let bytes = unhex(v["hex"].as_str().expect("hex"));
            if let Err(e) = tl::oracle_check(name, layer, &v["value"], &bytes) {
                failures.push(format!("{client}: {name}: {e}"));
            }
        }
        let unknown: BTreeSet<String> = doc["unknown"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // Every definition present at this layer is either checked or unknown to the library.
        for c in tl::CONSTRUCTORS
            .iter()
            .filter(|c| c.layers.contains(&layer_number))
        {
            if !covered.contains(c.name) && !unknown.contains(c.name) {
                failures.push(format!(
                    "{client}: {} has no vector and is not reported unknown",
                    c.name
                ));
            }
        }
        for seed in ["boolFalse", "boolTrue", "phone.receivedCall"] {
            if !covered.contains(seed) {
                failures.push(format!("{client}: the seed's {seed} has no vector"));
            }
        }
        eprintln!(
            "{client} (layer {layer_number}): {} vectors over {} definitions; unknown to it: {}",
            vectors.len(),
            covered.len(),
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
