//! Call transitions on PostgreSQL, gathered into shared transactions (group commit done by
//! the node): every transition waiting when a transaction starts joins it, so one `BEGIN`, one
//! statement of row locks, one read of the calls in scope, one write of calls, history and
//! pushes, and one durable `COMMIT` serve them all — two round trips for the lot.
//!
//! What each transition is given is exactly what it would have read alone: its users' pts and
//! row locks, their live calls, the call itself and the caller's earlier call with the same
//! `random_id`. Transitions sharing a transaction must not see each other's work, so one joins
//! only when no transition before it in the transaction touches any of its users (its parties
//! and the parties of every call in its scope); one that would is held back and leads a later
//! transaction, so every transaction runs at least its first. Each step runs in its caller's
//! task, concurrently with the others', while the locks are held; the caller's answer comes
//! after the commit. At most [`CONCURRENT`] transactions of one node are open at once, and rows
//! are locked in id order in one statement, so transactions of any nodes never deadlock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::postgres_log::{Counters, LogStatements, LogWrites, read_counters, write};
use crate::postgres_pipeline::{Param, Pipeline, first_error};
use crate::postgres_rows::{SET_LIVE_CALLS, call_row, db_error, is_live, unavailable};
use crate::{CallChanges, CallRow, CallScope, InScope, StoreError, TransitionGroups, sql};

/// Transactions of call transitions one node keeps open at once (each holds a connection of
/// the transition pool while its steps render).
pub(crate) const CONCURRENT: usize = 2;
/// The most transitions one transaction takes.
const MOST: usize = 64;
/// How long a transaction waits for its steps (they hold every joined transition's row locks);
/// a second in this crate's tests.
const STEP_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(if cfg!(test) { 1 } else { 10 });

/// What [`transition_loop`] counts, read for the metrics.
#[derive(Default)]
pub(crate) struct Counted {
    groups: AtomicU64,
    transitions: AtomicU64,
    held_back: AtomicU64,
}

impl Counted {
    pub(crate) fn read(&self) -> TransitionGroups {
        TransitionGroups {
            groups: self.groups.load(Ordering::Relaxed),
            transitions: self.transitions.load(Ordering::Relaxed),
            held_back: self.held_back.load(Ordering::Relaxed),
        }
    }
}

/// A call transition waiting for its transaction.
pub(crate) struct Transition {
    pub(crate) scope: CallScope,
    /// When its pushes are made.
    pub(crate) now: i64,
    /// Where it is told what is in its scope, or why it will not run.
    pub(crate) given: oneshot::Sender<Result<Given, StoreError>>,
}

/// What a transition is given once its transaction holds the locks: what is in its scope,
/// where its step's changes go (`None`: it writes nothing), and where the commit's outcome comes.
pub(crate) struct Given {
    pub(crate) in_scope: InScope,
    pub(crate) changes: oneshot::Sender<Option<CallChanges>>,
    pub(crate) committed: oneshot::Receiver<Result<(), StoreError>>,
}

/// The users whose rows a transaction locks: the requests' (`$1`) and the parties of the calls
/// (`$2`), read inside the statement (a call's parties never change).
const USERS: &str = "($1::bigint[] || ARRAY(SELECT unnest(ARRAY[admin_id, participant_id]) FROM calls WHERE id = ANY($2::bigint[])))";

/// Locks the users' rows in id order and reads their lists of live calls.
fn lock_users() -> String {
    format!("SELECT id, live_calls FROM users WHERE id = ANY({USERS}) ORDER BY id FOR UPDATE")
}

/// The calls any transition of the transaction may have in scope by id: the users' live calls
/// and the calls operated on (whether a call is still live is checked when each transition's
/// scope is made). Read after the locks are taken, so it sees what the transactions before
/// committed.
fn calls_by_id() -> String {
    format!(
        "SELECT {} FROM calls WHERE id = ANY(ARRAY(SELECT unnest(live_calls) FROM users WHERE id = ANY({USERS})) || $2::bigint[])",
        sql::CALL_COLUMNS
    )
}

/// The callers' calls with the requests' `random_id`s: every pair of a caller and a
/// `random_id` of the group is read, one index range each, and each transition keeps its own
/// pair. A statement of its own: joined to the read by id with `OR`, the planner may scan the
/// whole table when its statistics lag a fast-growing one.
fn calls_by_random_id() -> String {
    format!(
        "SELECT {} FROM calls WHERE admin_id = ANY($1::bigint[]) AND random_id = ANY($2::integer[])",
        sql::CALL_COLUMNS
    )
}

/// Inserts or replaces several calls in one statement.
const SAVE_CALLS: &str = "INSERT INTO calls (id, admin_id, participant_id, state, body, updated_at, random_id, deadline)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::bigint[], $7::integer[], $8::integer[])
     ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, updated_at = excluded.updated_at, deadline = excluded.deadline";

/// One node's transitions: gathers those waiting into transactions until the queue closes
/// and every transaction has ended. One transaction at a time reads and runs its steps; the
/// next starts when it sends its writes, so transitions arriving meanwhile gather into it while
/// the one before waits for its commit to be durable (at most [`CONCURRENT`] open at once).
pub(crate) async fn transition_loop(
    pool: Pool,
    mut queue: mpsc::UnboundedReceiver<Transition>,
    counted: Arc<Counted>,
) {
    let mut waiting: VecDeque<Transition> = VecDeque::new();
    let mut open: JoinSet<Vec<Transition>> = JoinSet::new();
    let (read_tx, mut read_rx) = mpsc::unbounded_channel();
    let mut reading = false;
    let mut receiving = true;
    loop {
        while let Ok(t) = queue.try_recv() {
            waiting.push_back(t);
        }
        if !reading && open.len() < CONCURRENT && !waiting.is_empty() {
            reading = true;
            let done = Reading(read_tx.clone());
            let taken = take(&mut waiting, &counted);
            open.spawn(run(pool.clone(), taken, done, counted.clone()));
        }
        if !receiving && open.is_empty() && waiting.is_empty() {
            return;
        }
        tokio::select! {
            t = queue.recv(), if receiving => match t {
                Some(t) => waiting.push_back(t),
                None => receiving = false,
            },
            Some(()) = read_rx.recv() => reading = false,
            Some(ended) = open.join_next(), if !open.is_empty() => {
                // Held back: they lead the next transaction, in their order.
                for t in ended.unwrap_or_default().into_iter().rev() {
                    waiting.push_front(t);
                }
            }
        }
    }
}

/// Held by the transaction that reads and runs its steps; dropped (however it ends) when it
/// sends its writes, so the next may start.
struct Reading(mpsc::UnboundedSender<()>);

impl Drop for Reading {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// The next transaction's transitions: the first waiting, and each later one not known to
/// clash with them (the same request users or the same call; clashes through calls in scope
/// show only once they are read).
fn take(waiting: &mut VecDeque<Transition>, counted: &Counted) -> Vec<Transition> {
    let mut taken = Vec::new();
    let mut held = VecDeque::new();
    let (mut users, mut calls) = (HashSet::new(), HashSet::new());
    while let Some(t) = waiting.pop_front() {
        if taken.len() == MOST {
            held.push_back(t);
            continue;
        }
        // Only a transition taken counts against the later ones.
        let clashes = match t.scope {
            CallScope::Request { caller, callee, .. } => {
                users.contains(&caller) || users.contains(&callee) || {
                    users.extend([caller, callee]);
                    false
                }
            }
            CallScope::Call(id) => !calls.insert(id),
        };
        if clashes {
            counted.held_back.fetch_add(1, Ordering::Relaxed);
            held.push_back(t);
        } else {
            taken.push(t);
        }
    }
    *waiting = held;
    taken
}

/// Runs one transaction for `transitions`; returns those held back.
async fn run(
    pool: Pool,
    transitions: Vec<Transition>,
    reading: Reading,
    counted: Arc<Counted>,
) -> Vec<Transition> {
    let mut transitions = transitions;
    let taken = transitions.len() as u64;
    match transact(&pool, &mut transitions, reading).await {
        Ok(held) => {
            let held_back = held.len() as u64;
            counted.groups.fetch_add(1, Ordering::Relaxed);
            counted
                .transitions
                .fetch_add(taken - held_back, Ordering::Relaxed);
            counted.held_back.fetch_add(held_back, Ordering::Relaxed);
            held
        }
        Err(e) => {
            // Nothing was given to anyone yet: all of them hear why.
            for t in transitions {
                let _ = t.given.send(Err(e.clone()));
            }
            Vec::new()
        }
    }
}

/// What the first round trip read.
struct Read {
    counters: Counters,
    /// Each locked user's live calls.
    live: HashMap<i64, Vec<i64>>,
    calls: HashMap<i64, CallRow>,
    /// The call of each caller and `random_id` found.
    by_random: HashMap<(i64, i32), i64>,
}

impl Read {
    /// What `scope` would have read alone, and every user it touches (its users and the
    /// parties of the calls in scope).
    fn scope_of(&self, scope: CallScope) -> (InScope, Vec<i64>) {
        let (users, own, random) = match scope {
            CallScope::Request {
                caller,
                callee,
                random_id,
            } => (vec![caller, callee], None, Some((caller, random_id))),
            CallScope::Call(id) => (
                self.calls
                    .get(&id)
                    .map(|c| vec![c.admin_id, c.participant_id])
                    .unwrap_or_default(),
                Some(id),
                None,
            ),
        };
        let mut ids: Vec<i64> = users
            .iter()
            .flat_map(|u| self.live.get(u).into_iter().flatten())
            .copied()
            .filter(|id| self.calls.get(id).is_some_and(is_live))
            .chain(own.filter(|id| self.calls.contains_key(id)))
            .chain(random.and_then(|pair| self.by_random.get(&pair).copied()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let calls: Vec<CallRow> = ids.iter().map(|id| self.calls[id].clone()).collect();
        let mut touched = users.clone();
        touched.extend(calls.iter().flat_map(|c| [c.admin_id, c.participant_id]));
        let locked: Vec<i64> = users
            .into_iter()
            .filter(|u| self.live.contains_key(u))
            .collect();
        let in_scope = InScope {
            calls,
            pts: self.counters.pts_of(&locked),
        };
        (in_scope, touched)
    }
}

/// A transition that joined the transaction, waiting for its step's changes.
struct Joined {
    changes: oneshot::Receiver<Option<CallChanges>>,
    committed: oneshot::Sender<Result<(), StoreError>>,
    now: i64,
    /// Its step was not done by the deadline.
    late: bool,
}

/// One transaction: locks and reads for all of `transitions`, gives each that joins its scope,
/// writes what their steps changed with `COMMIT`, and tells them the outcome. Returns those
/// held back; on an error before anything was given, `transitions` are left for the caller.
async fn transact(
    pool: &Pool,
    transitions: &mut Vec<Transition>,
    reading: Reading,
) -> Result<Vec<Transition>, StoreError> {
    let pipeline = Pipeline::connect(pool).await?;
    let client = pipeline.client();
    // Prepared (or found in the connection's cache) before anything is sent: a statement
    // prepared inside the pipeline would be sent only after the ones behind it.
    let lock = client
        .prepare_cached(&lock_users())
        .await
        .map_err(db_error)?;
    let counters = client
        .prepare_cached(&read_counters(USERS))
        .await
        .map_err(db_error)?;
    let by_id = client
        .prepare_cached(&calls_by_id())
        .await
        .map_err(db_error)?;
    let by_random = client
        .prepare_cached(&calls_by_random_id())
        .await
        .map_err(db_error)?;
    let log = LogStatements::prepare(client).await?;
    let save = client.prepare_cached(SAVE_CALLS).await.map_err(db_error)?;
    let set_live = client
        .prepare_cached(SET_LIVE_CALLS)
        .await
        .map_err(db_error)?;
    let (mut users, mut call_ids, mut admins, mut randoms) = (vec![], vec![], vec![], vec![]);
    for t in transitions.iter() {
        match t.scope {
            CallScope::Request {
                caller,
                callee,
                random_id,
            } => {
                users.extend([caller, callee]);
                admins.push(caller);
                randoms.push(random_id);
            }
            CallScope::Call(id) => call_ids.push(id),
        }
    }
    let lock_params: [Param; 2] = [&users, &call_ids];
    let random_params: [Param; 2] = [&admins, &randoms];
    let (begun, locked, counted, rows, random_rows) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &lock_params),
        client.query(&counters, &lock_params),
        client.query(&by_id, &lock_params),
        async {
            if admins.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&by_random, &random_params).await
        },
    );
    let read = first_error([begun])
        .and(locked)
        .and_then(|l| Ok((l, counted?, rows?, random_rows?)));
    let (locked, counted, rows, random_rows) = match read {
        Ok(read) => read,
        Err(e) => return Err(pipeline.abandon(e).await),
    };
    let live: HashMap<i64, Vec<i64>> = locked.iter().map(|r| (r.get(0), r.get(1))).collect();
    let locked_ids: Vec<i64> = live.keys().copied().collect();
    let read = Read {
        counters: Counters::new(&locked_ids, &counted),
        live,
        calls: rows
            .iter()
            .chain(&random_rows)
            .map(|r| (r.get("id"), call_row(r)))
            .collect(),
        by_random: random_rows
            .iter()
            .map(|r| ((r.get("admin_id"), r.get("random_id")), r.get("id")))
            .collect(),
    };

    // Give each transition its scope, unless an earlier one touches its users.
    let mut touched: HashSet<i64> = HashSet::new();
    let mut held = Vec::new();
    let mut joined = Vec::new();
    for t in transitions.drain(..) {
        let (scope, users) = read.scope_of(t.scope);
        if users.iter().any(|u| touched.contains(u)) {
            held.push(t);
            continue;
        }
        touched.extend(users);
        let (changes_tx, changes) = oneshot::channel();
        let (committed, committed_rx) = oneshot::channel();
        let given = Given {
            in_scope: scope,
            changes: changes_tx,
            committed: committed_rx,
        };
        // A transition whose caller has gone writes nothing.
        if t.given.send(Ok(given)).is_ok() {
            joined.push(Joined {
                changes,
                committed,
                now: t.now,
                late: false,
            });
        }
    }

    // Their steps run in their callers' tasks; gather what they changed. A step not done by
    // the deadline is left out: it writes nothing and its caller hears so.
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut all = CallChanges::default();
    let mut now = 0;
    for j in &mut joined {
        match tokio::time::timeout_at(deadline, &mut j.changes).await {
            Ok(Ok(Some(changes))) => {
                all.save.extend(changes.save);
                all.updates.extend(changes.updates);
                all.pushes.extend(changes.pushes);
                now = now.max(j.now);
            }
            Ok(Ok(None) | Err(_)) => {}
            Err(_) => j.late = true,
        }
    }
    drop(reading);
    let statements = (&save, &set_live, &log);
    let outcome = commit(pipeline, &read, all, now, statements).await;
    for j in joined {
        let told = if j.late {
            Err(unavailable("the call transition's step took too long"))
        } else {
            outcome.clone()
        };
        let _ = j.committed.send(told);
    }
    Ok(held)
}

/// The second round trip: every change and `COMMIT` (or `ROLLBACK` when nothing changed).
/// The connection goes back to the pool once the transaction ended, and is closed otherwise.
async fn commit(
    pipeline: Pipeline,
    read: &Read,
    changes: CallChanges,
    now: i64,
    (save, set_live, log): (
        &tokio_postgres::Statement,
        &tokio_postgres::Statement,
        &LogStatements,
    ),
) -> Result<(), StoreError> {
    let client = pipeline.client();
    let logged = if changes == CallChanges::default() {
        Ok(None)
    } else {
        LogWrites::new(read.counters.clone(), changes.updates, changes.pushes).map(Some)
    };
    let logged = match logged {
        Ok(Some(logged)) => logged,
        Ok(None) | Err(_) => {
            client.batch_execute("ROLLBACK").await.map_err(db_error)?;
            pipeline.finish();
            return logged.map(drop);
        }
    };
    let saved = last_of_each(&changes.save);
    let became: Vec<&CallRow> = saved
        .iter()
        .copied()
        .filter(|c| read.calls.get(&c.id).is_some_and(is_live) != is_live(c))
        .collect();
    let (saved, live, logged, committed) = tokio::join!(
        save_calls(client, save, &saved),
        set_live_calls(client, set_live, &became),
        write(client, log, &logged, now),
        client.batch_execute("COMMIT"),
    );
    committed.map_err(db_error)?;
    // After a failed write the database answered `COMMIT` by rolling back.
    pipeline.finish();
    first_error([saved, live, logged]).map_err(db_error)
}

/// The last row of each call id (one statement may not change a row twice).
fn last_of_each(calls: &[CallRow]) -> Vec<&CallRow> {
    let mut calls: Vec<&CallRow> = calls.iter().rev().collect();
    calls.sort_by_key(|c| c.id);
    calls.dedup_by_key(|c| c.id);
    calls
}

/// Adds the calls that began and removes those that ended from their parties' lists of live
/// calls, if there are any.
async fn set_live_calls(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    calls: &[&CallRow],
) -> Result<(), tokio_postgres::Error> {
    if calls.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = calls.iter().map(|c| c.id).collect();
    let admins: Vec<i64> = calls.iter().map(|c| c.admin_id).collect();
    let participants: Vec<i64> = calls.iter().map(|c| c.participant_id).collect();
    let live: Vec<bool> = calls.iter().map(|c| is_live(c)).collect();
    client
        .execute(statement, &[&ids, &admins, &participants, &live])
        .await
        .map(drop)
}

/// Inserts or replaces `calls`, if there are any.
async fn save_calls(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    calls: &[&CallRow],
) -> Result<(), tokio_postgres::Error> {
    if calls.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&CallRow) -> i64| calls.iter().map(|c| f(c)).collect::<Vec<i64>>();
    let (ids, admins, participants, updated) = (
        column(|c| c.id),
        column(|c| c.admin_id),
        column(|c| c.participant_id),
        column(|c| c.updated_at),
    );
    let states: Vec<&str> = calls.iter().map(|c| c.state.as_str()).collect();
    let bodies: Vec<&[u8]> = calls.iter().map(|c| c.body.as_slice()).collect();
    let randoms: Vec<i32> = calls.iter().map(|c| c.random_id).collect();
    let deadlines: Vec<Option<i32>> = calls.iter().map(|c| c.deadline).collect();
    client
        .execute(
            statement,
            &[
                &ids,
                &admins,
                &participants,
                &states,
                &bodies,
                &updated,
                &randoms,
                &deadlines,
            ],
        )
        .await
        .map(drop)
}
