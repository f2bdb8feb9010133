//! The call record (`../shared/spec/calls.md` §2) and its compact binary form for storage.

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
    /// Where things stand.
    pub state: State,
    /// SHA-256 of the caller's `g_a`.
    pub g_a_hash: Vec<u8>,
    /// The callee's `g_b`, once accepted.
    pub g_b: Option<Vec<u8>>,
    /// The caller's `g_a`, once confirmed.
    pub g_a: Option<Vec<u8>>,
    /// The key fingerprint the caller sent.
    pub key_fingerprint: Option<i64>,
    /// The caller's protocol.
    pub caller_protocol: Protocol,
    /// The callee's protocol, once accepted.
    pub callee_protocol: Option<Protocol>,
    /// The negotiated protocol, once accepted.
    pub negotiated: Option<Protocol>,
    /// The caller's session.
    pub caller_session: SessionRef,
    /// The callee session that accepted.
    pub accepting_session: Option<SessionRef>,
    /// When the first `phone.receivedCall` arrived.
    pub receive_date: Option<i32>,
    /// When it was accepted.
    pub accept_date: Option<i32>,
    /// When it was confirmed.
    pub start_date: Option<i32>,
    /// How it ended.
    pub discard: Option<Discard>,
}

impl Call {
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
        self.state.is_live()
            && (self.admin_id == user
                || (self.participant_id == user
                    && matches!(
                        self.state,
                        State::Received | State::Accepted | State::Confirmed
                    )))
    }

    /// The other party.
    pub fn other(&self, user: i64) -> i64 {
        if user == self.admin_id {
            self.participant_id
        } else {
            self.admin_id
        }
    }

    /// The compact binary form stored by the server.
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
        w.put_i32(i32::from(self.state.code()));
        w.put_bytes(&self.g_a_hash);
        put_opt_bytes(&mut w, &self.g_b);
        put_opt_bytes(&mut w, &self.g_a);
        put_opt(&mut w, self.key_fingerprint, |w, v| w.put_i64(v));
        put_protocol(&mut w, &self.caller_protocol);
        put_opt(&mut w, self.callee_protocol.as_ref(), put_protocol);
        put_opt(&mut w, self.negotiated.as_ref(), put_protocol);
        put_session(&mut w, self.caller_session);
        put_opt(&mut w, self.accepting_session, put_session);
        put_opt(&mut w, self.receive_date, |w, v| w.put_i32(v));
        put_opt(&mut w, self.accept_date, |w, v| w.put_i32(v));
        put_opt(&mut w, self.start_date, |w, v| w.put_i32(v));
        put_opt(&mut w, self.discard.as_ref(), |w, d| {
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
        let call = Call {
            id: r.read_i64()?,
            random_id: r.read_i32()?,
            date: r.read_i32()?,
            video: r.read_bool()?,
            admin_id: r.read_i64()?,
            participant_id: r.read_i64()?,
            admin_hash: r.read_i64()?,
            participant_hash: r.read_i64()?,
            state: State::from_code(r.read_i32()? as u8).ok_or(DecodeError::InvalidLength(-1))?,
            g_a_hash: r.read_bytes()?,
            g_b: get_opt(r, |r| r.read_bytes())?,
            g_a: get_opt(r, |r| r.read_bytes())?,
            key_fingerprint: get_opt(r, |r| r.read_i64())?,
            caller_protocol: get_protocol(r)?,
            callee_protocol: get_opt(r, get_protocol)?,
            negotiated: get_opt(r, get_protocol)?,
            caller_session: get_session(r)?,
            accepting_session: get_opt(r, get_session)?,
            receive_date: get_opt(r, |r| r.read_i32())?,
            accept_date: get_opt(r, |r| r.read_i32())?,
            start_date: get_opt(r, |r| r.read_i32())?,
            discard: get_opt(r, |r| {
                Ok(Discard {
                    reason: get_opt(r, get_reason)?,
                    duration: get_opt(r, |r| r.read_i32())?,
                    by: get_opt(r, |r| r.read_i64())?,
                    at: r.read_i32()?,
                    need_rating: r.read_bool()?,
                    need_debug: r.read_bool()?,
                })
            })?,
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

fn put_opt_bytes(w: &mut Writer<'_>, v: &Option<Vec<u8>>) {
    put_opt(w, v.as_deref(), |w, b| w.put_bytes(b));
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
