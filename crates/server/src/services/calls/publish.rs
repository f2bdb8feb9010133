//! What a committed call operation tells the world: the history message written to both
//! users' update logs with pts (under their locks, so each session sees pts in order), then
//! the pushes, each rendered per viewer and sent together.

use calls::{Effects, HistoryEntry, Push, PushTarget, SessionRef};
use tl::{Encode, Layer, enums, types};

use super::Calls;
use super::views::{history_message, updates};
use crate::errors::RpcError;
use crate::topology::Outbox;

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
        let now = self.clock.now_secs();
        // Every row is queued before any is awaited, so they share one commit.
        let mut appends = Vec::new();
        for entry in history {
            for user in [entry.admin_id, entry.participant_id] {
                let e = entry.clone();
                let append = self.updates.append(
                    user,
                    entry.date,
                    Box::new(move |pts| {
                        enums::Update::from(types::UpdateNewMessage {
                            message: history_message(&e, user, pts),
                            pts,
                            pts_count: 1,
                        })
                        .to_bytes(Layer::LATEST)
                    }),
                );
                appends.push((entry, user, append));
            }
        }
        let mut own = Vec::new();
        for (entry, user, append) in appends {
            let (_pts, body) = append.await?;
            let update: enums::Update =
                tl::Decode::from_bytes(&body).map_err(|_| RpcError::RpcCallFail)?;
            let parties = self
                .users
                .render_ids([entry.admin_id, entry.participant_id], user)
                .await?;
            match requester {
                Some(s) if s.user_id == user => {
                    own.push(update.clone());
                    out.push(
                        PushTarget::UserExcept(user, s.key_id),
                        updates(now, vec![update], parties),
                    );
                }
                _ => out.push(PushTarget::User(user), updates(now, vec![update], parties)),
            }
        }
        Ok(own)
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
