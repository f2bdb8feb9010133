//! Generates the codec from `schema/` (see the `mtcall-tl-gen` crate). A schema error fails the
//! build with the file, line and reason.

use std::path::Path;

fn main() {
    let dir = Path::new("schema");
    println!("cargo::rerun-if-changed=schema");
    let code = match tl_gen::generate_from_dir(dir) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("schema error: {e}");
            std::process::exit(1);
        }
    };
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("generated.rs");
    std::fs::write(out, code).expect("writing the generated code");
}
