//! Health checks for load balancers and supervisors, on the admin address without a token or
//! `Host` rule (they hold no data): `GET /healthz` answers 200 while the process serves HTTP;
//! `GET /readyz` answers 200 when the MTProto listener is accepting and the store ran a
//! trivial statement within [`STORE_DEADLINE`], else 503 naming what is not ready.

use std::time::Duration;

use super::http::Response;
use crate::node::Node;

/// How long `/readyz` waits for the store before calling it unreachable.
pub const STORE_DEADLINE: Duration = Duration::from_secs(2);

/// Whether `path` is a health check.
pub fn is_health(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Answers a health check.
pub async fn answer(node: &Node, path: &str) -> Response {
    if path == "/healthz" {
        return Response::text(200, "ok\n");
    }
    let mut unready = Vec::new();
    if !node.sessions.accepting() {
        unready.push("the MTProto listener is not accepting".to_owned());
    }
    match tokio::time::timeout(STORE_DEADLINE, node.services.accounts.ping_store()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => unready.push(format!("the store did not answer: {e}")),
        Err(_) => unready.push(format!(
            "the store did not answer within {} s",
            STORE_DEADLINE.as_secs()
        )),
    }
    if unready.is_empty() {
        Response::text(200, "ready\n")
    } else {
        Response::text(503, format!("not ready: {}\n", unready.join("; ")))
    }
}
