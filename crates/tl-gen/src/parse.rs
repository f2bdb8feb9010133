//! Parser for TL schema text: one [`Definition`] per combinator line.
//!
//! Implements the subset of the TL language that Telegram's schemas use
//! (`docs/design.md §6`): `name#id params = Result;`, `---functions---` /
//! `---types---` sections, `flags:#` fields, `flags.N?T` conditional fields, `Vector<T>` /
//! `vector<T>`, bare `%T`, generic `{X:Type}` with `!X`, and `//` comments. Three comment
//! directives are mtcall's own: `// LAYER N` names the layer a file describes,
//! `//@absent NAME` says a constructor does not exist at that layer, and
//! `//@decode-as SOURCE TARGET` says that where a value of TARGET's type is expected, a
//! SOURCE constructor is read as TARGET (clients send `inputPeerUser` where the schema says
//! `InputUser`).

use std::fmt;

/// Whether a definition is a constructor of a type or a function (RPC method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// A constructor: data.
    Type,
    /// A function: something a peer invokes.
    Function,
}

/// A reference to a type, as written after `name:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef {
    /// Namespace (`phone` in `phone.PhoneCall`), if any.
    pub namespace: Option<String>,
    /// Name without namespace.
    pub name: String,
    /// `%T` or a lowercase name: the value is written without its constructor id.
    pub bare: bool,
    /// `!X`: the generic parameter of the definition.
    pub generic_ref: bool,
    /// `Vector<T>` / `vector<T>`: the element type.
    pub generic_arg: Option<Box<TypeRef>>,
}

impl TypeRef {
    /// The name with its namespace, as written (`phone.PhoneCall`).
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.generic_ref {
            f.write_str("!")?;
        }
        if self.bare && self.name.starts_with(|c: char| c.is_ascii_uppercase()) {
            f.write_str("%")?;
        }
        f.write_str(&self.full_name())?;
        if let Some(arg) = &self.generic_arg {
            write!(f, "<{arg}>")?;
        }
        Ok(())
    }
}

/// `flags.N?` on a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The `#` field holding the bit (`flags`, `flags2`).
    pub field: String,
    /// The bit number.
    pub bit: u8,
}

/// One parameter of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `name:#`, a bit field computed from the conditional parameters.
    Flags,
    /// An ordinary parameter, conditional when `flag` is set.
    Value {
        /// Its type.
        ty: TypeRef,
        /// The bit it depends on, if any.
        flag: Option<Flag>,
    },
}

/// One parameter of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Name as written.
    pub name: String,
    /// What it is.
    pub kind: ParamKind,
}

/// One combinator line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Name without namespace.
    pub name: String,
    /// The constructor id as written after `#`.
    pub id: u32,
    /// Generic parameters (`X` in `{X:Type}`).
    pub generics: Vec<String>,
    /// Parameters in wire order.
    pub params: Vec<Param>,
    /// The result type.
    pub result: TypeRef,
    /// Constructor or function.
    pub category: Category,
    /// Line number (1-based) in its file, for error messages.
    pub line: usize,
}

impl Definition {
    /// The name with its namespace (`phone.receivedCall`).
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A parsed schema file.
#[derive(Clone, Debug, Default)]
pub struct File {
    /// `// LAYER N`, if present.
    pub layer: Option<i32>,
    /// The definitions in file order.
    pub definitions: Vec<Definition>,
    /// Names declared absent with `//@absent NAME`.
    pub absent: Vec<String>,
    /// `//@decode-as SOURCE TARGET` directives, with their lines.
    pub decode_as: Vec<DecodeAs>,
}

/// `//@decode-as SOURCE TARGET`: a constructor tolerated in place of another of the same shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeAs {
    /// The constructor clients send (`inputPeerUser`).
    pub source: String,
    /// The constructor it is read as (`inputUser`).
    pub target: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A parse failure, with the 1-based line it happened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole schema file. Lines without an explicit `#id` (core types such as
/// `int ? = Int;` and the built-in `vector`) are rejected: every line mtcall generates code for
/// must carry the id the CRC check verifies.
pub fn parse_file(text: &str) -> Result<File, ParseError> {
    let mut file = File::default();
    let mut category = Category::Type;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if let Some(rest) = trimmed.strip_prefix("// LAYER ") {
            let layer = rest.trim().parse().map_err(|_| ParseError {
                line,
                message: format!("bad layer number {rest:?}"),
            })?;
            file.layer = Some(layer);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("//@absent ") {
            file.absent.push(rest.trim().to_owned());
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("//@decode-as ") {
            let names: Vec<&str> = rest.split_whitespace().collect();
            let [source, target] = names[..] else {
                return Err(ParseError {
                    line,
                    message: format!("`//@decode-as SOURCE TARGET` expected, got {trimmed:?}"),
                });
            };
            file.decode_as.push(DecodeAs {
                source: source.to_owned(),
                target: target.to_owned(),
                line,
            });
            continue;
        }
        let code = match trimmed.find("//") {
            Some(pos) => trimmed[..pos].trim(),
            None => trimmed,
        };
        if code.is_empty() {
            continue;
        }
        match code {
            "---functions---" => category = Category::Function,
            "---types---" => category = Category::Type,
            _ => file
                .definitions
                .push(parse_definition(code, category, line)?),
        }
    }
    Ok(file)
}

fn parse_definition(code: &str, category: Category, line: usize) -> Result<Definition, ParseError> {
    let err = |message: String| ParseError { line, message };
    let code = code
        .strip_suffix(';')
        .ok_or_else(|| err("missing ';' at the end".into()))?
        .trim();
    let (left, right) = code
        .split_once(" = ")
        .ok_or_else(|| err("missing ' = '".into()))?;
    let mut words = left.split_whitespace();
    let head = words.next().ok_or_else(|| err("empty definition".into()))?;
    let (full_name, id_hex) = head
        .split_once('#')
        .ok_or_else(|| err(format!("{head}: no #id")))?;
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| err(format!("bad id {id_hex:?}")))?;
    let (namespace, name) = split_namespace(full_name);
    let mut generics = Vec::new();
    let mut params = Vec::new();
    for word in words {
        if let Some(inner) = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            let (generic, kind) = inner
                .split_once(':')
                .ok_or_else(|| err(format!("bad generic {word}")))?;
            if kind != "Type" {
                return Err(err(format!("generic {generic} must be of kind Type")));
            }
            generics.push(generic.to_owned());
            continue;
        }
        let (pname, ptype) = word
            .split_once(':')
            .ok_or_else(|| err(format!("bad parameter {word:?}")))?;
        if pname.is_empty() || !pname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(err(format!("bad parameter name {pname:?}")));
        }
        let kind = if ptype == "#" {
            ParamKind::Flags
        } else if let Some((flag, ty)) = ptype.split_once('?') {
            let (field, bit) = flag
                .split_once('.')
                .ok_or_else(|| err(format!("bad flag {flag:?}")))?;
            let bit: u8 = bit
                .parse()
                .ok()
                .filter(|b| *b < 32)
                .ok_or_else(|| err(format!("bad flag bit in {flag:?}")))?;
            if !params
                .iter()
                .any(|p: &Param| p.name == field && p.kind == ParamKind::Flags)
            {
                return Err(err(format!(
                    "{pname} uses {field}, which is not a # field before it"
                )));
            }
            ParamKind::Value {
                ty: parse_type(ty).map_err(err)?,
                flag: Some(Flag {
                    field: field.to_owned(),
                    bit,
                }),
            }
        } else {
            ParamKind::Value {
                ty: parse_type(ptype).map_err(err)?,
                flag: None,
            }
        };
        params.push(Param {
            name: pname.to_owned(),
            kind,
        });
    }
    let result = parse_type(right.trim()).map_err(err)?;
    for p in &params {
        if let ParamKind::Value { ty, .. } = &p.kind
            && ty.generic_ref
            && !generics.contains(&ty.name)
        {
            return Err(err(format!(
                "!{} is not a generic of this definition",
                ty.name
            )));
        }
    }
    Ok(Definition {
        namespace,
        name,
        id,
        generics,
        params,
        result,
        category,
        line,
    })
}

fn split_namespace(full: &str) -> (Option<String>, String) {
    match full.rsplit_once('.') {
        Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
        None => (None, full.to_owned()),
    }
}

fn parse_type(text: &str) -> Result<TypeRef, String> {
    let (generic_ref, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (percent, text) = match text.strip_prefix('%') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (base, generic_arg) = match text.split_once('<') {
        Some((base, rest)) => {
            let inner = rest
                .strip_suffix('>')
                .ok_or_else(|| format!("unbalanced <> in {text:?}"))?;
            (base, Some(Box::new(parse_type(inner)?)))
        }
        None => (text, None),
    };
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!("bad type {text:?}"));
    }
    let (namespace, name) = split_namespace(base);
    let lowercase = name.starts_with(|c: char| c.is_ascii_lowercase());
    let builtin = namespace.is_none()
        && matches!(
            name.as_str(),
            "int" | "long" | "double" | "string" | "bytes" | "int128" | "int256" | "true"
        );
    Ok(TypeRef {
        namespace,
        name,
        bare: percent || (lowercase && !builtin && !generic_ref),
        generic_ref,
        generic_arg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_vectors_and_generics() {
        let f = parse_file(
            "// LAYER 7\n\
             a.b#0000000a flags:# x:flags.3?true v:Vector<long> w:vector<%Foo> = a.B;\n\
             ---functions---\n\
             wrap#0000000b {X:Type} q:!X = X;\n\
             //@absent gone\n\
             //@decode-as peerThing userThing\n",
        )
        .unwrap();
        assert_eq!(f.layer, Some(7));
        assert_eq!(f.absent, vec!["gone".to_owned()]);
        assert_eq!(
            f.decode_as,
            vec![DecodeAs {
                source: "peerThing".into(),
                target: "userThing".into(),
                line: 6
            }]
        );
        assert!(parse_file("//@decode-as onlyone\n").is_err());
        let a = &f.definitions[0];
        assert_eq!(a.full_name(), "a.b");
        assert_eq!(a.category, Category::Type);
        assert_eq!(a.params.len(), 4);
        let ParamKind::Value { ty, flag } = &a.params[1].kind else {
            panic!()
        };
        assert_eq!(ty.name, "true");
        assert_eq!(flag.as_ref().unwrap().bit, 3);
        let ParamKind::Value { ty, .. } = &a.params[3].kind else {
            panic!()
        };
        assert!(ty.bare);
        assert!(ty.generic_arg.as_ref().unwrap().bare);
        let w = &f.definitions[1];
        assert_eq!(w.category, Category::Function);
        assert_eq!(w.generics, vec!["X".to_owned()]);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "a#1 x:int = A",
            "a x:int = A;",
            "a#zz x:int = A;",
            "a#1 x:flags.0?int = A;",
            "a#1 flags:# x:flags.40?int = A;",
            "a#1 x:Vector<int = A;",
            "a#1 q:!X = X;",
        ] {
            assert!(parse_file(bad).is_err(), "{bad} was accepted");
        }
    }
}
