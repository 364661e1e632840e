//! Replays the request vectors of nodejs/llhttp (read at test time from
//! `../shared/conformance/llhttp`, never copied into the repository) against
//! the live server and compares what a client observes with what llhttp's
//! strict parser decided.
//!
//! Each vector is a markdown section: a heading, a `<!-- meta=... -->`
//! comment, an ```` ```http ```` block (the bytes, after the decode rules of
//! `shared/README.md`) and a ```` ```log ```` block of parser events. From the
//! log we take how many messages llhttp completed and whether it ended in an
//! error (`error code=N`; codes 22/23 are the CONNECT/Upgrade hand-off, not
//! errors). The vector is sent on a fresh connection, the write side is shut,
//! and everything up to the server's close is parsed into responses.
//!
//! Outcomes (ours):
//! - `accept N`: N requests answered by the application (any status it
//!   chooses, 404/405 included), then a silent close.
//! - `reject N S`: N answered, then a protocol refusal with status S (400,
//!   408, 411, 413, 414, 417, 431 or any 5xx).
//! - `timeout N` / `garbage N`: the server neither closed nor answered
//!   cleanly (always a failure unless listed).
//!
//! Agreement with llhttp's `M` completed messages:
//! - llhttp accepted: `accept M`.
//! - llhttp rejected: `reject M S`, or `accept M` (the bad part never formed
//!   a request; the close without an answer is a refusal too).
//! - llhttp upgraded after M: at least M answered (we ignore `Upgrade`, as
//!   RFC 9110 §7.8 allows, and read on).
//! - `request-lenient-*` vectors describe modes a strict server must not
//!   have. When a strict vector has the same bytes, its outcome is the
//!   expectation. Otherwise we must answer fewer requests than lenient
//!   llhttp began, or refuse no later than where it completed its messages.
//!
//! Deliberate differences are listed, with their RFC reason, in
//! `tests/conformance/llhttp-expectations.txt` (`id | our outcome | reason`).
//! An unlisted difference, a listed vector that now agrees, or a listed id
//! that does not exist fails the test.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{lossy, parse_response, send_raw_opts, Server};

fn vectors_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/llhttp"
    ))
    .join("test/request")
}

const EXPECTATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/llhttp-expectations.txt"
);

/// One request vector.
struct Vector {
    id: String,
    kind: String,
    meta: serde_json::Value,
    input: Vec<u8>,
    log: Vec<String>,
}

/// What llhttp decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Llhttp {
    Accept(usize),
    Reject(usize),
    Upgrade(usize),
}

/// What a client of our server observed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ours {
    Accept(usize),
    Reject(usize, u16),
    Timeout(usize),
    Garbage(usize),
}

impl std::fmt::Display for Ours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ours::Accept(n) => write!(f, "accept {n}"),
            Ours::Reject(n, s) => write!(f, "reject {n} {s}"),
            Ours::Timeout(n) => write!(f, "timeout {n}"),
            Ours::Garbage(n) => write!(f, "garbage {n}"),
        }
    }
}

fn slug(heading: &str) -> String {
    let mut s = String::new();
    for c in heading.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// Splits one markdown file into vectors.
fn parse_file(path: &Path) -> Vec<Vector> {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // Read as bytes: the files are UTF-8 and escapes make single bytes.
    let text = String::from_utf8(text).expect("vector file is UTF-8");
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut heading = String::new();
    let mut meta = serde_json::Value::Null;
    let mut input: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix('#') {
            heading = h.trim_start_matches('#').trim().to_string();
        } else if let Some(m) = line.trim().strip_prefix("<!-- meta=") {
            let json = m.trim_end_matches("-->").trim();
            meta = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("{stem}: bad meta {json:?}: {e}"));
        } else if line.trim() == "```http" {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim_end() == "```" {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            input = Some(block);
        } else if line.trim() == "```log" {
            let mut log = Vec::new();
            for l in lines.by_ref() {
                if l.trim_end() == "```" {
                    break;
                }
                log.push(l.to_string());
            }
            let Some(raw) = input.take() else {
                panic!("{stem}: log block without an http block under {heading:?}")
            };
            let base = format!("{stem}/{}", slug(&heading));
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 { base } else { format!("{base}#{n}") };
            let kind = meta["type"].as_str().unwrap_or("request").to_string();
            out.push(Vector {
                id,
                kind,
                meta: std::mem::take(&mut meta),
                input: decode(&raw),
                log,
            });
        }
    }
    out
}

/// The decode rules of llhttp's markdown tests (shared/README.md): drop the
/// final newline, join lines ending in `\`, every newline becomes CRLF, then
/// expand `\r \n \t \f \xNN` and octal escapes, each to one byte.
fn decode(raw: &str) -> Vec<u8> {
    let s = raw.strip_suffix('\n').unwrap_or(raw);
    let s = s.replace("\\\n", "");
    let s = s.replace('\n', "\r\n");
    let mut b = s.into_bytes();
    for (esc, byte) in [(b'r', b'\r'), (b'n', b'\n'), (b't', b'\t'), (b'f', 0x0c)] {
        b = replace_escape(&b, esc, byte);
    }
    b = expand_numeric(&b, true);
    expand_numeric(&b, false)
}

fn replace_escape(b: &[u8], esc: u8, byte: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&esc) {
            out.push(byte);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `\xHH...` (greedy hex) or `\OOO` (one to three octal digits).
fn expand_numeric(b: &[u8], hex: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let (start, max, radix) = if hex {
                (i + 2, usize::MAX, 16)
            } else {
                (i + 1, 3, 8)
            };
            let prefix_ok = !hex || b.get(i + 1) == Some(&b'x');
            let mut j = start;
            while prefix_ok && j < b.len() && j - start < max && (b[j] as char).is_digit(radix) {
                j += 1;
            }
            if prefix_ok && j > start {
                let digits = std::str::from_utf8(&b[start..j]).unwrap();
                let v = u32::from_str_radix(digits, radix).unwrap_or(0);
                out.push(v as u8);
                i = j;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Offsets where llhttp saw messages begin.
fn message_starts(log: &[String]) -> Vec<usize> {
    let mut v: Vec<usize> = log
        .iter()
        .filter(|l| l.ends_with(" message begin"))
        .filter_map(|l| l.strip_prefix("off=")?.split(' ').next()?.parse().ok())
        .collect();
    v.dedup();
    if v.is_empty() {
        v.push(0);
    }
    v
}

/// Adds `Host:` to HTTP/1.1 messages that lack it (shared/README.md), right
/// after their request line.
fn add_host(input: &[u8], log: &[String]) -> Vec<u8> {
    let mut out = input.to_vec();
    for &start in message_starts(log).iter().rev() {
        if start >= out.len() {
            continue;
        }
        let Some(nl) = out[start..].iter().position(|b| *b == b'\n') else {
            continue;
        };
        let line_end = start + nl + 1;
        let line = &out[start..line_end];
        let trimmed = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if !trimmed.ends_with(b" HTTP/1.1") {
            continue;
        }
        let head_end = support::find(&out[line_end..], b"\r\n\r\n")
            .map(|p| line_end + p)
            .unwrap_or(out.len());
        let has_host = out[start..head_end]
            .split(|b| *b == b'\n')
            .skip(1)
            .any(|l| l.len() >= 5 && l[..5].eq_ignore_ascii_case(b"host:"));
        if !has_host {
            out.splice(line_end..line_end, b"Host: example.com\r\n".iter().copied());
        }
    }
    out
}

fn llhttp_outcome(v: &Vector) -> Llhttp {
    let complete = v
        .log
        .iter()
        .filter(|l| l.ends_with(" message complete"))
        .count();
    match v.log.iter().rev().find(|l| l.contains(" error code=")) {
        Some(l) if l.contains("code=22 ") || l.contains("code=23 ") => Llhttp::Upgrade(complete),
        Some(_) => Llhttp::Reject(complete),
        None => Llhttp::Accept(complete),
    }
}

/// Statuses that mean "the request was refused as a request", as opposed to
/// an answer the application chose (200, 404, 405, 415, ...).
fn is_refusal(status: u16) -> bool {
    matches!(status, 400 | 408 | 411 | 413 | 414 | 417 | 431) || status >= 500
}

/// Methods of the messages llhttp saw, in order (to know which responses
/// answer HEAD and so carry no body).
fn methods(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| {
            let at = l.find("span[method]=\"")? + "span[method]=\"".len();
            Some(l[at..].trim_end_matches('"').to_string())
        })
        .collect()
}

fn our_outcome(server: &Server, input: &[u8], methods: &[String]) -> (Ours, String) {
    let (raw, closed) = send_raw_opts(server.addr(), input, true, Duration::from_secs(5));
    let mut at = 0;
    let mut answered = 0;
    let mut statuses = Vec::new();
    let mut refusal = None;
    while at < raw.len() {
        let head = methods.get(answered).is_some_and(|m| m == "HEAD");
        let Some((r, used)) = parse_response(&raw[at..], head) else {
            break;
        };
        at += used;
        statuses.push(r.status.to_string());
        if (100..200).contains(&r.status) {
            continue;
        }
        if refusal.is_some() {
            // Anything after a refusal is wrong: it must be the last answer.
            return (Ours::Garbage(answered), statuses.join(","));
        }
        if is_refusal(r.status) {
            refusal = Some(r.status);
        } else {
            answered += 1;
        }
    }
    let statuses = statuses.join(",");
    if at < raw.len() {
        return (
            Ours::Garbage(answered),
            format!("{statuses} + {:?}", lossy(&raw[at..])),
        );
    }
    if !closed {
        return (Ours::Timeout(answered), statuses);
    }
    (
        match refusal {
            Some(s) => Ours::Reject(answered, s),
            None => Ours::Accept(answered),
        },
        statuses,
    )
}

fn agrees(v: &Vector, expected: &Llhttp, ours: &Ours, twin: Option<&Llhttp>) -> bool {
    // A lenient vector with a strict twin (same bytes, strict mode) must
    // get the strict outcome.
    if let Some(strict) = twin {
        return agrees_strict(strict, ours);
    }
    let lenient = v.kind.starts_with("request-lenient");
    match (lenient, expected, ours) {
        (_, _, Ours::Timeout(_) | Ours::Garbage(_)) => false,
        (false, Llhttp::Accept(m), Ours::Accept(n)) => n == m,
        (false, Llhttp::Accept(_), Ours::Reject(..)) => false,
        (false, Llhttp::Reject(m), Ours::Accept(n) | Ours::Reject(n, _)) => n == m,
        (false, Llhttp::Upgrade(m), Ours::Accept(n) | Ours::Reject(n, _)) => n >= m,
        // Lenient vectors: strictly fewer answers than lenient llhttp, or a
        // refusal no later than where it completed its messages.
        // A strict server may stop (close) where lenient llhttp began a
        // message it could only accept leniently: fewer answers than that.
        (true, Llhttp::Accept(_), Ours::Accept(n)) => *n < message_starts(&v.log).len(),
        (true, _, Ours::Reject(n, _)) => {
            n <= match expected {
                Llhttp::Accept(m) | Llhttp::Reject(m) | Llhttp::Upgrade(m) => m,
            }
        }
        (true, Llhttp::Reject(m) | Llhttp::Upgrade(m), Ours::Accept(n)) => n <= m,
    }
}

fn agrees_strict(expected: &Llhttp, ours: &Ours) -> bool {
    match (expected, ours) {
        (_, Ours::Timeout(_) | Ours::Garbage(_)) => false,
        (Llhttp::Accept(m), Ours::Accept(n)) => n == m,
        (Llhttp::Accept(_), Ours::Reject(..)) => false,
        (Llhttp::Reject(m), Ours::Accept(n) | Ours::Reject(n, _)) => n == m,
        (Llhttp::Upgrade(m), Ours::Accept(n) | Ours::Reject(n, _)) => n >= m,
    }
}

struct Expectation {
    outcome: String,
    reason: String,
}

fn load_expectations() -> BTreeMap<String, Expectation> {
    let text = std::fs::read_to_string(EXPECTATIONS)
        .unwrap_or_else(|e| panic!("cannot read {EXPECTATIONS}: {e}"));
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(3, '|').map(str::trim).collect();
        assert!(
            parts.len() == 3 && !parts[2].is_empty(),
            "{EXPECTATIONS}:{}: expected `id | outcome | reason`, got {line:?}",
            i + 1
        );
        let prev = map.insert(
            parts[0].to_string(),
            Expectation {
                outcome: parts[1].to_string(),
                reason: parts[2].to_string(),
            },
        );
        assert!(prev.is_none(), "{EXPECTATIONS}: {} listed twice", parts[0]);
    }
    map
}

#[test]
fn llhttp_request_vectors() {
    let dir = vectors_dir();
    assert!(
        dir.is_dir(),
        "llhttp conformance vectors not found at {} (expected ../shared/conformance/llhttp \
         beside the repository; see shared/README.md). This test must not pass without them.",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let vectors: Vec<Vector> = files.iter().flat_map(|f| parse_file(f)).collect();
    assert!(
        vectors.len() > 100,
        "only {} vectors parsed from {}",
        vectors.len(),
        dir.display()
    );
    let expectations = load_expectations();
    let server = Server::start(&[]);

    let mut agree = 0;
    let mut agree_by_close = 0;
    let mut lenient = 0;
    let mut listed = Vec::new();
    let mut failures = Vec::new();
    let mut ids = BTreeSet::new();
    // Strict outcomes by input, to find the strict twin of a lenient vector.
    let strict: BTreeMap<&[u8], Llhttp> = vectors
        .iter()
        .filter(|v| !v.kind.starts_with("request-lenient"))
        .map(|v| (&v.input[..], llhttp_outcome(v)))
        .collect();
    let mut twins = 0;
    for v in &vectors {
        ids.insert(v.id.clone());
        let expected = llhttp_outcome(v);
        let input = add_host(&v.input, &v.log);
        let (ours, statuses) = our_outcome(&server, &input, &methods(&v.log));
        let twin = if v.kind.starts_with("request-lenient") {
            strict.get(&v.input[..])
        } else {
            None
        };
        twins += usize::from(twin.is_some());
        let ok = agrees(v, &expected, &ours, twin);
        if v.kind.starts_with("request-lenient") {
            lenient += 1;
        }
        match (ok, expectations.get(&v.id)) {
            (true, None) => {
                agree += 1;
                if matches!(expected, Llhttp::Reject(_)) && matches!(ours, Ours::Accept(_)) {
                    agree_by_close += 1;
                }
            }
            (true, Some(e)) => failures.push(format!(
                "{}: listed as a difference ({}: {}) but now agrees with llhttp ({expected:?}, ours {ours}); remove it",
                v.id, e.outcome, e.reason
            )),
            (false, Some(e)) if e.outcome == ours.to_string() => listed.push((v.id.clone(), ours.to_string(), e.reason.clone())),
            (false, other) => failures.push(format!(
                "{} [{}{}]: llhttp {expected:?}, ours {ours} (statuses {statuses}){}\n    input: {:?}",
                v.id,
                v.kind,
                if v.meta.get("skipBody").is_some() { ", skipBody" } else { "" },
                other
                    .map(|e| format!("; listed as `{}`", e.outcome))
                    .unwrap_or_default(),
                lossy(&input)
            )),
        }
    }
    server.assert_healthy();
    for id in expectations.keys() {
        if !ids.contains(id) {
            failures.push(format!(
                "{id}: listed in the expectations file but no such vector"
            ));
        }
    }
    println!(
        "llhttp conformance: {} vectors ({} lenient-mode, {} of them with a strict twin) from {} files; {} agree with llhttp \
         ({} of them rejected by a close without an answer); {} listed differences; {} failures",
        vectors.len(),
        lenient,
        twins,
        files.len(),
        agree,
        agree_by_close,
        listed.len(),
        failures.len()
    );
    let bugs = listed.iter().filter(|l| l.2.starts_with("BUG")).count();
    println!(
        "  of the listed: {} policy differences, {bugs} known server bugs",
        listed.len() - bugs
    );
    for (id, ours, reason) in &listed {
        let kind = if reason.starts_with("BUG") {
            "known bug "
        } else {
            "difference"
        };
        println!("  {kind} {id}: ours `{ours}`: {reason}");
    }
    assert!(
        failures.is_empty(),
        "{} vectors differ from llhttp and are not listed in {EXPECTATIONS}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The decoder must reproduce llhttp's bytes: every ASCII span in the logs
/// (`off=X len=L span[...]="value"`) is found at its offset.
#[test]
fn decoded_vectors_match_llhttp_offsets() {
    let dir = vectors_dir();
    assert!(
        dir.is_dir(),
        "llhttp vectors not found at {}",
        dir.display()
    );
    let mut checked = 0;
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for v in parse_file(&path) {
            for line in &v.log {
                let Some(rest) = line.strip_prefix("off=") else {
                    continue;
                };
                let mut it = rest.splitn(3, ' ');
                let (Some(off), Some(len), Some(span)) = (it.next(), it.next(), it.next()) else {
                    continue;
                };
                let (Ok(off), Some(Ok(len))) = (
                    off.parse::<usize>(),
                    len.strip_prefix("len=").map(str::parse::<usize>),
                ) else {
                    continue;
                };
                let Some(at) = span.find("=\"") else { continue };
                let value = &span[at + 2..span.len() - 1];
                if !value.is_ascii() || value.contains('\\') || value.len() != len {
                    continue;
                }
                checked += 1;
                if v.input.get(off..off + len) != Some(value.as_bytes()) {
                    bad.push(format!("{}: {line}", v.id));
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} spans checked");
    assert!(
        bad.is_empty(),
        "decoded input disagrees with llhttp offsets:\n{}",
        bad.join("\n")
    );
}

#[test]
fn decode_rules() {
    assert_eq!(decode("GET / HTTP/1.1\n\n\n"), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(decode("a\\\nb\n"), b"ab");
    assert_eq!(
        decode("x\\r\\n\\t\\f\\xff\\101\\01\\ty\n"),
        b"x\r\n\t\x0c\xffA\x01\ty"
    );
    assert_eq!(decode("q=\\\"b\\\"\n"), b"q=\\\"b\\\"");
}

/// The fuzz targets' invariants (`head`, `engine`) on every decoded
/// request vector, each with the selector bytes its target reads first (two
/// for `head`: limits and split; one for `engine`: the plan). With
/// `GLASSHOUSE_LLHTTP_SEEDS=DIR` the same inputs are also written there as
/// seeds: `scripts/fuzz.sh` seeds the two targets with them, so the
/// vectors of `../shared` are used without being copied into the repository.
/// A fuzz target: its name, the selector bytes before the input, its check.
type FuzzTarget = (&'static str, &'static [u8], fn(&[u8]));

#[test]
fn the_fuzz_invariants_hold_on_the_llhttp_vectors() {
    let out = std::env::var("GLASSHOUSE_LLHTTP_SEEDS")
        .ok()
        .map(PathBuf::from);
    let mut checked = 0;
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for (i, v) in parse_file(&path).into_iter().enumerate() {
            let targets: [FuzzTarget; 2] = [
                (
                    "head",
                    &[0xff, 0x80],
                    glasshouse::http::invariants::check_head,
                ),
                ("engine", &[0], glasshouse::engine::invariants::check),
            ];
            for (target, prefix, check) in targets {
                let mut seed = prefix.to_vec();
                seed.extend_from_slice(&v.input);
                check(&seed);
                if let Some(out) = &out {
                    let dir = out.join(target);
                    std::fs::create_dir_all(&dir).unwrap();
                    let name = format!("{}-{i}", v.id.replace(['/', '#'], "_"));
                    std::fs::write(dir.join(name), &seed).unwrap();
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} vectors checked");
}
