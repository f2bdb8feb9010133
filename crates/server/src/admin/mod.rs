//! The admin address (README "Call inspector"): the inspector page, its JSON API and
//! live stream, and Prometheus `/metrics`, on an address of its own (default
//! `127.0.0.1:4431`). Reachable from other hosts only when configured so, and then only with
//! the token (`Authorization: Bearer T` or `?token=T`; the page's own HTML, script and style
//! sheet hold no data and are served without it). Without a token, a request must name
//! the server by IP address or `localhost` in `Host`, so a web page cannot reach it through a
//! DNS name rebound to loopback. `/healthz` and `/readyz` ([`health`]) need neither.

mod health;
pub mod http;
mod media;
mod state;

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use crate::node::Node;
use crate::observe::inspector::Live;
use crate::observe::{timeline, views};
use http::{Request, Response};

/// Admin connections served at once; more wait.
const MAX_CONNECTIONS: usize = 64;
/// Largest request head accepted (hyper answers a larger one 431).
const MAX_HEAD: usize = 16 * 1024;
/// Time allowed to send a request head, on a new or a kept-alive connection.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A comment line keeps idle event streams (and proxies) open.
const HEARTBEAT: Duration = Duration::from_secs(15);

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Serves the admin address until stopped.
pub async fn serve(node: Arc<Node>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    let node = node.clone();
                    let stopped = stopped.clone();
                    tasks.spawn(async move {
                        connection(&node, stream, stopped).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    tasks.shutdown().await;
}

/// One admin connection: requests answered one after another (keep-alive) until the client
/// closes, a head is too slow or too large, or the server stops (an event stream ends then,
/// and an answer under way is finished first).
async fn connection(node: &Arc<Node>, stream: TcpStream, mut stopped: watch::Receiver<bool>) {
    let service = {
        let (node, stopped) = (node.clone(), stopped.clone());
        hyper::service::service_fn(move |request| {
            let (node, stopped) = (node.clone(), stopped.clone());
            async move { Ok::<_, std::convert::Infallible>(answer(&node, request, stopped).await) }
        })
    };
    let serving = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(serving);
    tokio::select! {
        _ = serving.as_mut() => {}
        _ = stopped.changed() => {
            serving.as_mut().graceful_shutdown();
            let _ = serving.await;
        }
    }
}

/// One request's answer.
async fn answer(
    node: &Arc<Node>,
    request: hyper::Request<hyper::body::Incoming>,
    stopped: watch::Receiver<bool>,
) -> hyper::Response<http::Body> {
    let (head, _body) = request.into_parts();
    let Some(request) = Request::of(&head) else {
        return Response::text(400, "bad request\n").closing().into_hyper();
    };
    if health::is_health(&request.path) && matches!(request.method.as_str(), "GET" | "HEAD") {
        return health::answer(node, &request.path).await.into_hyper();
    }
    if let Err(refusal) = admit(node, &request) {
        return refusal.closing().into_hyper();
    }
    if request.path == "/api/stream" && request.method == "GET" {
        let (messages, received) = mpsc::channel(16);
        tokio::spawn(stream_changes(node.clone(), messages, stopped));
        return http::event_stream(received);
    }
    route(node, &request).await.into_hyper()
}

/// The method, the token and the `Host` rule of the module docs. The page's own files hold no
/// data and need no token (a page cannot add it to the URLs of its script and style sheet).
fn admit(node: &Node, request: &Request) -> Result<(), Response> {
    if request.method != "GET" && request.method != "HEAD" {
        return Err(Response::text(405, "only GET and HEAD\n"));
    }
    let static_file = matches!(request.path.as_str(), "/" | "/app.js" | "/app.css");
    match &node.config.admin.token {
        Some(_) if static_file => Ok(()),
        Some(token) => {
            let given = request
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .or_else(|| request.param("token"));
            let ok = given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes()));
            if ok {
                Ok(())
            } else {
                Err(Response::text(
                    401,
                    "a token is needed: ?token=… or Authorization: Bearer …\n",
                ))
            }
        }
        None if request.host.as_deref().is_none_or(host_is_literal) => Ok(()),
        None => Err(Response::text(
            421,
            "use the admin address by IP or localhost (or set a token)\n",
        )),
    }
}

/// Compares a given token with the configured one without stopping at the first difference.
fn same_secret(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether a `Host` value is an IP literal or `localhost` (with an optional port).
fn host_is_literal(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        return v6
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

async fn route(node: &Node, request: &Request) -> Response {
    let path = request.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        [] | [""] => Response::new(200, "text/html; charset=utf-8", INDEX_HTML),
        ["app.js"] => Response::new(200, "text/javascript; charset=utf-8", APP_JS),
        ["app.css"] => Response::new(200, "text/css; charset=utf-8", APP_CSS),
        ["metrics"] => Response::new(
            200,
            crate::observe::metrics::CONTENT_TYPE,
            state::render_metrics(node).await,
        ),
        ["api", "overview"] => Response::json(&state::overview(node).await),
        ["api", "calls"] => Response::json(&state::calls_json(node).await),
        ["api", "users"] => match state::users(node).await {
            Ok(v) => Response::json(&v),
            Err(e) => Response::text(503, format!("the store did not answer: {e}\n")),
        },
        ["api", "calls", id] => match call(node, id).await {
            Some(v) => Response::json(&v),
            None => Response::text(404, "no such call is kept\n"),
        },
        ["api", "calls", id, "text"] => match call(node, id).await {
            Some(v) => Response::text(200, timeline::text(&v)),
            None => Response::text(404, "no such call is kept\n"),
        },
        ["api", "events", seq] => {
            let found = seq
                .parse()
                .ok()
                .and_then(|s| node.observe.inspector.event(s));
            match found {
                Some(e) => {
                    let mut names = views::Names::default();
                    state::load_names(node, &mut names, views::user_ids([], [e.as_ref()])).await;
                    Response::json(&views::event_decoded(&e, &names))
                }
                None => Response::text(404, "no such event is kept\n"),
            }
        }
        _ => Response::text(404, "not found\n"),
    }
}

/// A call with its events, by decimal id.
async fn call(node: &Node, id: &str) -> Option<serde_json::Value> {
    let record = node.observe.inspector.call(id.parse().ok()?)?;
    let mut names = views::Names::default();
    state::load_names(
        node,
        &mut names,
        views::user_ids([&record], record.events.iter().map(|e| e.as_ref())),
    )
    .await;
    Some(media::with_media(
        node,
        &record.call,
        views::call_full(&record, &names),
    ))
}

/// `GET /api/stream`: every change as a server-sent event until the client leaves (its body
/// is dropped) or falls behind (it then reconnects and reloads the overview), or the server
/// stops.
async fn stream_changes(
    node: Arc<Node>,
    messages: mpsc::Sender<Bytes>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut subscription = node.observe.inspector.subscribe();
    if messages
        .send(Bytes::from_static(b"retry: 1000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let message = tokio::select! {
            change = subscription.changes.recv() => match change {
                Ok(change) => sse_message(&node, change).await,
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::time::sleep(HEARTBEAT) => Some(": heartbeat\n\n".to_owned()),
            _ = stopped.changed() => break,
            _ = messages.closed() => break,
        };
        if let Some(m) = message
            && messages.send(Bytes::from(m)).await.is_err()
        {
            break;
        }
    }
}

async fn sse_message(node: &Node, change: Live) -> Option<String> {
    let inspector = &node.observe.inspector;
    let mut names = views::Names::default();
    let (kind, data) = match change {
        Live::Event(e) => {
            state::load_names(node, &mut names, views::user_ids([], [e.as_ref()])).await;
            ("event", views::event(&e, &names))
        }
        Live::Call(id) => {
            let record = inspector.call(id)?;
            state::load_names(node, &mut names, views::user_ids([&record], [])).await;
            (
                "call",
                media::with_media(node, &record.call, views::call_summary(&record, &names)),
            )
        }
        Live::Session(conn_id) => {
            let session = inspector.session(conn_id)?;
            let user = session.keyed.as_ref().and_then(|k| k.user_id);
            state::load_names(node, &mut names, user).await;
            // Only this user's calls are looked at (a stream message per session change).
            let busy = match user {
                Some(u) => node
                    .services
                    .calls
                    .live_calls_of(u)
                    .await
                    .map(|calls| calls.iter().any(|c| c.makes_busy(u)))
                    .unwrap_or(false)
                    .then_some(u)
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            };
            ("session", views::session(&session, &names, &busy))
        }
        Live::SessionClosed(conn_id) => ("session_closed", json!({ "conn_id": conn_id })),
    };
    Some(format!("event: {kind}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_that_name_the_server_directly() {
        for ok in [
            "127.0.0.1:4431",
            "localhost",
            "LOCALHOST:1",
            "[::1]:4431",
            "10.0.0.2",
        ] {
            assert!(super::host_is_literal(ok), "{ok}");
        }
        for bad in ["evil.example:4431", "127.0.0.1.nip.io", "[nope]:1"] {
            assert!(!super::host_is_literal(bad), "{bad}");
        }
    }
}
