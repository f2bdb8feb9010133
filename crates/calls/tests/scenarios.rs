//! Deterministic scenarios of the call state machine with an injected clock and scripted ids:
//! every cell of `docs/calls.md` §3.2, busy and auto-refuse (§4.3), multi-device (§5.3), each
//! timeout (§6.3), the bounded set of ended calls, and a property test of the invariants over
//! random operations.

use calls::{
    Call, CallError, CallRegistry, Effects, Ids, Lookup, Protocol, Push, PushTarget, Reason,
    SessionRef, State, Timeouts,
};
use sha2::Digest as _;
use std::sync::Arc;

const A: SessionRef = SessionRef {
    user_id: 1,
    key_id: 11,
};
const B1: SessionRef = SessionRef {
    user_id: 2,
    key_id: 21,
};
const B2: SessionRef = SessionRef {
    user_id: 2,
    key_id: 22,
};
const X: SessionRef = SessionRef {
    user_id: 3,
    key_id: 31,
};
const T0: i32 = 1_764_000_000;

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

fn proto() -> Protocol {
    Protocol {
        udp_p2p: true,
        udp_reflector: true,
        min_layer: 65,
        max_layer: 92,
        library_versions: vec!["2.4.4".into(), "2.7.7".into()],
    }
}

fn g_a() -> Vec<u8> {
    (0..256).map(|i| i as u8).collect()
}

fn g_a_hash() -> Vec<u8> {
    sha2::Sha256::digest(g_a()).to_vec()
}

struct World {
    reg: CallRegistry,
    ids: SeqIds,
}

impl World {
    fn new() -> World {
        World {
            reg: CallRegistry::new(Timeouts::default()),
            ids: SeqIds(0),
        }
    }

    fn request(
        &mut self,
        from: SessionRef,
        to: i64,
        random_id: i32,
    ) -> Effects<Result<Arc<Call>, CallError>> {
        self.reg.request(
            from,
            to,
            random_id,
            g_a_hash(),
            proto(),
            false,
            T0,
            &mut self.ids,
        )
    }

    fn call(&mut self, from: SessionRef, to: i64) -> Arc<Call> {
        let r = self.request(from, to, self.ids.0 as i32);
        r.result.unwrap()
    }

    /// A call from A to B whose `g_a_hash` commits to `g_a`.
    fn request_committing_to(&mut self, g_a: &[u8], random_id: i32) -> i64 {
        self.reg
            .request(
                A,
                2,
                random_id,
                sha2::Sha256::digest(g_a).to_vec(),
                proto(),
                false,
                T0,
                &mut SeqIds(900),
            )
            .result
            .unwrap()
            .id
    }

    fn hash(&self, id: i64, user: i64) -> i64 {
        self.reg.get(id).unwrap().hash_for(user).unwrap()
    }

    fn received(&mut self, s: SessionRef, id: i64) -> Effects<Result<bool, CallError>> {
        let h = self.hash(id, s.user_id);
        self.reg.received(s, id, h, T0 + 1)
    }

    fn accept(&mut self, s: SessionRef, id: i64) -> Effects<Result<Arc<Call>, CallError>> {
        let h = self.hash(id, s.user_id);
        self.reg.accept(s, id, h, vec![9; 256], proto(), T0 + 2)
    }

    fn confirm(&mut self, s: SessionRef, id: i64) -> Effects<Result<Arc<Call>, CallError>> {
        let h = self.hash(id, s.user_id);
        self.reg.confirm(s, id, h, g_a(), 42, T0 + 3)
    }

    fn discard(
        &mut self,
        s: SessionRef,
        id: i64,
        reason: Reason,
    ) -> Effects<Result<Arc<Call>, CallError>> {
        let h = self.hash(id, s.user_id);
        self.reg.discard(s, id, h, 30, Some(reason), T0 + 4)
    }

    /// A call from A to B brought to `state`.
    fn at(&mut self, state: State) -> i64 {
        let id = self.call(A, 2).id;
        match state {
            State::Requested => {}
            State::Received => assert_eq!(self.received(B1, id).result, Ok(true)),
            State::Accepted => assert!(self.accept(B1, id).result.is_ok()),
            State::Confirmed => {
                self.accept(B1, id).result.unwrap();
                self.confirm(A, id).result.unwrap();
            }
            State::Discarded => {
                self.discard(A, id, Reason::Hangup).result.unwrap();
            }
        }
        assert_eq!(self.reg.get(id).unwrap().state(), state);
        id
    }
}

const ALL: [State; 5] = [
    State::Requested,
    State::Received,
    State::Accepted,
    State::Confirmed,
    State::Discarded,
];

fn call_pushes(e: &Effects<impl std::fmt::Debug>) -> Vec<(PushTarget, State, Option<i32>)> {
    e.pushes
        .iter()
        .filter_map(|p| match p {
            Push::Call { target, call, .. } => Some((*target, call.state(), call.receive_date())),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ §3.2 matrix, receivedCall

#[test]
fn received_call_in_every_state() {
    for state in ALL {
        let mut w = World::new();
        let id = w.at(state);
        let e = w.received(B1, id);
        match state {
            State::Requested => {
                assert_eq!(e.result, Ok(true));
                assert_eq!(
                    call_pushes(&e),
                    vec![(PushTarget::User(1), State::Received, Some(T0 + 1))],
                    "receive_date to the caller"
                );
                assert_eq!(e.persist.len(), 1, "the transition is persisted");
            }
            State::Received | State::Accepted | State::Confirmed => {
                assert_eq!(e.result, Ok(true), "{state:?}");
                assert!(e.is_empty(), "{state:?}: no second receive_date push");
            }
            State::Discarded => assert_eq!(e.result, Err(CallError::CallAlreadyDeclined)),
        }
    }
}

#[test]
fn received_call_refusals() {
    let mut w = World::new();
    let id = w.at(State::Requested);
    let h = w.hash(id, 2);
    assert_eq!(
        w.reg.received(B1, id + 99, h, T0).result,
        Err(CallError::CallPeerInvalid),
        "unknown id"
    );
    assert_eq!(
        w.reg.received(B1, id, h ^ 1, T0).result,
        Err(CallError::CallPeerInvalid),
        "wrong access hash"
    );
    let ha = w.hash(id, 1);
    assert_eq!(
        w.reg.received(A, id, ha, T0).result,
        Err(CallError::CallPeerInvalid),
        "the caller"
    );
    assert_eq!(
        w.reg.received(X, id, h, T0).result,
        Err(CallError::CallPeerInvalid),
        "a stranger"
    );
    // A stranger presenting the caller's hash is still a stranger.
    assert_eq!(
        w.reg.received(X, id, ha, T0).result,
        Err(CallError::CallPeerInvalid)
    );
}

#[test]
fn every_device_may_acknowledge_once_each_without_repeated_pushes() {
    let mut w = World::new();
    let id = w.at(State::Requested);
    assert_eq!(call_pushes(&w.received(B1, id)).len(), 1);
    for _ in 0..3 {
        let e = w.received(B2, id);
        assert_eq!(e.result, Ok(true));
        assert!(e.pushes.is_empty());
    }
}

// ------------------------------------------------------------------ §3.2 matrix, the rest

#[test]
fn accept_call_in_every_state() {
    for state in ALL {
        let mut w = World::new();
        let id = w.at(state);
        let e = w.accept(B2, id);
        match state {
            State::Requested | State::Received => {
                let call = e.result.as_ref().unwrap();
                assert_eq!(call.state(), State::Accepted);
                assert_eq!(
                    call.receive_date(),
                    Some(if state == State::Received {
                        T0 + 1
                    } else {
                        T0 + 2
                    }),
                    "accept implies received"
                );
                assert!(e.pushes.iter().any(|p| matches!(p, Push::Call { target: PushTarget::User(1), call, .. } if call.state() == State::Accepted)));
                assert!(e.pushes.iter().any(|p| matches!(
                    p,
                    Push::AnsweredElsewhere {
                        target: PushTarget::UserExcept(2, 22),
                        ..
                    }
                )));
            }
            State::Accepted | State::Confirmed => {
                assert_eq!(e.result, Err(CallError::CallAlreadyAccepted))
            }
            State::Discarded => assert_eq!(e.result, Err(CallError::CallAlreadyDeclined)),
        }
    }
    let mut w = World::new();
    let id = w.at(State::Requested);
    let ha = w.hash(id, 1);
    assert_eq!(
        w.reg.accept(A, id, ha, vec![9; 256], proto(), T0).result,
        Err(CallError::CallPeerInvalid),
        "the caller"
    );
    let hb = w.hash(id, 2);
    assert_eq!(
        w.reg.accept(B1, id, hb, vec![0; 256], proto(), T0).result,
        Err(CallError::DhGBInvalid)
    );
    let no_overlap = Protocol {
        min_layer: 93,
        max_layer: 100,
        ..proto()
    };
    assert_eq!(
        w.reg
            .accept(B1, id, hb, vec![9; 256], no_overlap, T0)
            .result,
        Err(CallError::CallProtocolCompatLayerInvalid)
    );
    let no_flags = Protocol {
        udp_p2p: false,
        udp_reflector: false,
        ..proto()
    };
    assert_eq!(
        w.reg.accept(B1, id, hb, vec![9; 256], no_flags, T0).result,
        Err(CallError::CallProtocolFlagsInvalid)
    );
}

#[test]
fn accept_negotiates_the_protocol() {
    let mut w = World::new();
    let id = w.at(State::Received);
    let hb = w.hash(id, 2);
    let callee = Protocol {
        udp_p2p: false,
        udp_reflector: true,
        min_layer: 70,
        max_layer: 120,
        library_versions: vec!["2.7.7".into(), "9.9.9".into()],
    };
    let call = w
        .reg
        .accept(B1, id, hb, vec![9; 256], callee, T0)
        .result
        .unwrap();
    let n = call.negotiated().unwrap();
    assert_eq!(
        (
            n.min_layer,
            n.max_layer,
            n.udp_p2p,
            n.library_versions.clone()
        ),
        (70, 92, false, vec!["2.7.7".to_owned()])
    );
}

#[test]
fn confirm_call_in_every_state() {
    for state in ALL {
        let mut w = World::new();
        let id = w.at(state);
        let e = w.confirm(A, id);
        match state {
            State::Requested | State::Received => {
                assert_eq!(e.result, Err(CallError::CallPeerInvalid))
            }
            State::Accepted => {
                let call = e.result.unwrap();
                assert_eq!(
                    (
                        call.state(),
                        call.keys().map(|k| k.fingerprint),
                        call.start_date()
                    ),
                    (State::Confirmed, Some(42), Some(T0 + 3))
                );
                assert!(
                    matches!(
                        &e.pushes[..],
                        [Push::Call {
                            target: PushTarget::Session(B1),
                            viewer: 2,
                            ..
                        }]
                    ),
                    "g_a to the accepting device"
                );
            }
            State::Confirmed => {
                assert_eq!(
                    e.result.unwrap().state(),
                    State::Confirmed,
                    "a repeat returns the same call"
                );
                assert!(e.pushes.is_empty());
            }
            State::Discarded => assert_eq!(e.result, Err(CallError::CallAlreadyDeclined)),
        }
    }
    let mut w = World::new();
    let id = w.at(State::Accepted);
    let hb = w.hash(id, 2);
    assert_eq!(
        w.reg.confirm(B1, id, hb, g_a(), 42, T0).result,
        Err(CallError::CallPeerInvalid),
        "the callee"
    );
}

#[test]
fn confirm_with_a_g_a_that_does_not_match_its_hash_ends_the_call() {
    let mut w = World::new();
    let id = w.at(State::Accepted);
    let ha = w.hash(id, 1);
    let e = w.reg.confirm(A, id, ha, vec![1; 256], 42, T0 + 3);
    assert_eq!(e.result, Err(CallError::CallPeerInvalid));
    let call = w.reg.get(id).unwrap();
    assert_eq!(call.state(), State::Discarded);
    assert_eq!(call.discard().unwrap().reason, Some(Reason::Disconnect));
    assert_eq!(call_pushes(&e).len(), 2, "both sides are told");
    assert!(!w.reg.busy(1) && !w.reg.busy(2));
}

#[test]
fn discard_call_in_every_state_from_either_side() {
    for state in ALL {
        for who in [A, B1] {
            let mut w = World::new();
            let id = w.at(state);
            let e = w.discard(who, id, Reason::Hangup);
            let call = e.result.clone().unwrap();
            assert_eq!(call.state(), State::Discarded, "{state:?} by {who:?}");
            if state == State::Discarded {
                assert!(e.is_empty(), "the tombstone is answered as it is");
                continue;
            }
            let d = call.discard().unwrap();
            assert_eq!(d.reason, Some(Reason::Hangup), "the reason is echoed");
            assert_eq!(d.duration, (state == State::Confirmed).then_some(30));
            assert_eq!(e.history.len(), 1, "one history entry per call");
            let other = if who == A { 2 } else { 1 };
            assert!(call_pushes(&e).contains(&(
                PushTarget::User(other),
                State::Discarded,
                call.receive_date()
            )));
            assert!(!w.reg.busy(1) && !w.reg.busy(2));
        }
    }
    let mut w = World::new();
    let id = w.at(State::Requested);
    assert_eq!(
        w.reg.discard(X, id, 1, 0, None, T0).result,
        Err(CallError::CallPeerInvalid)
    );
}

#[test]
fn a_device_that_did_not_accept_cannot_end_the_call() {
    for state in [State::Accepted, State::Confirmed] {
        let mut w = World::new();
        let id = w.at(state);
        assert_eq!(
            w.discard(B2, id, Reason::Busy).result,
            Err(CallError::CallAlreadyAccepted)
        );
        assert!(w.discard(B1, id, Reason::Hangup).result.is_ok());
    }
}

#[test]
fn signaling_in_every_state() {
    for state in ALL {
        let mut w = World::new();
        let id = w.at(state);
        let ha = w.hash(id, 1);
        let e = w.reg.signaling(A, id, ha, vec![1, 2, 3]);
        match state {
            State::Requested | State::Received => {
                assert_eq!(e.result, Err(CallError::CallNotActive))
            }
            State::Accepted | State::Confirmed => {
                assert_eq!(e.result, Ok(true));
                assert_eq!(
                    e.pushes,
                    vec![Push::Signaling {
                        target: PushTarget::Session(B1),
                        call_id: id,
                        data: vec![1, 2, 3]
                    }]
                );
                let hb = w.hash(id, 2);
                let back = w.reg.signaling(B1, id, hb, vec![4]);
                assert_eq!(
                    back.pushes,
                    vec![Push::Signaling {
                        target: PushTarget::Session(A),
                        call_id: id,
                        data: vec![4]
                    }]
                );
            }
            State::Discarded => {
                assert_eq!(e.result, Ok(true), "late packets are dropped silently");
                assert!(e.pushes.is_empty());
            }
        }
    }
}

// ------------------------------------------------------------------ busy (§4.3)

fn is_busy_refusal(e: &Effects<Result<Arc<Call>, CallError>>, caller: i64) -> bool {
    let waiting = e
        .result
        .as_ref()
        .is_ok_and(|c| c.state() == State::Requested);
    let pushes = call_pushes(e);
    let only_caller = pushes
        .iter()
        .all(|(t, s, _)| *t == PushTarget::User(caller) && *s == State::Discarded);
    waiting
        && !pushes.is_empty()
        && only_caller
        && e.history
            .first()
            .is_some_and(|h| h.reason == Some(Reason::Busy))
}

#[test]
fn an_unacknowledged_callee_is_not_busy() {
    let mut w = World::new();
    w.at(State::Requested);
    assert!(!w.reg.busy(2));
    let e = w.request(X, 2, 77);
    assert!(
        matches!(
            &call_pushes(&e)[..],
            [(PushTarget::User(2), State::Requested, None)]
        ),
        "the callee's devices ring"
    );
}

#[test]
fn an_acknowledging_callee_refuses_every_new_call_as_busy() {
    for state in [State::Received, State::Accepted, State::Confirmed] {
        let mut w = World::new();
        w.at(state);
        assert!(w.reg.busy(2));
        let e = w.request(X, 2, 77);
        assert!(is_busy_refusal(&e, 3), "{state:?}: {e:?}");
        assert!(
            !e.pushes.iter().any(|p| matches!(
                p,
                Push::Call {
                    target: PushTarget::User(2),
                    ..
                }
            )),
            "nothing rings"
        );
    }
}

#[test]
fn the_caller_of_a_live_call_is_busy() {
    let mut w = World::new();
    w.at(State::Requested);
    assert!(w.reg.busy(1));
    assert!(is_busy_refusal(&w.request(X, 1, 5), 3));
}

#[test]
fn many_callers_to_a_busy_callee_all_get_busy() {
    let mut w = World::new();
    w.at(State::Received);
    for caller in 100..1100 {
        let s = SessionRef {
            user_id: caller,
            key_id: caller * 10,
        };
        assert!(is_busy_refusal(&w.request(s, 2, 1), caller));
    }
    assert_eq!(w.reg.live_calls().count(), 1);
}

#[test]
fn busy_ends_on_every_terminal_path() {
    type End = fn(&mut World, i64);
    let paths: [(&str, State, End); 6] = [
        ("caller hangs up", State::Confirmed, |w, id| {
            drop(w.discard(A, id, Reason::Hangup))
        }),
        ("callee declines", State::Received, |w, id| {
            drop(w.discard(B1, id, Reason::Busy))
        }),
        ("ring timeout", State::Received, |w, _| {
            drop(w.reg.tick(T0 + 1 + 90 + 5))
        }),
        ("receive timeout", State::Requested, |w, _| {
            drop(w.reg.tick(T0 + 20 + 5))
        }),
        ("never confirmed", State::Accepted, |w, _| {
            drop(w.reg.tick(T0 + 2 + 20 + 5))
        }),
        ("g_a mismatch", State::Accepted, |w, id| {
            let h = w.hash(id, 1);
            drop(w.reg.confirm(A, id, h, vec![0; 256], 1, T0 + 3));
        }),
    ];
    for (name, state, end) in paths {
        let mut w = World::new();
        let id = w.at(state);
        end(&mut w, id);
        assert_eq!(w.reg.get(id).unwrap().state(), State::Discarded, "{name}");
        assert!(!w.reg.busy(2) && !w.reg.busy(1), "{name}");
        assert!(
            !is_busy_refusal(&w.request(X, 2, 9), 3),
            "{name}: a new call rings again"
        );
    }
}

// ------------------------------------------------------------------ timeouts (§6.3)

#[test]
fn timeouts_end_calls_with_the_spec_reasons() {
    let cases = [
        (State::Requested, T0 + 25, Reason::Missed),
        (State::Received, T0 + 1 + 95, Reason::Missed),
        (State::Accepted, T0 + 2 + 25, Reason::Disconnect),
    ];
    for (state, due, reason) in cases {
        let mut w = World::new();
        let id = w.at(state);
        assert_eq!(w.reg.next_deadline(), Some(due));
        assert!(
            w.reg.tick(due - 1).is_empty(),
            "{state:?}: not before its deadline"
        );
        let e = w.reg.tick(due);
        let call = w.reg.get(id).unwrap();
        assert_eq!(
            call.discard().unwrap().reason,
            Some(reason.clone()),
            "{state:?}"
        );
        assert_eq!(call_pushes(&e).len(), 2, "both parties are told");
        assert_eq!(e.history[0].reason, Some(reason));
        // The tombstone leaves memory after an hour, with nothing to store or send.
        let later = w.reg.tick(due + 3600);
        assert!(later.is_empty());
        assert!(w.reg.get(id).is_none());
        assert_eq!(w.reg.evictions(), 1);
    }
}

#[test]
fn retries_of_a_request_return_the_same_call() {
    let mut w = World::new();
    let first = w.request(A, 2, 5).result.unwrap();
    let again = w.request(A, 2, 5);
    assert_eq!(again.result.unwrap().id, first.id);
    assert!(again.pushes.is_empty());
    w.discard(A, first.id, Reason::Missed);
    assert_eq!(w.request(A, 2, 5).result, Err(CallError::RandomIdDuplicate));
    assert_eq!(w.request(A, 1, 6).result, Err(CallError::UserIdInvalid));
    let bad = w
        .reg
        .request(A, 2, 7, vec![0; 31], proto(), false, T0, &mut SeqIds(500));
    assert_eq!(bad.result, Err(CallError::DhGAInvalid));
}

#[test]
fn stored_form_round_trips() {
    for state in ALL {
        let mut w = World::new();
        let id = w.at(state);
        let call = w.reg.get(id).unwrap().clone();
        assert_eq!(Call::from_bytes(&call.to_bytes()).unwrap(), call);
    }
    assert!(Call::from_bytes(&[1, 2, 3]).is_err());
}

// ------------------------------------------------------------------ invariants over random runs

#[test]
fn invariants_hold_over_random_operation_sequences() {
    let users = [1i64, 2, 3, 4];
    for seed in 0..300u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = World::new();
        let mut now = T0;
        let mut receive_pushes: std::collections::HashMap<i64, usize> = Default::default();
        for _ in 0..60 {
            now += next(20) as i32;
            let user = users[next(4) as usize];
            let session = SessionRef {
                user_id: user,
                key_id: user * 10 + next(2) as i64,
            };
            let ids: Vec<i64> = w.reg.live_calls().map(|c| c.id).collect();
            let target = ids.get(next(ids.len() as u64 + 1) as usize).copied();
            let discarded_before: Vec<i64> = (1001..1200)
                .filter(|id| {
                    w.reg
                        .get(*id)
                        .is_some_and(|c| c.state() == State::Discarded)
                })
                .collect();
            let effects_pushes: Vec<Push> = match (next(7), target) {
                (0, _) | (_, None) => {
                    let to = users[next(4) as usize];
                    w.reg
                        .request(
                            session,
                            to,
                            next(1000) as i32,
                            g_a_hash(),
                            proto(),
                            false,
                            now,
                            &mut w.ids,
                        )
                        .pushes
                }
                (1, Some(id)) => {
                    let h = w.reg.get(id).unwrap().hash_for(user).unwrap_or(0);
                    w.reg.received(session, id, h, now).pushes
                }
                (2, Some(id)) => {
                    let h = w.reg.get(id).unwrap().hash_for(user).unwrap_or(0);
                    w.reg
                        .accept(session, id, h, vec![1; 256], proto(), now)
                        .pushes
                }
                (3, Some(id)) => {
                    let h = w.reg.get(id).unwrap().hash_for(user).unwrap_or(0);
                    let g = if next(4) == 0 { vec![0; 256] } else { g_a() };
                    w.reg.confirm(session, id, h, g, 1, now).pushes
                }
                (4, Some(id)) => {
                    let h = w.reg.get(id).unwrap().hash_for(user).unwrap_or(0);
                    w.reg
                        .discard(session, id, h, 1, Some(Reason::Hangup), now)
                        .pushes
                }
                (5, Some(id)) => {
                    let h = w.reg.get(id).unwrap().hash_for(user).unwrap_or(0);
                    w.reg.signaling(session, id, h, vec![1]).pushes
                }
                _ => w.reg.tick(now).pushes,
            };
            for p in &effects_pushes {
                if let Push::Call { call, .. } = p
                    && call.state() == State::Received
                {
                    *receive_pushes.entry(call.id).or_default() += 1;
                }
            }
            // No call leaves Discarded.
            for id in discarded_before {
                assert!(
                    w.reg.get(id).is_none_or(|c| c.state() == State::Discarded),
                    "seed {seed}: call {id} revived"
                );
            }
            // busy(u) iff u is the caller of a live call or an acknowledging callee.
            for u in users {
                let expected = w.reg.live_calls().any(|c| {
                    c.admin_id == u
                        || (c.participant_id == u
                            && matches!(
                                c.state(),
                                State::Received | State::Accepted | State::Confirmed
                            ))
                });
                assert_eq!(w.reg.busy(u), expected, "seed {seed}: busy({u})");
            }
            // A callee is in at most one accepted call.
            for u in users {
                let accepted = w
                    .reg
                    .live_calls()
                    .filter(|c| {
                        c.participant_id == u
                            && matches!(c.state(), State::Accepted | State::Confirmed)
                    })
                    .count();
                assert!(
                    accepted <= 1,
                    "seed {seed}: user {u} in {accepted} accepted calls"
                );
            }
        }
        // receive_date is pushed at most once per call.
        assert!(
            receive_pushes.values().all(|n| *n <= 1),
            "seed {seed}: {receive_pushes:?}"
        );
        // Every call ends.
        w.reg.tick(now + 7 * 3600);
        assert_eq!(
            w.reg.live_calls().count(),
            0,
            "seed {seed}: calls left ringing"
        );
        assert!(users.iter().all(|u| !w.reg.busy(*u)));
    }
}

/// Telegram's 2048-bit prime, big-endian (the group of `messages.getDhConfig`).
fn prime() -> Vec<u8> {
    mtproto::crypto::dh::DH_PRIME.to_vec()
}

#[test]
fn dh_values_are_numbers_whatever_their_length() {
    // 255 bytes: a value below 2^2040 whose leading zero byte the client dropped, as
    // Telegram Android's BigInteger.toByteArray() and ntgcalls do.
    let short_g_b: Vec<u8> = std::iter::repeat_n(0x5a, 255).collect();
    let short_g_a: Vec<u8> = std::iter::repeat_n(0x3c, 255).collect();
    let mut w = World::new();
    let id = w.request_committing_to(&short_g_a, 77);
    let hb = w.hash(id, 2);
    let accepted = w.reg.accept(B1, id, hb, short_g_b.clone(), proto(), T0 + 1);
    assert_eq!(
        accepted.result.unwrap().answer().map(|a| a.g_b.clone()),
        Some(short_g_b.clone())
    );
    let ha = w.hash(id, 1);
    // The hash is of the bytes as sent: the 256-byte form of the same number does not match.
    let mut padded = vec![0u8];
    padded.extend_from_slice(&short_g_a);
    let e = w.reg.confirm(A, id, ha, padded, 42, T0 + 2);
    assert_eq!(e.result, Err(CallError::CallPeerInvalid));

    let mut w = World::new();
    let id = w.request_committing_to(&short_g_a, 78);
    let hb = w.hash(id, 2);
    assert!(
        w.reg
            .accept(B1, id, hb, short_g_b, proto(), T0 + 1)
            .result
            .is_ok()
    );
    let ha = w.hash(id, 1);
    let confirmed = w.reg.confirm(A, id, ha, short_g_a.clone(), 42, T0 + 2);
    assert_eq!(
        confirmed.result.unwrap().keys().map(|k| k.g_a.clone()),
        Some(short_g_a)
    );

    // Out of range, whatever the length: 0, below 2^1984 (248 bytes), p - 1, p, 257 bytes.
    let mut p_minus_1 = prime();
    p_minus_1[255] -= 1;
    let mut long = vec![0u8];
    long.extend(std::iter::repeat_n(0x11, 256));
    let refused: [(&str, Vec<u8>); 6] = [
        ("zero", vec![0; 256]),
        ("empty", vec![]),
        ("below 2^1984", vec![0xff; 248]),
        ("p - 1", p_minus_1),
        ("p", prime()),
        ("257 bytes", long),
    ];
    for (name, g_b) in refused {
        let mut w = World::new();
        let id = w.at(State::Received);
        let hb = w.hash(id, 2);
        assert_eq!(
            w.reg
                .accept(B1, id, hb, g_b.clone(), proto(), T0 + 2)
                .result,
            Err(CallError::DhGBInvalid),
            "{name}"
        );
        let mut w = World::new();
        let id = w.at(State::Accepted);
        let ha = w.hash(id, 1);
        assert_eq!(
            w.reg.confirm(A, id, ha, g_b, 42, T0 + 3).result,
            Err(CallError::DhGAInvalid),
            "{name}: g_a"
        );
        assert_eq!(w.reg.get(id).unwrap().state(), State::Discarded);
    }
}

#[test]
fn each_operation_names_what_it_did() {
    use calls::{CallEvent, Ending};
    let mut w = World::new();
    let created = w.request(A, 2, 1);
    let id = created.result.clone().unwrap().id;
    assert_eq!(created.events, vec![CallEvent::Created { call_id: id }]);
    assert_eq!(
        w.received(B1, id).events,
        vec![CallEvent::Acknowledged { call_id: id }]
    );
    assert_eq!(
        w.received(B2, id).events,
        vec![],
        "a second device changes nothing"
    );
    // A third party calling the acknowledging callee is refused as busy, naming the call.
    let refused = w.request(X, 2, 2);
    let refused_id = refused.result.clone().unwrap().id;
    assert_eq!(
        refused.events,
        vec![
            CallEvent::RefusedBusy {
                call_id: refused_id,
                caller: X.user_id,
                callee: 2,
                busy_in: Some(id),
            },
            CallEvent::Ended {
                call_id: refused_id,
                reason: Some(Reason::Busy),
                by: Ending::Busy,
                answered: false,
            },
        ]
    );
    assert_eq!(
        w.accept(B1, id).events,
        vec![CallEvent::Answered { call_id: id }]
    );
    assert_eq!(
        w.confirm(A, id).events,
        vec![CallEvent::Confirmed { call_id: id }]
    );
    assert_eq!(
        w.discard(B1, id, Reason::Hangup).events,
        vec![CallEvent::Ended {
            call_id: id,
            reason: Some(Reason::Hangup),
            by: Ending::Callee,
            answered: true,
        }]
    );
    // Unanswered: the caller cancels; the timer ends another.
    let cancelled = w.call(A, 2).id;
    assert_eq!(
        w.discard(A, cancelled, Reason::Hangup).events,
        vec![CallEvent::Ended {
            call_id: cancelled,
            reason: Some(Reason::Hangup),
            by: Ending::Caller,
            answered: false,
        }]
    );
    let missed = w.call(A, 2).id;
    let due = w.reg.next_deadline().unwrap();
    assert_eq!(
        w.reg.tick(due).events,
        vec![CallEvent::Ended {
            call_id: missed,
            reason: Some(Reason::Missed),
            by: Ending::Timer,
            answered: false,
        }]
    );
}

// ------------------------------------------------------------------ the bounded set of ended calls

#[test]
fn ended_calls_past_the_capacity_leave_memory_and_answer_the_same_once_loaded_back() {
    let mut w = World::new();
    w.reg = CallRegistry::new(Timeouts::default()).with_recent_capacity(2);
    let mut ended = Vec::new();
    for random_id in 0..5 {
        let id = w.request(A, 2, random_id).result.unwrap().id;
        assert_eq!(w.received(B1, id).result, Ok(true));
        ended.push(w.discard(A, id, Reason::Hangup).result.unwrap());
        assert!(w.reg.recent_len() <= 2, "never more than the capacity");
    }
    assert_eq!(w.reg.evictions(), 3);
    let oldest = ended[0].clone();
    let (id, caller_hash, callee_hash) = (oldest.id, oldest.admin_hash, oldest.participant_hash);
    assert!(w.reg.get(id).is_none(), "the oldest left memory");
    assert!(w.reg.by_random(A.user_id, 0).is_none());
    assert!(w.reg.get(ended[4].id).is_some(), "the newest stays");
    // The keeper is told to read it back; a random_id never used needs no read.
    let now = T0 + 9;
    assert_eq!(w.reg.missing(Some(id), None, now), Some(Lookup::Id(id)));
    assert_eq!(
        w.reg.missing(None, Some((A.user_id, 0)), now),
        Some(Lookup::Random((A.user_id, 0)))
    );
    assert_eq!(w.reg.missing(None, Some((A.user_id, 99)), now), None);
    assert_eq!(w.reg.missing(Some(ended[4].id), None, now), None);
    // Unknown to memory, it is unknown to the rules: the keeper must read it back first.
    assert_eq!(
        w.reg.received(B1, id, callee_hash, T0 + 9).result,
        Err(CallError::CallPeerInvalid)
    );

    // Read back from storage (its stored form), every late request gets the tombstone's answer.
    let stored = Call::from_bytes(&oldest.to_bytes()).unwrap();
    w.reg.load([stored.clone()], now);
    assert_eq!(w.reg.recent_len(), 2, "the bound kept by evicting another");
    assert_eq!(w.reg.evictions(), 4);
    assert_eq!(w.reg.missing(Some(id), Some((A.user_id, 0)), now), None);
    let late = w.reg.received(B1, id, callee_hash, T0 + 9);
    assert_eq!(late.result, Err(CallError::CallAlreadyDeclined));
    let again = w
        .reg
        .discard(A, id, caller_hash, 0, Some(Reason::Hangup), T0 + 9);
    assert_eq!(
        again.result,
        Ok(Arc::new(stored.clone())),
        "discarding again answers the tombstone"
    );
    assert!(again.is_empty(), "and changes nothing");
    assert_eq!(w.reg.check_participant(2, id, callee_hash), Ok(()));
    assert_eq!(w.request(A, 2, 0).result, Err(CallError::RandomIdDuplicate));
    // Loading what memory already holds keeps memory's copy.
    w.reg.load([stored], now);
    assert_eq!(w.reg.recent_len(), 2);
    assert_eq!(w.reg.evictions(), 4);
}

#[test]
fn after_a_restart_new_requests_check_storage_for_their_random_id() {
    // Restored with none of its ended calls held, a registry cannot know which random_ids
    // the stored ones took: for a tombstone period it asks.
    let reg = CallRegistry::new(Timeouts::default())
        .with_recent_capacity(2)
        .with_unheld_ended_calls(T0);
    assert_eq!(
        reg.missing(None, Some((A.user_id, 5)), T0 + 10),
        Some(Lookup::Random((A.user_id, 5)))
    );
    assert_eq!(reg.missing(None, Some((A.user_id, 5)), T0 + 3600), None);
}
