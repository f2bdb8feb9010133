//! A call's media path as the inspector shows it: the p2p policy, this node's reflector with
//! what it relayed for the call (address, packets, bytes, the ends bound on each side), the
//! TURN servers offered, and the path that follows from them.

use serde_json::{Value, json};

use crate::config::P2pPolicy;
use crate::node::Node;

/// `value` (a call's JSON) with its `media` field.
pub fn with_media(node: &Node, call: &calls::Call, mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("media".into(), media(node, call));
    }
    value
}

fn media(node: &Node, call: &calls::Call) -> Value {
    let reflector = node.services.calls.reflector();
    let traffic = reflector.and_then(|r| Some((r.public_address(), r.traffic(call.id)?)));
    let turn: Vec<String> = node
        .config
        .relay
        .turn
        .iter()
        .flat_map(|t| t.servers.iter().map(|s| s.to_string()))
        .collect();
    let policy = node.config.calls.p2p;
    let relayed = traffic.as_ref().is_some_and(|(_, t)| t.packets > 0);
    // mtcall sees the reflector's traffic, not TURN's or direct traffic.
    let path = match () {
        _ if call.start_date().is_none() => "not started",
        _ if relayed => "reflector",
        _ if !turn.is_empty() && policy == P2pPolicy::Never => "turn",
        _ if !turn.is_empty() => "direct or turn",
        _ if policy == P2pPolicy::Never => "none",
        _ => "direct",
    };
    json!({
        "path": path,
        "p2p_policy": policy.name(),
        "reflector": traffic.map(|(addr, t)| json!({
            "address": addr.to_string(),
            "packets": t.packets,
            "bytes": t.bytes,
            "caller_ends": t.caller_ends.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "callee_ends": t.callee_ends.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        })),
        "turn": turn,
    })
}
