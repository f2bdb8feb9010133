//! Updates in order (`docs/clients.md §4`): pushes are unpacked into a
//! stream of `Update`s; those that carry pts are applied only in sequence — a repeat is
//! dropped, and a hole (or `updatesTooLong`, or a reconnect) makes the client fetch
//! `updates.getDifference` from the last pts it applied before going on. Updates without pts
//! (e.g. `updatePhoneCall`) are delivered as they come.

use tl::{Decode, enums, functions, types};

use crate::{Client, ClientError};

/// The update state a client has applied (`updates.state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateState {
    /// The last pts applied.
    pub pts: i32,
    /// Secret-chat updates (not used by calls; kept for the server).
    pub qts: i32,
    /// The date of the last update.
    pub date: i32,
    /// The last seq (mtcall pushes use 0).
    pub seq: i32,
}

impl From<types::updates::State> for UpdateState {
    fn from(s: types::updates::State) -> Self {
        UpdateState {
            pts: s.pts,
            qts: s.qts,
            date: s.date,
            seq: s.seq,
        }
    }
}

/// What to do with an update that moves pts from `local` to `pts` by `pts_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtsVerdict {
    /// It is the next one: apply it.
    Apply,
    /// Already applied: drop it.
    Duplicate,
    /// Some before it are missing: fetch the difference.
    Gap,
}

/// The rule of `docs/clients.md §4`.
pub fn pts_verdict(local: i32, pts: i32, pts_count: i32) -> PtsVerdict {
    let expected = local.wrapping_add(pts_count);
    if expected == pts {
        PtsVerdict::Apply
    } else if expected > pts {
        PtsVerdict::Duplicate
    } else {
        PtsVerdict::Gap
    }
}

/// `(pts, pts_count)` of an update that carries them.
fn pts_of(u: &enums::Update) -> Option<(i32, i32)> {
    match u {
        enums::Update::NewMessage(m) => Some((m.pts, m.pts_count)),
        _ => None,
    }
}

impl Client {
    /// The update state applied so far (`None` before the first pts-carrying update or
    /// [`Client::sync_update_state`]). Save it with the auth key to resume exactly.
    pub fn update_state(&self) -> Option<UpdateState> {
        self.state
    }

    /// Sets the update state, e.g. the one saved with a session; the next
    /// [`Client::next_update`] fetches what happened since.
    pub fn set_update_state(&mut self, state: UpdateState) {
        self.state = Some(state);
        self.behind = true;
    }

    /// `updates.getState`: starts ordering updates from the server's current state.
    pub async fn sync_update_state(&mut self) -> Result<UpdateState, ClientError> {
        let enums::updates::State::State(s) = self.call(&functions::updates::GetState {}).await?;
        let s = UpdateState::from(s);
        self.state = Some(s);
        Ok(s)
    }

    /// The next update for this client, in pts order, filling holes from the server. Waits
    /// for ever unless [`Client::update_wait_limit`] is set, pinging the server meanwhile; a
    /// lost connection is reopened (with [`Client::auto_reconnect`]) and what was missed is
    /// fetched with `updates.getDifference`.
    pub async fn next_update(&mut self) -> Result<enums::Update, ClientError> {
        loop {
            if self.behind {
                match self.catch_up().await {
                    Ok(()) => {}
                    Err(e) if self.auto_reconnect && e.is_connection_lost() => {
                        self.reconnect_patiently().await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(u) = self.updates.pop_front() {
                return Ok(u);
            }
            match self.wait_push(self.update_wait_limit).await {
                Ok(push) => {
                    if let Ok(updates) = enums::Updates::from_bytes(&push) {
                        self.absorb_updates(updates);
                    }
                }
                Err(e)
                    if self.auto_reconnect
                        && e.is_connection_lost()
                        && !matches!(e, ClientError::Timeout) =>
                {
                    self.reconnect_patiently().await?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes an `Updates` (a push, or the result of a method such as `phone.discardCall`) into
    /// the stream, applying the pts rule.
    pub fn absorb_updates(&mut self, updates: enums::Updates) {
        let (list, date) = match updates {
            enums::Updates::Updates(u) => (u.updates, u.date),
            enums::Updates::Combined(u) => (u.updates, u.date),
            enums::Updates::UpdateShort(u) => (vec![u.update], u.date),
            enums::Updates::TooLong(_) => {
                self.behind = true;
                return;
            }
        };
        for u in list {
            let Some((pts, count)) = pts_of(&u) else {
                self.updates.push_back(u);
                continue;
            };
            match &mut self.state {
                // The first pts seen becomes the starting point.
                None => {
                    self.state = Some(UpdateState {
                        pts,
                        date,
                        ..UpdateState::default()
                    });
                    self.updates.push_back(u);
                }
                Some(_) if self.behind => {} // the difference will bring it
                Some(s) => match pts_verdict(s.pts, pts, count) {
                    PtsVerdict::Apply => {
                        s.pts = pts;
                        s.date = s.date.max(date);
                        self.updates.push_back(u);
                    }
                    PtsVerdict::Duplicate => {}
                    PtsVerdict::Gap => self.behind = true,
                },
            }
        }
    }

    /// Fetches everything since the applied state with `updates.getDifference` (repeating
    /// while the server answers with slices) and queues it: new messages as
    /// `updateNewMessage`, then the other updates (among them calls ringing right now).
    /// Without a state yet, starts from the server's current one.
    pub async fn catch_up(&mut self) -> Result<(), ClientError> {
        self.behind = false;
        let result = self.fetch_difference().await;
        if result.is_err() {
            self.behind = true;
        }
        result
    }

    async fn fetch_difference(&mut self) -> Result<(), ClientError> {
        let mut state = match self.state {
            Some(s) => s,
            None => self.sync_update_state().await?,
        };
        loop {
            let difference = self
                .call(&functions::updates::GetDifference {
                    pts: state.pts,
                    pts_limit: None,
                    pts_total_limit: None,
                    date: state.date,
                    qts: state.qts,
                    qts_limit: None,
                })
                .await?;
            let (messages, others, next, last) = match difference {
                enums::updates::Difference::Empty(e) => {
                    state.date = e.date;
                    break;
                }
                enums::updates::Difference::TooLong(t) => {
                    // Too far behind to replay: start again from the server's pts.
                    state.pts = t.pts;
                    break;
                }
                enums::updates::Difference::Difference(d) => {
                    (d.new_messages, d.other_updates, d.state, true)
                }
                enums::updates::Difference::Slice(d) => {
                    (d.new_messages, d.other_updates, d.intermediate_state, false)
                }
            };
            let enums::updates::State::State(next) = next;
            state = UpdateState::from(next);
            self.updates.extend(messages.into_iter().map(|message| {
                enums::Update::from(types::UpdateNewMessage {
                    message,
                    pts: state.pts,
                    pts_count: 0,
                })
            }));
            self.updates.extend(others);
            if last {
                break;
            }
        }
        self.state = Some(state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pts_rule() {
        assert_eq!(pts_verdict(10, 11, 1), PtsVerdict::Apply);
        assert_eq!(pts_verdict(10, 13, 3), PtsVerdict::Apply);
        assert_eq!(pts_verdict(10, 10, 1), PtsVerdict::Duplicate);
        assert_eq!(pts_verdict(10, 9, 1), PtsVerdict::Duplicate);
        assert_eq!(pts_verdict(10, 12, 1), PtsVerdict::Gap);
        assert_eq!(pts_verdict(10, 20, 3), PtsVerdict::Gap);
    }
}
