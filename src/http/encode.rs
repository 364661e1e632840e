//! Response serialisation (RFC 9112 §4, §6): status line, the headers the
//! protocol owns (`Date`, `Server`, framing, `Connection`) and the
//! application's own, written into a caller-owned buffer without allocating.

use std::io::Write;

use super::head::Version;

/// The `Server` header value.
pub const SERVER: &str = concat!("glasshouse/", env!("CARGO_PKG_VERSION"));

/// How the body that follows the head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n` (also sent for HEAD, without the body).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only).
    Chunked,
    /// No length header: 1xx, 204, 304 and 101 responses, or a body
    /// delimited by closing the connection (HTTP/1.0 streams).
    None,
}

/// What the `Connection` header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnHeader {
    /// Nothing: HTTP/1.1's default (persistent).
    Omit,
    Close,
    /// HTTP/1.0 keep-alive must be confirmed explicitly.
    KeepAlive,
}

/// Reason phrase for a status code (informational only; clients ignore it).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// True when a response with this status never has a body (RFC 9110 §6.4.1).
pub fn bodiless_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Writes a response head.
pub fn head<'h>(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    date: &[u8],
    framing: Framing,
    conn: ConnHeader,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) {
    out.extend_from_slice(match version {
        Version::Http10 => b"HTTP/1.0 ",
        Version::Http11 => b"HTTP/1.1 ",
    });
    let mut code = itoa::Buffer::new();
    out.extend_from_slice(code.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"\r\nContent-Length: ");
            let mut b = itoa::Buffer::new();
            out.extend_from_slice(b.format(n).as_bytes());
        }
        Framing::Chunked => out.extend_from_slice(b"\r\nTransfer-Encoding: chunked"),
        Framing::None => {}
    }
    out.extend_from_slice(match conn {
        ConnHeader::Omit => b"",
        ConnHeader::Close => &b"\r\nConnection: close"[..],
        ConnHeader::KeepAlive => b"\r\nConnection: keep-alive",
    });
    for (name, value) in headers {
        // A value with CR or LF would let a handler split the response.
        if value.iter().any(|b| *b == b'\r' || *b == b'\n') {
            continue;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// `100 Continue` interim response (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// One chunk of a chunked body.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_status_framing_and_headers_in_order() {
        let mut out = Vec::new();
        head(
            &mut out,
            Version::Http11,
            200,
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            Framing::Length(5),
            ConnHeader::Omit,
            [("Content-Type", &b"text/plain"[..])],
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"
            )
        );
    }

    #[test]
    fn drops_header_values_that_would_split_the_response() {
        let mut out = Vec::new();
        head(
            &mut out,
            Version::Http10,
            404,
            b"d",
            Framing::None,
            ConnHeader::KeepAlive,
            [("X", &b"a\r\nSet-Cookie: x"[..])],
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.0 404 Not Found\r\n"));
        assert!(s.contains("Connection: keep-alive\r\n"));
        assert!(!s.contains("Set-Cookie"));
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        chunk(&mut out, b"hello world, 16b");
        chunk(&mut out, b"");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(out, b"10\r\nhello world, 16b\r\n0\r\n\r\n");
    }
}
