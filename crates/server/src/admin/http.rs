//! Just enough HTTP/1.1 for the admin address (RFC 9112): one `GET`/`HEAD` request per
//! connection, read with a size and time bound, answered with `Connection: close` — or held
//! open for a server-sent-event stream. A request over the bounds, or not HTTP, is answered 400
//! (or dropped) and never panics.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Time allowed to send the request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, Default)]
pub struct Request {
    /// `GET` or `HEAD`.
    pub method: String,
    /// The path, without the query.
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
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed or was too slow; nothing is answered.
    Gone,
    /// Not a request this server understands; answered 400.
    Malformed,
    /// The head is larger than [`MAX_HEAD`]; answered 431.
    TooLarge,
}

/// Reads one request head.
pub async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 2048];
        loop {
            if let Some(end) = find_head_end(&head) {
                head.truncate(end);
                return Ok(());
            }
            if head.len() > MAX_HEAD {
                return Err(ReadError::TooLarge);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(ReadError::Gone),
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(())) => parse(&head),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ReadError::Gone),
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses a request head (without the blank line).
pub fn parse(head: &[u8]) -> Result<Request, ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err(ReadError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(ReadError::Malformed);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        path: percent_decode(path).ok_or(ReadError::Malformed)?,
        query: Vec::new(),
        ..Request::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).ok_or(ReadError::Malformed)?;
        let v = percent_decode(v).ok_or(ReadError::Malformed)?;
        request.query.push((k, v));
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed);
        };
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            request.host = Some(value);
        }
    }
    Ok(request)
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
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
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
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Writes `response` and closes (`HEAD` gets the head only).
pub async fn write_response(stream: &mut TcpStream, response: Response, head_only: bool) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{SECURITY_HEADERS}Connection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if response.status == 401 {
        out.push_str("WWW-Authenticate: Bearer realm=\"mtcall admin\"\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

/// Sent with every response: the page loads only its own script and style sheet, and no other
/// site may frame it.
const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";

/// The head of a server-sent-event stream.
pub const EVENT_STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_refuses_garbage() {
        let r = parse(b"GET /api/calls/12?token=a%2Bb+c&x HTTP/1.1\r\nHost: 127.0.0.1:4431\r\nAuthorization: Bearer t").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/calls/12");
        assert_eq!(r.param("token"), Some("a+b c"));
        assert_eq!(r.param("x"), Some(""));
        assert_eq!(r.authorization.as_deref(), Some("Bearer t"));
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:4431"));
        for bad in [
            &b"GET / HTTP/2\r\n"[..],
            b"GET",
            b"GET nopath HTTP/1.1",
            b"GET /%zz HTTP/1.1",
            b"GET / HTTP/1.1\r\nno colon",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(bad).unwrap_err(), ReadError::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn mutated_requests_never_panic() {
        let valid = b"GET /api/events/12?token=%41b HTTP/1.1\r\nHost: [::1]:4431\r\nAuthorization: Bearer x";
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
                    _ => input.insert(at, b"%?&=:[]\r\n "[(next() % 10) as usize]),
                }
            }
            let _ = parse(&input);
        }
    }
}
