//! Counters and histograms for Prometheus (exposition format:
//! the Prometheus text format). Counters are atomics or
//! live under one short lock per RPC; gauges that describe the present (connections, calls,
//! busy users) are computed when `/metrics` is scraped, from the inspector and the hub, so they
//! cannot drift from what they count.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

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

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = BOUNDS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
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

    /// The Prometheus text exposition of everything, with `gauges` of the present.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        header(
            &mut out,
            "mtcall_build_info",
            "gauge",
            "The running mtcall version.",
        );
        let _ = writeln!(
            out,
            "mtcall_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "mtcall_connections",
            "gauge",
            "Open MTProto connections by transport.",
        );
        for ((transport, obfuscated), n) in &gauges.connections {
            let _ = writeln!(
                out,
                "mtcall_connections{{transport=\"{transport}\",obfuscated=\"{obfuscated}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "mtcall_connections_accepted_total",
            "TCP connections accepted.",
            load(&self.connections_accepted),
        );
        header(
            &mut out,
            "mtcall_auth_keys_created_total",
            "counter",
            "Auth keys created by the handshake.",
        );
        let _ = writeln!(
            out,
            "mtcall_auth_keys_created_total{{kind=\"permanent\"}} {}",
            load(&self.auth_keys_permanent)
        );
        let _ = writeln!(
            out,
            "mtcall_auth_keys_created_total{{kind=\"temporary\"}} {}",
            load(&self.auth_keys_temporary)
        );
        {
            let rpc = self.rpc.read().unwrap_or_else(|e| e.into_inner());
            let mut methods: Vec<(&&str, &MethodStats)> = rpc.iter().collect();
            methods.sort_by_key(|(m, _)| **m);
            header(
                &mut out,
                "mtcall_rpc_total",
                "counter",
                "RPCs answered, by method and result (ok or the error name).",
            );
            for (method, stats) in &methods {
                let ok = stats.ok.load(Ordering::Relaxed);
                let errors = stats.errors.lock().unwrap_or_else(|e| e.into_inner());
                let results = (ok > 0).then_some(("ok", ok)).into_iter();
                for (result, n) in results.chain(errors.iter().map(|(e, n)| (*e, *n))) {
                    let _ = writeln!(
                        out,
                        "mtcall_rpc_total{{method=\"{method}\",result=\"{result}\"}} {n}"
                    );
                }
            }
            header(
                &mut out,
                "mtcall_rpc_duration_seconds",
                "histogram",
                "Time from a request's decryption to its answer being queued, by method.",
            );
            for (method, stats) in &methods {
                stats.latency.snapshot().render(
                    &mut out,
                    "mtcall_rpc_duration_seconds",
                    &format!("method=\"{method}\""),
                );
            }
        }
        counter(
            &mut out,
            "mtcall_call_setups_total",
            "Calls created by phone.requestCall, busy refusals included.",
            load(&self.call_setups),
        );
        header(
            &mut out,
            "mtcall_call_outcomes_total",
            "counter",
            "How call setups settled: answered, busy_refused, missed, declined, cancelled.",
        );
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "mtcall_call_outcomes_total{{outcome=\"{}\"}} {}",
                outcome.name(),
                load(&self.outcomes[i])
            );
        }
        gauge(
            &mut out,
            "mtcall_calls_live",
            "Calls not ended.",
            gauges.calls_live,
        );
        gauge(
            &mut out,
            "mtcall_busy_users",
            "Users busy in a call (new calls to them are refused).",
            gauges.busy_users,
        );
        gauge(
            &mut out,
            "mtcall_users_online",
            "Users with at least one live session.",
            gauges.users_online,
        );
        {
            let pushed = self
                .updates_pushed
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            header(
                &mut out,
                "mtcall_updates_pushed_total",
                "counter",
                "Updates handed to sessions, by constructor.",
            );
            for (update, n) in pushed.iter() {
                let _ = writeln!(
                    out,
                    "mtcall_updates_pushed_total{{update=\"{update}\"}} {n}"
                );
            }
        }
        {
            let commits = self.store_commit.lock().unwrap_or_else(|e| e.into_inner());
            header(
                &mut out,
                "mtcall_store_commit_seconds",
                "histogram",
                "Time for a call transition's write to commit, by operation.",
            );
            for (op, h) in commits.iter() {
                h.render(
                    &mut out,
                    "mtcall_store_commit_seconds",
                    &format!("op=\"{op}\""),
                );
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
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
            "mtcall_rpc_duration_seconds_bucket{method=\"phone.receivedCall\",le=\"0.0001\"} 1"
        ));
        assert!(text.contains(
            "mtcall_rpc_duration_seconds_bucket{method=\"phone.receivedCall\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "mtcall_rpc_duration_seconds_bucket{method=\"phone.receivedCall\",le=\"+Inf\"} 3"
        ));
        assert!(
            text.contains("mtcall_rpc_duration_seconds_count{method=\"phone.receivedCall\"} 3")
        );
        assert!(text.contains("mtcall_call_outcomes_total{outcome=\"busy_refused\"} 1"));
        assert!(text.contains("mtcall_call_outcomes_total{outcome=\"answered\"} 0"));
    }
}
