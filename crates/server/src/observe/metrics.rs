//! Counters and histograms for Prometheus, exposed in the OpenMetrics text format by
//! prometheus-client's encoder. Counters are atomics or
//! live under one short lock per RPC; gauges that describe the present (connections, calls,
//! busy users) are computed when `/metrics` is scraped, from the inspector and the hub, so they
//! cannot drift from what they count.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, seconds (100 µs to 2.5 s).
const BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram (kept under its owner's lock).
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; the last one is +Inf).
    buckets: [u64; BOUNDS.len() + 1],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BOUNDS.partition_point(|b| *b < secs);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += secs;
    }
}

/// How a call setup ended up (counted once per call, when it is known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A callee device accepted.
    Answered,
    /// Refused at once: the callee was busy in another call.
    BusyRefused,
    /// Nobody answered before the server's timer.
    Missed,
    /// The callee discarded it while it rang.
    Declined,
    /// The caller hung up before it was answered.
    Cancelled,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Answered,
        Outcome::BusyRefused,
        Outcome::Missed,
        Outcome::Declined,
        Outcome::Cancelled,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::BusyRefused => "busy_refused",
            Outcome::Missed => "missed",
            Outcome::Declined => "declined",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// The outcome a stored call shows, for calls this node knows only from storage (handled
    /// by another node, or read from a data directory): being accepted, or ending before it
    /// was. Calls this node changes get theirs from the state machine's events.
    pub fn of_stored(call: &calls::Call) -> Option<Outcome> {
        use calls::{Reason, State};
        match call.state() {
            State::Accepted => Some(Outcome::Answered),
            State::Discarded if call.accept_date().is_none() => {
                let discard = call.discard()?;
                Some(match discard.by {
                    None if discard.reason == Some(Reason::Busy) => Outcome::BusyRefused,
                    None => Outcome::Missed,
                    Some(u) if u == call.participant_id => Outcome::Declined,
                    Some(_) => Outcome::Cancelled,
                })
            }
            _ => None,
        }
    }
}

/// One method's counters: atomics, so RPCs on two threads never wait for each other.
#[derive(Default)]
struct MethodStats {
    ok: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    latency: AtomicHistogram,
}

/// A latency histogram of atomics (nanosecond sum), read into a [`Histogram`] to render.
#[derive(Default)]
struct AtomicHistogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BOUNDS.partition_point(|b| *b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Everything counted since the server started.
#[derive(Default)]
pub struct Metrics {
    connections_accepted: AtomicU64,
    auth_keys_permanent: AtomicU64,
    auth_keys_temporary: AtomicU64,
    call_setups: AtomicU64,
    outcomes: [AtomicU64; 5],
    rpc: RwLock<HashMap<&'static str, MethodStats>>,
    updates_pushed: Mutex<BTreeMap<&'static str, u64>>,
    store_commit: Mutex<BTreeMap<&'static str, Histogram>>,
}

/// The gauges of the present moment, gathered when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Open connections by (transport, obfuscated); transport "unknown" before the first bytes.
    pub connections: BTreeMap<(&'static str, bool), u64>,
    /// Calls not ended.
    pub calls_live: u64,
    /// Users busy in a call.
    pub busy_users: u64,
    /// Users with a live session.
    pub users_online: u64,
    /// This node's reflector, if it runs one.
    pub relay: Option<RelayFigures>,
    /// Ended calls held in memory, when this node holds calls in memory (one node).
    pub memory: Option<CallMemory>,
    /// How call transitions shared database transactions (several nodes).
    pub transition_groups: Option<store::TransitionGroups>,
}

/// What one node's in-memory call registry holds and has let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallMemory {
    /// Ended calls held for late requests.
    pub ended_held: u64,
    /// Ended calls that have left memory since the start.
    pub evicted: u64,
    /// Store reads for calls a request named that memory no longer held.
    pub read_back: u64,
}

/// A reflector's figures at one moment.
#[derive(Clone, Debug, Default)]
pub struct RelayFigures {
    /// Counters since the start.
    pub totals: relay::Totals,
    /// Calls granted now.
    pub granted: u64,
    /// Granted calls that have had packets relayed.
    pub relaying: u64,
}

impl Metrics {
    /// A connection was accepted.
    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// An auth key was created (temporary if it expires).
    pub fn auth_key_created(&self, temporary: bool) {
        let counter = if temporary {
            &self.auth_keys_temporary
        } else {
            &self.auth_keys_permanent
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An RPC was answered: `result` is `None` for success or the error's name.
    pub fn rpc(&self, method: &'static str, result: Option<&'static str>, elapsed: Duration) {
        let count = |stats: &MethodStats| {
            match result {
                None => {
                    stats.ok.fetch_add(1, Ordering::Relaxed);
                }
                Some(error) => {
                    let mut errors = stats.errors.lock().unwrap_or_else(|e| e.into_inner());
                    *errors.entry(error).or_default() += 1;
                }
            }
            stats.latency.observe(elapsed);
        };
        {
            let rpc = self.rpc.read().unwrap_or_else(|e| e.into_inner());
            if let Some(stats) = rpc.get(method) {
                count(stats);
                return;
            }
        }
        let mut rpc = self.rpc.write().unwrap_or_else(|e| e.into_inner());
        count(rpc.entry(method).or_default());
    }

    /// A call was created by `phone.requestCall` (busy refusals included).
    pub fn call_setup(&self) {
        self.call_setups.fetch_add(1, Ordering::Relaxed);
    }

    /// A call setup settled.
    pub fn outcome(&self, outcome: Outcome) {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.outcomes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// An update was handed to a session, by its constructor name.
    pub fn update_pushed(&self, name: &'static str) {
        let mut pushed = self
            .updates_pushed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *pushed.entry(name).or_default() += 1;
    }

    /// A store write of kind `op` took `elapsed` to commit.
    pub fn store_commit(&self, op: &'static str, elapsed: Duration) {
        let mut commits = self.store_commit.lock().unwrap_or_else(|e| e.into_inner());
        commits.entry(op).or_default().observe(elapsed);
    }

    /// The OpenMetrics text exposition of everything (prometheus-client's encoder), with
    /// `gauges` of the present. The counters are read once into a [`Scrape`], so the
    /// recording side stays atomics and short locks.
    pub fn render(&self, gauges: &Gauges) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rpc = {
            let rpc = self.rpc.read().unwrap_or_else(|e| e.into_inner());
            let mut methods: Vec<MethodScrape> = rpc
                .iter()
                .map(|(method, stats)| {
                    let ok = stats.ok.load(Ordering::Relaxed);
                    let errors = stats.errors.lock().unwrap_or_else(|e| e.into_inner());
                    let results = (ok > 0).then_some(("ok", ok)).into_iter();
                    MethodScrape {
                        method,
                        results: results
                            .chain(errors.iter().map(|(e, n)| (*e, *n)))
                            .collect(),
                        latency: stats.latency.snapshot(),
                    }
                })
                .collect();
            methods.sort_by_key(|m| m.method);
            methods
        };
        let scrape = Scrape {
            connections: gauges.connections.clone(),
            connections_accepted: load(&self.connections_accepted),
            auth_keys: [
                ("permanent", load(&self.auth_keys_permanent)),
                ("temporary", load(&self.auth_keys_temporary)),
            ],
            rpc,
            call_setups: load(&self.call_setups),
            outcomes: std::array::from_fn(|i| (Outcome::ALL[i].name(), load(&self.outcomes[i]))),
            calls_live: gauges.calls_live,
            busy_users: gauges.busy_users,
            users_online: gauges.users_online,
            memory: gauges.memory,
            transition_groups: gauges.transition_groups,
            relay: gauges.relay.clone(),
            updates_pushed: self
                .updates_pushed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(u, n)| (*u, *n))
                .collect(),
            store_commit: self
                .store_commit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(op, h)| (*op, h.clone()))
                .collect(),
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut out = String::with_capacity(8 * 1024);
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One method's counters as read for a scrape.
#[derive(Debug)]
struct MethodScrape {
    method: &'static str,
    results: Vec<(&'static str, u64)>,
    latency: Histogram,
}

/// Everything one scrape shows, read once; prometheus-client encodes it.
#[derive(Debug)]
struct Scrape {
    connections: BTreeMap<(&'static str, bool), u64>,
    connections_accepted: u64,
    auth_keys: [(&'static str, u64); 2],
    rpc: Vec<MethodScrape>,
    call_setups: u64,
    outcomes: [(&'static str, u64); 5],
    calls_live: u64,
    busy_users: u64,
    users_online: u64,
    memory: Option<CallMemory>,
    transition_groups: Option<store::TransitionGroups>,
    updates_pushed: Vec<(&'static str, u64)>,
    store_commit: Vec<(&'static str, Histogram)>,
    relay: Option<RelayFigures>,
}

impl Histogram {
    /// The buckets as prometheus-client takes them: upper bound (`f64::MAX` for +Inf) and the
    /// count in that bucket alone.
    fn buckets(&self) -> Vec<(f64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (BOUNDS.get(i).copied().unwrap_or(f64::MAX), *n))
            .collect()
    }

    fn encode(&self, family: &mut MetricEncoder<'_>) -> fmt::Result {
        family.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets(), None)
    }
}

/// A descriptor, then `value` as one sample without labels.
fn single(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => m.encode_counter::<NoLabelSet, _, u64>(&value, None),
        _ => m.encode_gauge(&value),
    }
}

/// A counter family with one label.
fn counters(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&'static str, u64)],
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        m.encode_family(&[(label, *value)])?
            .encode_counter::<NoLabelSet, _, u64>(n, None)?;
    }
    Ok(())
}

/// The reflector's families.
fn encode_relay(e: &mut DescriptorEncoder<'_>, relay: &RelayFigures) -> fmt::Result {
    let t = &relay.totals;
    single(
        e,
        "mtcall_relay_forwarded_packets",
        "Datagrams the reflector forwarded between the parties of calls.",
        MetricType::Counter,
        t.forwarded_packets,
    )?;
    single(
        e,
        "mtcall_relay_forwarded_bytes",
        "Bytes the reflector forwarded.",
        MetricType::Counter,
        t.forwarded_bytes,
    )?;
    single(
        e,
        "mtcall_relay_replies",
        "Hellos the reflector answered.",
        MetricType::Counter,
        t.replies,
    )?;
    let dropped: Vec<(&'static str, u64)> = relay::Dropped::ALL
        .iter()
        .map(|d| (d.name(), t.dropped(*d)))
        .collect();
    counters(
        e,
        "mtcall_relay_dropped",
        "Datagrams the reflector dropped, by reason.",
        "reason",
        &dropped,
    )?;
    single(
        e,
        "mtcall_relay_calls",
        "Calls granted on this node's reflector.",
        MetricType::Gauge,
        relay.granted,
    )?;
    single(
        e,
        "mtcall_relay_calls_relaying",
        "Granted calls that have had packets relayed.",
        MetricType::Gauge,
        relay.relaying,
    )
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let mut m = e.encode_descriptor(
            "mtcall_build_info",
            "The running mtcall version.",
            None,
            MetricType::Gauge,
        )?;
        m.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?
            .encode_gauge(&1u64)?;
        let mut m = e.encode_descriptor(
            "mtcall_connections",
            "Open MTProto connections by transport.",
            None,
            MetricType::Gauge,
        )?;
        for ((transport, obfuscated), n) in &self.connections {
            let obfuscated = if *obfuscated { "true" } else { "false" };
            m.encode_family(&[("transport", *transport), ("obfuscated", obfuscated)])?
                .encode_gauge(n)?;
        }
        single(
            &mut e,
            "mtcall_connections_accepted",
            "TCP connections accepted.",
            MetricType::Counter,
            self.connections_accepted,
        )?;
        counters(
            &mut e,
            "mtcall_auth_keys_created",
            "Auth keys created by the handshake.",
            "kind",
            &self.auth_keys,
        )?;
        let mut m = e.encode_descriptor(
            "mtcall_rpc",
            "RPCs answered, by method and result (ok or the error name).",
            None,
            MetricType::Counter,
        )?;
        for method in &self.rpc {
            for (result, n) in &method.results {
                m.encode_family(&[("method", method.method), ("result", *result)])?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }
        let mut m = e.encode_descriptor(
            "mtcall_rpc_duration_seconds",
            "Time from a request's decryption to its answer being queued, by method.",
            None,
            MetricType::Histogram,
        )?;
        for method in &self.rpc {
            method
                .latency
                .encode(&mut m.encode_family(&[("method", method.method)])?)?;
        }
        single(
            &mut e,
            "mtcall_call_setups",
            "Calls created by phone.requestCall, busy refusals included.",
            MetricType::Counter,
            self.call_setups,
        )?;
        counters(
            &mut e,
            "mtcall_call_outcomes",
            "How call setups settled: answered, busy_refused, missed, declined, cancelled.",
            "outcome",
            &self.outcomes,
        )?;
        single(
            &mut e,
            "mtcall_calls_live",
            "Calls not ended.",
            MetricType::Gauge,
            self.calls_live,
        )?;
        single(
            &mut e,
            "mtcall_busy_users",
            "Users busy in a call (new calls to them are refused).",
            MetricType::Gauge,
            self.busy_users,
        )?;
        single(
            &mut e,
            "mtcall_users_online",
            "Users with at least one live session.",
            MetricType::Gauge,
            self.users_online,
        )?;
        if let Some(m) = self.memory {
            single(
                &mut e,
                "mtcall_calls_ended_in_memory",
                "Ended calls held in memory for late requests ([calls] recent_ended_calls at most).",
                MetricType::Gauge,
                m.ended_held,
            )?;
            single(
                &mut e,
                "mtcall_calls_evicted",
                "Ended calls that left memory (their stored rows stay for the tombstone hour).",
                MetricType::Counter,
                m.evicted,
            )?;
            single(
                &mut e,
                "mtcall_calls_read_back",
                "Store reads for calls a request named that memory no longer held.",
                MetricType::Counter,
                m.read_back,
            )?;
        }
        if let Some(g) = self.transition_groups {
            single(
                &mut e,
                "mtcall_postgres_transition_groups",
                "Database transactions that carried this node's call transitions (several nodes).",
                MetricType::Counter,
                g.groups,
            )?;
            single(
                &mut e,
                "mtcall_postgres_transitions",
                "Call transitions run in those transactions (divided by the groups: the mean group).",
                MetricType::Counter,
                g.transitions,
            )?;
            single(
                &mut e,
                "mtcall_postgres_transitions_held_back",
                "Times a call transition waited for a later transaction: it shared a user with an earlier one in its group.",
                MetricType::Counter,
                g.held_back,
            )?;
        }
        counters(
            &mut e,
            "mtcall_updates_pushed",
            "Updates handed to sessions, by constructor.",
            "update",
            &self.updates_pushed,
        )?;
        let mut m = e.encode_descriptor(
            "mtcall_store_commit_seconds",
            "Time for a call transition's write to commit, by operation.",
            None,
            MetricType::Histogram,
        )?;
        for (op, h) in &self.store_commit {
            h.encode(&mut m.encode_family(&[("op", *op)])?)?;
        }
        if let Some(relay) = &self.relay {
            encode_relay(&mut e, relay)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_render() {
        let m = Metrics::default();
        m.rpc("phone.receivedCall", None, Duration::from_micros(50));
        m.rpc("phone.receivedCall", None, Duration::from_millis(3));
        m.rpc(
            "phone.receivedCall",
            Some("CALL_PEER_INVALID"),
            Duration::from_secs(10),
        );
        m.outcome(Outcome::BusyRefused);
        let text = m.render(&Gauges::default());
        assert!(text.contains("mtcall_rpc_total{method=\"phone.receivedCall\",result=\"ok\"} 2"));
        assert!(text.contains(
            "mtcall_rpc_total{method=\"phone.receivedCall\",result=\"CALL_PEER_INVALID\"} 1"
        ));
        assert!(text.contains(
            "mtcall_rpc_duration_seconds_bucket{le=\"0.0001\",method=\"phone.receivedCall\"} 1"
        ));
        assert!(text.contains(
            "mtcall_rpc_duration_seconds_bucket{le=\"0.005\",method=\"phone.receivedCall\"} 2"
        ));
        assert!(text.contains(
            "mtcall_rpc_duration_seconds_bucket{le=\"+Inf\",method=\"phone.receivedCall\"} 3"
        ));
        assert!(
            text.contains("mtcall_rpc_duration_seconds_count{method=\"phone.receivedCall\"} 3")
        );
        assert!(text.contains("mtcall_call_outcomes_total{outcome=\"busy_refused\"} 1"));
        assert!(text.contains("mtcall_call_outcomes_total{outcome=\"answered\"} 0"));
    }
}
