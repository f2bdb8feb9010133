//! `DEPS.md` lists every dependency of every crate with its reason: this test fails when a
//! `Cargo.toml` and that page disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (package, kind) → dependency names; kind is "normal", "build" or "dev".
type Deps = BTreeMap<(String, String), BTreeSet<String>>;

/// The dependencies a `Cargo.toml` declares.
fn declared(manifest: &str, into: &mut Deps) {
    let mut package = None;
    let mut kind: Option<&str> = None;
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            kind = match line {
                "[dependencies]" => Some("normal"),
                "[build-dependencies]" => Some("build"),
                "[dev-dependencies]" => Some("dev"),
                _ => None,
            };
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if in_package && key == "name" && package.is_none() {
            package = Some(value.trim().trim_matches('"').to_owned());
        }
        if let (Some(kind), Some(package)) = (kind, &package) {
            into.entry((package.clone(), kind.to_owned()))
                .or_default()
                .insert(key.to_owned());
        }
    }
}

/// The dependencies `DEPS.md` lists.
fn listed(page: &str) -> Deps {
    let mut out = Deps::new();
    let mut package = String::new();
    let mut kind = "normal";
    for line in page.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            package = name.trim().to_owned();
            kind = "normal";
        } else if let Some(sub) = line.strip_prefix("### ") {
            kind = match sub.trim() {
                "build" => "build",
                "dev" => "dev",
                other => panic!("DEPS.md: unknown subsection {other:?}"),
            };
        } else if let Some(rest) = line.strip_prefix("- `") {
            let name = rest.split('`').next().unwrap_or_default();
            let reason = rest.split_once(':').map_or("", |(_, r)| r.trim());
            assert!(
                !package.is_empty() && !reason.is_empty(),
                "DEPS.md: `{name}` needs a package heading and a reason"
            );
            out.entry((package.clone(), kind.to_owned()))
                .or_default()
                .insert(name.to_owned());
        }
    }
    out
}

#[test]
fn every_dependency_is_listed_with_its_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut manifests = vec![root.join("fuzz/Cargo.toml")];
    for entry in std::fs::read_dir(root.join("crates")).expect("crates folder") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        if manifest.is_file() {
            manifests.push(manifest);
        }
    }
    let mut declared_deps = Deps::new();
    for m in &manifests {
        declared(
            &std::fs::read_to_string(m).expect("readable manifest"),
            &mut declared_deps,
        );
    }
    let page = std::fs::read_to_string(root.join("DEPS.md")).expect("DEPS.md");
    let listed_deps = listed(&page);
    let mut problems = Vec::new();
    for (key, names) in &declared_deps {
        let on_page = listed_deps.get(key).cloned().unwrap_or_default();
        for missing in names.difference(&on_page) {
            problems.push(format!(
                "{} ({}): `{missing}` is not in DEPS.md",
                key.0, key.1
            ));
        }
    }
    for (key, names) in &listed_deps {
        let in_manifest = declared_deps.get(key).cloned().unwrap_or_default();
        for gone in names.difference(&in_manifest) {
            problems.push(format!(
                "{} ({}): DEPS.md lists `{gone}`, which it does not use",
                key.0, key.1
            ));
        }
    }
    assert!(
        manifests.len() >= 10,
        "found only {} manifests",
        manifests.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parsers_read_what_they_are_given() {
    let mut d = Deps::new();
    declared(
        "[package]\nname = \"a\"\n[lib]\nname = \"x\"\n[dependencies]\n# why\nfoo = \"1\"\nbar = { path = \"..\" }\n[dev-dependencies]\nbaz = \"2\"\n",
        &mut d,
    );
    let normal = &d[&("a".to_owned(), "normal".to_owned())];
    assert_eq!(normal.iter().collect::<Vec<_>>(), ["bar", "foo"]);
    assert!(d[&("a".to_owned(), "dev".to_owned())].contains("baz"));
    let l = listed("## a\n\n- `foo`: one.\n- `bar`: two.\n\n### dev\n\n- `baz`: three.\n");
    assert_eq!(l[&("a".to_owned(), "normal".to_owned())], *normal);
}
