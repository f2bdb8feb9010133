//! The call record (`docs/calls.md` §2) and its compact binary form for storage.

use tl::{DecodeError, Layer, Reader, Writer};

/// Where a call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created by `phone.requestCall`; the callee's devices ring.
    Requested,
    /// Acknowledged by `phone.receivedCall`; the caller rings.
    Received,
    /// Accepted by one of the callee's devices.
    Accepted,
    /// Confirmed by the caller: keys exchanged, media may flow.
    Confirmed,
    /// Ended; kept as a tombstone for late requests.
    Discarded,
}

impl State {
    /// Not ended.
    pub fn is_live(self) -> bool {
        self != State::Discarded
    }

    fn code(self) -> u8 {
        match self {
            State::Requested => 0,
            State::Received => 1,
            State::Accepted => 2,
            State::Confirmed => 3,
            State::Discarded => 4,
        }
    }

    fn from_code(c: u8) -> Option<State> {
        Some(match c {
            0 => State::Requested,
            1 => State::Received,
            2 => State::Accepted,
            3 => State::Confirmed,
            4 => State::Discarded,
            _ => return None,
        })
    }

    /// A name for logs and storage.
    pub fn name(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Received => "received",
            State::Accepted => "accepted",
            State::Confirmed => "confirmed",
            State::Discarded => "discarded",
        }
    }
}

/// Why a call ended (`PhoneCallDiscardReason`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not answered.
    Missed,
    /// The connection failed.
    Disconnect,
    /// Hung up.
    Hangup,
    /// The callee was busy (also what clients send to decline).
    Busy,
    /// Moved to a conference call.
    MigrateConferenceCall(String),
}

/// `PhoneCallProtocol`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// `udp_p2p`.
    pub udp_p2p: bool,
    /// `udp_reflector`.
    pub udp_reflector: bool,
    /// `min_layer`.
    pub min_layer: i32,
    /// `max_layer`.
    pub max_layer: i32,
    /// `library_versions`.
    pub library_versions: Vec<String>,
}

/// One client session (its auth key): where requests came from and updates go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRef {
    /// The user.
    pub user_id: i64,
    /// The auth key id of the session.
    pub key_id: i64,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discard {
    /// The reason, if one was given.
    pub reason: Option<Reason>,
    /// Seconds the call lasted (confirmed calls only).
    pub duration: Option<i32>,
    /// Who ended it (none for server timeouts).
    pub by: Option<i64>,
    /// Unix time it ended.
    pub at: i32,
    /// Ask the clients for a rating.
    pub need_rating: bool,
    /// Ask the clients for debug logs.
    pub need_debug: bool,
}

/// The callee's answer: what the accepting device sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The callee session that accepted.
    pub session: SessionRef,
    /// Its `g_b`.
    pub g_b: Vec<u8>,
    /// Its protocol.
    pub protocol: Protocol,
    /// The protocol both sides share.
    pub negotiated: Protocol,
    /// When it accepted.
    pub date: i32,
}

/// The caller's confirmation: the key exchange is complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The caller's `g_a`.
    pub g_a: Vec<u8>,
    /// The key fingerprint the caller sent.
    pub fingerprint: i64,
    /// When it confirmed (the call's start).
    pub date: i32,
}

/// How far a call got: each step carries what it brought, so a call cannot be accepted
/// without a `g_b` or confirmed without keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Created by `phone.requestCall`; the callee's devices ring.
    Requested,
    /// Acknowledged by `phone.receivedCall` at `at`; the caller rings.
    Received {
        /// When the first acknowledgement arrived.
        at: i32,
    },
    /// Accepted by one of the callee's devices.
    Accepted {
        /// When it was acknowledged (the acceptance, if it came first).
        received_at: i32,
        /// The accepting device's answer.
        answer: Answer,
    },
    /// Confirmed by the caller: keys exchanged, media may flow.
    Confirmed {
        /// When it was acknowledged.
        received_at: i32,
        /// The accepting device's answer.
        answer: Answer,
        /// The caller's confirmation.
        keys: Keys,
    },
}

/// Where a call stands: live at a stage, or ended after reaching one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not ended.
    Live(Stage),
    /// Ended; kept as a tombstone for late requests.
    Ended(Stage, Discard),
}

/// A one-to-one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Call id (random, non-zero).
    pub id: i64,
    /// `random_id` of the `phone.requestCall`.
    pub random_id: i32,
    /// Unix time of creation.
    pub date: i32,
    /// A video call.
    pub video: bool,
    /// The caller.
    pub admin_id: i64,
    /// The callee.
    pub participant_id: i64,
    /// The caller's access hash for the call.
    pub admin_hash: i64,
    /// The callee's access hash for the call.
    pub participant_hash: i64,
    /// SHA-256 of the caller's `g_a`.
    pub g_a_hash: Vec<u8>,
    /// The caller's protocol.
    pub caller_protocol: Protocol,
    /// The caller's session.
    pub caller_session: SessionRef,
    /// Where things stand, with what each step brought.
    pub phase: Phase,
}

impl Stage {
    /// The state this stage is, live.
    pub fn state(&self) -> State {
        match self {
            Stage::Requested => State::Requested,
            Stage::Received { .. } => State::Received,
            Stage::Accepted { .. } => State::Accepted,
            Stage::Confirmed { .. } => State::Confirmed,
        }
    }
}

impl Call {
    /// Where things stand.
    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Live(stage) => stage.state(),
            Phase::Ended(..) => State::Discarded,
        }
    }

    /// The stage reached, live or not.
    pub fn stage(&self) -> &Stage {
        match &self.phase {
            Phase::Live(stage) | Phase::Ended(stage, _) => stage,
        }
    }

    /// When the callee first acknowledged (or accepted), if it did.
    pub fn receive_date(&self) -> Option<i32> {
        match self.stage() {
            Stage::Requested => None,
            Stage::Received { at } => Some(*at),
            Stage::Accepted { received_at, .. } | Stage::Confirmed { received_at, .. } => {
                Some(*received_at)
            }
        }
    }

    /// The accepting device's answer, once accepted.
    pub fn answer(&self) -> Option<&Answer> {
        match self.stage() {
            Stage::Accepted { answer, .. } | Stage::Confirmed { answer, .. } => Some(answer),
            _ => None,
        }
    }

    /// The caller's confirmation, once confirmed.
    pub fn keys(&self) -> Option<&Keys> {
        match self.stage() {
            Stage::Confirmed { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// When it was accepted.
    pub fn accept_date(&self) -> Option<i32> {
        self.answer().map(|a| a.date)
    }

    /// When it was confirmed.
    pub fn start_date(&self) -> Option<i32> {
        self.keys().map(|k| k.date)
    }

    /// The negotiated protocol, once accepted.
    pub fn negotiated(&self) -> Option<&Protocol> {
        self.answer().map(|a| &a.negotiated)
    }

    /// How it ended, if it did.
    pub fn discard(&self) -> Option<&Discard> {
        match &self.phase {
            Phase::Ended(_, d) => Some(d),
            Phase::Live(_) => None,
        }
    }

    /// The access hash `user` uses for this call, if they are in it.
    pub fn hash_for(&self, user: i64) -> Option<i64> {
        if user == self.admin_id {
            Some(self.admin_hash)
        } else if user == self.participant_id {
            Some(self.participant_hash)
        } else {
            None
        }
    }

    /// Whether this call makes `user` busy (spec §2): it is live and `user` is its caller, or
    /// its callee once they acknowledged (`phone.receivedCall`) or accepted.
    pub fn makes_busy(&self, user: i64) -> bool {
        match &self.phase {
            Phase::Ended(..) => false,
            Phase::Live(stage) => {
                self.admin_id == user
                    || (self.participant_id == user && !matches!(stage, Stage::Requested))
            }
        }
    }

    /// The other party.
    pub fn other(&self, user: i64) -> i64 {
        if user == self.admin_id {
            self.participant_id
        } else {
            self.admin_id
        }
    }

    /// The compact binary form stored by the server (the same layout whatever the stage:
    /// each step's data as optional fields).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        let mut w = Writer::new(&mut buf, Layer::LATEST);
        w.put_u32(FORMAT);
        w.put_i64(self.id);
        w.put_i32(self.random_id);
        w.put_i32(self.date);
        w.put_bool(self.video);
        w.put_i64(self.admin_id);
        w.put_i64(self.participant_id);
        w.put_i64(self.admin_hash);
        w.put_i64(self.participant_hash);
        w.put_i32(i32::from(self.state().code()));
        w.put_bytes(&self.g_a_hash);
        let answer = self.answer();
        let keys = self.keys();
        put_opt(&mut w, answer.map(|a| a.g_b.as_slice()), |w, b| {
            w.put_bytes(b)
        });
        put_opt(&mut w, keys.map(|k| k.g_a.as_slice()), |w, b| {
            w.put_bytes(b)
        });
        put_opt(&mut w, keys.map(|k| k.fingerprint), |w, v| w.put_i64(v));
        put_protocol(&mut w, &self.caller_protocol);
        put_opt(&mut w, answer.map(|a| &a.protocol), put_protocol);
        put_opt(&mut w, answer.map(|a| &a.negotiated), put_protocol);
        put_session(&mut w, self.caller_session);
        put_opt(&mut w, answer.map(|a| a.session), put_session);
        put_opt(&mut w, self.receive_date(), |w, v| w.put_i32(v));
        put_opt(&mut w, self.accept_date(), |w, v| w.put_i32(v));
        put_opt(&mut w, self.start_date(), |w, v| w.put_i32(v));
        put_opt(&mut w, self.discard(), |w, d| {
            put_opt(w, d.reason.as_ref(), put_reason);
            put_opt(w, d.duration, |w, v| w.put_i32(v));
            put_opt(w, d.by, |w, v| w.put_i64(v));
            w.put_i32(d.at);
            w.put_bool(d.need_rating);
            w.put_bool(d.need_debug);
        });
        buf
    }

    /// Reads [`Call::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Call, DecodeError> {
        let r = &mut Reader::new(bytes);
        let format = r.read_u32()?;
        if format != FORMAT {
            return Err(DecodeError::UnexpectedConstructor {
                id: format,
                expected: "stored call",
            });
        }
        let (id, random_id, date, video) =
            (r.read_i64()?, r.read_i32()?, r.read_i32()?, r.read_bool()?);
        let (admin_id, participant_id, admin_hash, participant_hash) =
            (r.read_i64()?, r.read_i64()?, r.read_i64()?, r.read_i64()?);
        let state = State::from_code(r.read_i32()? as u8).ok_or(DecodeError::InvalidLength(-1))?;
        let g_a_hash = r.read_bytes()?;
        let g_b = get_opt(r, |r| r.read_bytes())?;
        let g_a = get_opt(r, |r| r.read_bytes())?;
        let key_fingerprint = get_opt(r, |r| r.read_i64())?;
        let caller_protocol = get_protocol(r)?;
        let callee_protocol = get_opt(r, get_protocol)?;
        let negotiated = get_opt(r, get_protocol)?;
        let caller_session = get_session(r)?;
        let accepting_session = get_opt(r, get_session)?;
        let receive_date = get_opt(r, |r| r.read_i32())?;
        let accept_date = get_opt(r, |r| r.read_i32())?;
        let start_date = get_opt(r, |r| r.read_i32())?;
        let discard = get_opt(r, |r| {
            Ok(Discard {
                reason: get_opt(r, get_reason)?,
                duration: get_opt(r, |r| r.read_i32())?,
                by: get_opt(r, |r| r.read_i64())?,
                at: r.read_i32()?,
                need_rating: r.read_bool()?,
                need_debug: r.read_bool()?,
            })
        })?;
        // The stage is what the stored steps add up to; a state that claims more than its
        // data shows is refused.
        let answer = match (
            g_b,
            callee_protocol,
            negotiated,
            accepting_session,
            accept_date,
        ) {
            (Some(g_b), Some(protocol), Some(negotiated), Some(session), Some(date)) => {
                Some(Answer {
                    session,
                    g_b,
                    protocol,
                    negotiated,
                    date,
                })
            }
            _ => None,
        };
        let keys = match (g_a, key_fingerprint, start_date) {
            (Some(g_a), Some(fingerprint), Some(date)) => Some(Keys {
                g_a,
                fingerprint,
                date,
            }),
            _ => None,
        };
        let stage = match (answer, keys, receive_date) {
            (Some(answer), Some(keys), Some(received_at)) => Stage::Confirmed {
                received_at,
                answer,
                keys,
            },
            (Some(answer), None, Some(received_at)) => Stage::Accepted {
                received_at,
                answer,
            },
            (None, None, Some(at)) => Stage::Received { at },
            (None, None, None) => Stage::Requested,
            _ => return Err(DecodeError::InvalidLength(-1)),
        };
        let phase = match (state, discard) {
            (State::Discarded, Some(d)) => Phase::Ended(stage, d),
            (State::Discarded, None) => return Err(DecodeError::InvalidLength(-1)),
            (live, None) if live == stage.state() => Phase::Live(stage),
            _ => return Err(DecodeError::InvalidLength(-1)),
        };
        let call = Call {
            id,
            random_id,
            date,
            video,
            admin_id,
            participant_id,
            admin_hash,
            participant_hash,
            g_a_hash,
            caller_protocol,
            caller_session,
            phase,
        };
        Ok(call)
    }
}

/// Version tag of the stored form.
const FORMAT: u32 = 0x6d63_0001;

fn put_opt<T>(w: &mut Writer<'_>, v: Option<T>, f: impl FnOnce(&mut Writer<'_>, T)) {
    match v {
        Some(v) => {
            w.put_bool(true);
            f(w, v);
        }
        None => w.put_bool(false),
    }
}

fn get_opt<T>(
    r: &mut Reader<'_>,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if r.read_bool()? {
        f(r).map(Some)
    } else {
        Ok(None)
    }
}

fn put_protocol(w: &mut Writer<'_>, p: &Protocol) {
    w.put_bool(p.udp_p2p);
    w.put_bool(p.udp_reflector);
    w.put_i32(p.min_layer);
    w.put_i32(p.max_layer);
    w.put_vector_header(false, p.library_versions.len());
    for v in &p.library_versions {
        w.put_string(v);
    }
}

fn get_protocol(r: &mut Reader<'_>) -> Result<Protocol, DecodeError> {
    let (udp_p2p, udp_reflector, min_layer, max_layer) =
        (r.read_bool()?, r.read_bool()?, r.read_i32()?, r.read_i32()?);
    let n = r.read_vector_header(false, 4)?;
    let library_versions = (0..n).map(|_| r.read_string()).collect::<Result<_, _>>()?;
    Ok(Protocol {
        udp_p2p,
        udp_reflector,
        min_layer,
        max_layer,
        library_versions,
    })
}

fn put_session(w: &mut Writer<'_>, s: SessionRef) {
    w.put_i64(s.user_id);
    w.put_i64(s.key_id);
}

fn get_session(r: &mut Reader<'_>) -> Result<SessionRef, DecodeError> {
    Ok(SessionRef {
        user_id: r.read_i64()?,
        key_id: r.read_i64()?,
    })
}

fn put_reason(w: &mut Writer<'_>, reason: &Reason) {
    match reason {
        Reason::Missed => w.put_i32(0),
        Reason::Disconnect => w.put_i32(1),
        Reason::Hangup => w.put_i32(2),
        Reason::Busy => w.put_i32(3),
        Reason::MigrateConferenceCall(slug) => {
            w.put_i32(4);
            w.put_string(slug);
        }
    }
}

fn get_reason(r: &mut Reader<'_>) -> Result<Reason, DecodeError> {
    Ok(match r.read_i32()? {
        0 => Reason::Missed,
        1 => Reason::Disconnect,
        2 => Reason::Hangup,
        3 => Reason::Busy,
        4 => Reason::MigrateConferenceCall(r.read_string()?),
        n => return Err(DecodeError::InvalidLength(n.into())),
    })
}
