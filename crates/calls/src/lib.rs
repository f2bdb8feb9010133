//! Sans-IO call signalling (`docs/calls.md`): the state machine behind `phone.*` for
//! one-to-one calls — Requested → Received → Accepted → Confirmed → Discarded — with
//! `phone.receivedCall` as documented (`docs/calls.md §4`):
//! the callee's first acknowledgement makes the caller ring (`receive_date`), marks the callee
//! busy, and every new incoming call is refused as busy until the current call ends.
//!
//! [`CallRegistry`] takes each request with the current time and returns [`Effects`]: the
//! result, the calls to persist, which `updatePhoneCall` go to which sessions, and the history
//! entries to write. It reads no clock, opens no socket and touches no database. Busy is derived
//! from call states (spec §2), never stored. It holds live calls and a bounded set of recently
//! ended ones; its keeper reads older ones back from storage when a request names them.

mod effects;
mod error;
mod evicted;
mod model;
mod registry;
mod view;

pub use effects::{CallEvent, Effects, Ending, HistoryEntry, Push, PushTarget};
pub use error::CallError;
pub use evicted::Lookup;
pub use model::{Answer, Call, Discard, Keys, Phase, Protocol, Reason, SessionRef, Stage, State};
pub use registry::{CallRegistry, DEFAULT_RECENT_CAPACITY, Ids, Timeouts};
pub use view::{discard_reason_tl, protocol_from_tl, protocol_tl, reason_from_tl, view};
