//! A call's timeline as text, one line per message (`mtcall call show ID`, and
//! `GET /api/calls/{id}/text`). It reads the JSON form of [`super::views::call_full`], so the
//! command prints the same thing whether it asked a running server or read a data directory.

use std::fmt::Write;

use serde_json::Value;

/// Unix milliseconds as `HH:MM:SS.mmm` (UTC).
pub fn time_of_day(ms: i64) -> String {
    let ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn party(v: &Value) -> String {
    format!(
        "{} ({})",
        v["name"].as_str().unwrap_or("?"),
        v["id"].as_i64().unwrap_or(0)
    )
}

fn who(e: &Value) -> String {
    let mut s = e["user"]["name"].as_str().unwrap_or("?").to_owned();
    let mut details = Vec::new();
    if let Some(d) = e["device"].as_str() {
        details.push(d.to_owned());
    }
    if let Some(c) = e["conn_id"].as_u64() {
        details.push(format!("conn {c}"));
    }
    if !details.is_empty() {
        let _ = write!(s, " [{}]", details.join(", "));
    }
    s
}

/// The call's heading line.
pub fn heading(call: &Value) -> String {
    let mut state = call["state"].as_str().unwrap_or("?").to_owned();
    if let Some(r) = call["reason"].as_str() {
        let _ = write!(state, " ({r})");
    }
    if let Some(o) = call["outcome"].as_str() {
        let _ = write!(state, ", {o}");
    }
    format!(
        "call {} · {} → {} · {}",
        call["id"].as_str().unwrap_or("?"),
        party(&call["admin"]),
        party(&call["participant"]),
        state
    )
}

/// The whole timeline.
pub fn text(call: &Value) -> String {
    let mut out = heading(call);
    out.push('\n');
    if let Some(ms) = call["created_at_ms"].as_i64() {
        let _ = writeln!(out, "created {} UTC", time_of_day(ms));
    }
    let events = call["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let dropped = call["events_dropped"].as_u64().unwrap_or(0);
    let gap_after = call["events_dropped_after_seq"].as_u64();
    let gap = format!("              … {dropped} messages not kept …\n");
    if events.is_empty() {
        out.push_str(
            "(no messages recorded: the running server that handled this call keeps them)\n",
        );
    }
    if dropped > 0 && gap_after.is_none() {
        out.push_str(&gap);
    }
    for e in events {
        let at = time_of_day(e["at_ms"].as_i64().unwrap_or(0));
        let name = e["name"].as_str().unwrap_or("");
        let detail = e["detail"].as_str().unwrap_or("");
        let line = match e["kind"].as_str() {
            Some("rpc") => {
                let took = e["duration_us"]
                    .as_u64()
                    .map(|us| format!(" ({us} µs)"))
                    .unwrap_or_default();
                let answer = match e["error"]["message"].as_str() {
                    Some(m) => format!("ERROR {} {m}", e["error"]["code"]),
                    None => detail.to_owned(),
                };
                format!("{} → server: {name} ⇒ {answer}{took}", who(e))
            }
            Some("push") => format!("server → {}: {name}: {detail}", who(e)),
            _ => format!("── {name}: {detail}"),
        };
        let seq = e["seq"].as_u64().unwrap_or(0);
        let _ = writeln!(out, "{at}  #{seq:<6} {line}");
        if dropped > 0 && gap_after == Some(seq) {
            out.push_str(&gap);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_lines() {
        assert_eq!(time_of_day(1_764_115_201_123), "00:00:01.123");
        let call = serde_json::json!({
            "id": "77", "state": "discarded", "reason": "busy", "outcome": "busy_refused",
            "admin": {"id": 3, "name": "Carol"}, "participant": {"id": 2, "name": "Bob"},
            "created_at_ms": 1_000,
            "events": [
                {"seq": 5, "at_ms": 1_000, "kind": "rpc", "name": "phone.requestCall",
                 "user": {"id": 3, "name": "Carol"}, "conn_id": 9, "device": "GramJS",
                 "detail": "phone.phoneCall phoneCallWaiting", "error": null, "duration_us": 700},
                {"seq": 6, "at_ms": 1_001, "kind": "note", "name": "busy refusal",
                 "detail": "Carol → Bob refused as busy (call 77)"},
                {"seq": 7, "at_ms": 1_002, "kind": "rpc", "name": "phone.receivedCall",
                 "user": {"id": 3, "name": "Carol"}, "conn_id": 9,
                 "detail": "CALL_PEER_INVALID", "error": {"code": 400, "message": "CALL_PEER_INVALID"}, "duration_us": 50},
            ]
        });
        let t = text(&call);
        assert!(t.starts_with("call 77 · Carol (3) → Bob (2) · discarded (busy), busy_refused\n"));
        assert!(t.contains("#5      Carol [GramJS, conn 9] → server: phone.requestCall ⇒ phone.phoneCall phoneCallWaiting (700 µs)"));
        assert!(t.contains("── busy refusal: Carol → Bob refused as busy (call 77)"));
        assert!(t.contains("⇒ ERROR 400 CALL_PEER_INVALID (50 µs)"));
    }
}
