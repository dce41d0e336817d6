//! Just enough HTTP/1.1 for `GET /metrics`: one request per connection,
//! read with a bound on size and time, answered, then closed.
//!
//! Strict by design: a request line of exactly three parts, a target in
//! origin form, HTTP/1.0 or HTTP/1.1 (with its one `Host` header), header
//! lines of the form `name: value`. Everything else is a 400; a path other
//! than `/metrics` is a 404; a method other than GET or HEAD on it a 405.
//! No body is read: the connection closes after the answer.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The largest request head read (request line and headers).
pub(super) const MAX_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to take the answer.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection stays open after the answer, for the client to
/// close first.
pub(super) const LINGER: Duration = Duration::from_secs(1);

/// The most bytes read and discarded after the answer.
pub(super) const MAX_LINGER_BYTES: u64 = 64 * 1024;

/// The path served.
const PATH: &str = "/metrics";

/// What reading a request head gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// A whole head, this many bytes long (blank line included).
    Complete(usize),
    /// The client closed (or failed) before sending anything.
    Closed,
    /// The client closed in the middle of the head.
    Truncated,
    /// More than [`MAX_HEAD`] bytes without the blank line.
    TooLarge,
    /// [`READ_TIMEOUT`] passed first.
    TimedOut,
}

/// Reads a request head into `buf`, within [`MAX_HEAD`] and [`READ_TIMEOUT`].
pub(super) async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Head {
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut chunk = [0u8; 1024];
    loop {
        // The blank line may straddle two reads: look back three bytes.
        let from = buf.len().saturating_sub(chunk.len() + 3);
        if let Some(at) = find(&buf[from..], b"\r\n\r\n") {
            return Head::Complete(from + at + 4);
        }
        if buf.len() >= MAX_HEAD {
            return Head::TooLarge;
        }
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => return Head::TimedOut,
            Ok(Err(_)) => return Head::Closed,
            Ok(Ok(0)) if buf.is_empty() => return Head::Closed,
            Ok(Ok(0)) => return Head::Truncated,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /metrics` (or `HEAD`: the same answer without its body).
    Metrics {
        /// HEAD: headers only.
        head_only: bool,
    },
    /// Another path.
    NotFound,
    /// `/metrics` with another method.
    MethodNotAllowed,
    /// Not a request this server understands; the reason, for the answer.
    Bad(&'static str),
}

/// Reads a complete request head (as [`read_head`] found it).
pub(super) fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::Bad("the request is not UTF-8");
    };
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Route::Bad("malformed method");
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Route::Bad("malformed target");
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Route::Bad("unsupported HTTP version"),
    };
    let mut hosts = 0;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, _value)) = line.split_once(':') else {
            return Route::Bad("malformed header line");
        };
        if name.is_empty() || !name.bytes().all(is_token) {
            return Route::Bad("malformed header name");
        }
        hosts += usize::from(name.eq_ignore_ascii_case("host"));
    }
    if http11 && hosts != 1 {
        return Route::Bad("an HTTP/1.1 request needs one Host header");
    }
    let path = target.split('?').next().unwrap_or_default();
    match (path, method) {
        (PATH, "GET") => Route::Metrics { head_only: false },
        (PATH, "HEAD") => Route::Metrics { head_only: true },
        (PATH, _) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// An RFC 9110 token character (method and header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A whole answer: status line, headers, and the body unless `head_only`.
pub(super) fn response(status: u16, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// A short plain-text answer (errors).
pub(super) fn plain(status: u16, message: &str) -> Vec<u8> {
    response(
        status,
        "text/plain; charset=utf-8",
        &format!("{message}\n"),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(head: &str) -> Route {
        route(head.as_bytes())
    }

    #[test]
    fn get_and_head_of_metrics_are_served_and_the_query_is_ignored() {
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics?x=1 HTTP/1.1\r\nhost: x\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(
            r("GET /metrics HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
    }

    #[test]
    fn other_paths_are_not_found_and_other_methods_not_allowed() {
        assert_eq!(r("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Route::NotFound);
        assert_eq!(
            r("GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::NotFound
        );
        assert_eq!(
            r("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for head in [
            "GET /metrics\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /metrics HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            "GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: x\r\nbad name: 1\r\n\r\n",
            "G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "\r\n\r\n",
        ] {
            assert!(matches!(r(head), Route::Bad(_)), "{head:?}: {:?}", r(head));
        }
        assert!(matches!(
            route(b"GET /\xff HTTP/1.1\r\n\r\n"),
            Route::Bad(_)
        ));
    }

    #[test]
    fn an_answer_has_its_length_and_closes_and_head_leaves_out_the_body() {
        let a = String::from_utf8(response(200, "text/plain", "abc", false)).unwrap();
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("Content-Length: 3\r\n"), "{a}");
        assert!(a.contains("Connection: close\r\n"), "{a}");
        assert!(a.ends_with("\r\n\r\nabc"), "{a}");
        let h = String::from_utf8(response(200, "text/plain", "abc", true)).unwrap();
        assert!(
            h.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"),
            "{h}"
        );
        let n = String::from_utf8(plain(405, "no")).unwrap();
        assert!(n.contains("Allow: GET, HEAD\r\n"), "{n}");
    }
}
