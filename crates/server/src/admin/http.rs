//! The admin address's HTTP, served by hyper (HTTP/1.1 with keep-alive; request heads bounded
//! in size and in time, see `admin/mod.rs`): [`Request`] is what the routes read of a request
//! (method, path, query, `Host`, `Authorization`), [`Response`] what they answer, turned into
//! hyper's response with the headers every answer carries; [`Body`] is a whole body or a
//! server-sent-event stream. A request whose target does not decode is answered 400.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use tokio::sync::mpsc;

/// What the routes read of a request.
#[derive(Debug, Default)]
pub struct Request {
    /// The method (`GET`, `HEAD`, …).
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Host` header.
    pub host: Option<String>,
}

impl Request {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// What the routes read of hyper's request head; `None` when the target or a header the
    /// routes read does not decode.
    pub fn of(head: &hyper::http::request::Parts) -> Option<Request> {
        let text = |name: header::HeaderName| match head.headers.get(name) {
            None => Some(None),
            Some(v) => v.to_str().ok().map(|v| Some(v.trim().to_owned())),
        };
        let mut request = target(head.method.as_str(), head.uri.path(), head.uri.query())?;
        request.authorization = text(header::AUTHORIZATION)?;
        request.host = text(header::HOST)?;
        Some(request)
    }
}

/// A request line's method, path and query, decoded.
pub fn target(method: &str, path: &str, query: Option<&str>) -> Option<Request> {
    if !path.starts_with('/') {
        return None;
    }
    let mut request = Request {
        method: method.to_owned(),
        path: percent_decode(path)?,
        ..Request::default()
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        request.query.push((percent_decode(k)?, percent_decode(v)?));
    }
    Some(request)
}

/// `%XX` and `+` decoding; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A complete response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the connection closes after it (refusals: the client should go away).
    pub close: bool,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
            close: false,
        }
    }

    /// JSON, pretty-printed.
    pub fn json(value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec_pretty(value).unwrap_or_default();
        Response::new(200, "application/json", body)
    }

    /// Plain text with a status.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    /// The same, and the connection closes after it.
    pub fn closing(self) -> Self {
        Response {
            close: true,
            ..self
        }
    }

    /// Hyper's response, with the headers every answer carries.
    pub fn into_hyper(self) -> hyper::Response<Body> {
        let mut response = hyper::Response::new(Body::Whole(Some(Bytes::from(self.body))));
        *response.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if self.status == 401 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mtcall admin\""),
            );
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        secure(headers);
        response
    }
}

/// The head of a server-sent-event stream whose messages arrive on `messages`.
pub fn event_stream(messages: mpsc::Receiver<Bytes>) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::Events(messages));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    secure(headers);
    response
}

/// Sent with every response: nothing is cached, the page loads only its own script and style
/// sheet, and no other site may frame it.
fn secure(headers: &mut hyper::HeaderMap) {
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A response body: whole (its length known, so it goes with `Content-Length`), or a stream
/// of server-sent events that ends when its sender does.
pub enum Body {
    /// The bytes, until sent.
    Whole(Option<Bytes>),
    /// Event messages as they come.
    Events(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Events(messages) => messages
                .poll_recv(cx)
                .map(|m| m.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Whole(None) => SizeHint::with_exact(0),
            Body::Events(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_decode_and_garbage_is_refused() {
        let r = target("GET", "/api/calls/12", Some("token=a%2Bb+c&x")).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/calls/12");
        assert_eq!(r.param("token"), Some("a+b c"));
        assert_eq!(r.param("x"), Some(""));
        for (path, query) in [
            ("nopath", None),
            ("/%zz", None),
            ("/ok", Some("t=%ff%fe")),
            ("/%4", None),
        ] {
            assert!(target("GET", path, query).is_none(), "{path} {query:?}");
        }
    }

    #[test]
    fn mutated_targets_never_panic() {
        let valid = b"/api/events/12?token=%41b&x=1";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut input = valid.to_vec();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, b"%?&=:[]+ "[(next() % 9) as usize]),
                }
            }
            let text = String::from_utf8_lossy(&input);
            let (path, query) = match text.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (text.as_ref(), None),
            };
            let _ = target("GET", path, query);
        }
    }
}
