//! A small blocking HTTP/1.1 client on `std::net::TcpStream` for the OTLP
//! exporters (the `opentelemetry-http` `HttpClient` trait), so that no async
//! runtime (tokio, hyper, reqwest) enters the process. One connection per
//! export (`Connection: close`), plain `http://` only, with a deadline on
//! connecting, writing and reading and a cap on the answer's size. It runs
//! on the SDK's export threads, never on a worker.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Largest answer read from a collector.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// The blocking client. `timeout` bounds one whole exchange.
#[derive(Clone, Debug)]
pub struct BlockingHttpClient {
    pub timeout: Duration,
}

impl Default for BlockingHttpClient {
    fn default() -> Self {
        BlockingHttpClient {
            timeout: Duration::from_secs(10),
        }
    }
}

fn err(msg: impl Into<String>) -> HttpError {
    msg.into().into()
}

/// Time left before `deadline`, or a timeout error.
fn left(deadline: Instant, what: &str) -> Result<Duration, HttpError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(err(format!("timed out {what}")))
    } else {
        Ok(d)
    }
}

impl BlockingHttpClient {
    /// Sends one request and reads the whole answer, blocking.
    pub fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let uri = request.uri();
        if uri.scheme_str() != Some("http") {
            return Err(err(format!(
                "unsupported endpoint {uri}: only http:// is supported"
            )));
        }
        let host = uri.host().ok_or_else(|| err(format!("no host in {uri}")))?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let addrs = (host.trim_matches(|c| c == '[' || c == ']'), port).to_socket_addrs()?;
        let mut stream = None;
        let mut last_error = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, left(deadline, "connecting")?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let mut stream = match (stream, last_error) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(err(format!("connecting to {host}:{port}: {e}"))),
            (None, None) => return Err(err(format!("{host} resolves to no address"))),
        };
        stream.set_nodelay(true)?;

        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
            request.method(),
            request.body().len()
        );
        for (name, value) in request.headers() {
            if name == http::header::HOST
                || name == http::header::CONNECTION
                || name == http::header::CONTENT_LENGTH
            {
                continue;
            }
            let value = value.to_str().map_err(|_| err("non-ASCII header value"))?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(request.body());
        stream.set_write_timeout(Some(left(deadline, "writing")?))?;
        stream.write_all(&out)?;

        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 8192];
        loop {
            stream.set_read_timeout(Some(left(deadline, "reading the answer")?))?;
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(err("timed out reading the answer"))
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(err("answer too large"));
            }
            if let Some(done) = complete(&buf)? {
                return Ok(done);
            }
        }
        complete_at_eof(&buf)
    }
}

/// Parses an answer that may be complete already.
fn complete(buf: &[u8]) -> Result<Option<Response<Bytes>>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.unwrap_or(500);
    let mut builder = Response::builder().status(status);
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
        {
            chunked = true;
        }
        builder = builder.header(h.name, h.value);
    }
    let body = &buf[head_len..];
    let body = if chunked {
        match dechunk(body)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else if let Some(len) = length {
        if body.len() < len {
            return Ok(None);
        }
        body[..len].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else {
        // Delimited by the end of the connection.
        return Ok(None);
    };
    Ok(Some(builder.body(Bytes::from(body))?))
}

fn complete_at_eof(buf: &[u8]) -> Result<Response<Bytes>, HttpError> {
    if let Some(r) = complete(buf)? {
        return Ok(r);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf)? {
        httparse::Status::Complete(n) => {
            let mut builder = Response::builder().status(resp.code.unwrap_or(500));
            for h in resp.headers.iter() {
                builder = builder.header(h.name, h.value);
            }
            Ok(builder.body(Bytes::copy_from_slice(&buf[n..]))?)
        }
        httparse::Status::Partial => Err(err("connection closed before a complete answer")),
    }
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| err("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| err("bad chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[async_trait]
impl HttpClient for BlockingHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8], delay: Duration) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                // Read the whole request (its body is "abc") so that
                // closing does not reset the connection.
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.ends_with(b"abc") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = s.write_all(answer);
            }
        });
        format!("http://{addr}/v1/traces")
    }

    fn post(url: &str, timeout: Duration) -> Result<Response<Bytes>, HttpError> {
        let req = Request::post(url)
            .header("content-type", "application/x-protobuf")
            .body(Bytes::from_static(b"abc"))
            .expect("request");
        BlockingHttpClient { timeout }.send(req)
    }

    #[test]
    fn reads_length_chunked_and_eof_delimited_answers() {
        let url = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            Duration::ZERO,
        );
        let r = post(&url, Duration::from_secs(5)).expect("answer");
        assert_eq!(r.status(), 200);
        assert_eq!(r.body().as_ref(), b"ok");
        let url = serve_once(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
            Duration::ZERO,
        );
        let r = post(&url, Duration::from_secs(5)).expect("answer");
        assert_eq!(r.status(), 400);
        assert_eq!(r.body().as_ref(), b"abc");
        let url = serve_once(b"HTTP/1.0 200 OK\r\n\r\nall", Duration::ZERO);
        assert_eq!(
            post(&url, Duration::from_secs(5))
                .expect("eof")
                .body()
                .as_ref(),
            b"all"
        );
    }

    #[test]
    fn a_silent_collector_times_out() {
        let url = serve_once(b"", Duration::from_secs(3));
        let t = Instant::now();
        assert!(post(&url, Duration::from_millis(200)).is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn refused_and_https_endpoints_fail_cleanly() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        assert!(post(&format!("http://{addr}/"), Duration::from_secs(1)).is_err());
        assert!(post("https://127.0.0.1:1/", Duration::from_secs(1)).is_err());
    }
}
