//! A call setup as messages: one real setup recorded (who sends each request, its size, the
//! size of its answer, and the pushes it causes with their sizes and receivers) and replayed
//! on the MTProto echo (`echo.rs`), which gives `setup` its ceiling: the same 5 requests and
//! the same pushes, each decrypted, checked, answered and encrypted, and nothing else.

use std::time::Duration;

use client::Client;
use tl::{Encode, enums, functions, types};

use super::echo;

/// How long to wait for more pushes after a recorded step (the pair is otherwise idle).
const QUIET: Duration = Duration::from_millis(150);

/// One request of a setup and what it causes.
#[derive(Clone, Debug)]
pub struct Step {
    /// The caller sends it (else the callee).
    pub by_caller: bool,
    /// The request body's size.
    pub request: usize,
    /// The result body's size.
    pub answer: usize,
    /// Pushes it causes: (to the caller, body size).
    pub pushes: Vec<(bool, usize)>,
}

/// What a recorded step gave back: its answer and the bodies pushed to the callee.
struct Heard {
    answer: Vec<u8>,
    to_callee: Vec<Vec<u8>>,
}

/// Sends `body` from one side and records the answer and the pushes that follow on both.
async fn step(
    caller: &mut Client,
    callee: &mut Client,
    by_caller: bool,
    body: Vec<u8>,
) -> Result<(Step, Heard), String> {
    let e = |e: client::ClientError| e.to_string();
    let request = body.len();
    let sender = if by_caller {
        &mut *caller
    } else {
        &mut *callee
    };
    let answer = sender.call_raw(body).await.map_err(e)?;
    let mut pushes = Vec::new();
    let mut to_callee = Vec::new();
    for (to_caller, c) in [(true, caller), (false, callee)] {
        while let Some(p) = c.next_push_within(QUIET).await.map_err(e)? {
            pushes.push((to_caller, p.len()));
            if !to_caller {
                to_callee.push(p);
            }
        }
    }
    let step = Step {
        by_caller,
        request,
        answer: answer.len(),
        pushes,
    };
    Ok((step, Heard { answer, to_callee }))
}

/// Records one setup between a fresh pair (used for nothing else: waiting out the quiet
/// periods may leave a half-read frame behind).
pub async fn record(
    mut caller: Client,
    mut callee: Client,
    user: enums::InputUser,
) -> Result<Vec<Step>, String> {
    let layer = caller.layer;
    let g_a = vec![7u8; 256];
    let protocol = client::calls::default_protocol();
    let request = functions::phone::RequestCall {
        video: false,
        user_id: user,
        random_id: 1,
        g_a_hash: mtproto::crypto::sha256(&[&g_a]).to_vec(),
        protocol: protocol.clone(),
    };
    let (first, heard) = step(&mut caller, &mut callee, true, request.to_bytes(layer)).await?;
    let enums::phone::PhoneCall::PhoneCall(r) =
        tl::Decode::from_bytes(&heard.answer).map_err(|e: tl::DecodeError| e.to_string())?;
    let enums::PhoneCall::Waiting(w) = r.phone_call else {
        return Err("requestCall did not answer phoneCallWaiting".into());
    };
    let callee_peer = requested(&heard.to_callee, w.id)?;
    let caller_peer: enums::InputPhoneCall = types::InputPhoneCall {
        id: w.id,
        access_hash: w.access_hash,
    }
    .into();
    let mut steps = vec![first];
    let bodies = [
        (
            false,
            functions::phone::ReceivedCall {
                peer: callee_peer.clone(),
            }
            .to_bytes(layer),
        ),
        (
            false,
            functions::phone::AcceptCall {
                peer: callee_peer,
                g_b: vec![9; 256],
                protocol: protocol.clone(),
            }
            .to_bytes(layer),
        ),
        (
            true,
            functions::phone::ConfirmCall {
                peer: caller_peer.clone(),
                g_a,
                key_fingerprint: 1,
                protocol,
            }
            .to_bytes(layer),
        ),
        (
            true,
            functions::phone::DiscardCall {
                video: false,
                peer: caller_peer,
                duration: 1,
                reason: types::PhoneCallDiscardReasonHangup {}.into(),
                connection_id: 0,
            }
            .to_bytes(layer),
        ),
    ];
    for (by_caller, body) in bodies {
        steps.push(step(&mut caller, &mut callee, by_caller, body).await?.0);
    }
    Ok(steps)
}

/// The callee's `inputPhoneCall` for call `id`, from the `phoneCallRequested` pushed to it.
fn requested(pushes: &[Vec<u8>], id: i64) -> Result<enums::InputPhoneCall, String> {
    pushes
        .iter()
        .filter_map(|p| match tl::Decode::from_bytes(p) {
            Ok(enums::Updates::Updates(u)) => Some(u.updates),
            _ => None,
        })
        .flatten()
        .find_map(|u| match u {
            enums::Update::PhoneCall(p) => match p.phone_call {
                enums::PhoneCall::Requested(r) if r.id == id => Some(
                    types::InputPhoneCall {
                        id,
                        access_hash: r.access_hash,
                    }
                    .into(),
                ),
                _ => None,
            },
            _ => None,
        })
        .ok_or_else(|| "the callee was not pushed the call".into())
}

/// Introduces each side of a pair to the echo as the other's partner.
pub async fn pair_on_echo(caller: &mut Client, callee: &mut Client) -> Result<(), String> {
    let e = |e: client::ClientError| e.to_string();
    let (a, b) = (
        caller.session.auth_key().id(),
        callee.session.auth_key().id(),
    );
    caller.call_raw(echo::partner(b)).await.map_err(e)?;
    callee.call_raw(echo::partner(a)).await.map_err(e)?;
    Ok(())
}

/// One setup replayed on the echo: each step's request from its side, its answer awaited,
/// then each of its pushes awaited where it goes.
pub async fn replay(
    caller: &mut Client,
    callee: &mut Client,
    steps: &[Step],
) -> Result<(), String> {
    let e = |e: client::ClientError| e.to_string();
    for s in steps {
        let targets: Vec<(u32, usize)> = s
            .pushes
            .iter()
            .map(|(to_caller, len)| {
                let target = if *to_caller == s.by_caller {
                    echo::TO_SELF
                } else {
                    echo::TO_PARTNER
                };
                (target, *len)
            })
            .collect();
        let body = echo::request(s.request, s.answer, &targets);
        let sender = if s.by_caller {
            &mut *caller
        } else {
            &mut *callee
        };
        sender.call_raw(body).await.map_err(e)?;
        for (to_caller, _) in &s.pushes {
            let c = if *to_caller {
                &mut *caller
            } else {
                &mut *callee
            };
            c.next_push().await.map_err(e)?;
        }
    }
    Ok(())
}

/// Messages in one setup: requests and pushes.
pub fn messages(steps: &[Step]) -> usize {
    steps.iter().map(|s| 1 + s.pushes.len()).sum()
}
