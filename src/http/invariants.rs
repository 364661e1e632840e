//! The properties the request-head parser and the chunked decoder must keep
//! on any input, for the fuzz targets `head` and `chunked`
//! (`fuzz/fuzz_targets/`) and their stable replay over the seed corpus
//! (`tests/fuzz_replay.rs`). Each `check_*` panics, naming the broken
//! property, when one fails; a panic inside the parser is a failure too.
//!
//! What they hold to: an accepted head is exactly what was read (it ends
//! with an empty CRLF line, has no bare LF, its target and fields carry no
//! control bytes), every shorter prefix of an accepted head asks for more
//! rather than failing (so where a read splits a head never changes the
//! verdict), and the chunked decoder gives the same body, the same
//! consumption and the same error however its input is split, never
//! decoding past the body limit.

use super::chunked::ChunkedDecoder;
use super::head::{self, BodyFraming, Limits};

/// Limits small enough that the fuzzer reaches every refusal.
fn limits(selector: u8) -> Limits {
    Limits {
        max_target: 16 + usize::from(selector & 0x0f) * 64,
        max_head: 64 + usize::from(selector >> 4) * 256,
        max_headers: 4 + usize::from(selector % 13),
        max_body: 1 << (selector % 24),
    }
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// The head parser on `data`: the first byte picks the limits, the second
/// a split point, the rest is the head.
pub fn check_head(data: &[u8]) {
    let [sel, split, input @ ..] = data else {
        return;
    };
    let limits = limits(*sel);
    let mut storage = [head::EMPTY_HEADER; 128];
    let storage = &mut storage[..limits.max_headers.min(128)];
    let verdict = head::parse(input, storage, &limits);
    let Ok(Some(head)) = verdict else {
        return;
    };
    let len = head.len;
    assert!(len <= input.len(), "head longer than its input");
    assert!(len <= limits.max_head, "head over max_head accepted");
    assert!(
        input[..len].ends_with(b"\r\n\r\n"),
        "head does not end with CRLF CRLF"
    );
    for (i, b) in input[..len].iter().enumerate() {
        if *b == b'\n' {
            assert!(
                i > 0 && input[i - 1] == b'\r',
                "bare LF in an accepted head"
            );
        }
    }
    assert!(is_token(head.method.as_bytes()), "method is not a token");
    assert!(!head.target.is_empty(), "empty target accepted");
    assert!(
        head.target.len() <= limits.max_target,
        "target over max_target accepted"
    );
    assert!(
        head.target.bytes().all(|b| b.is_ascii_graphic()),
        "control or non-ASCII byte in the target"
    );
    for h in head.headers {
        assert!(is_token(h.name.as_bytes()), "field name is not a token");
        assert!(
            !h.value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "CR, LF or NUL in a field value"
        );
    }
    if let BodyFraming::Length(n) = head.framing {
        assert!(
            n <= limits.max_body,
            "declared length over max_body accepted"
        );
    }
    let transfer_encoding = head.header("transfer-encoding").is_some();
    if transfer_encoding {
        assert_eq!(
            head.framing,
            BodyFraming::Chunked,
            "Transfer-Encoding not read as chunked"
        );
        assert!(
            head.header("content-length").is_none(),
            "both Transfer-Encoding and Content-Length accepted"
        );
    }
    // Where a read splits an acceptable head must not change the verdict.
    let cut = usize::from(*split) * len / 256;
    let mut again = [head::EMPTY_HEADER; 128];
    let again = &mut again[..limits.max_headers.min(128)];
    match head::parse(&input[..cut], again, &limits) {
        Ok(None) => {}
        other => panic!("a prefix of {cut} of an accepted {len}-byte head gave {other:?}"),
    }
}

/// The chunked decoder on `data`: the first byte picks the body limit, the
/// next two how the rest is split.
pub fn check_chunked(data: &[u8]) {
    let [sel, a, b, input @ ..] = data else {
        return;
    };
    let max_body = 1u64 << (sel % 24);
    let whole = decode_in(input, &[], max_body);
    let cuts = [
        usize::from(*a) * input.len() / 256,
        usize::from(*b) * input.len() / 256,
    ];
    let pieces = decode_in(input, &cuts, max_body);
    assert_eq!(whole, pieces, "the split at {cuts:?} changed the outcome");
    let singles: Vec<usize> = (1..input.len().min(64)).collect();
    assert_eq!(
        whole,
        decode_in(input, &singles, max_body),
        "byte-at-a-time changed the outcome"
    );
    if let Outcome::Done { body, consumed } | Outcome::More { body, consumed } = &whole {
        assert!(body.len() as u64 <= max_body, "decoded past max_body");
        assert!(*consumed <= input.len());
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done { body: Vec<u8>, consumed: usize },
    More { body: Vec<u8>, consumed: usize },
    Failed(super::error::HttpError),
}

/// Feeds `input` cut at `cuts` (sorted or not, clamped) to a fresh decoder.
fn decode_in(input: &[u8], cuts: &[usize], max_body: u64) -> Outcome {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| (*c).min(input.len())).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    let mut decoder = ChunkedDecoder::default();
    let mut body = Vec::new();
    let mut at = 0;
    for end in bounds {
        if end <= at {
            continue;
        }
        match decoder.decode(&input[at..end], &mut body, max_body) {
            Err(e) => return Outcome::Failed(e),
            Ok(used) => {
                assert!(used <= end - at, "consumed more than it was given");
                if decoder.is_done() {
                    return Outcome::Done {
                        body,
                        consumed: at + used,
                    };
                }
                assert_eq!(used, end - at, "stopped early without finishing the body");
                at = end;
            }
        }
    }
    Outcome::More { body, consumed: at }
}
