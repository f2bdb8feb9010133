//! Prints mtcall's schema subset ([`tl::CONSTRUCTORS`]) as JSON: the manifest the oracle
//! scripts (`interop/oracle/`) build their test values from.
//!
//! `cargo run -p mtcall-tl --example schema_json > manifest.json`

use serde_json::{Value, json};

fn main() {
    let forms: Vec<Value> = tl::CONSTRUCTORS
        .iter()
        .map(|c| {
            let params: Vec<Value> = c
                .params
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "type": p.ty,
                        "flag": p.flag.map(|(field, bit)| json!({"field": field, "bit": bit})),
                        "stored": p.stored,
                    })
                })
                .collect();
            json!({
                "name": c.name,
                "id": c.id,
                "layers": c.layers,
                "function": c.function,
                "mtproto": c.mtproto,
                "result": c.result,
                "params": params,
            })
        })
        .collect();
    let manifest = json!({ "layers": tl::SUPPORTED_LAYERS, "forms": forms });
    println!("{}", serde_json::to_string_pretty(&manifest).expect("JSON"));
}
