//! Rust names for TL names: `phoneCallWaiting` → `PhoneCallWaiting`, `req_DH_params` →
//! `ReqDHParams`, `phone.PhoneCall` → module `phone`, enum `PhoneCall`; variants drop the
//! type-name prefix (`phoneCallWaiting` is `PhoneCall::Waiting`), fields keep the TL name
//! unless it is a Rust keyword.

use crate::parse::{Definition, TypeRef};

/// `snake_or_camel` → `PascalCase`, keeping inner capitals.
pub fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Rust path of the module holding namespace `ns` below `root` (`types`, `enums`, `functions`).
pub fn module_path(root: &str, ns: &Option<String>) -> String {
    match ns {
        Some(ns) => format!("crate::{root}::{ns}"),
        None => format!("crate::{root}"),
    }
}

/// Struct name of a definition (without module).
pub fn struct_name(def: &Definition) -> String {
    pascal(&def.name)
}

/// Full path of the struct of a constructor.
pub fn type_struct_path(def: &Definition) -> String {
    format!(
        "{}::{}",
        module_path("types", &def.namespace),
        struct_name(def)
    )
}

/// Full path of the struct of a function.
pub fn function_struct_path(def: &Definition) -> String {
    format!(
        "{}::{}",
        module_path("functions", &def.namespace),
        struct_name(def)
    )
}

/// Full path of the enum of a boxed type.
pub fn enum_path(ty: &TypeRef) -> String {
    format!(
        "{}::{}",
        module_path("enums", &ty.namespace),
        pascal(&ty.name)
    )
}

/// Variant name of constructor `def` inside the enum of its result type.
pub fn variant_name(def: &Definition) -> String {
    let ty = &def.result.name;
    let name = &def.name;
    if name.len() > ty.len() && name[..ty.len()].eq_ignore_ascii_case(ty) {
        let rest = &name[ty.len()..];
        if rest.starts_with(|c: char| c.is_ascii_uppercase()) && rest != "Self" {
            return pascal(rest);
        }
    }
    pascal(name)
}

/// Variant name of a function inside the `Request` enum.
pub fn request_variant(def: &Definition) -> String {
    match &def.namespace {
        Some(ns) => pascal(ns) + &pascal(&def.name),
        None => pascal(&def.name),
    }
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "final", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// Rust field name for a TL parameter name (snake case: `srp_B` is `srp_b`; the TL name is
/// kept for serde).
pub fn field_name(name: &str) -> String {
    match name {
        "self" | "super" | "crate" | "Self" => format!("is_{name}"),
        n if KEYWORDS.contains(&n) => format!("r#{n}"),
        n => n.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_file;

    #[test]
    fn names() {
        assert_eq!(pascal("req_DH_params"), "ReqDHParams");
        assert_eq!(pascal("p_q_inner_data_dc"), "PQInnerDataDc");
        assert_eq!(pascal("phoneCallWaiting"), "PhoneCallWaiting");
        assert_eq!(field_name("self"), "is_self");
        assert_eq!(field_name("static"), "r#static");
        assert_eq!(field_name("srp_B"), "srp_b");
        let f = parse_file(
            "phoneCallWaiting#1 = PhoneCall;\nphoneCall#2 = PhoneCall;\nupdateShort#3 = Updates;\nauth.sentCodeSuccess#4 = auth.SentCode;\n",
        )
        .unwrap();
        let v: Vec<_> = f.definitions.iter().map(variant_name).collect();
        assert_eq!(v, ["Waiting", "PhoneCall", "UpdateShort", "Success"]);
    }
}
