//! What a committed call operation tells the world: the history message written to both
//! users' update logs with pts (under their locks, so each session sees pts in order), then
//! the pushes, each rendered per viewer and sent together. On one node this follows the
//! commit ([`Calls::publish`]); on several, the backend renders it inside the transition
//! ([`Renderer`]) and writes it in the same commit.

use std::collections::HashMap;

use calls::{Effects, HistoryEntry, Push, PushTarget, SessionRef};
use store::{NewUpdate, UpdateRow};
use tl::{Encode, Layer, enums, types};

use super::Calls;
use super::views::{history_message, updates};
use crate::errors::RpcError;
use crate::topology::{BoxFuture, Outbox, Rendered, Renderer};

impl Renderer for Calls {
    fn render<'a>(
        &'a self,
        effects: &'a Effects<()>,
        requester: Option<SessionRef>,
        pts: &'a [(i64, i32)],
    ) -> BoxFuture<'a, Result<Rendered, RpcError>> {
        Box::pin(async move {
            // The reflector first: a confirmed call's parties may send to it as soon as they
            // hear (a grant of a call whose commit then fails is revoked by the relay sweep).
            self.media.follow(&effects.events);
            let mut pts: HashMap<i64, i32> = pts.iter().copied().collect();
            let mut rendered = Rendered {
                updates: Vec::new(),
                pushes: Outbox::default(),
                own: Vec::new(),
            };
            for entry in &effects.history {
                for user in [entry.admin_id, entry.participant_id] {
                    let next = pts.get_mut(&user).ok_or(RpcError::RpcCallFail)?;
                    *next += 1;
                    let update = history_update(entry, user, *next);
                    rendered.updates.push(NewUpdate {
                        user_id: user,
                        update: UpdateRow {
                            pts: *next,
                            pts_count: 1,
                            date: entry.date,
                            body: update.to_bytes(Layer::LATEST),
                        },
                    });
                    self.queue_history(entry, user, update, requester, &mut rendered)
                        .await?;
                }
            }
            self.push_all(&effects.pushes, &mut rendered.pushes).await?;
            Ok(rendered)
        })
    }
}

/// `user`'s `updateNewMessage` for a history entry at `pts`.
fn history_update(entry: &HistoryEntry, user: i64, pts: i32) -> enums::Update {
    enums::Update::from(types::UpdateNewMessage {
        message: history_message(entry, user, pts),
        pts,
        pts_count: 1,
    })
}

impl Calls {
    /// Publishes a commit's effects: history, then pushes. Returns `requester`'s own history
    /// updates (it gets those in its answer).
    pub(super) async fn publish<R>(
        &self,
        effects: &Effects<R>,
        requester: Option<SessionRef>,
    ) -> Result<Vec<enums::Update>, RpcError> {
        if effects.history.is_empty() && effects.pushes.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = effects
            .history
            .iter()
            .flat_map(|h| [h.admin_id, h.participant_id])
            .collect();
        let held = self.updates.lock(&users).await;
        let mut out = Outbox::default();
        let own = self
            .write_history(&effects.history, requester, &mut out)
            .await?;
        self.updates.send(out).await?;
        drop(held);
        let mut out = Outbox::default();
        self.push_all(&effects.pushes, &mut out).await?;
        self.updates.send(out).await?;
        Ok(own)
    }

    /// Writes the history entries to both users' update logs (durable, with pts) and queues
    /// their pushes. `requester`'s own `updateNewMessage` is returned rather than pushed to it.
    async fn write_history(
        &self,
        history: &[HistoryEntry],
        requester: Option<SessionRef>,
        out: &mut Outbox,
    ) -> Result<Vec<enums::Update>, RpcError> {
        // Every row is queued before any is awaited, so they share one commit.
        let mut appends = Vec::new();
        for entry in history {
            for user in [entry.admin_id, entry.participant_id] {
                let e = entry.clone();
                let append = self.updates.append(
                    user,
                    entry.date,
                    Box::new(move |pts| history_update(&e, user, pts).to_bytes(Layer::LATEST)),
                );
                appends.push((entry, user, append));
            }
        }
        let mut rendered = Rendered {
            updates: Vec::new(),
            pushes: std::mem::take(out),
            own: Vec::new(),
        };
        for (entry, user, append) in appends {
            let (_pts, body) = append.await?;
            let update: enums::Update =
                tl::Decode::from_bytes(&body).map_err(|_| RpcError::RpcCallFail)?;
            self.queue_history(entry, user, update, requester, &mut rendered)
                .await?;
        }
        *out = rendered.pushes;
        Ok(rendered.own)
    }

    /// Queues `user`'s history `update` for `entry` to their sessions; `requester`'s own
    /// goes to its answer instead.
    async fn queue_history(
        &self,
        entry: &HistoryEntry,
        user: i64,
        update: enums::Update,
        requester: Option<SessionRef>,
        rendered: &mut Rendered,
    ) -> Result<(), RpcError> {
        let now = self.clock.now_secs();
        let parties = self
            .users
            .render_ids([entry.admin_id, entry.participant_id], user)
            .await?;
        match requester {
            Some(s) if s.user_id == user => {
                rendered.own.push(update.clone());
                rendered.pushes.push(
                    PushTarget::UserExcept(user, s.key_id),
                    updates(now, vec![update], parties),
                );
            }
            _ => rendered
                .pushes
                .push(PushTarget::User(user), updates(now, vec![update], parties)),
        }
        Ok(())
    }

    /// Queues every push of an operation, rendered per viewer.
    async fn push_all(&self, pushes: &[Push], out: &mut Outbox) -> Result<(), RpcError> {
        let now = self.clock.now_secs();
        for p in pushes {
            match p {
                Push::Call {
                    target,
                    viewer,
                    call,
                } => {
                    let parties = self.parties(call, *viewer).await?;
                    let update = types::UpdatePhoneCall {
                        phone_call: self.view(call, *viewer).await?,
                    }
                    .into();
                    out.push(*target, updates(now, vec![update], parties));
                }
                Push::AnsweredElsewhere {
                    target,
                    call_id,
                    video,
                } => {
                    let discarded = types::PhoneCallDiscarded {
                        need_rating: false,
                        need_debug: false,
                        video: *video,
                        id: *call_id,
                        reason: None,
                        duration: None,
                    };
                    let update = types::UpdatePhoneCall {
                        phone_call: discarded.into(),
                    }
                    .into();
                    out.push(*target, updates(now, vec![update], vec![]));
                }
                Push::Signaling {
                    target,
                    call_id,
                    data,
                } => {
                    let update = types::UpdatePhoneCallSignalingData {
                        phone_call_id: *call_id,
                        data: data.clone(),
                    }
                    .into();
                    out.push(*target, updates(now, vec![update], vec![]));
                }
            }
        }
        Ok(())
    }
}
