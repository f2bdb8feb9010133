//! The schema as data ([`crate::CONSTRUCTORS`]): every form of every definition with its layers
//! and parameters. Tools use it to name ids in logs, and the oracle scripts to build values.

/// One form of one definition.
#[derive(Clone, Copy, Debug)]
pub struct Constructor {
    /// TL name with namespace.
    pub name: &'static str,
    /// Constructor id of this form.
    pub id: u32,
    /// Layers where this form is used (all of them for MTProto definitions).
    pub layers: &'static [i32],
    /// A function rather than a constructor.
    pub function: bool,
    /// Part of the layer-independent MTProto schema.
    pub mtproto: bool,
    /// Result type as written.
    pub result: &'static str,
    /// Parameters in wire order.
    pub params: &'static [Param],
}

/// One parameter of a [`Constructor`].
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// TL name.
    pub name: &'static str,
    /// Type as written (`#` for a flags field).
    pub ty: &'static str,
    /// `(flags field, bit)` of a conditional parameter.
    pub flag: Option<(&'static str, u8)>,
    /// Whether the Rust struct stores it (false for `#` fields and for parameters only an older
    /// layer's form has, which are read and dropped).
    pub stored: bool,
}

/// The TL name of constructor id `id`, in any layer.
pub fn name_for_id(id: u32) -> Option<&'static str> {
    crate::CONSTRUCTORS
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name)
}
