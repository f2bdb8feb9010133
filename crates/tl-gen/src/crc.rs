//! Constructor-id check: the id of a TL combinator is the CRC32 of its normalised text
//! (`docs/design.md §6`): the line without `#id`, with
//! `{` `}` and `>` dropped, `<` turned into a space, `bytes` parameters written as `string`, and
//! `flags.N?true` parameters left out. A schema line whose id does not match is a typo.

use crate::parse::{Definition, ParamKind};

/// The normalised text whose CRC32 is the constructor id.
pub fn normalised(def: &Definition) -> String {
    let mut tokens = vec![def.full_name()];
    for g in &def.generics {
        tokens.push(format!("{g}:Type"));
    }
    for p in &def.params {
        match &p.kind {
            ParamKind::Flags => tokens.push(format!("{}:#", p.name)),
            ParamKind::Value { ty, flag } => {
                if flag.is_some() && ty.name == "true" {
                    continue;
                }
                let mut ty_text = ty.to_string();
                if ty_text == "bytes" {
                    ty_text = "string".into();
                }
                match flag {
                    Some(f) => tokens.push(format!("{}:{}.{}?{}", p.name, f.field, f.bit, ty_text)),
                    None => tokens.push(format!("{}:{}", p.name, ty_text)),
                }
            }
        }
    }
    tokens.push("=".into());
    tokens.push(def.result.to_string());
    tokens.join(" ").replace('<', " ").replace('>', "")
}

/// The id the text of `def` hashes to.
pub fn inferred_id(def: &Definition) -> u32 {
    crc32fast::hash(normalised(def).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_file;

    fn id_of(line: &str) -> u32 {
        inferred_id(&parse_file(line).unwrap().definitions[0])
    }

    #[test]
    fn matches_the_seed_lines() {
        assert_eq!(id_of("boolFalse#bc799737 = Bool;"), 0xbc799737);
        assert_eq!(id_of("boolTrue#997275b5 = Bool;"), 0x997275b5);
        assert_eq!(
            id_of("---functions---\nphone.receivedCall#17d54f61 peer:InputPhoneCall = Bool;"),
            0x17d54f61
        );
    }

    #[test]
    fn ignores_true_flags_and_reads_bytes_as_string() {
        // Same id whatever `true` flags a layer adds (username#b4073647 differs across layers).
        assert_eq!(
            id_of(
                "username#b4073647 flags:# editable:flags.0?true active:flags.1?true deletable:flags.2?true expired:flags.3?true username:string = Username;"
            ),
            0xb4073647
        );
        assert_eq!(
            id_of(
                "messages.dhConfig#2c221edd g:int p:bytes version:int random:bytes = messages.DhConfig;"
            ),
            0x2c221edd
        );
    }

    #[test]
    fn handles_generics() {
        assert_eq!(
            id_of("invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;"),
            0xda9b0d0d
        );
    }
}
