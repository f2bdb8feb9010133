//! What a call operation asks the server to do: persist calls, push updates, write history.

use std::sync::Arc;

use crate::{Call, Reason, SessionRef};

/// Which sessions an update goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushTarget {
    /// Every live session of a user.
    User(i64),
    /// Every live session of a user but one (by auth key id).
    UserExcept(i64, i64),
    /// One session.
    Session(SessionRef),
}

/// One update to deliver.
#[derive(Clone, Debug, PartialEq)]
pub enum Push {
    /// `updatePhoneCall` with `call` as `viewer` sees it.
    Call {
        /// Who gets it.
        target: PushTarget,
        /// Whose view of the call.
        viewer: i64,
        /// The call at the time of the push (shared with the other pushes and the write of
        /// the same transition: one copy per transition, not per use).
        call: Arc<Call>,
    },
    /// `updatePhoneCall(phoneCallDiscarded)` without a reason: the call was answered on another
    /// device (spec §5.3).
    AnsweredElsewhere {
        /// Who gets it.
        target: PushTarget,
        /// The call.
        call_id: i64,
        /// A video call.
        video: bool,
    },
    /// `updatePhoneCallSignalingData`.
    Signaling {
        /// Who gets it.
        target: PushTarget,
        /// The call.
        call_id: i64,
        /// The opaque data.
        data: Vec<u8>,
    },
}

/// A call-history entry (`messageActionPhoneCall`) for both users' chats (spec §5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The call.
    pub call_id: i64,
    /// The caller (the message is from them).
    pub admin_id: i64,
    /// The callee.
    pub participant_id: i64,
    /// A video call.
    pub video: bool,
    /// Why it ended.
    pub reason: Option<Reason>,
    /// How long it lasted.
    pub duration: Option<i32>,
    /// When it ended.
    pub date: i32,
}

/// What an operation did to a call, named as the state machine decided it. Observers (metrics,
/// the inspector) read these rather than working it out again from the stored fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// `phone.requestCall` created the call; the callee's devices ring.
    Created {
        /// The call.
        call_id: i64,
    },
    /// `phone.requestCall` created the call and refused it at once: the callee was busy.
    RefusedBusy {
        /// The refused call.
        call_id: i64,
        /// Who called.
        caller: i64,
        /// Who was busy.
        callee: i64,
        /// The call the callee was busy in.
        busy_in: Option<i64>,
    },
    /// The callee's first `phone.receivedCall`: the caller rings, the callee is busy.
    Acknowledged {
        /// The call.
        call_id: i64,
    },
    /// A callee device accepted.
    Answered {
        /// The call.
        call_id: i64,
    },
    /// The caller confirmed: keys are exchanged.
    Confirmed {
        /// The call.
        call_id: i64,
    },
    /// The call ended.
    Ended {
        /// The call.
        call_id: i64,
        /// Why.
        reason: Option<Reason>,
        /// Who or what ended it.
        by: Ending,
        /// Whether a callee device had accepted it first.
        answered: bool,
    },
}

/// Who or what ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The caller hung up or cancelled.
    Caller,
    /// The callee declined or hung up.
    Callee,
    /// The server's timer.
    Timer,
    /// The caller's `g_a` did not match its committed hash.
    KeyMismatch,
    /// Refused at once: the callee was busy.
    Busy,
}

/// The outcome of one operation: its result plus everything to apply, in order — persist
/// first, then push and write history, then answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Effects<R> {
    /// The answer to the request.
    pub result: R,
    /// Calls whose new state must be committed before anything is sent.
    pub persist: Vec<Arc<Call>>,
    /// Updates to deliver after the answer.
    pub pushes: Vec<Push>,
    /// History entries to write.
    pub history: Vec<HistoryEntry>,
    /// What happened, in order.
    pub events: Vec<CallEvent>,
}

impl<R> Effects<R> {
    /// An outcome with nothing to apply.
    pub fn only(result: R) -> Self {
        Effects {
            result,
            persist: Vec::new(),
            pushes: Vec::new(),
            history: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The same effects with the result passed through `f`.
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Effects<S> {
        Effects {
            result: f(self.result),
            persist: self.persist,
            pushes: self.pushes,
            history: self.history,
            events: self.events,
        }
    }

    /// Whether something must be persisted or sent besides the result.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.pushes.is_empty() && self.history.is_empty()
    }
}
