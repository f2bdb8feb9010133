//! The call inspector's record: the sessions on this node (peer, transport, key,
//! user, layer, `initConnection` client), every call it has seen with its state, and each
//! call's messages in order — the RPCs about it with their answers or error names, the updates
//! pushed to each device, and notes such as a busy refusal. Bounded: ended calls beyond
//! `recent_calls` are forgotten oldest first, each call keeps its last `events_per_call`
//! events, and the feed of all call events its last `feed` ones.
//!
//! Recording keeps raw bytes and shared values under one short lock; decoding TL and naming
//! users happen only when the admin page or CLI asks (`views.rs`). Changes are broadcast for the
//! page's live stream.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use calls::{Call, CallEvent, Ending};
use store::ClientInfo;
use tl::enums;
use tokio::sync::broadcast;

use super::metrics::Outcome;

/// How much the inspector keeps (`[admin]` in the configuration).
#[derive(Clone, Debug)]
pub struct InspectorSettings {
    /// Ended calls kept inspectable.
    pub recent_calls: usize,
    /// Events kept per call (the latest).
    pub events_per_call: usize,
    /// Events kept in the feed of all calls.
    pub feed: usize,
    /// Record messages at all (sessions and calls are always kept).
    pub enabled: bool,
    /// Messages recorded per call per second at most (past it they are counted as dropped).
    pub per_call_per_sec: u32,
}

impl Default for InspectorSettings {
    fn default() -> Self {
        InspectorSettings {
            recent_calls: 1000,
            events_per_call: 256,
            feed: 1000,
            enabled: true,
            per_call_per_sec: 200,
        }
    }
}

/// What an event is.
#[derive(Clone, Debug)]
pub enum EventBody {
    /// A request and its answer: the request's bytes (wrappers removed) and the result's bytes
    /// as sent (encoded for the session's layer), or the error.
    Rpc {
        /// The method.
        method: &'static str,
        /// The request body.
        request: Vec<u8>,
        /// The result body, when it succeeded.
        result: Option<Vec<u8>>,
        /// `(error_code, error_message)`, when it failed.
        error: Option<(i32, String)>,
        /// Time to answer, microseconds.
        duration_us: u64,
    },
    /// Updates pushed to one session.
    Push(Arc<enums::Updates>),
    /// A new call to `callee` from `caller` was refused as busy.
    BusyRefusal {
        /// Who called.
        caller: i64,
        /// Who was busy.
        callee: i64,
        /// The refused call.
        refused: i64,
        /// The call that made the callee busy, if this node knows it.
        busy_in: Option<i64>,
    },
    /// The server's timer ended the call.
    TimerEnded(Option<calls::Reason>),
}

/// One thing that happened, in global order.
#[derive(Clone, Debug)]
pub struct Event {
    /// Global order (an RPC takes its number when it arrives, so what it causes comes after).
    pub seq: u64,
    /// Unix time, milliseconds.
    pub at_ms: i64,
    /// The call it concerns.
    pub call_id: Option<i64>,
    /// The connection it came on or went to.
    pub conn_id: Option<u64>,
    /// That connection's user.
    pub user_id: Option<i64>,
    /// That connection's auth key.
    pub key_id: Option<i64>,
    /// The client's `initConnection`, shared with its session (shown as a device line by
    /// [`device_line`]).
    pub client: Option<Arc<ClientInfo>>,
    /// What it is.
    pub body: EventBody,
}

/// One connection as the inspector sees it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The connection.
    pub conn_id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// When it connected, Unix ms.
    pub connected_at_ms: i64,
    /// The transport, once the first bytes told.
    pub transport: Option<mtproto::transport::Kind>,
    /// Whether obfuscated2 wraps it.
    pub obfuscated: bool,
    /// What the encrypted session says about itself.
    pub keyed: Option<KeyedInfo>,
}

/// A connection's key, login and client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedInfo {
    /// The auth key.
    pub key_id: i64,
    /// The MTProto session id.
    pub session_id: i64,
    /// The logged-in user.
    pub user_id: Option<i64>,
    /// The layer it announced.
    pub layer: Option<i32>,
    /// Its `initConnection` (the connection's own, shared).
    pub client: Option<Arc<ClientInfo>>,
}

/// A one-line device description from `initConnection` (made when shown, not per event).
pub fn device_line(c: &ClientInfo) -> String {
    let mut s = c.app_version.clone();
    if !c.device_model.is_empty() {
        s.push_str(" · ");
        s.push_str(&c.device_model);
    }
    if !c.system_version.is_empty() {
        s.push_str(" · ");
        s.push_str(&c.system_version);
    }
    s
}

/// A call and what happened to it.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The call as last committed (shared with the transition that committed it).
    pub call: Arc<Call>,
    /// When this node first saw it, Unix ms.
    pub seen_at_ms: i64,
    /// When it ended, Unix ms.
    pub ended_at_ms: Option<i64>,
    /// How its setup settled.
    pub outcome: Option<Outcome>,
    /// Its events.
    pub events: Timeline,
}

impl CallRecord {
    /// A call known only from storage (handled by another node, or read from a data
    /// directory): no messages, times from the call itself.
    pub fn stored(call: Call) -> CallRecord {
        let answered = call.accept_date().map(|_| Outcome::Answered);
        CallRecord {
            seen_at_ms: i64::from(call.date) * 1000,
            ended_at_ms: call.discard().map(|d| i64::from(d.at) * 1000),
            outcome: Outcome::of_stored(&call).or(answered),
            events: Timeline::default(),
            call: Arc::new(call),
        }
    }
}

/// A call's events in order: the first quarter of the bound kept for good (how the call
/// began), then the latest in a ring; what fell out between is counted. A call flooded with
/// repeated requests still shows its start and its end.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    head: Vec<Arc<Event>>,
    tail: VecDeque<Arc<Event>>,
    dropped: u64,
    /// The second (Unix) the rate count is for, and messages recorded in it.
    second: i64,
    in_second: u32,
}

impl Timeline {
    /// Adds an event in seq order; returns the one that fell out, if the bound was reached.
    pub fn insert(&mut self, event: Arc<Event>, bound: usize) -> Option<Arc<Event>> {
        let head_bound = bound / 4;
        if self.tail.is_empty() && self.dropped == 0 && self.head.len() < head_bound {
            match self.head.last() {
                Some(last) if event.seq < last.seq => {
                    let at = self.head.partition_point(|e| e.seq < event.seq);
                    self.head.insert(at, event);
                }
                _ => self.head.push(event),
            }
            return None;
        }
        if self.head.last().is_some_and(|last| event.seq < last.seq) {
            // Late for the head (an RPC is numbered when it arrives, recorded when answered):
            // it takes its place there, and the head's last moves on.
            let at = self.head.partition_point(|e| e.seq < event.seq);
            self.head.insert(at, event);
            if let Some(moved) = self.head.pop() {
                insert_ordered(&mut self.tail, moved);
            }
        } else {
            insert_ordered(&mut self.tail, event);
        }
        if self.head.len() + self.tail.len() > bound.max(1) {
            self.dropped += 1;
            return self.tail.pop_front();
        }
        None
    }

    /// Whether one more message at `at_ms` is within `per_sec`; if not, it is counted as
    /// dropped (a flood's messages cost a count, not a record).
    pub fn admit(&mut self, at_ms: i64, per_sec: u32) -> bool {
        let second = at_ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.in_second = 0;
        }
        if self.in_second >= per_sec {
            self.dropped += 1;
            return false;
        }
        self.in_second += 1;
        true
    }

    /// The kept events, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.head.iter().chain(&self.tail)
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many fell out, and the seq of the last event kept before them.
    pub fn dropped(&self) -> (u64, Option<u64>) {
        (self.dropped, self.head.last().map(|e| e.seq))
    }

    fn find(&self, seq: u64) -> Option<Arc<Event>> {
        if let Ok(i) = self.head.binary_search_by_key(&seq, |e| e.seq) {
            return Some(self.head[i].clone());
        }
        let i = self.tail.binary_search_by_key(&seq, |e| e.seq).ok()?;
        Some(self.tail[i].clone())
    }
}

/// A change the live page hears of.
#[derive(Clone, Debug)]
pub enum Live {
    /// A new event.
    Event(Arc<Event>),
    /// A call changed.
    Call(i64),
    /// A session opened or changed.
    Session(u64),
    /// A session closed.
    SessionClosed(u64),
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<u64, SessionInfo>,
    calls: HashMap<i64, CallRecord>,
    /// Ended calls, in the order they ended (for forgetting the oldest).
    ended: VecDeque<i64>,
    feed: VecDeque<Arc<Event>>,
}

/// The inspector's record; see the module docs.
pub struct Inspector {
    settings: InspectorSettings,
    next_seq: AtomicU64,
    state: Mutex<State>,
    live: broadcast::Sender<Live>,
    /// Live subscriptions; without any, changes are not even offered to the channel.
    watching: Arc<AtomicUsize>,
}

/// A live subscription to the inspector's changes.
pub struct Subscription {
    /// The changes.
    pub changes: broadcast::Receiver<Live>,
    watching: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inspector {
    /// An empty record.
    pub fn new(settings: InspectorSettings) -> Self {
        Inspector {
            settings,
            next_seq: AtomicU64::new(1),
            state: Mutex::default(),
            live: broadcast::channel(4096).0,
            watching: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next event number (an RPC takes its own when it arrives).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The live stream of changes.
    pub fn subscribe(&self) -> Subscription {
        self.watching.fetch_add(1, Ordering::Relaxed);
        Subscription {
            changes: self.live.subscribe(),
            watching: self.watching.clone(),
        }
    }

    fn tell(&self, change: Live) {
        if self.watching.load(Ordering::Relaxed) > 0 {
            // A subscriber that left meanwhile is not an error.
            let _ = self.live.send(change);
        }
    }

    /// A connection was accepted.
    pub fn session_opened(&self, conn_id: u64, peer: SocketAddr, now_ms: i64) {
        self.state().sessions.insert(
            conn_id,
            SessionInfo {
                conn_id,
                peer,
                connected_at_ms: now_ms,
                transport: None,
                obfuscated: false,
                keyed: None,
            },
        );
        self.tell(Live::Session(conn_id));
    }

    /// The connection's transport became known.
    pub fn session_transport(
        &self,
        conn_id: u64,
        kind: mtproto::transport::Kind,
        obfuscated: bool,
    ) {
        if let Some(s) = self.state().sessions.get_mut(&conn_id) {
            s.transport = Some(kind);
            s.obfuscated = obfuscated;
        }
        self.tell(Live::Session(conn_id));
    }

    /// The connection's key, session, login, layer or client changed.
    pub fn session_keyed(&self, conn_id: u64, keyed: KeyedInfo) {
        if let Some(s) = self.state().sessions.get_mut(&conn_id) {
            s.keyed = Some(keyed);
        }
        self.tell(Live::Session(conn_id));
    }

    /// A connection closed.
    pub fn session_closed(&self, conn_id: u64) {
        self.state().sessions.remove(&conn_id);
        self.tell(Live::SessionClosed(conn_id));
    }

    /// Records an event: in its call's record (if this node knows the call) and in the feed.
    pub fn record(&self, mut event: Event) {
        if !self.settings.enabled {
            return;
        }
        let mut state = self.state();
        if let Some(record) = event.call_id.and_then(|id| state.calls.get_mut(&id))
            && !record
                .events
                .admit(event.at_ms, self.settings.per_call_per_sec)
        {
            return;
        }
        if let Some(s) = event.conn_id.and_then(|c| state.sessions.get(&c))
            && let Some(k) = &s.keyed
        {
            event.user_id = event.user_id.or(k.user_id);
            event.key_id = event.key_id.or(Some(k.key_id));
            event.client = event.client.or_else(|| k.client.clone());
        }
        let event = Arc::new(event);
        let mut evicted = None;
        if let Some(record) = event.call_id.and_then(|id| state.calls.get_mut(&id)) {
            evicted = record
                .events
                .insert(event.clone(), self.settings.events_per_call);
        }
        insert_ordered(&mut state.feed, event.clone());
        let old = (state.feed.len() > self.settings.feed)
            .then(|| state.feed.pop_front())
            .flatten();
        drop(state);
        // What fell out is freed outside the lock.
        drop((evicted, old));
        self.tell(Live::Event(event));
    }

    /// Calls restored from storage at start-up.
    pub fn restore(&self, calls: &[Call], now_ms: i64) {
        let mut state = self.state();
        for call in calls {
            self.upsert(&mut state, &Arc::new(call.clone()), now_ms);
        }
    }

    /// Committed call changes and what the state machine said happened to them; returns the
    /// setups they created and the outcomes they settled, for the metrics.
    pub fn calls_committed(
        &self,
        calls: &[Arc<Call>],
        events: &[CallEvent],
        now_ms: i64,
    ) -> (u64, Vec<Outcome>) {
        let mut setups = 0;
        let mut outcomes = Vec::new();
        let mut notes = Vec::new();
        {
            let mut state = self.state();
            for call in calls {
                self.upsert(&mut state, call, now_ms);
            }
            for event in events {
                let (call_id, outcome) = match event {
                    CallEvent::Created { call_id } => {
                        setups += 1;
                        (*call_id, None)
                    }
                    CallEvent::RefusedBusy {
                        call_id,
                        caller,
                        callee,
                        busy_in,
                    } => {
                        setups += 1;
                        notes.push((
                            *busy_in,
                            *call_id,
                            EventBody::BusyRefusal {
                                caller: *caller,
                                callee: *callee,
                                refused: *call_id,
                                busy_in: *busy_in,
                            },
                        ));
                        (*call_id, Some(Outcome::BusyRefused))
                    }
                    CallEvent::Answered { call_id } => (*call_id, Some(Outcome::Answered)),
                    CallEvent::Ended {
                        call_id,
                        reason,
                        by,
                        answered,
                    } => {
                        if *by == Ending::Timer {
                            notes.push((None, *call_id, EventBody::TimerEnded(reason.clone())));
                        }
                        let outcome = match by {
                            _ if *answered => None,
                            Ending::Timer => Some(Outcome::Missed),
                            Ending::Callee => Some(Outcome::Declined),
                            Ending::Caller => Some(Outcome::Cancelled),
                            Ending::Busy | Ending::KeyMismatch => None,
                        };
                        (*call_id, outcome)
                    }
                    CallEvent::Acknowledged { call_id } | CallEvent::Confirmed { call_id } => {
                        (*call_id, None)
                    }
                };
                if let Some(o) = outcome
                    && let Some(record) = state.calls.get_mut(&call_id)
                    && record.outcome.is_none()
                {
                    record.outcome = Some(o);
                    outcomes.push(o);
                }
            }
        }
        for call in calls {
            self.tell(Live::Call(call.id));
        }
        // Who is busy may have changed: the parties' sessions are told again.
        if self.watching.load(Ordering::Relaxed) > 0 {
            let parties: Vec<i64> = calls
                .iter()
                .flat_map(|c| [c.admin_id, c.participant_id])
                .collect();
            let conns: Vec<u64> = self
                .state()
                .sessions
                .values()
                .filter(|s| {
                    s.keyed
                        .as_ref()
                        .and_then(|k| k.user_id)
                        .is_some_and(|u| parties.contains(&u))
                })
                .map(|s| s.conn_id)
                .collect();
            for conn in conns {
                self.tell(Live::Session(conn));
            }
        }
        for (also, call_id, body) in notes {
            let event = Event {
                seq: self.next_seq(),
                at_ms: now_ms,
                call_id: Some(call_id),
                conn_id: None,
                user_id: None,
                key_id: None,
                client: None,
                body,
            };
            if let Some(other) = also {
                // The busy call's own timeline shows the refusal too.
                if let Some(r) = self.state().calls.get_mut(&other) {
                    r.events
                        .insert(Arc::new(event.clone()), self.settings.events_per_call);
                }
                self.tell(Live::Call(other));
            }
            self.record(event);
        }
        (setups, outcomes)
    }

    fn upsert<'a>(
        &self,
        state: &'a mut State,
        call: &Arc<Call>,
        now_ms: i64,
    ) -> &'a mut CallRecord {
        let ended_now = !call.state().is_live()
            && state
                .calls
                .get(&call.id)
                .is_none_or(|r| r.ended_at_ms.is_none());
        if ended_now {
            state.ended.push_back(call.id);
            while state.ended.len() > self.settings.recent_calls {
                if let Some(old) = state.ended.pop_front() {
                    state.calls.remove(&old);
                }
            }
        }
        let record = state.calls.entry(call.id).or_insert_with(|| CallRecord {
            call: call.clone(),
            seen_at_ms: now_ms,
            ended_at_ms: None,
            outcome: None,
            events: Timeline::default(),
        });
        if !Arc::ptr_eq(&record.call, call) {
            record.call = call.clone();
        }
        if ended_now {
            record.ended_at_ms = Some(now_ms);
        }
        record
    }

    /// The sessions, by connection.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.state().sessions.values().cloned().collect()
    }

    /// One session.
    pub fn session(&self, conn_id: u64) -> Option<SessionInfo> {
        self.state().sessions.get(&conn_id).cloned()
    }

    /// Every call record without its events: live ones, then ended ones newest first.
    pub fn calls(&self) -> (Vec<CallRecord>, Vec<CallRecord>) {
        let state = self.state();
        let strip = |r: &CallRecord| CallRecord {
            call: r.call.clone(),
            seen_at_ms: r.seen_at_ms,
            ended_at_ms: r.ended_at_ms,
            outcome: r.outcome,
            events: Timeline {
                dropped: r.events.dropped + r.events.len() as u64,
                ..Timeline::default()
            },
        };
        let mut live: Vec<CallRecord> = state
            .calls
            .values()
            .filter(|r| r.call.state().is_live())
            .map(strip)
            .collect();
        live.sort_by_key(|r| std::cmp::Reverse(r.seen_at_ms));
        let recent = state
            .ended
            .iter()
            .rev()
            .filter_map(|id| state.calls.get(id))
            .map(strip)
            .collect();
        (live, recent)
    }

    /// One call with its events.
    pub fn call(&self, id: i64) -> Option<CallRecord> {
        self.state().calls.get(&id).cloned()
    }

    /// The latest `n` events of the feed, oldest first.
    pub fn feed(&self, n: usize) -> Vec<Arc<Event>> {
        let state = self.state();
        let skip = state.feed.len().saturating_sub(n);
        state.feed.iter().skip(skip).cloned().collect()
    }

    /// An event by number, while it is still kept.
    pub fn event(&self, seq: u64) -> Option<Arc<Event>> {
        let state = self.state();
        let find = |list: &VecDeque<Arc<Event>>| {
            list.binary_search_by_key(&seq, |e| e.seq)
                .ok()
                .map(|i| list[i].clone())
        };
        find(&state.feed).or_else(|| state.calls.values().find_map(|r| r.events.find(seq)))
    }
}

/// How far from the end [`insert_ordered`] looks for a late event's place before it searches
/// the whole list.
const LATE_REACH: usize = 16;

/// Inserts `event` keeping `list` in seq order. It is nearly always last, which costs one
/// comparison; else it is usually a few places from the end (an RPC is numbered when it
/// arrives and recorded when answered, after the pushes meanwhile), found by looking back from
/// there rather than by a search through a feed of thousands of events.
fn insert_ordered(list: &mut VecDeque<Arc<Event>>, event: Arc<Event>) {
    let after = |e: &Arc<Event>| e.seq > event.seq;
    let mut at = list.len();
    while at > 0 && list.len() - at < LATE_REACH && after(&list[at - 1]) {
        at -= 1;
    }
    if at > 0 && after(&list[at - 1]) {
        at = list.partition_point(|e| !after(e));
    }
    list.insert(at, event);
}

/// The call ids an `Updates` speaks of (call state, signalling data, call-history messages).
pub fn call_ids(updates: &enums::Updates) -> Vec<i64> {
    update_list(updates).iter().filter_map(call_id_of).collect()
}

fn call_id_of(update: &enums::Update) -> Option<i64> {
    match update {
        enums::Update::PhoneCall(u) => Some(u.phone_call.id()),
        enums::Update::PhoneCallSignalingData(u) => Some(u.phone_call_id),
        enums::Update::NewMessage(u) => match &u.message {
            enums::Message::Service(m) => match &m.action {
                enums::MessageAction::PhoneCall(a) => Some(a.call_id),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// The updates of an `Updates` (none for the forms without a list).
pub fn update_list(updates: &enums::Updates) -> &[enums::Update] {
    match updates {
        enums::Updates::Updates(u) => &u.updates,
        enums::Updates::UpdateShort(u) => std::slice::from_ref(&u.update),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            at_ms: 0,
            call_id: Some(1),
            conn_id: None,
            user_id: None,
            key_id: None,
            client: None,
            body: EventBody::TimerEnded(None),
        })
    }

    #[test]
    fn a_flooded_timeline_keeps_its_start_and_its_latest() {
        let mut t = Timeline::default();
        // The second event arrives late (an RPC numbered on arrival, recorded when answered).
        for seq in [1, 3, 2, 4] {
            assert!(t.insert(event(seq), 8).is_none());
        }
        for seq in 5..=100 {
            t.insert(event(seq), 8);
        }
        let kept: Vec<u64> = t.iter().map(|e| e.seq).collect();
        assert_eq!(kept, [1, 2, 95, 96, 97, 98, 99, 100]);
        assert_eq!(t.dropped(), (92, Some(2)));
        assert_eq!(t.find(96).map(|e| e.seq), Some(96));
        assert!(t.find(50).is_none());
    }

    #[test]
    fn late_events_take_their_place_whether_near_the_end_or_far_from_it() {
        let mut list = VecDeque::new();
        let far = 2 * LATE_REACH as u64;
        for seq in (0..100).filter(|s| *s != 97 && *s != 100 - far && *s != 0) {
            insert_ordered(&mut list, event(seq));
        }
        for seq in [97, 100 - far, 0] {
            insert_ordered(&mut list, event(seq));
        }
        let kept: Vec<u64> = list.iter().map(|e| e.seq).collect();
        assert_eq!(kept, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_call_records_at_most_its_rate_per_second_and_counts_the_rest() {
        let mut t = Timeline::default();
        let admitted = (0..10).filter(|i| t.admit(5_000 + i * 10, 4)).count();
        assert_eq!(admitted, 4);
        assert_eq!(t.dropped().0, 6, "the rest counted as dropped");
        assert!(t.admit(6_000, 4), "a new second starts a new count");
    }
}
