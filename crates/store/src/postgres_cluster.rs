//! PostgreSQL as the meeting point of several mtcall nodes (`docs/design.md`, "Storage
//! and scale"): call transitions under the row locks of both users (in transactions each
//! node shares among the transitions waiting, `postgres_transitions.rs`), so the busy check
//! of `phone.requestCall` is exact whichever node runs it; timers any node may run, made
//! idempotent by the same locks; and a push log, whose rows wake by LISTEN/NOTIFY only the
//! nodes present for their user (each on a channel of its own) — the notification carries
//! the push (or, for a large one, only its number), but the row is what counts, so a node
//! that lost its listening connection catches up from the log and nothing is lost with a
//! notification.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::postgres_log::{push_channel, push_wake};
use crate::postgres_pipeline::{Param, Pipeline, first_error};
use crate::postgres_publish::Publish;
use crate::postgres_rows::{call_row, db_error, unavailable};
use crate::postgres_transitions::Transition;
use crate::{
    CallRow, CallScope, CallStep, Cluster, PgStore, Presence, PushCursor, PushRow, StoreFuture,
    StoredPush, TransitionGroups, Wake, sql,
};

/// A push-log row.
fn stored_push(r: &tokio_postgres::Row) -> StoredPush {
    StoredPush {
        seq: r.get("seq"),
        push: PushRow {
            user_id: r.get("user_id"),
            except_key: r.get("except_key"),
            only_key: r.get("only_key"),
            body: r.get("body"),
        },
    }
}

/// The channel nodes listen on for changed users.
const USER_CHANNEL: &str = "mtcall_user";
/// The listening connection's name (tests end it to show nothing is lost).
pub const LISTENER_NAME: &str = "mtcall-listener";

impl PgStore {
    /// One transition: it waits for a transaction of this node's transition loop
    /// (`postgres_transitions.rs`) to hold its users' locks, runs `step` on what is in its
    /// scope, and is answered once that transaction has committed.
    async fn run_transition(
        &self,
        scope: CallScope,
        now: i64,
        step: CallStep<'_>,
    ) -> Result<(), crate::StoreError> {
        let stopped = || unavailable("the call transition loop has stopped");
        let (given, answer) = oneshot::channel();
        self.transition_queue
            .send(Transition { scope, now, given })
            .map_err(|_| stopped())?;
        let given = answer.await.map_err(|_| stopped())??;
        let changes = step(given.in_scope).await;
        // The transaction waits for this before it commits.
        let _ = given.changes.send(changes);
        given.committed.await.map_err(|_| stopped())?
    }
}

impl Cluster for PgStore {
    fn transact_calls<'a>(
        &'a self,
        scope: CallScope,
        now: i64,
        step: CallStep<'a>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.run_transition(scope, now, step))
    }

    fn live_calls(&self, user_id: i64) -> StoreFuture<'_, Vec<CallRow>> {
        Box::pin(async move {
            self.query_all(
                &format!(
                    "SELECT {} FROM calls WHERE id = ANY(ARRAY(SELECT unnest(live_calls) FROM users WHERE id = $1)) AND state <> 'discarded' ORDER BY id",
                    sql::CALL_COLUMNS
                ),
                &[&user_id],
                call_row,
            )
            .await
        })
    }

    fn due_calls(&self, now: i32, limit: u32) -> StoreFuture<'_, Vec<i64>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            self.query_all(
                "SELECT id FROM calls WHERE deadline <= $1 AND state <> 'discarded' ORDER BY deadline LIMIT $2",
                &[&now, &limit],
                |r| r.get(0),
            )
            .await
        })
    }

    fn publish(&self, pushes: Vec<PushRow>, now: i64) -> StoreFuture<'_, ()> {
        let (done, finished) = tokio::sync::oneshot::channel();
        let sent = self.publishes.send(Publish {
            rows: pushes,
            now,
            done,
        });
        Box::pin(async move {
            sent.map_err(|_| unavailable("the push publisher has stopped"))?;
            finished
                .await
                .map_err(|_| unavailable("the push publisher has stopped"))?
        })
    }

    fn pushes_for(&self, cursors: Vec<PushCursor>) -> StoreFuture<'_, Vec<StoredPush>> {
        let users: Vec<i64> = cursors.iter().map(|c| c.user_id).collect();
        let after: Vec<i64> = cursors.iter().map(|c| c.after).collect();
        let since: Vec<i64> = cursors.iter().map(|c| c.since).collect();
        Box::pin(async move {
            self.query_all(
                // One index range per cursor (a join the planner may turn into a scan of
                // the whole log).
                "SELECT p.* FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS c(user_id, after, since)
                 CROSS JOIN LATERAL (
                     SELECT seq, user_id, except_key, only_key, body FROM pushes
                     WHERE user_id = c.user_id AND seq > c.after AND created_at >= c.since
                     ORDER BY seq) AS p
                 ORDER BY p.user_id, p.seq",
                &[&users, &after, &since],
                stored_push,
            )
            .await
        })
    }

    fn forget_pushes_before(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute("DELETE FROM pushes WHERE created_at < $1", &[&before])
                .await
                .map_err(db_error)
        })
    }

    fn user_changed(&self, user_id: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&USER_CHANNEL, &user_id.to_string()],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn join(&self, now: i64) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let row = client
                .query_one(
                    "INSERT INTO nodes (seen_at) VALUES ($1) RETURNING id",
                    &[&now],
                )
                .await
                .map_err(db_error)?;
            Ok(row.get(0))
        })
    }

    fn set_presence(
        &self,
        node: i64,
        now: i64,
        online: Vec<i64>,
        offline: Vec<i64>,
    ) -> StoreFuture<'_, Presence> {
        Box::pin(async move {
            // One transaction in one round trip. The users' rows are share-locked first: that
            // waits for transitions holding them, whose pushes notified only the nodes present
            // before; any transition after waits for this commit, and notifies this node.
            let pipeline = Pipeline::connect(&self.pool).await?;
            let client = pipeline.client();
            let share = client
                .prepare_cached(
                    "SELECT id FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE",
                )
                .await
                .map_err(db_error)?;
            let newest = client
                .prepare_cached(
                    "SELECT user_id, push_seq FROM user_state WHERE user_id = ANY($1::bigint[])",
                )
                .await
                .map_err(db_error)?;
            // The node's row first (presence refers to it; a node forgotten while it was away
            // comes back).
            let alive = client
                .prepare_cached(
                    "INSERT INTO nodes (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at RETURNING xmax = 0 AS inserted",
                )
                .await
                .map_err(db_error)?;
            let add = client
                .prepare_cached(
                    "INSERT INTO presence (user_id, node_id) SELECT unnest($1::bigint[]), $2 ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(db_error)?;
            let remove = client
                .prepare_cached("DELETE FROM presence WHERE node_id = $2 AND user_id = ANY($1)")
                .await
                .map_err(db_error)?;
            let users: [Param; 1] = [&online];
            let alive_params: [Param; 2] = [&node, &now];
            let add_params: [Param; 2] = [&online, &node];
            let remove_params: [Param; 2] = [&offline, &node];
            let (begun, shared, newest, alive, added, removed, committed) = tokio::join!(
                client.batch_execute("BEGIN"),
                client.query(&share, &users),
                client.query(&newest, &users),
                client.query_one(&alive, &alive_params),
                client.execute(&add, &add_params),
                client.execute(&remove, &remove_params),
                client.batch_execute("COMMIT"),
            );
            committed.map_err(db_error)?;
            pipeline.finish();
            first_error([begun, shared.map(drop), added.map(drop), removed.map(drop)])
                .map_err(db_error)?;
            let mut found: HashMap<i64, i64> = newest
                .map_err(db_error)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok(Presence {
                forgotten: alive.map_err(db_error)?.get::<_, bool>("inserted"),
                newest: online
                    .iter()
                    .map(|u| (*u, found.remove(u).unwrap_or(0)))
                    .collect(),
            })
        })
    }

    fn forget_nodes_before(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute("DELETE FROM nodes WHERE seen_at < $1", &[&before])
                .await
                .map_err(db_error)
        })
    }

    fn transition_groups(&self) -> TransitionGroups {
        self.transitions_counted.read()
    }

    fn listen(&self, node: i64) -> mpsc::UnboundedReceiver<Wake> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen_loop(self.url.clone(), push_channel(node), tx));
        rx
    }
}

/// Keeps a LISTEN connection open for as long as someone holds the receiver.
async fn listen_loop(url: String, channel: String, wakes: mpsc::UnboundedSender<Wake>) {
    let mut pause = Duration::from_millis(100);
    let mut first = true;
    while !wakes.is_closed() {
        match listen_once(&url, &channel, &wakes, &mut first).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "database listener lost; reconnecting"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One listening connection, until it breaks; reports `Reconnected` once it listens again.
async fn listen_once(
    url: &str,
    channel: &str,
    wakes: &mpsc::UnboundedSender<Wake>,
    first: &mut bool,
) -> Result<(), crate::StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
    config.application_name(LISTENER_NAME);
    config.connect_timeout(Duration::from_secs(5));
    let (client, mut connection) = config.connect(NoTls).await.map_err(db_error)?;
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(m)) => {
                    if messages_tx.send(m).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}; LISTEN {USER_CHANNEL}"))
        .await
        .map_err(db_error)?;
    if !std::mem::take(first) {
        let _ = wakes.send(Wake::Reconnected);
    }
    while let Some(message) = messages.recv().await {
        let AsyncMessage::Notification(n) = message else {
            continue;
        };
        let wake = if n.channel() == channel {
            push_wake(n.payload())
        } else if n.channel() == USER_CHANNEL {
            n.payload().parse().ok().map(Wake::UserChanged)
        } else {
            None
        };
        if let Some(w) = wake
            && wakes.send(w).is_err()
        {
            break;
        }
    }
    driver.abort();
    Err(unavailable("the listening connection closed"))
}
