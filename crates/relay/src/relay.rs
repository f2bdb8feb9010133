//! The reflector's state: which call tags are granted, which addresses have presented them,
//! how much each call and each end may send, and what became of every datagram.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use crate::limits::Bucket;
use crate::packet::{self, CallTag, Datagram, EndTag};

/// Limits, fixed when the relay is made.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Calls granted at once; more are refused ([`GrantError::Full`]).
    pub max_calls: usize,
    /// Relay ports one party may bind (one per network the client uses).
    pub max_ends_per_party: usize,
    /// Packets a second one call may have forwarded, both directions together.
    pub call_packets_per_sec: u64,
    /// Bytes a second one call may have forwarded, both directions together.
    pub call_bytes_per_sec: u64,
    /// Packets a second one end may send (hellos and data).
    pub end_packets_per_sec: u64,
    /// Bytes a second one end may send.
    pub end_bytes_per_sec: u64,
    /// An end silent this long is forgotten; its party may bind another address in its place.
    pub end_idle_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_calls: 10_000,
            max_ends_per_party: 4,
            call_packets_per_sec: 4_000,
            call_bytes_per_sec: 2 << 20,
            end_packets_per_sec: 2_500,
            end_bytes_per_sec: 1 << 20,
            end_idle_ms: 20_000,
        }
    }
}

/// One side of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// The caller (`admin_id`).
    Caller,
    /// The callee (`participant_id`).
    Callee,
}

impl Party {
    fn other(self) -> Party {
        match self {
            Party::Caller => Party::Callee,
            Party::Callee => Party::Caller,
        }
    }

    fn index(self) -> usize {
        match self {
            Party::Caller => 0,
            Party::Callee => 1,
        }
    }
}

/// A live call the relay may carry: the tag each party was given.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    /// The call.
    pub call_id: i64,
    /// The caller's peer tag.
    pub caller: [u8; 16],
    /// The callee's peer tag.
    pub callee: [u8; 16],
}

/// Why a grant was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// [`Settings::max_calls`] calls are granted already.
    Full,
    /// A tag is another call's, or both parties were given the same one.
    TagInUse,
}

/// What to do with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<A = SocketAddr> {
    /// Send the (rewritten) datagram to `to`.
    Forward {
        /// The recipient end's address.
        to: A,
    },
    /// Send the datagram back to its sender unchanged: the answer to a hello.
    Reply,
    /// Send nothing.
    Drop(Dropped),
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// Not a reflector packet.
    Malformed,
    /// Its tag is no live call's.
    UnknownTag,
    /// Its party has all its ends bound to other addresses, or its end tag is bound to
    /// another address.
    NotAnEnd,
    /// No end of the other party has the destination tag (yet).
    UnknownDestination,
    /// Its call is over its packet or byte rate.
    CallOverLimit,
    /// Its end is over its packet or byte rate.
    EndOverLimit,
}

impl Dropped {
    /// Every reason, in a fixed order.
    pub const ALL: [Dropped; 6] = [
        Dropped::Malformed,
        Dropped::UnknownTag,
        Dropped::NotAnEnd,
        Dropped::UnknownDestination,
        Dropped::CallOverLimit,
        Dropped::EndOverLimit,
    ];

    /// A short name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Dropped::Malformed => "malformed",
            Dropped::UnknownTag => "unknown_tag",
            Dropped::NotAnEnd => "not_an_end",
            Dropped::UnknownDestination => "unknown_destination",
            Dropped::CallOverLimit => "call_over_limit",
            Dropped::EndOverLimit => "end_over_limit",
        }
    }

    fn index(self) -> usize {
        Dropped::ALL
            .iter()
            .position(|d| *d == self)
            .expect("listed")
    }
}

/// Counters since the relay was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Datagrams forwarded.
    pub forwarded_packets: u64,
    /// Bytes forwarded.
    pub forwarded_bytes: u64,
    /// Hellos answered.
    pub replies: u64,
    /// Datagrams dropped, by [`Dropped::ALL`] order.
    pub dropped: [u64; 6],
}

impl Totals {
    /// Datagrams dropped for `why`.
    pub fn dropped(&self, why: Dropped) -> u64 {
        self.dropped[why.index()]
    }
}

/// One call's relayed traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTraffic<A = SocketAddr> {
    /// Datagrams forwarded.
    pub packets: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// Addresses bound as the caller's ends.
    pub caller_ends: Vec<A>,
    /// Addresses bound as the callee's ends.
    pub callee_ends: Vec<A>,
}

struct End<A> {
    tag: EndTag,
    addr: A,
    last_ms: u64,
    packets: Bucket,
    bytes: Bucket,
}

struct Route<A> {
    tags: [CallTag; 2],
    ends: [Vec<End<A>>; 2],
    packets: Bucket,
    bytes: Bucket,
    forwarded_packets: u64,
    forwarded_bytes: u64,
}

/// The reflector: granted calls and their bound ends. `A` is what tells one sender from
/// another: a UDP source address, or whatever names a stream connection.
pub struct Relay<A = SocketAddr> {
    settings: Settings,
    routes: HashMap<i64, Route<A>>,
    by_tag: HashMap<CallTag, (i64, Party)>,
    totals: Totals,
}

fn call_tag(tag: &[u8; 16]) -> CallTag {
    tag[..12].try_into().expect("12 bytes")
}

impl<A: Copy + Eq + Hash> Relay<A> {
    /// An empty relay.
    pub fn new(settings: Settings) -> Relay<A> {
        Relay {
            settings,
            routes: HashMap::new(),
            by_tag: HashMap::new(),
            totals: Totals::default(),
        }
    }

    /// Lets the two parties of a live call use their tags. Granting a call again is a no-op.
    pub fn grant(&mut self, grant: Grant, now_ms: u64) -> Result<(), GrantError> {
        if self.routes.contains_key(&grant.call_id) {
            return Ok(());
        }
        if self.routes.len() >= self.settings.max_calls {
            return Err(GrantError::Full);
        }
        let tags = [call_tag(&grant.caller), call_tag(&grant.callee)];
        if tags[0] == tags[1] || tags.iter().any(|t| self.by_tag.contains_key(t)) {
            return Err(GrantError::TagInUse);
        }
        self.by_tag.insert(tags[0], (grant.call_id, Party::Caller));
        self.by_tag.insert(tags[1], (grant.call_id, Party::Callee));
        let s = &self.settings;
        self.routes.insert(
            grant.call_id,
            Route {
                tags,
                ends: [Vec::new(), Vec::new()],
                packets: Bucket::full(s.call_packets_per_sec, now_ms),
                bytes: Bucket::full(s.call_bytes_per_sec, now_ms),
                forwarded_packets: 0,
                forwarded_bytes: 0,
            },
        );
        Ok(())
    }

    /// Ends a call's relaying: its tags are unknown from now on. Returns what it carried, if it
    /// was granted.
    pub fn revoke(&mut self, call_id: i64) -> Option<CallTraffic<A>> {
        let route = self.routes.remove(&call_id)?;
        for tag in &route.tags {
            self.by_tag.remove(tag);
        }
        Some(traffic(&route))
    }

    /// Decides what becomes of `datagram`, received from `from`. For [`Verdict::Forward`] the
    /// call tag in `datagram` has been rewritten to the recipient's.
    pub fn handle(&mut self, now_ms: u64, from: A, datagram: &mut [u8]) -> Verdict<A> {
        let verdict = self.decide(now_ms, from, datagram);
        match verdict {
            Verdict::Forward { .. } => {
                self.totals.forwarded_packets += 1;
                self.totals.forwarded_bytes += datagram.len() as u64;
            }
            Verdict::Reply => self.totals.replies += 1,
            Verdict::Drop(why) => self.totals.dropped[why.index()] += 1,
        }
        verdict
    }

    fn decide(&mut self, now_ms: u64, from: A, datagram: &mut [u8]) -> Verdict<A> {
        let parsed = match packet::parse(datagram) {
            Ok(p) => p,
            Err(_) => return Verdict::Drop(Dropped::Malformed),
        };
        let (tag, own, to) = match parsed {
            Datagram::Hello { tag, end } => (tag, end, None),
            Datagram::Data { tag, to, from, .. } => (tag, from, Some(to)),
        };
        let Some(&(call_id, party)) = self.by_tag.get(&tag) else {
            return Verdict::Drop(Dropped::UnknownTag);
        };
        let route = self.routes.get_mut(&call_id).expect("tags follow routes");
        let size = datagram.len() as u64;
        if let Err(why) = bind(&self.settings, route, party, own, from, size, now_ms) {
            return Verdict::Drop(why);
        }
        let Some(to) = to else {
            return Verdict::Reply;
        };
        let other = party.other();
        let Some(dest) = route.ends[other.index()]
            .iter()
            .find(|e| e.tag == to && now_ms.saturating_sub(e.last_ms) < self.settings.end_idle_ms)
            .map(|e| e.addr)
        else {
            return Verdict::Drop(Dropped::UnknownDestination);
        };
        if !route.packets.take(1, now_ms) || !route.bytes.take(size, now_ms) {
            return Verdict::Drop(Dropped::CallOverLimit);
        }
        packet::set_tag(datagram, &route.tags[other.index()]);
        route.forwarded_packets += 1;
        route.forwarded_bytes += size;
        Verdict::Forward { to: dest }
    }

    /// Forgets ends silent for longer than [`Settings::end_idle_ms`].
    pub fn sweep(&mut self, now_ms: u64) {
        let idle = self.settings.end_idle_ms;
        for route in self.routes.values_mut() {
            for ends in &mut route.ends {
                ends.retain(|e| now_ms.saturating_sub(e.last_ms) < idle);
            }
        }
    }

    /// Whether `call_id` is granted.
    pub fn is_granted(&self, call_id: i64) -> bool {
        self.routes.contains_key(&call_id)
    }

    /// The granted calls.
    pub fn calls(&self) -> impl Iterator<Item = i64> + '_ {
        self.routes.keys().copied()
    }

    /// Granted calls that have had at least one packet forwarded.
    pub fn relaying(&self) -> usize {
        self.routes
            .values()
            .filter(|r| r.forwarded_packets > 0)
            .count()
    }

    /// What a granted call has carried so far.
    pub fn traffic(&self, call_id: i64) -> Option<CallTraffic<A>> {
        self.routes.get(&call_id).map(traffic)
    }

    /// Counters since the relay was made.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }
}

/// Checks `from` as the end `own` of `party`, binding it if the party has room, and charges
/// the end one packet of `size` bytes.
fn bind<A: Copy + Eq>(
    settings: &Settings,
    route: &mut Route<A>,
    party: Party,
    own: EndTag,
    from: A,
    size: u64,
    now_ms: u64,
) -> Result<(), Dropped> {
    let ends = &mut route.ends[party.index()];
    let idle = |e: &End<A>| now_ms.saturating_sub(e.last_ms) >= settings.end_idle_ms;
    let found = match ends.iter().position(|e| e.tag == own) {
        Some(i) if ends[i].addr == from => i,
        // The same end tag from another address: taken over only once the first one is idle
        // (a client behind a NAT that changed its port), never while it is live.
        Some(i) if idle(&ends[i]) => {
            ends[i].addr = from;
            i
        }
        Some(_) => return Err(Dropped::NotAnEnd),
        None => {
            ends.retain(|e| !idle(e));
            if ends.len() >= settings.max_ends_per_party {
                return Err(Dropped::NotAnEnd);
            }
            ends.push(End {
                tag: own,
                addr: from,
                last_ms: now_ms,
                packets: Bucket::full(settings.end_packets_per_sec, now_ms),
                bytes: Bucket::full(settings.end_bytes_per_sec, now_ms),
            });
            ends.len() - 1
        }
    };
    let end = &mut ends[found];
    end.last_ms = now_ms;
    if !end.packets.take(1, now_ms) || !end.bytes.take(size, now_ms) {
        return Err(Dropped::EndOverLimit);
    }
    Ok(())
}

fn traffic<A: Copy>(route: &Route<A>) -> CallTraffic<A> {
    let addrs = |p: Party| route.ends[p.index()].iter().map(|e| e.addr).collect();
    CallTraffic {
        packets: route.forwarded_packets,
        bytes: route.forwarded_bytes,
        caller_ends: addrs(Party::Caller),
        callee_ends: addrs(Party::Callee),
    }
}
