//! The inspector's record as JSON for the admin page and `mtcall users|calls|call show` (the
//! API is described in the README's "Call inspector"). 64-bit ids (calls, sessions) are strings,
//! since JavaScript numbers would round them. Users are named here, when someone looks.

use std::collections::HashMap;

use serde_json::{Value, json};
use tl::{Decode, enums};

use super::inspector::{CallRecord, Event, EventBody, SessionInfo};

/// Names of users, looked up once per view.
#[derive(Default)]
pub struct Names(HashMap<i64, String>);

impl Names {
    /// Whether `id` is named already.
    pub fn contains(&self, id: i64) -> bool {
        self.0.contains_key(&id)
    }

    /// Names a user.
    pub fn insert(&mut self, id: i64, name: String) {
        self.0.insert(id, name);
    }

    /// The name of a user.
    pub fn get(&self, id: i64) -> String {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}"))
    }

    /// `{id, name}` of a user.
    pub fn user(&self, id: i64) -> Value {
        json!({"id": id, "name": self.get(id)})
    }
}

/// "First Last", or the username, or the id.
pub fn display_name(u: &store::User) -> String {
    let name = format!("{} {}", u.first_name, u.last_name);
    let name = name.trim();
    if !name.is_empty() {
        name.to_owned()
    } else if let Some(username) = &u.username {
        format!("@{username}")
    } else {
        format!("user {}", u.id)
    }
}

/// The users a set of events and records mention.
pub fn user_ids<'a>(
    records: impl IntoIterator<Item = &'a CallRecord>,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for r in records {
        ids.extend([r.call.admin_id, r.call.participant_id]);
    }
    for e in events {
        ids.extend(e.user_id);
        if let EventBody::BusyRefusal { caller, callee, .. } = &e.body {
            ids.extend([*caller, *callee]);
        }
    }
    ids
}

/// A key id as the page shows it: its first 8 hex digits.
pub fn short_key(key_id: i64) -> String {
    format!("{:016x}", key_id as u64)[..8].to_owned()
}

/// A session.
pub fn session(s: &SessionInfo, names: &Names, busy: &[i64]) -> Value {
    let keyed = s.keyed.as_ref();
    let user = keyed.and_then(|k| k.user_id);
    json!({
        "conn_id": s.conn_id,
        "peer": s.peer.to_string(),
        "transport": s.transport.map(|k| k.name()),
        "obfuscated": s.obfuscated,
        "connected_at_ms": s.connected_at_ms,
        "auth_key": keyed.map(|k| short_key(k.key_id)),
        "session_id": keyed.map(|k| k.session_id.to_string()),
        "user": user.map(|u| names.user(u)),
        "layer": keyed.and_then(|k| k.layer),
        "client": keyed.and_then(|k| k.client.as_ref()).map(|c| json!({
            "api_id": c.api_id,
            "device_model": c.device_model,
            "system_version": c.system_version,
            "app_version": c.app_version,
            "lang_code": c.lang_code,
        })),
        "busy": user.is_some_and(|u| busy.contains(&u)),
    })
}

fn reason_name(r: &calls::Reason) -> &'static str {
    match r {
        calls::Reason::Missed => "missed",
        calls::Reason::Disconnect => "disconnect",
        calls::Reason::Hangup => "hangup",
        calls::Reason::Busy => "busy",
        calls::Reason::MigrateConferenceCall(_) => "migrate",
    }
}

/// A call without its events.
pub fn call_summary(r: &CallRecord, names: &Names) -> Value {
    let c = &r.call;
    let discard = c.discard();
    json!({
        "id": c.id.to_string(),
        "admin": names.user(c.admin_id),
        "participant": names.user(c.participant_id),
        "video": c.video,
        "state": c.state().name(),
        "live": c.state().is_live(),
        "outcome": r.outcome.map(|o| o.name()),
        "reason": discard.and_then(|d| d.reason.as_ref()).map(reason_name),
        // `date` has whole seconds; when this node saw the call created, its own clock reading
        // has the milliseconds.
        "created_at_ms": if r.seen_at_ms / 1000 == i64::from(c.date) {
            r.seen_at_ms
        } else {
            i64::from(c.date) * 1000
        },
        "received_at": c.receive_date(),
        "accepted_at": c.accept_date(),
        "started_at": c.start_date(),
        "ended_at_ms": r.ended_at_ms.or(discard.map(|d| i64::from(d.at) * 1000)),
        "duration": discard.and_then(|d| d.duration),
        "events": r.events.len() as u64 + r.events.dropped().0,
    })
}

/// A call with its events.
pub fn call_full(r: &CallRecord, names: &Names) -> Value {
    let mut v = call_summary(r, names);
    v["events"] = Value::Array(r.events.iter().map(|e| event(e, names)).collect());
    let (dropped, after) = r.events.dropped();
    v["events_dropped"] = json!(dropped);
    v["events_dropped_after_seq"] = json!(after);
    v
}

/// An event's one-line form.
pub fn event(e: &Event, names: &Names) -> Value {
    let (kind, name, detail, error, duration) = describe(e, names);
    json!({
        "seq": e.seq,
        "at_ms": e.at_ms,
        "call_id": e.call_id.map(|c| c.to_string()),
        "kind": kind,
        "conn_id": e.conn_id,
        "user": e.user_id.map(|u| names.user(u)),
        "device": e.client.as_deref().map(super::inspector::device_line),
        "auth_key": e.key_id.map(short_key),
        "name": name,
        "detail": detail,
        "error": error.map(|(code, message)| json!({"code": code, "message": message})),
        "duration_us": duration,
    })
}

type Described = (
    &'static str,
    String,
    String,
    Option<(i32, String)>,
    Option<u64>,
);

/// (kind, name, detail, error, duration) of an event.
pub fn describe(e: &Event, names: &Names) -> Described {
    match &e.body {
        EventBody::Rpc {
            method,
            result,
            error,
            duration_us,
            ..
        } => (
            "rpc",
            (*method).to_owned(),
            match (result, error) {
                (Some(bytes), _) => result_detail(bytes),
                (None, Some((_, message))) => message.clone(),
                (None, None) => String::new(),
            },
            error.clone(),
            Some(*duration_us),
        ),
        EventBody::Push(updates) => {
            let list = super::inspector::update_list(updates);
            let name = list
                .iter()
                .map(|u| u.constructor_name())
                .collect::<Vec<_>>()
                .join(", ");
            let detail = list
                .iter()
                .map(update_detail)
                .collect::<Vec<_>>()
                .join("; ");
            ("push", name, detail, None, None)
        }
        EventBody::BusyRefusal {
            caller,
            callee,
            refused,
            busy_in,
        } => {
            let mut text = format!(
                "{} → {} refused as busy (call {refused})",
                names.get(*caller),
                names.get(*callee)
            );
            if let Some(b) = busy_in {
                text.push_str(&format!("; busy in call {b}"));
            }
            ("note", "busy refusal".to_owned(), text, None, None)
        }
        EventBody::TimerEnded(reason) => (
            "note",
            "timer".to_owned(),
            format!(
                "ended by the server's timer ({})",
                reason.as_ref().map_or("no reason", reason_name)
            ),
            None,
            None,
        ),
    }
}

/// "phoneCallWaiting receive_date=…" and the like.
fn phone_call_detail(c: &enums::PhoneCall) -> String {
    match c {
        enums::PhoneCall::Empty(_) => "phoneCallEmpty".into(),
        enums::PhoneCall::Waiting(w) => match w.receive_date {
            Some(d) => format!("phoneCallWaiting receive_date={d}"),
            None => "phoneCallWaiting".into(),
        },
        enums::PhoneCall::Requested(_) => "phoneCallRequested".into(),
        enums::PhoneCall::Accepted(_) => "phoneCallAccepted".into(),
        enums::PhoneCall::PhoneCall(p) => {
            format!("phoneCall key_fingerprint={}", p.key_fingerprint)
        }
        enums::PhoneCall::Discarded(d) => {
            let mut s = "phoneCallDiscarded".to_owned();
            if let Some(r) = &d.reason {
                s.push_str(" reason=");
                s.push_str(discard_reason_name(r));
            }
            if let Some(dur) = d.duration {
                s.push_str(&format!(" duration={dur}"));
            }
            s
        }
    }
}

fn discard_reason_name(r: &enums::PhoneCallDiscardReason) -> &'static str {
    match r {
        enums::PhoneCallDiscardReason::Missed(_) => "missed",
        enums::PhoneCallDiscardReason::Disconnect(_) => "disconnect",
        enums::PhoneCallDiscardReason::Hangup(_) => "hangup",
        enums::PhoneCallDiscardReason::Busy(_) => "busy",
        enums::PhoneCallDiscardReason::MigrateConferenceCall(_) => "migrate",
    }
}

fn update_detail(u: &enums::Update) -> String {
    match u {
        enums::Update::PhoneCall(p) => phone_call_detail(&p.phone_call),
        enums::Update::PhoneCallSignalingData(s) => {
            format!("signaling data, {} bytes", s.data.len())
        }
        enums::Update::NewMessage(m) => format!("call history message, pts={}", m.pts),
        other => other.constructor_name().to_owned(),
    }
}

/// The result's constructor and what matters in it.
fn result_detail(bytes: &[u8]) -> String {
    let Some(id) = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return String::new();
    };
    let name = tl::schema::name_for_id(id).unwrap_or("?");
    match name {
        "phone.phoneCall" => match enums::phone::PhoneCall::from_bytes(bytes) {
            Ok(enums::phone::PhoneCall::PhoneCall(p)) => {
                format!("phone.phoneCall {}", phone_call_detail(&p.phone_call))
            }
            Err(_) => name.to_owned(),
        },
        "updates" => match enums::Updates::from_bytes(bytes) {
            Ok(u) => {
                let list = super::inspector::update_list(&u);
                let inner: Vec<String> = list.iter().map(update_detail).collect();
                format!("updates [{}]", inner.join("; "))
            }
            Err(_) => name.to_owned(),
        },
        other => other.to_owned(),
    }
}

/// An event in full, its TL decoded (`GET /api/events/{seq}`).
pub fn event_decoded(e: &Event, names: &Names) -> Value {
    let mut v = event(e, names);
    let (request, result, update) = match &e.body {
        EventBody::Rpc {
            request,
            result,
            error,
            ..
        } => {
            let req = tl::functions::Request::from_bytes(request);
            let request_json = match &req {
                Ok(r) => serde_json::to_value(r).unwrap_or(Value::Null),
                Err(err) => json!({"undecodable": err.to_string(), "hex": hex(request)}),
            };
            let result_json = match (result, error, &req) {
                (Some(bytes), _, Ok(r)) => r
                    .result_json(bytes)
                    .unwrap_or_else(|err| json!({"undecodable": err, "hex": hex(bytes)})),
                (Some(bytes), _, Err(_)) => json!({"hex": hex(bytes)}),
                (None, Some((code, message)), _) => {
                    json!({"_": "rpc_error", "error_code": code, "error_message": message})
                }
                (None, None, _) => Value::Null,
            };
            (request_json, result_json, Value::Null)
        }
        EventBody::Push(updates) => (
            Value::Null,
            Value::Null,
            serde_json::to_value(updates.as_ref()).unwrap_or(Value::Null),
        ),
        _ => (Value::Null, Value::Null, Value::Null),
    };
    v["request"] = request;
    v["result"] = result;
    v["update"] = update;
    v
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
