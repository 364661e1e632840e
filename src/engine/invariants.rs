//! The properties every stream of answers must have, whatever bytes came
//! in and however they were split: each answer parses as an HTTP/1.x
//! response with sound framing, answers come in request order with none
//! skipped, nothing follows an answer that closes the connection, bytes
//! after a `101` are WebSocket frames, and the connection either goes on
//! or closes — it never hangs. [`check`] drives the engine over the
//! in-memory transport with the sample application and panics, naming the
//! broken property, when one fails: the body of the fuzz target
//! (`fuzz/fuzz_targets/engine.rs`) and of its stable replay test.

use std::time::Duration;

use super::memory::MemoryTransport;
use super::sample::SampleApp;
use super::Config;

/// One parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The minor version: 0 or 1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Answers to `HEAD` say so (the sample application marks them), so
    /// their `Content-Length` announces no body here.
    fn bodiless(&self) -> bool {
        matches!(self.status, 100..=199 | 204 | 304) || self.header("x-method") == Some("HEAD")
    }
}

/// Splits `bytes` into complete answers; returns them and the bytes they
/// used. Parsing stops at the first incomplete or malformed answer, and
/// after a `101` (what follows is not HTTP).
pub fn parse_answers(bytes: &[u8]) -> (Vec<Answer>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some((answer, used)) = parse_one(&bytes[at..]) else {
            break;
        };
        at += used;
        let upgraded = answer.status == 101;
        out.push(answer);
        if upgraded {
            break;
        }
    }
    (out, at)
}

fn parse_one(bytes: &[u8]) -> Option<(Answer, usize)> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut storage);
    let httparse::Status::Complete(n) = resp.parse(bytes).ok()? else {
        return None;
    };
    let mut answer = Answer {
        status: resp.code?,
        version: resp.version?,
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let mut end = n;
    if answer.bodiless() {
        // No body, whatever a length says.
    } else if let Some(len) = answer.header("content-length") {
        let len: usize = len.parse().ok()?;
        answer.body = bytes.get(end..end.checked_add(len)?)?.to_vec();
        end += len;
    } else if answer.header("transfer-encoding") == Some("chunked") {
        loop {
            let line = bytes.get(end..)?.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&bytes[end..end + line]).ok()?, 16)
                    .ok()?;
            end += line + 2;
            if size == 0 {
                (bytes.get(end..end + 2)? == b"\r\n").then_some(())?;
                end += 2;
                break;
            }
            answer
                .body
                .extend_from_slice(bytes.get(end..end.checked_add(size)?)?);
            end += size;
            (bytes.get(end..end + 2)? == b"\r\n").then_some(())?;
            end += 2;
        }
    } else {
        // Delimited by the close: everything that follows.
        answer.body = bytes[end..].to_vec();
        end = bytes.len();
    }
    Some((answer, end))
}

/// A small deterministic generator, so that one input always replays the
/// same way.
struct Splitter(u32);

impl Splitter {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        self.0 >> 8
    }
}

/// Drives the engine with `data` (its first byte chooses how input is
/// split, how slowly the peer reads, when time passes and whether a drain
/// begins) and checks every property; panics naming the one that fails.
/// `/panic` does not panic here (see [`check_with`]).
pub fn check(data: &[u8]) {
    check_with(data, SampleApp::without_panics());
}

/// [`check`] with a given application instance.
pub fn check_with(data: &[u8], app: SampleApp) {
    let Some((&plan, stream)) = data.split_first() else {
        return;
    };
    let config = Config {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let mut t = MemoryTransport::new(Box::new(app), config);
    let mut split = Splitter(u32::from(plan) | 0x100);
    if plan & 1 != 0 {
        t.window = Some(0);
    }
    let mut at = 0;
    while at < stream.len() && !t.closed {
        let n = 1 + (split.next() % 64) as usize;
        let end = (at + n).min(stream.len());
        t.send(&stream[at..end]);
        at = end;
        let r = split.next();
        if r % 8 == 0 {
            t.peer_reads((r % 128) as usize);
        }
        if r % 16 == 1 {
            t.advance(Duration::from_millis(u64::from(r % 2000)));
        }
    }
    // The peer reads everything, maybe a drain begins, the peer closes,
    // and time runs past every deadline.
    t.window = None;
    t.peer_reads(0);
    if plan & 2 != 0 {
        t.drain();
    }
    t.send_eof();
    for _ in 0..64 {
        if !t.advance_to_deadline() {
            break;
        }
    }
    assert!(
        t.closed,
        "the connection settles: closed after the peer's EOF and every deadline"
    );
    verify(&t.take_received());
}

/// The properties of one connection's output.
pub fn verify(out: &[u8]) {
    let (answers, used) = parse_answers(out);
    let upgraded = answers.last().is_some_and(|a| a.status == 101);
    if upgraded {
        let rest = &out[used..];
        assert!(
            crate::ws::client::decode(rest).is_ok(),
            "bytes after a 101 are WebSocket frames"
        );
    } else {
        assert_eq!(
            used,
            out.len(),
            "every byte belongs to a well-framed answer: {:?}",
            String::from_utf8_lossy(&out[used..out.len().min(used + 200)])
        );
    }
    let mut seq = 0u64;
    let mut ended = false;
    for (i, a) in answers.iter().enumerate() {
        assert!(!ended, "nothing follows an answer that closes ({i})");
        assert!(a.version <= 1, "HTTP/1.x answers only");
        if a.status == 100 {
            continue;
        }
        match a.header("x-seq") {
            Some(n) => {
                seq += 1;
                assert_eq!(
                    n.parse::<u64>().ok(),
                    Some(seq),
                    "answers in request order, none skipped"
                );
            }
            None if a.status == 500 => {
                // The handler ran and panicked: the engine answered for it.
                seq += 1;
                assert_eq!(a.body, br#"{"error":"internal server error"}"#);
            }
            None => {
                // Otherwise only a refusal comes without the application:
                // JSON, and the connection closes.
                assert!(a.status >= 400, "an answer without X-Seq is a refusal");
                assert!(
                    a.body.starts_with(b"{\"error\":"),
                    "a refusal has the JSON error body"
                );
                assert_eq!(a.header("connection"), Some("close"), "a refusal closes");
            }
        }
        if a.header("connection") == Some("close") || a.status == 101 {
            ended = true;
        }
    }
}
