//! The checked schema: canonical definitions (the newest layer) plus, for each supported older
//! layer, the form each definition takes there.
//!
//! Layer files (`schema/layers/N.tl`) hold only the lines whose form at layer `N` differs from
//! the next higher layer. The form of a definition at layer `L` is the line in the first layer
//! file numbered `L` or above that mentions it, else the canonical line. A form may drop or add
//! conditional (`flags.N?`) parameters, change flag bits and change the constructor id; its
//! required parameters must equal the canonical ones. Rules are checked here so that a schema
//! mistake fails the build with a message, never the generated code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::crc::inferred_id;
use crate::parse::{Category, Definition, File, ParamKind, TypeRef, parse_file};

/// Primitive TL types with a fixed Rust mapping.
pub const PRIMITIVES: &[&str] = &[
    "int", "long", "double", "string", "bytes", "int128", "int256", "Bool", "true",
];

/// Definitions handled by the runtime rather than generated (the Bool constructors map to `bool`).
pub const BUILTIN_DEFS: &[&str] = &["boolFalse", "boolTrue"];

/// A schema error, naming the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

/// One source file given to the generator.
pub struct Source<'a> {
    /// File name for messages.
    pub name: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// The form a definition takes at some layers.
#[derive(Clone, Debug)]
pub struct Form {
    /// The line as written for those layers.
    pub def: Definition,
    /// Indices into [`Schema::layers`] where this form applies.
    pub layers: Vec<usize>,
}

/// A canonical definition with its per-layer forms.
#[derive(Clone, Debug)]
pub struct Def {
    /// The canonical (newest) line.
    pub canonical: Definition,
    /// Distinct forms; the canonical one is always present.
    pub forms: Vec<Form>,
    /// For each layer index, the index into `forms`, or `None` where the definition is absent.
    pub form_by_layer: Vec<Option<usize>>,
    /// True for definitions of the layer-independent MTProto schema.
    pub mtproto: bool,
}

impl Def {
    /// Index of the canonical form in `forms`.
    pub fn canonical_form(&self) -> usize {
        *self
            .form_by_layer
            .last()
            .unwrap_or(&Some(0))
            .as_ref()
            .unwrap_or(&0)
    }
}

/// The whole checked schema.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Supported API layers, ascending; the last one is the canonical layer.
    pub layers: Vec<i32>,
    /// All definitions, canonical order (api files first, in file order).
    pub defs: Vec<Def>,
    /// Boxed type name (with namespace) → indices of its constructors in `defs`.
    pub types: BTreeMap<String, Vec<usize>>,
    /// `//@decode-as` pairs as indices into `defs`: (source, target). Where the target's type
    /// is expected, the source's id is read as the target.
    pub decode_as: Vec<(usize, usize)>,
}

impl Schema {
    /// The definition named `full_name`, if any.
    pub fn def(&self, full_name: &str) -> Option<&Def> {
        self.defs
            .iter()
            .find(|d| d.canonical.full_name() == full_name)
    }

    /// Whether `ty` names a boxed type with at least one constructor here.
    pub fn has_type(&self, ty: &TypeRef) -> bool {
        self.types.contains_key(&ty.full_name())
    }

    /// For a bare reference (`%T` or `lower_case`), the constructor it names.
    pub fn bare_def(&self, ty: &TypeRef) -> Option<&Def> {
        if ty.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return self.def(&ty.full_name());
        }
        match self.types.get(&ty.full_name()) {
            Some(ctors) if ctors.len() == 1 => Some(&self.defs[ctors[0]]),
            _ => None,
        }
    }
}

/// Builds and checks the schema. `api` files carry `// LAYER N` (the canonical layer);
/// `mtproto` files are layer-independent; `layers` are the per-layer difference files.
pub fn build(api: &[Source], mtproto: &[Source], layers: &[Source]) -> Result<Schema, SchemaError> {
    let mut canonical_layer = None;
    let mut defs: Vec<Def> = Vec::new();
    let mut decode_as = Vec::new();
    for (sources, is_mtproto) in [(api, false), (mtproto, true)] {
        for src in sources {
            let file = parse(src)?;
            if is_mtproto && !file.decode_as.is_empty() {
                return Err(err(
                    src,
                    file.decode_as[0].line,
                    "`//@decode-as` is for API types",
                ));
            }
            decode_as.extend(file.decode_as.iter().map(|d| (src, d.clone())));
            if !is_mtproto {
                match (canonical_layer, file.layer) {
                    (_, None) => return Err(err(src, 0, "API file without `// LAYER N`")),
                    (Some(a), Some(b)) if a != b => {
                        return Err(err(src, 0, &format!("layer {b} differs from {a}")));
                    }
                    _ => canonical_layer = file.layer,
                }
            }
            for d in file.definitions {
                check_id(src, &d)?;
                if defs
                    .iter()
                    .any(|e| e.canonical.full_name() == d.full_name())
                {
                    return Err(err(
                        src,
                        d.line,
                        &format!("{} defined twice", d.full_name()),
                    ));
                }
                if let Some(e) = defs.iter().find(|e| e.canonical.id == d.id) {
                    return Err(err(
                        src,
                        d.line,
                        &format!(
                            "id {:08x} already used by {}",
                            d.id,
                            e.canonical.full_name()
                        ),
                    ));
                }
                defs.push(Def {
                    canonical: d,
                    forms: Vec::new(),
                    form_by_layer: Vec::new(),
                    mtproto: is_mtproto,
                });
            }
        }
    }
    let canonical_layer =
        canonical_layer.ok_or_else(|| SchemaError("no API schema file given".into()))?;

    let mut layer_files: Vec<(i32, &Source, File)> = Vec::new();
    for src in layers {
        let file = parse(src)?;
        let n = file
            .layer
            .ok_or_else(|| err(src, 0, "layer file without `// LAYER N`"))?;
        if n >= canonical_layer {
            return Err(err(
                src,
                0,
                &format!("layer {n} is not below the canonical {canonical_layer}"),
            ));
        }
        if layer_files.iter().any(|(m, _, _)| *m == n) {
            return Err(err(src, 0, &format!("layer {n} given twice")));
        }
        for d in &file.definitions {
            check_id(src, d)?;
            let Some(c) = defs
                .iter()
                .find(|c| c.canonical.full_name() == d.full_name())
            else {
                return Err(err(
                    src,
                    d.line,
                    &format!("{} is not in the canonical schema", d.full_name()),
                ));
            };
            if c.mtproto {
                return Err(err(
                    src,
                    d.line,
                    "MTProto definitions do not change with the layer",
                ));
            }
            check_compatible(src, &c.canonical, d)?;
        }
        for name in &file.absent {
            if !defs.iter().any(|c| &c.canonical.full_name() == name) {
                return Err(err(
                    src,
                    0,
                    &format!("absent {name} is not in the canonical schema"),
                ));
            }
        }
        layer_files.push((n, src, file));
    }
    layer_files.sort_by_key(|(n, _, _)| *n);
    let mut all_layers: Vec<i32> = layer_files.iter().map(|(n, _, _)| *n).collect();
    all_layers.push(canonical_layer);

    for def in &mut defs {
        let name = def.canonical.full_name();
        for (li, &layer) in all_layers.iter().enumerate() {
            let mut chosen: Option<Option<&Definition>> = None;
            for (n, _, file) in &layer_files {
                if *n < layer {
                    continue;
                }
                if let Some(d) = file.definitions.iter().find(|d| d.full_name() == name) {
                    chosen = Some(Some(d));
                    break;
                }
                if file.absent.contains(&name) {
                    chosen = Some(None);
                    break;
                }
            }
            let line = match chosen {
                None => Some(&def.canonical),
                Some(found) => found,
            };
            let Some(line) = line else {
                def.form_by_layer.push(None);
                continue;
            };
            let index = match def.forms.iter().position(|f| f.def == *line) {
                Some(i) => i,
                None => {
                    def.forms.push(Form {
                        def: line.clone(),
                        layers: Vec::new(),
                    });
                    def.forms.len() - 1
                }
            };
            def.forms[index].layers.push(li);
            def.form_by_layer.push(Some(index));
        }
    }

    let mut types: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, d) in defs.iter().enumerate() {
        if d.canonical.category == Category::Type
            && !BUILTIN_DEFS.contains(&d.canonical.name.as_str())
        {
            types
                .entry(d.canonical.result.full_name())
                .or_default()
                .push(i);
        }
    }
    let decode_as = decode_as
        .iter()
        .map(|(src, d)| check_decode_as(src, d, &defs))
        .collect::<Result<_, _>>()?;
    let schema = Schema {
        layers: all_layers,
        defs,
        types,
        decode_as,
    };
    check_references(&schema)?;
    Ok(schema)
}

/// A `//@decode-as` pair must name two API constructors of different types, each with one form
/// at every layer, whose parameters are the same: the source's body is then read as the
/// target's.
fn check_decode_as(
    src: &Source,
    d: &crate::parse::DecodeAs,
    defs: &[Def],
) -> Result<(usize, usize), SchemaError> {
    let find = |name: &str| {
        defs.iter()
            .position(|c| c.canonical.full_name() == name && !c.mtproto)
            .filter(|&i| defs[i].canonical.category == Category::Type)
            .ok_or_else(|| {
                err(
                    src,
                    d.line,
                    &format!("decode-as: {name} is not an API constructor of the schema"),
                )
            })
    };
    let (source, target) = (find(&d.source)?, find(&d.target)?);
    let (s, t) = (&defs[source], &defs[target]);
    if s.canonical.result == t.canonical.result {
        return Err(err(
            src,
            d.line,
            &format!(
                "decode-as: {} and {} are of one type already",
                d.source, d.target
            ),
        ));
    }
    if s.forms.len() != 1 || t.forms.len() != 1 {
        return Err(err(
            src,
            d.line,
            "decode-as: both constructors must have one form at every layer",
        ));
    }
    if s.canonical.params != t.canonical.params {
        return Err(err(
            src,
            d.line,
            &format!(
                "decode-as: {} and {} differ in their parameters",
                d.source, d.target
            ),
        ));
    }
    Ok((source, target))
}

fn parse(src: &Source) -> Result<File, SchemaError> {
    parse_file(src.text).map_err(|e| SchemaError(format!("{}:{}: {}", src.name, e.line, e.message)))
}

fn err(src: &Source, line: usize, message: &str) -> SchemaError {
    SchemaError(format!("{}:{}: {}", src.name, line, message))
}

fn check_id(src: &Source, d: &Definition) -> Result<(), SchemaError> {
    let inferred = inferred_id(d);
    if inferred != d.id {
        return Err(err(
            src,
            d.line,
            &format!(
                "{} is written #{:08x} but its text hashes to #{inferred:08x}: a typo in the line?",
                d.full_name(),
                d.id
            ),
        ));
    }
    Ok(())
}

/// Whether `p` of a form is the same parameter as one of the canonical definition.
pub fn shared_param<'a>(
    canonical: &'a Definition,
    name: &str,
    ty: &TypeRef,
    conditional: bool,
) -> Option<&'a crate::parse::Param> {
    canonical.params.iter().find(|c| match &c.kind {
        ParamKind::Value { ty: cty, flag } => {
            c.name == name && cty == ty && flag.is_some() == conditional
        }
        ParamKind::Flags => false,
    })
}

fn check_compatible(
    src: &Source,
    canonical: &Definition,
    form: &Definition,
) -> Result<(), SchemaError> {
    if canonical.category != form.category || canonical.result != form.result {
        return Err(err(
            src,
            form.line,
            "category or result type differs from the canonical line",
        ));
    }
    if canonical.generics != form.generics {
        return Err(err(
            src,
            form.line,
            "generic parameters differ from the canonical line",
        ));
    }
    let required = |d: &Definition| -> Vec<(String, String)> {
        d.params
            .iter()
            .filter_map(|p| match &p.kind {
                ParamKind::Value { ty, flag: None } => Some((p.name.clone(), ty.to_string())),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (required(canonical), required(form));
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
    if sa != sb {
        return Err(err(
            src,
            form.line,
            &format!(
                "required parameters differ from the canonical line: {:?}",
                sa.symmetric_difference(&sb).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}

fn check_references(schema: &Schema) -> Result<(), SchemaError> {
    for d in &schema.defs {
        for form in &d.forms {
            let def = &form.def;
            let last = def.params.len().saturating_sub(1);
            for (i, p) in def.params.iter().enumerate() {
                let ParamKind::Value { ty, flag } = &p.kind else {
                    continue;
                };
                let here = || {
                    format!(
                        "{} (line {}), parameter {}",
                        def.full_name(),
                        def.line,
                        p.name
                    )
                };
                if ty.generic_ref || ty.name == "Object" {
                    if i != last || flag.is_some() {
                        return Err(SchemaError(format!(
                            "{}: an opaque value must be the last, required parameter",
                            here()
                        )));
                    }
                    continue;
                }
                if ty.name == "true" && flag.is_none() {
                    return Err(SchemaError(format!(
                        "{}: `true` only makes sense behind a flag",
                        here()
                    )));
                }
                check_type(schema, ty, flag.is_some(), false)
                    .map_err(|m| SchemaError(format!("{}: {m}", here())))?;
            }
        }
    }
    Ok(())
}

fn check_type(
    schema: &Schema,
    ty: &TypeRef,
    optional: bool,
    in_vector: bool,
) -> Result<(), String> {
    if let Some(arg) = &ty.generic_arg {
        if ty.name != "Vector" && ty.name != "vector" {
            return Err(format!("unknown generic type {ty}"));
        }
        if arg.bare
            && let Some(d) = schema.bare_def(arg)
            && d.canonical.params.is_empty()
        {
            return Err(format!(
                "a vector of the empty bare type {arg} has no size bound"
            ));
        }
        return check_type(schema, arg, optional, true);
    }
    if PRIMITIVES.contains(&ty.name.as_str()) && ty.namespace.is_none() {
        return Ok(());
    }
    if ty.bare {
        return match schema.bare_def(ty) {
            Some(_) => Ok(()),
            None => Err(format!("bare {ty} does not name exactly one constructor")),
        };
    }
    if schema.has_type(ty) || optional || in_vector {
        // A type outside the subset may only be absent or an empty vector (`Unsupported`).
        return Ok(());
    }
    Err(format!(
        "required type {ty} has no constructor in the schema"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src<'a>(name: &'a str, text: &'a str) -> Source<'a> {
        Source { name, text }
    }

    #[test]
    fn picks_forms_by_layer() {
        let api = "// LAYER 30\nboolTrue#997275b5 = Bool;\nusername#b4073647 flags:# editable:flags.0?true active:flags.1?true deletable:flags.2?true expired:flags.3?true username:string = Username;\n";
        let l10 = "// LAYER 10\nusername#b4073647 flags:# editable:flags.0?true active:flags.1?true username:string = Username;\n";
        let s = build(&[src("api", api)], &[], &[src("10", l10)]).unwrap();
        assert_eq!(s.layers, vec![10, 30]);
        let u = s.def("username").unwrap();
        assert_eq!(u.forms.len(), 2);
        assert_eq!(u.form_by_layer, vec![Some(0), Some(1)]);
        assert_eq!(u.canonical_form(), 1);
        assert_eq!(u.forms[1].def, u.canonical);
    }

    #[test]
    fn rejects_a_wrong_id() {
        let api = "// LAYER 30\nboolTrue#997275b6 = Bool;\n";
        let e = build(&[src("api", api)], &[], &[]).unwrap_err();
        assert!(e.0.contains("hashes to #997275b5"), "{e}");
    }

    #[test]
    fn rejects_required_type_outside_the_subset() {
        let api = "// LAYER 30\nphone.phoneCall#ec82e140 phone_call:PhoneCall users:Vector<User> = phone.PhoneCall;\n";
        let e = build(&[src("api", api)], &[], &[]).unwrap_err();
        assert!(e.0.contains("required type PhoneCall"), "{e}");
    }

    #[test]
    fn rejects_a_layer_form_with_other_required_params() {
        let api =
            "// LAYER 30\ninputPhoneCall#1e36fded id:long access_hash:long = InputPhoneCall;\n";
        let l = "// LAYER 10\ninputPhoneCall#2ed9b01b id:long = InputPhoneCall;\n";
        let e = build(&[src("api", api)], &[], &[src("l", l)]).unwrap_err();
        assert!(e.0.contains("required parameters differ"), "{e}");
    }
}
