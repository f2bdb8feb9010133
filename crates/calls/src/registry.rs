//! The call registry: every live call and a bounded set of recently ended ones, each
//! operation of spec §3–§6 as a method taking the current time and returning [`Effects`].
//!
//! Ended calls stay in memory for [`Timeouts::tombstone`] seconds, but never more than
//! [`CallRegistry::with_recent_capacity`] of them: past that the oldest leave memory (an
//! eviction; their stored rows stay). Whoever keeps the registry asks
//! [`CallRegistry::missing`] before an operation, reads what it names from storage and loads
//! it back ([`CallRegistry::load`]); [`CallRegistry::overtook`] tells whether an eviction made
//! during that read may have hidden the call from it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::effects::{CallEvent, Effects, Ending, HistoryEntry, Push, PushTarget};
use crate::error::CallError;
use crate::evicted::{Evicted, Lookup};
use crate::model::{
    Answer, Call, Discard, Keys, Phase, Protocol, Reason, SessionRef, Stage, State,
};
use crate::view::sha256;

/// A Diffie–Hellman public value (`g_a`, `g_b`): at most 256 bytes, in the safe range of
/// Telegram's group whatever its length (leading zero bytes may be dropped).
fn is_dh_value(value: &[u8]) -> bool {
    value.len() <= 256 && mtproto::crypto::dh::is_safe_public_value(value)
}

/// Where new ids and access hashes come from (random in the server, scripted in tests).
pub trait Ids {
    /// A fresh non-zero call id.
    fn call_id(&mut self) -> i64;
    /// A fresh access hash.
    fn access_hash(&mut self) -> i64;
}

/// The server's fallback timers (spec §6.3), seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `call_receive_timeout_ms` / 1000: a Requested call nobody acknowledged ends as Missed.
    pub receive: i32,
    /// `call_ring_timeout_ms` / 1000: a Received call nobody answered ends as Missed.
    pub ring: i32,
    /// Grace added to the clients' own timers before the server acts.
    pub grace: i32,
    /// A confirmed call longer than this is ended (both clients dead would leave busy forever).
    pub max_duration: i32,
    /// How long an ended call is remembered for late requests (in memory while it is among
    /// the recent ones, in storage until then).
    pub tombstone: i32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            receive: 20,
            ring: 90,
            grace: 5,
            max_duration: 6 * 3600,
            tombstone: 3600,
        }
    }
}

/// How many ended calls a registry keeps in memory unless told otherwise.
pub const DEFAULT_RECENT_CAPACITY: usize = 10_000;

/// The live calls and the recently ended ones.
#[derive(Debug)]
pub struct CallRegistry {
    calls: HashMap<i64, Arc<Call>>,
    live_by_user: HashMap<i64, Vec<i64>>,
    by_random: HashMap<(i64, i32), i64>,
    /// Ended calls in memory by when they leave it, soonest first (so timers never scan
    /// them); one entry per ended call held.
    tombstones: BinaryHeap<Reverse<(i32, u64, i64)>>,
    /// Numbers ended calls as they are added, so those that end in the same second leave
    /// memory in the order they ended.
    ended_seq: u64,
    /// The most ended calls held at once.
    recent_capacity: usize,
    /// What has left memory.
    evicted: Evicted,
    timeouts: Timeouts,
}

impl Default for CallRegistry {
    fn default() -> Self {
        CallRegistry::new(Timeouts::default())
    }
}

type Outcome<R> = Effects<Result<R, CallError>>;

/// A side of a call, for methods only one side may use.
#[derive(Clone, Copy)]
enum Role {
    Caller,
    Callee,
}

fn refuse<R>(e: CallError) -> Outcome<R> {
    Effects::only(Err(e))
}

fn check_protocol(p: &Protocol) -> Result<(), CallError> {
    if !p.udp_p2p && !p.udp_reflector {
        return Err(CallError::CallProtocolFlagsInvalid);
    }
    if p.min_layer > p.max_layer {
        return Err(CallError::CallProtocolLayerInvalid);
    }
    Ok(())
}

/// The protocol both sides support (spec §5.4): the overlap of layers, and library versions in
/// common with the caller's order kept (an empty list on one side takes the other's).
fn negotiate(caller: &Protocol, callee: &Protocol) -> Result<Protocol, CallError> {
    let min_layer = caller.min_layer.max(callee.min_layer);
    let max_layer = caller.max_layer.min(callee.max_layer);
    if min_layer > max_layer {
        return Err(CallError::CallProtocolCompatLayerInvalid);
    }
    let library_versions = match (
        caller.library_versions.is_empty(),
        callee.library_versions.is_empty(),
    ) {
        (true, _) => callee.library_versions.clone(),
        (_, true) => caller.library_versions.clone(),
        _ => {
            let common: Vec<String> = caller
                .library_versions
                .iter()
                .filter(|v| callee.library_versions.contains(v))
                .cloned()
                .collect();
            if common.is_empty() {
                return Err(CallError::CallProtocolCompatLayerInvalid);
            }
            common
        }
    };
    Ok(Protocol {
        udp_p2p: caller.udp_p2p && callee.udp_p2p,
        udp_reflector: caller.udp_reflector || callee.udp_reflector,
        min_layer,
        max_layer,
        library_versions,
    })
}

impl CallRegistry {
    /// An empty registry holding up to [`DEFAULT_RECENT_CAPACITY`] ended calls.
    pub fn new(timeouts: Timeouts) -> Self {
        CallRegistry {
            calls: HashMap::new(),
            live_by_user: HashMap::new(),
            by_random: HashMap::new(),
            tombstones: BinaryHeap::new(),
            ended_seq: 0,
            recent_capacity: DEFAULT_RECENT_CAPACITY,
            evicted: Evicted::default(),
            timeouts,
        }
    }

    /// The same registry holding at most `capacity` ended calls in memory (at least one;
    /// the bound applies from the next call that ends or the next tick).
    pub fn with_recent_capacity(mut self, capacity: usize) -> Self {
        self.recent_capacity = capacity.max(1);
        self
    }

    /// Adds calls read back from storage (live ones and ended ones); a call already held is
    /// kept as held, since memory is never older than storage. The bound on ended calls is
    /// kept by evicting others: the calls just loaded stay, so an operation run right after
    /// loading finds them (memory holds at most the bound plus what one load brought).
    pub fn load(&mut self, calls: impl IntoIterator<Item = Call>, now: i32) {
        let mut loaded = Vec::new();
        for call in calls {
            if !self.calls.contains_key(&call.id) {
                loaded.push(call.id);
                self.insert(Arc::new(call));
            }
        }
        self.evict_over_capacity(now, &loaded);
    }

    /// How many ended calls have left memory so far.
    pub fn evictions(&self) -> u64 {
        self.evicted.count()
    }

    /// Storage holds ended calls this registry never held (it was restored with only the
    /// latest of them), all ended by `ended_by`: until a tombstone period after that, a new
    /// call's `random_id` is checked against storage whatever the filter says. (A registry
    /// restored with every stored ended call has nothing unknown and is not told this.)
    pub fn with_unheld_ended_calls(mut self, ended_by: i32) -> Self {
        self.evicted
            .assume_unknown_until(ended_by.saturating_add(self.timeouts.tombstone));
        self
    }

    /// What must be read from storage before an operation at `now` can run: the call it names
    /// (`call`) or the caller's call with its `random_id` (`random`), when it is not held but
    /// may be stored. A call leaves memory only after its ended state was queued for storage,
    /// so a read queued after this answer finds it.
    pub fn missing(
        &self,
        call: Option<i64>,
        random: Option<(i64, i32)>,
        now: i32,
    ) -> Option<Lookup> {
        if let Some(id) = call
            && !self.calls.contains_key(&id)
        {
            return Some(Lookup::Id(id));
        }
        let (caller, random_id) = random?;
        let held = self.by_random.contains_key(&(caller, random_id));
        (!held && self.evicted.may_hold((caller, random_id), now))
            .then_some(Lookup::Random((caller, random_id)))
    }

    /// Whether a storage read for `lookup`, queued when [`CallRegistry::evictions`] was
    /// `seen`, may have missed its call because it left memory since; then read again.
    pub fn overtook(&self, seen: u64, lookup: Lookup) -> bool {
        self.evicted.overtook(seen, lookup)
    }

    /// How many ended calls are held in memory.
    pub fn recent_len(&self) -> usize {
        self.tombstones.len()
    }

    /// The caller's call with this `random_id`, if held.
    pub fn by_random(&self, caller: i64, random_id: i32) -> Option<&Call> {
        self.by_random
            .get(&(caller, random_id))
            .and_then(|id| self.get(*id))
    }

    /// Drops an ended call from memory at `now`.
    fn evict(&mut self, id: i64, now: i32) {
        if let Some(c) = self.calls.remove(&id) {
            self.by_random.remove(&(c.admin_id, c.random_id));
            self.evicted
                .record(id, (c.admin_id, c.random_id), now, self.timeouts.tombstone);
        }
    }

    /// Drops the oldest ended calls but those in `keep` while more than the capacity (or
    /// than `keep` holds) are held.
    fn evict_over_capacity(&mut self, now: i32, keep: &[i64]) {
        let mut kept = Vec::new();
        while self.tombstones.len() > self.recent_capacity.max(keep.len()) {
            let Some(entry) = self.tombstones.pop() else {
                break;
            };
            let Reverse((_, _, id)) = entry;
            if keep.contains(&id) {
                kept.push(entry);
            } else {
                self.evict(id, now);
            }
        }
        self.tombstones.extend(kept);
    }

    fn insert(&mut self, call: Arc<Call>) {
        if call.state().is_live() {
            for user in [call.admin_id, call.participant_id] {
                let list = self.live_by_user.entry(user).or_default();
                if !list.contains(&call.id) {
                    list.push(call.id);
                }
            }
        }
        self.by_random
            .insert((call.admin_id, call.random_id), call.id);
        if let Some(d) = call.discard() {
            self.ended_seq += 1;
            self.tombstones.push(Reverse((
                d.at + self.timeouts.tombstone,
                self.ended_seq,
                call.id,
            )));
        }
        self.calls.insert(call.id, call);
    }

    /// The live calls, each once per party (so twice), in no particular order; without
    /// allocating, since the timer asks after every change.
    fn live_twice(&self) -> impl Iterator<Item = &Call> {
        self.live_by_user
            .values()
            .flatten()
            .filter_map(|id| self.get(*id))
    }

    /// The call with this id.
    pub fn get(&self, id: i64) -> Option<&Call> {
        self.calls.get(&id).map(|c| &**c)
    }

    /// Calls not yet ended.
    pub fn live_calls(&self) -> impl Iterator<Item = &Call> {
        self.calls
            .values()
            .map(|c| &**c)
            .filter(|c| c.state().is_live())
    }

    /// Live calls of a user.
    pub fn live_calls_of(&self, user: i64) -> Vec<&Call> {
        self.live_by_user
            .get(&user)
            .map(|ids| ids.iter().filter_map(|id| self.get(*id)).collect())
            .unwrap_or_default()
    }

    /// Whether `user` is busy (spec §2): the callee of a call they acknowledged or accepted, or
    /// the caller of a live call. A user being called who has not acknowledged is not busy.
    pub fn busy(&self, user: i64) -> bool {
        self.live_calls_of(user).iter().any(|c| c.makes_busy(user))
    }

    /// `phone.requestCall` (spec §3 row 1, §4.3, §5.1). The callee exists and may be called
    /// (the caller checked users and privacy). A busy callee gets a call that ends at once with
    /// Busy: the caller is answered `phoneCallWaiting` and then pushed `phoneCallDiscarded`;
    /// the callee's devices get nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &mut self,
        caller: SessionRef,
        callee: i64,
        random_id: i32,
        g_a_hash: Vec<u8>,
        protocol: Protocol,
        video: bool,
        now: i32,
        ids: &mut impl Ids,
    ) -> Outcome<Arc<Call>> {
        if callee == caller.user_id {
            return refuse(CallError::UserIdInvalid);
        }
        if g_a_hash.len() != 32 {
            return refuse(CallError::DhGAInvalid);
        }
        if let Err(e) = check_protocol(&protocol) {
            return refuse(e);
        }
        if let Some(existing) = self
            .by_random
            .get(&(caller.user_id, random_id))
            .and_then(|id| self.calls.get(id))
        {
            // A retry of the same request returns the same call.
            return match existing.state().is_live() && existing.participant_id == callee {
                true => Effects::only(Ok(existing.clone())),
                false => refuse(CallError::RandomIdDuplicate),
            };
        }
        let mut id = ids.call_id();
        while id == 0 || self.calls.contains_key(&id) {
            id = ids.call_id();
        }
        let call = Call {
            id,
            random_id,
            date: now,
            video,
            admin_id: caller.user_id,
            participant_id: callee,
            admin_hash: ids.access_hash(),
            participant_hash: ids.access_hash(),
            g_a_hash,
            caller_protocol: protocol,
            caller_session: caller,
            phase: Phase::Live(Stage::Requested),
        };
        if self.busy(callee) {
            let busy_in = self
                .live_calls_of(callee)
                .iter()
                .find(|c| c.makes_busy(callee))
                .map(|c| c.id);
            // The answer is the call as created; ending it below copies it first.
            let created = Arc::new(call);
            let mut effects = Effects::only(Ok(created.clone()));
            effects.events.push(CallEvent::RefusedBusy {
                call_id: id,
                caller: caller.user_id,
                callee,
                busy_in,
            });
            self.insert(created);
            self.end(
                id,
                Some(Reason::Busy),
                None,
                Ending::Busy,
                now,
                &mut effects,
                &[PushTarget::User(caller.user_id)],
            );
            return effects;
        }
        let snapshot = Arc::new(call);
        let mut effects = Effects::only(Ok(snapshot.clone()));
        effects.events.push(CallEvent::Created { call_id: id });
        effects.persist.push(snapshot.clone());
        effects.pushes.push(Push::Call {
            target: PushTarget::User(callee),
            viewer: callee,
            call: snapshot.clone(),
        });
        self.insert(snapshot);
        effects
    }

    /// Finds a call where `user` has `role`, with its access hash checked.
    fn find_as(
        &self,
        user: i64,
        id: i64,
        access_hash: i64,
        role: Role,
    ) -> Result<&Call, CallError> {
        let call = self.find(user, id, access_hash)?;
        let holder = match role {
            Role::Caller => call.admin_id,
            Role::Callee => call.participant_id,
        };
        if holder == user {
            Ok(call)
        } else {
            Err(CallError::CallPeerInvalid)
        }
    }

    /// Finds a call the user takes part in, with its access hash checked.
    fn find(&self, user: i64, id: i64, access_hash: i64) -> Result<&Call, CallError> {
        let call = self.get(id).ok_or(CallError::CallPeerInvalid)?;
        match call.hash_for(user) {
            Some(h) if h == access_hash => Ok(call),
            _ => Err(CallError::CallPeerInvalid),
        }
    }

    /// `phone.receivedCall` (spec §4.2): the first acknowledgement moves Requested → Received
    /// and pushes `receive_date` to the caller once; later ones answer `true` with no push.
    pub fn received(
        &mut self,
        session: SessionRef,
        id: i64,
        access_hash: i64,
        now: i32,
    ) -> Outcome<bool> {
        let call = match self.find_as(session.user_id, id, access_hash, Role::Callee) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        match call.state() {
            State::Discarded => refuse(CallError::CallAlreadyDeclined),
            State::Requested => {
                let call = self.calls.get_mut(&id).expect("found above");
                Arc::make_mut(call).phase = Phase::Live(Stage::Received { at: now });
                let snapshot = call.clone();
                let mut effects = Effects::only(Ok(true));
                effects.events.push(CallEvent::Acknowledged { call_id: id });
                effects.persist.push(snapshot.clone());
                effects.pushes.push(Push::Call {
                    target: PushTarget::User(snapshot.admin_id),
                    viewer: snapshot.admin_id,
                    call: snapshot,
                });
                effects
            }
            State::Received | State::Accepted | State::Confirmed => Effects::only(Ok(true)),
        }
    }

    /// `phone.acceptCall` (spec §3 row 3, §5.2, §5.3).
    pub fn accept(
        &mut self,
        session: SessionRef,
        id: i64,
        access_hash: i64,
        g_b: Vec<u8>,
        protocol: Protocol,
        now: i32,
    ) -> Outcome<Arc<Call>> {
        let call = match self.find_as(session.user_id, id, access_hash, Role::Callee) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        match call.state() {
            State::Discarded => return refuse(CallError::CallAlreadyDeclined),
            State::Accepted | State::Confirmed => return refuse(CallError::CallAlreadyAccepted),
            State::Requested | State::Received => {}
        }
        if !is_dh_value(&g_b) {
            return refuse(CallError::DhGBInvalid);
        }
        if let Err(e) = check_protocol(&protocol) {
            return refuse(e);
        }
        let occupied = self
            .live_calls_of(session.user_id)
            .iter()
            .any(|c| c.id != id && matches!(c.state(), State::Accepted | State::Confirmed));
        if occupied {
            return refuse(CallError::CallOccupyFailed);
        }
        let negotiated = match negotiate(&call.caller_protocol, &protocol) {
            Ok(p) => p,
            Err(e) => return refuse(e),
        };
        let shared = self.calls.get_mut(&id).expect("found above");
        let call = Arc::make_mut(shared);
        let received_at = call.receive_date().unwrap_or(now);
        call.phase = Phase::Live(Stage::Accepted {
            received_at,
            answer: Answer {
                session,
                g_b,
                protocol,
                negotiated,
                date: now,
            },
        });
        let snapshot = shared.clone();
        let mut effects = Effects::only(Ok(snapshot.clone()));
        effects.events.push(CallEvent::Answered { call_id: id });
        effects.persist.push(snapshot.clone());
        effects.pushes.push(Push::Call {
            target: PushTarget::User(snapshot.admin_id),
            viewer: snapshot.admin_id,
            call: snapshot.clone(),
        });
        effects.pushes.push(Push::AnsweredElsewhere {
            target: PushTarget::UserExcept(session.user_id, session.key_id),
            call_id: id,
            video: snapshot.video,
        });
        effects
    }

    /// `phone.confirmCall` (spec §5.4). A `g_a` that does not match the committed hash ends
    /// the call with Disconnect and is refused.
    pub fn confirm(
        &mut self,
        session: SessionRef,
        id: i64,
        access_hash: i64,
        g_a: Vec<u8>,
        key_fingerprint: i64,
        now: i32,
    ) -> Outcome<Arc<Call>> {
        let call = match self.find_as(session.user_id, id, access_hash, Role::Caller) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        match call.state() {
            State::Discarded => return refuse(CallError::CallAlreadyDeclined),
            State::Requested | State::Received => return refuse(CallError::CallPeerInvalid),
            State::Confirmed => return Effects::only(Ok(self.calls[&id].clone())),
            State::Accepted => {}
        }
        // `g_a` is checked as the number it is and hashed as the bytes it was sent as: clients
        // that drop leading zero bytes (Telegram Android, ntgcalls) send 255 bytes or fewer.
        let refusal = if !is_dh_value(&g_a) {
            Some(CallError::DhGAInvalid)
        } else if sha256(&g_a)[..] != call.g_a_hash[..] {
            Some(CallError::CallPeerInvalid)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let (admin, participant) = (call.admin_id, call.participant_id);
            let mut effects = Effects::only(Err(refusal));
            self.end(
                id,
                Some(Reason::Disconnect),
                None,
                Ending::KeyMismatch,
                now,
                &mut effects,
                &[PushTarget::User(admin), PushTarget::User(participant)],
            );
            return effects;
        }
        let shared = self.calls.get_mut(&id).expect("found above");
        let call = Arc::make_mut(shared);
        let Phase::Live(Stage::Accepted {
            received_at,
            answer,
        }) = &call.phase
        else {
            return refuse(CallError::CallPeerInvalid);
        };
        call.phase = Phase::Live(Stage::Confirmed {
            received_at: *received_at,
            answer: answer.clone(),
            keys: Keys {
                g_a,
                fingerprint: key_fingerprint,
                date: now,
            },
        });
        let snapshot = shared.clone();
        let mut effects = Effects::only(Ok(snapshot.clone()));
        effects.events.push(CallEvent::Confirmed { call_id: id });
        effects.persist.push(snapshot.clone());
        let target = snapshot
            .answer()
            .map_or(PushTarget::User(snapshot.participant_id), |a| {
                PushTarget::Session(a.session)
            });
        effects.pushes.push(Push::Call {
            target,
            viewer: snapshot.participant_id,
            call: snapshot,
        });
        effects
    }

    /// `phone.discardCall` (spec §5.5). Ending an ended call answers its tombstone.
    pub fn discard(
        &mut self,
        session: SessionRef,
        id: i64,
        access_hash: i64,
        duration: i32,
        reason: Option<Reason>,
        now: i32,
    ) -> Outcome<Arc<Call>> {
        let call = match self.find(session.user_id, id, access_hash) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        if call.state() == State::Discarded {
            return Effects::only(Ok(self.calls[&id].clone()));
        }
        let answered_elsewhere = session.user_id == call.participant_id
            && call.answer().is_some_and(|a| a.session != session);
        if answered_elsewhere {
            return refuse(CallError::CallAlreadyAccepted);
        }
        let duration = (call.state() == State::Confirmed).then_some(duration.max(0));
        let other = call.other(session.user_id);
        let by = if session.user_id == call.admin_id {
            Ending::Caller
        } else {
            Ending::Callee
        };
        let mut effects = Effects::only(());
        self.end(
            id,
            reason,
            duration,
            by,
            now,
            &mut effects,
            &[
                PushTarget::User(other),
                PushTarget::UserExcept(session.user_id, session.key_id),
            ],
        );
        // The ended call as stored (it may already have left memory, at a capacity of one).
        match effects.persist.last().cloned() {
            Some(ended) => effects.map(|()| Ok(ended)),
            None => effects.map(|()| Err(CallError::CallPeerInvalid)),
        }
    }

    /// `phone.sendSignalingData` (spec §5.6): forwarded to the other party's call session.
    pub fn signaling(
        &mut self,
        session: SessionRef,
        id: i64,
        access_hash: i64,
        data: Vec<u8>,
    ) -> Outcome<bool> {
        let call = match self.find(session.user_id, id, access_hash) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        match call.state() {
            State::Discarded => Effects::only(Ok(true)),
            State::Requested | State::Received => refuse(CallError::CallNotActive),
            State::Accepted | State::Confirmed => {
                let target = if session.user_id == call.admin_id {
                    call.answer()
                        .map_or(PushTarget::User(call.participant_id), |a| {
                            PushTarget::Session(a.session)
                        })
                } else {
                    PushTarget::Session(call.caller_session)
                };
                let mut effects = Effects::only(Ok(true));
                effects.pushes.push(Push::Signaling {
                    target,
                    call_id: id,
                    data,
                });
                effects
            }
        }
    }

    /// `phone.setCallRating` / `phone.saveCallDebug`: allowed on any call of the user, tombstones
    /// included.
    pub fn check_participant(&self, user: i64, id: i64, access_hash: i64) -> Result<(), CallError> {
        self.find(user, id, access_hash).map(|_| ())
    }

    /// Ends a live call and records what that entails.
    #[allow(clippy::too_many_arguments)]
    fn end<R>(
        &mut self,
        id: i64,
        reason: Option<Reason>,
        duration: Option<i32>,
        ending: Ending,
        now: i32,
        effects: &mut Effects<R>,
        notify: &[PushTarget],
    ) {
        let Some(shared) = self.calls.get_mut(&id) else {
            return;
        };
        let call = Arc::make_mut(shared);
        let by = match ending {
            Ending::Caller => Some(call.admin_id),
            Ending::Callee => Some(call.participant_id),
            Ending::Timer | Ending::KeyMismatch | Ending::Busy => None,
        };
        effects.events.push(CallEvent::Ended {
            call_id: id,
            reason: reason.clone(),
            by: ending,
            answered: call.answer().is_some(),
        });
        let discard = Discard {
            reason: reason.clone(),
            duration,
            by,
            at: now,
            need_rating: false,
            need_debug: false,
        };
        call.phase = match std::mem::replace(&mut call.phase, Phase::Live(Stage::Requested)) {
            Phase::Live(stage) | Phase::Ended(stage, _) => Phase::Ended(stage, discard),
        };
        let snapshot = shared.clone();
        self.ended_seq += 1;
        self.tombstones
            .push(Reverse((now + self.timeouts.tombstone, self.ended_seq, id)));
        for user in [snapshot.admin_id, snapshot.participant_id] {
            if let Some(list) = self.live_by_user.get_mut(&user) {
                list.retain(|c| *c != id);
                if list.is_empty() {
                    self.live_by_user.remove(&user);
                }
            }
        }
        effects.persist.push(snapshot.clone());
        for target in notify {
            let viewer = match target {
                PushTarget::User(u) | PushTarget::UserExcept(u, _) => *u,
                PushTarget::Session(s) => s.user_id,
            };
            effects.pushes.push(Push::Call {
                target: *target,
                viewer,
                call: snapshot.clone(),
            });
        }
        effects.history.push(HistoryEntry {
            call_id: id,
            admin_id: snapshot.admin_id,
            participant_id: snapshot.participant_id,
            video: snapshot.video,
            reason,
            duration,
            date: now,
        });
        self.evict_over_capacity(now, &[]);
    }

    /// The deadline of a live call, if it has one.
    fn deadline(&self, call: &Call) -> Option<(i32, Reason)> {
        let t = &self.timeouts;
        let Phase::Live(stage) = &call.phase else {
            return None;
        };
        Some(match stage {
            Stage::Requested => (call.date + t.receive + t.grace, Reason::Missed),
            Stage::Received { at } => (at + t.ring + t.grace, Reason::Missed),
            Stage::Accepted { answer, .. } => {
                (answer.date + t.receive + t.grace, Reason::Disconnect)
            }
            Stage::Confirmed { keys, .. } => (keys.date + t.max_duration, Reason::Disconnect),
        })
    }

    /// When the timer next acts on `call` (Unix seconds), if it is live: stored with the call
    /// so that, with several nodes, any of them finds the calls that are due.
    pub fn deadline_of(&self, call: &Call) -> Option<i32> {
        self.deadline(call).map(|(at, _)| at)
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// When [`CallRegistry::tick`] next has work, if ever. Looks only at live calls and the
    /// soonest tombstone, so it costs the same however many ended calls are remembered.
    pub fn next_deadline(&self) -> Option<i32> {
        let live = self
            .live_twice()
            .filter_map(|c| self.deadline(c).map(|(d, _)| d))
            .min();
        let tombstone = self.tombstones.peek().map(|Reverse((at, _, _))| *at);
        live.into_iter().chain(tombstone).min()
    }

    /// Ends every call past its deadline (spec §6.3) and drops from memory the ended calls
    /// older than [`Timeouts::tombstone`] (their stored rows are the keeper's to delete).
    pub fn tick(&mut self, now: i32) -> Effects<()> {
        let mut effects = Effects::only(());
        let mut due: Vec<(i64, Reason)> = self
            .live_twice()
            .filter_map(|c| {
                self.deadline(c)
                    .filter(|(d, _)| *d <= now)
                    .map(|(_, r)| (c.id, r))
            })
            .collect();
        due.sort_unstable_by_key(|(id, _)| *id);
        due.dedup_by_key(|(id, _)| *id);
        for (id, reason) in due {
            let call = &self.calls[&id];
            let notify = [
                PushTarget::User(call.admin_id),
                PushTarget::User(call.participant_id),
            ];
            self.end(
                id,
                Some(reason),
                None,
                Ending::Timer,
                now,
                &mut effects,
                &notify,
            );
        }
        self.evict_over_capacity(now, &[]);
        while let Some(Reverse((at, _, id))) = self.tombstones.peek().copied() {
            if at > now {
                break;
            }
            self.tombstones.pop();
            self.evict(id, now);
        }
        effects
    }
}
