//! Sequences of call operations on a `CallRegistry` (4 users, two devices each, every call the
//! sequence creates, time moving forward), with the state machine's invariants checked after
//! every step:
//! - busy(u) iff u is the caller of a live call or the callee of an acknowledged (Received,
//!   Accepted, Confirmed) live call, by `busy` and by `live_calls_of` / `live_calls` against a
//!   recomputation from the calls themselves;
//! - a Discarded call stays Discarded with the same discard info (the whole record unchanged)
//!   until its tombstone leaves memory, only at a tick past its hour (the sequences stay far
//!   below the registry's bound on ended calls), and a forgotten call never comes back;
//! - `receive_date` is pushed to the caller (a Received snapshot for the caller) at most once
//!   per call, and once set never changes;
//! - states only move forward; every changed call is in `persist` as it now is; a callee is in
//!   at most one accepted call; answers that return a call return the stored one;
//! - at the end, a tick 7 hours later ends every call and nobody is busy; one after the last
//!   tombstone's hour forgets them all.
//!
//! The registry holds at most [`RECENT`] ended calls, as one node's does: a model store keeps
//! every persisted call, the keeper's part is played before each operation (what
//! `CallRegistry::missing` names is loaded back from it, ended calls only), old rows are swept
//! at each tick as the server's housekeeping does, and the checks above run on the calls as
//! memory and store hold them together. Memory never holds more than [`RECENT`] ended calls
//! plus the one just loaded. Every operation also runs on a registry that holds every call and
//! never restarts, and must answer the same with the same effects; both timers run whenever a
//! deadline has passed, as the server's does.
//!
//! Input: 4 bytes per operation `[a, b, c, d]` (at most 512 operations):
//! - a: bits 0-2 the operation: request, received, accept, confirm, discard, signaling, tick,
//!   restart (every call through its stored form into a new registry); bits 3-4 the user
//!   (1-4); bit 5 the device (key id user*10 + 0/1); bits 6-7 the access hash: the user's own
//!   (0, 1), the other party's (2), a wrong one (3).
//! - b: for request: bits 0-1 the callee (may be the caller), bits 2-3 random_id 0-3, bit 4
//!   video, bits 5-7 the protocol (see `PROTOCOLS`); for the others the call: `b % (n + 1)`
//!   over the n calls created so far, n meaning an unknown id.
//! - c: time step: bits 6-7 the scale (c&63 / 8 s, c&63 s, (c&63) * 10 s, (c&63) * 600 s).
//! - d: the parameter: request, bits 0-1 the g_a committed to (G_A[0], G_A[1], a 31-byte hash,
//!   G_A[0]); accept, bits 0-2 the protocol, bit 3 a 255-byte g_b; confirm, bits 0-1 the g_a
//!   sent (G_A[0], G_A[1], 255 bytes, zeros), bits 2-7 the fingerprint; discard, bits 0-2 the
//!   reason (none, missed, disconnect, hangup, busy, migrate), bits 3-7 the duration;
//!   signaling, d % 8 bytes of data.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use calls::{
    Call, CallError, CallRegistry, Effects, Ids, Protocol, Push, Reason, SessionRef, State,
    Timeouts,
};
use libfuzzer_sys::fuzz_target;
use mtproto::crypto::sha256;

const T0: i32 = 1_764_000_000;
const USERS: [i64; 4] = [1, 2, 3, 4];
const UNKNOWN_CALL: i64 = 999;
/// Ended calls the registry holds.
const RECENT: usize = 2;

struct SeqIds(i64);

impl Ids for SeqIds {
    fn call_id(&mut self) -> i64 {
        self.0 += 1;
        1000 + self.0
    }
    fn access_hash(&mut self) -> i64 {
        self.0 += 1;
        7_000_000 + self.0
    }
}

fn g_a(i: usize) -> Vec<u8> {
    match i {
        0 => (0..=255u8).collect(),
        _ => (0..=255u8).rev().collect(),
    }
}

fn protocol(i: u8) -> Protocol {
    let versions = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let p = |p2p, reflector, min_layer, max_layer, library_versions| Protocol {
        udp_p2p: p2p,
        udp_reflector: reflector,
        min_layer,
        max_layer,
        library_versions,
    };
    match i & 7 {
        0 | 1 => p(true, true, 65, 92, versions(&["2.4.4", "2.7.7"])),
        2 => p(false, true, 92, 92, versions(&["2.7.7"])),
        3 => p(true, false, 65, 65, vec![]),
        4 => p(false, false, 65, 92, versions(&["2.4.4"])),
        5 => p(true, true, 92, 65, versions(&["2.4.4"])),
        6 => p(true, true, 100, 120, versions(&["9.9.9"])),
        _ => p(true, true, 65, 92, versions(&["1.0.0"])),
    }
}

fn rank(s: State) -> u8 {
    match s {
        State::Requested => 0,
        State::Received => 1,
        State::Accepted => 2,
        State::Confirmed => 3,
        State::Discarded => 4,
    }
}

/// What every operation's effects have in common, for the checks.
#[derive(Default)]
struct Seen {
    persist: Vec<Arc<Call>>,
    pushes: Vec<Push>,
}

fn seen<R>(e: Effects<R>) -> (R, Seen) {
    (
        e.result,
        Seen {
            persist: e.persist,
            pushes: e.pushes,
        },
    )
}

/// Asserts that the bounded registry and the shadow changed and pushed the same.
fn same_effects(bounded: &Seen, shadow: &Seen, what: &str) {
    assert_eq!(
        format!("{:?}", (&bounded.persist, &bounded.pushes)),
        format!("{:?}", (&shadow.persist, &shadow.pushes)),
        "{what} differ from a registry holding every call"
    );
}

/// One operation's input, as `step` decoded it.
struct Input {
    op: u8,
    session: SessionRef,
    id: i64,
    hash: i64,
    b: u8,
    d: u8,
    now: i32,
}

/// Runs operation `i.op` (not a restart) on `reg`: what it returned when it returns a call,
/// its answer as text, and its effects.
fn apply(
    reg: &mut CallRegistry,
    ids: &mut SeqIds,
    i: &Input,
) -> (Option<Result<Arc<Call>, CallError>>, String, Seen) {
    let (session, id, hash, b, d, now) = (i.session, i.id, i.hash, i.b, i.d, i.now);
    match i.op {
        0 => {
            let callee = USERS[(b & 3) as usize];
            let g_a_hash = match d & 3 {
                1 => sha256(&[&g_a(1)]).to_vec(),
                2 => vec![0; 31],
                _ => sha256(&[&g_a(0)]).to_vec(),
            };
            let (result, effects) = seen(reg.request(
                session,
                callee,
                i32::from((b >> 2) & 3),
                g_a_hash,
                protocol(b >> 5),
                b & 16 != 0,
                now,
                ids,
            ));
            if let Ok(call) = &result {
                assert_eq!(call.participant_id, callee);
            }
            (Some(result.clone()), format!("{result:?}"), effects)
        }
        1 => {
            let (result, effects) = seen(reg.received(session, id, hash, now));
            if let Ok(ok) = result {
                assert!(ok);
            }
            (None, format!("{result:?}"), effects)
        }
        2 => {
            let g_b = vec![9; if d & 8 != 0 { 255 } else { 256 }];
            let (result, effects) = seen(reg.accept(session, id, hash, g_b, protocol(d), now));
            (Some(result.clone()), format!("{result:?}"), effects)
        }
        3 => {
            let g = match d & 3 {
                0 => g_a(0),
                1 => g_a(1),
                2 => vec![1; 255],
                _ => vec![0; 256],
            };
            let (result, effects) = seen(reg.confirm(session, id, hash, g, i64::from(d >> 2), now));
            (Some(result.clone()), format!("{result:?}"), effects)
        }
        4 => {
            let reason = match d & 7 {
                0 | 6 | 7 => None,
                1 => Some(Reason::Missed),
                2 => Some(Reason::Disconnect),
                3 => Some(Reason::Hangup),
                4 => Some(Reason::Busy),
                _ => Some(Reason::MigrateConferenceCall("slug".into())),
            };
            let (result, effects) =
                seen(reg.discard(session, id, hash, i32::from(d >> 3), reason, now));
            (Some(result.clone()), format!("{result:?}"), effects)
        }
        5 => {
            let data = vec![d; (d % 8) as usize];
            let (result, effects) = seen(reg.signaling(session, id, hash, data));
            if let Ok(ok) = result {
                assert!(ok);
            }
            (None, format!("{result:?}"), effects)
        }
        _ => (None, String::new(), seen(reg.tick(now)).1),
    }
}

struct World {
    reg: CallRegistry,
    ids: SeqIds,
    now: i32,
    /// Every call id ever created, in order.
    known: Vec<i64>,
    forgotten: HashSet<i64>,
    /// Caller-facing Received pushes per call.
    receive_pushes: HashMap<i64, usize>,
    /// Every call as last persisted (the model store).
    stored: HashMap<i64, Call>,
    /// The same operations on a registry that holds every call (never evicts, never restarts).
    shadow: CallRegistry,
    shadow_ids: SeqIds,
}

impl World {
    /// Every call as memory holds it, or else as the store does.
    fn snapshot(&self) -> HashMap<i64, Call> {
        self.known
            .iter()
            .filter_map(|id| self.view(*id).map(|c| (*id, c.clone())))
            .collect()
    }

    fn view(&self, id: i64) -> Option<&Call> {
        self.reg.get(id).or_else(|| self.stored.get(&id))
    }

    /// The keeper's part before an operation: what memory no longer holds but the store may,
    /// loaded back (ended calls only, as `topology/single.rs` does).
    fn read_back(&mut self, call: Option<i64>, random: Option<(i64, i32)>) {
        let Some(lookup) = self.reg.missing(call, random, self.now) else {
            return;
        };
        let row = match lookup {
            calls::Lookup::Id(id) => self.stored.get(&id),
            calls::Lookup::Random((caller, r)) => self
                .stored
                .values()
                .filter(|c| c.admin_id == caller && c.random_id == r)
                .max_by_key(|c| (c.discard().map_or(i32::MAX, |d| d.at), c.id)),
        };
        let ended: Vec<Call> = row
            .filter(|c| c.state() == State::Discarded)
            .cloned()
            .into_iter()
            .collect();
        self.reg.load(ended, self.now);
    }

    fn step(&mut self, [a, b, c, d]: [u8; 4]) {
        let op = a & 7;
        let user = USERS[((a >> 3) & 3) as usize];
        let session = SessionRef {
            user_id: user,
            key_id: user * 10 + i64::from((a >> 5) & 1),
        };
        self.now += match c >> 6 {
            0 => i32::from(c & 63) / 8,
            1 => i32::from(c & 63),
            2 => i32::from(c & 63) * 10,
            _ => i32::from(c & 63) * 600,
        };
        let now = self.now;
        // The server's timer acts at every deadline; without it a tombstone would outlive its
        // hour in one registry and not in the other.
        if self.shadow.next_deadline().is_some_and(|due| due <= now) {
            self.timer(now);
        }
        let id = match self.known.len() {
            _ if op == 0 => UNKNOWN_CALL,
            n => self
                .known
                .get(b as usize % (n + 1))
                .copied()
                .unwrap_or(UNKNOWN_CALL),
        };
        let random = (op == 0).then(|| (user, i32::from((b >> 2) & 3)));
        self.read_back((op != 0 && op < 6).then_some(id), random);
        let hash = match self.view(id) {
            Some(call) => match a >> 6 {
                0 | 1 => call.hash_for(user).unwrap_or(0),
                2 => call.hash_for(call.other(user)).unwrap_or(0),
                _ => call.hash_for(user).unwrap_or(0) ^ 1,
            },
            None => 0,
        };
        let before = self.snapshot();
        let (returned, effects) = match op {
            7 => {
                self.restart();
                (None, Seen::default())
            }
            _ => {
                let input = Input {
                    op,
                    session,
                    id,
                    hash,
                    b,
                    d,
                    now,
                };
                let (returned, shown, effects) = apply(&mut self.reg, &mut self.ids, &input);
                // The same operation on a registry that holds every call: the same answer and
                // the same effects, whatever left memory and was read back.
                let (_, shadow_shown, shadow) =
                    apply(&mut self.shadow, &mut self.shadow_ids, &input);
                assert_eq!(
                    shown, shadow_shown,
                    "answer differs from a registry holding every call"
                );
                same_effects(&effects, &shadow, "effects");
                if op == 0 {
                    if let Some(Ok(call)) = &returned {
                        assert_eq!(call.admin_id, user);
                        if !self.known.contains(&call.id) {
                            assert!(!before.contains_key(&call.id), "a call id reused");
                            self.known.push(call.id);
                        }
                    }
                    (None, effects)
                } else {
                    (returned, effects)
                }
            }
        };
        self.keep(&effects, op);
        self.check(&before, effects, returned, op);
        assert!(
            self.reg.recent_len() <= RECENT + 1,
            "{} ended calls held",
            self.reg.recent_len()
        );
    }

    /// Both registries' timers at `now`, with the same effects, checked like an explicit tick.
    fn timer(&mut self, now: i32) {
        let before = self.snapshot();
        let effects = seen(self.reg.tick(now)).1;
        let shadow = seen(self.shadow.tick(now)).1;
        same_effects(&effects, &shadow, "timers");
        self.keep(&effects, 6);
        self.check(&before, effects, None, 6);
    }

    /// The store takes what an operation persisted; a tick also sweeps rows past their hour.
    fn keep(&mut self, effects: &Seen, op: u8) {
        for call in &effects.persist {
            self.stored.insert(call.id, Call::clone(call));
        }
        if op == 6 {
            let tombstone = self.reg.timeouts().tombstone;
            let now = self.now;
            self.stored
                .retain(|_, c| c.discard().is_none_or(|d| d.at + tombstone > now));
        }
    }

    /// Every call through its stored form into a new registry, as after a server restart.
    fn restart(&mut self) {
        let mut calls = Vec::new();
        for call in self.snapshot().into_values() {
            let stored = Call::from_bytes(&call.to_bytes()).expect("stored form decodes");
            assert_eq!(stored, call, "stored form round trip");
            calls.push(stored);
        }
        // As the server restores: the live calls and the latest ended ones; the rest stay in
        // the store.
        let (mut ended, mut loaded): (Vec<Call>, Vec<Call>) = calls
            .into_iter()
            .partition(|c| c.state() == State::Discarded);
        ended.sort_by_key(|c| std::cmp::Reverse((c.discard().map(|d| d.at), c.id)));
        // All slots filled: older ended calls may stay in the store, ended by the oldest
        // loaded one.
        let unheld = ended.len() >= RECENT;
        let ended_by = ended
            .iter()
            .take(RECENT)
            .filter_map(|c| c.discard().map(|d| d.at))
            .min()
            .unwrap_or(self.now);
        loaded.extend(ended.into_iter().take(RECENT));
        let mut reg = CallRegistry::new(Timeouts::default()).with_recent_capacity(RECENT);
        if unheld {
            reg = reg.with_unheld_ended_calls(ended_by);
        }
        reg.load(loaded, self.now);
        self.reg = reg;
    }

    fn check(
        &mut self,
        before: &HashMap<i64, Call>,
        effects: Seen,
        returned: Option<Result<Arc<Call>, CallError>>,
        op: u8,
    ) {
        let after = self.snapshot();
        let tombstone = self.reg.timeouts().tombstone;

        // Answers that return a call return it as stored.
        if let Some(Ok(call)) = &returned {
            assert_eq!(
                after.get(&call.id),
                Some(call.as_ref()),
                "answer differs from the stored call"
            );
        }

        for (id, old) in before {
            match after.get(id) {
                None => {
                    // Only a tick forgets, and only tombstones past their hour.
                    assert_eq!(op, 6, "call {id} vanished outside a tick");
                    let d = old.discard().expect("a live call was forgotten");
                    assert_eq!(old.state(), State::Discarded);
                    assert!(
                        d.at + tombstone <= self.now,
                        "tombstone {id} forgotten early"
                    );
                    self.forgotten.insert(*id);
                }
                Some(new) => {
                    if old.state() == State::Discarded {
                        assert_eq!(new.state(), State::Discarded, "call {id} left Discarded");
                        assert_eq!(
                            new.discard(),
                            old.discard(),
                            "call {id}: discard info changed"
                        );
                        assert_eq!(new, old, "call {id} changed after Discarded");
                    }
                    assert!(
                        rank(new.state()) >= rank(old.state()),
                        "call {id} went back"
                    );
                    if let Some(r) = old.receive_date() {
                        assert_eq!(
                            new.receive_date(),
                            Some(r),
                            "call {id}: receive_date changed"
                        );
                    }
                    if new != old {
                        let persisted = effects.persist.iter().rev().find(|c| c.id == *id);
                        assert_eq!(
                            persisted.map(|c| c.as_ref()),
                            Some(new),
                            "call {id} changed, not persisted"
                        );
                    }
                }
            }
        }
        for (id, new) in &after {
            assert!(
                !self.forgotten.contains(id),
                "forgotten call {id} came back"
            );
            if !before.contains_key(id) {
                let persisted = effects.persist.iter().rev().find(|c| c.id == *id);
                assert_eq!(
                    persisted.map(|c| c.as_ref()),
                    Some(new),
                    "new call {id} not persisted"
                );
            }
            assert_eq!(new.discard().is_some(), new.state() == State::Discarded);
        }

        // receive_date reaches the caller at most once per call.
        for p in &effects.pushes {
            if let Push::Call { viewer, call, .. } = p
                && *viewer == call.admin_id
                && call.state() == State::Received
            {
                let n = self.receive_pushes.entry(call.id).or_default();
                *n += 1;
                assert!(
                    *n <= 1,
                    "receive_date pushed {n} times for call {}",
                    call.id
                );
            }
        }

        // busy and the live-call indexes against the calls themselves.
        let live: Vec<&Call> = after.values().filter(|c| c.state().is_live()).collect();
        let mut live_ids: Vec<i64> = live.iter().map(|c| c.id).collect();
        live_ids.sort_unstable();
        let mut reg_live: Vec<i64> = self.reg.live_calls().map(|c| c.id).collect();
        reg_live.sort_unstable();
        assert_eq!(reg_live, live_ids, "live_calls");
        for u in USERS {
            let expected = live.iter().any(|c| {
                c.admin_id == u
                    || (c.participant_id == u
                        && matches!(
                            c.state(),
                            State::Received | State::Accepted | State::Confirmed
                        ))
            });
            assert_eq!(self.reg.busy(u), expected, "busy({u})");
            let mut of: Vec<i64> = self.reg.live_calls_of(u).iter().map(|c| c.id).collect();
            of.sort_unstable();
            let mut want: Vec<i64> = live
                .iter()
                .filter(|c| c.admin_id == u || c.participant_id == u)
                .map(|c| c.id)
                .collect();
            want.sort_unstable();
            assert_eq!(of, want, "live_calls_of({u})");
            let accepted = live
                .iter()
                .filter(|c| {
                    c.participant_id == u && matches!(c.state(), State::Accepted | State::Confirmed)
                })
                .count();
            assert!(
                accepted <= 1,
                "user {u} is the callee of {accepted} accepted calls"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut w = World {
        reg: CallRegistry::new(Timeouts::default()).with_recent_capacity(RECENT),
        ids: SeqIds(0),
        now: T0,
        known: Vec::new(),
        forgotten: HashSet::new(),
        receive_pushes: HashMap::new(),
        stored: HashMap::new(),
        shadow: CallRegistry::new(Timeouts::default()).with_recent_capacity(usize::MAX),
        shadow_ids: SeqIds(0),
    };
    for op in data.chunks_exact(4).take(512) {
        w.step([op[0], op[1], op[2], op[3]]);
    }
    // Every call ends: the longest deadline (a confirmed call's max duration) is 6 h away.
    w.now += 7 * 3600;
    w.timer(w.now);
    assert_eq!(w.reg.live_calls().count(), 0, "calls left live");
    assert!(USERS.iter().all(|u| !w.reg.busy(*u)), "someone still busy");
    // And is forgotten an hour after it ended.
    w.now += w.reg.timeouts().tombstone + 1;
    w.timer(w.now);
    assert!(w.snapshot().is_empty(), "tombstones left");
    assert_eq!(w.reg.next_deadline(), None);
});
