//! Hand-written accessors over generated types that several crates need: fields every
//! constructor of a boxed type shares.

use crate::enums;

impl enums::PhoneCall {
    /// The call id, whichever state the call is shown in.
    pub fn id(&self) -> i64 {
        match self {
            enums::PhoneCall::Empty(c) => c.id,
            enums::PhoneCall::Waiting(c) => c.id,
            enums::PhoneCall::Requested(c) => c.id,
            enums::PhoneCall::Accepted(c) => c.id,
            enums::PhoneCall::PhoneCall(c) => c.id,
            enums::PhoneCall::Discarded(c) => c.id,
        }
    }
}
