//! Table tests for head parsing, framing and the decoder, one case a line.

use super::*;
use crate::http::head::Limits;

/// Outcome of decoding a whole input, summarised for table tests.
#[derive(Debug, PartialEq)]
enum Out {
    /// Request: method, path, query, body, consumed, keep-alive.
    Req(String, String, String, Vec<u8>, usize, bool),
    Partial,
    Err(u16),
}

fn run(input: &[u8], limits: &Limits) -> Out {
    let mut d = RequestDecoder::default();
    let mut storage = [httparse::EMPTY_HEADER; 100];
    match d.decode(input, &mut storage[..limits.max_headers.min(100)], limits) {
        Ok(Decoded::Request {
            head,
            body,
            consumed,
        }) => Out::Req(
            head.method.into(),
            head.path.into(),
            head.query.into(),
            body.to_vec(),
            consumed,
            head.keep_alive,
        ),
        Ok(Decoded::Incomplete { .. }) => Out::Partial,
        Err(e) => Out::Err(e.status()),
    }
}

fn req(m: &str, p: &str, q: &str, body: &[u8], consumed: usize, ka: bool) -> Out {
    Out::Req(m.into(), p.into(), q.into(), body.to_vec(), consumed, ka)
}

/// Stands for "the whole input" in the table; `ALL - n` leaves `n` bytes.
const ALL: usize = usize::MAX;

macro_rules! cases {
    ($($name:ident: $input:expr => $expect:expr;)*) => {
        $(#[test] fn $name() {
            let input: &[u8] = $input;
            let expect = match $expect {
                Out::Req(m, p, q, b, c, k) if c > input.len() => {
                    Out::Req(m, p, q, b, input.len() - (usize::MAX - c), k)
                }
                other => other,
            };
            assert_eq!(run(input, &Limits::default()), expect);
        })*
    };
}

cases! {
    simple_get: b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n" => req("GET", "/a", "b=1", b"", ALL, true);
    partial_head: b"GET / HTTP/1.1\r\nHost: x\r\n" => Out::Partial;
    http10_closes_by_default: b"GET / HTTP/1.0\r\n\r\n" => req("GET", "/", "", b"", ALL, false);
    http10_keep_alive: b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" => req("GET", "/", "", b"", ALL, true);
    http11_close: b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" => req("GET", "/", "", b"", ALL, false);
    leading_empty_lines_ignored: b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n" => req("GET", "/", "", b"", ALL, true);
    absolute_form: b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n" => req("GET", "/p", "q", b"", ALL, true);
    absolute_form_no_path: b"GET HTTP://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n" => req("GET", "/", "", b"", ALL, true);
    options_asterisk: b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" => req("OPTIONS", "*", "", b"", ALL, true);
    asterisk_needs_options: b"GET * HTTP/1.1\r\nHost: x\r\n\r\n" => Out::Err(400);
    content_length_body: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET" => req("POST", "/", "", b"abc", ALL - 3, true);
    content_length_partial: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab" => Out::Partial;
    identical_lengths_ok: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na" => req("POST", "/", "", b"a", ALL, true);
    conflicting_lengths: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab" => Out::Err(400);
    length_list_conflict: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab" => Out::Err(400);
    signed_length: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na" => Out::Err(400);
    hex_length: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x1\r\n\r\na" => Out::Err(400);
    huge_length_413: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" => Out::Err(413);
    overflowing_length: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n" => Out::Err(400);
    te_and_cl: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => Out::Err(400);
    te_unknown_501: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" => Out::Err(501);
    te_gzip_chunked_501: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => Out::Err(501);
    te_chunked_not_last: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => Out::Err(400);
    te_chunked_twice: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => Out::Err(400);
    te_in_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => Out::Err(400);
    te_empty: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n" => Out::Err(400);
    chunked_body: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" => req("POST", "/", "", b"abc", ALL, true);
    chunked_case_insensitive: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n" => req("POST", "/", "", b"", ALL, true);
    missing_host_11: b"GET / HTTP/1.1\r\n\r\n" => Out::Err(400);
    double_host: b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => Out::Err(400);
    host_with_space: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n" => Out::Err(400);
    obs_fold: b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n" => Out::Err(400);
    space_before_colon: b"GET / HTTP/1.1\r\nHost : x\r\n\r\n" => Out::Err(400);
    http2_505: b"GET / HTTP/2.0\r\nHost: x\r\n\r\n" => Out::Err(505);
    http12_505: b"GET / HTTP/1.2\r\nHost: x\r\n\r\n" => Out::Err(505);
    garbage_version_400: b"GET / HTXP/1.1\r\nHost: x\r\n\r\n" => Out::Err(400);
    expect_other_417: b"POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na" => Out::Err(417);
    bad_method_char: b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n" => Out::Err(400);
    relative_target_400: b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n" => Out::Err(400);
    nul_in_header: b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n" => Out::Err(400);
}

#[test]
fn long_target_is_414_even_when_incomplete() {
    let mut input = b"GET /".to_vec();
    input.extend(std::iter::repeat_n(b'a', 9000));
    assert_eq!(run(&input, &Limits::default()), Out::Err(414));
    input.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(run(&input, &Limits::default()), Out::Err(414));
}

#[test]
fn big_head_is_431_even_when_incomplete() {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while input.len() < 40_000 {
        input.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    // Fewer than 100 fields would still be too many bytes.
    let limits = Limits {
        max_headers: 1000,
        ..Limits::default()
    };
    assert_eq!(run(&input, &limits), Out::Err(431));
}

#[test]
fn too_many_fields_is_431() {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..120 {
        input.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    assert_eq!(run(&input, &Limits::default()), Out::Err(431));
}

#[test]
fn body_arrives_in_pieces_and_continue_is_asked_once() {
    let full = b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n";
    let head_end = full.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut d = RequestDecoder::default();
    let mut continues = 0;
    let mut done = None;
    for n in head_end..=full.len() {
        let mut storage = [httparse::EMPTY_HEADER; 16];
        match d
            .decode(&full[..n], &mut storage, &Limits::default())
            .unwrap()
        {
            Decoded::Incomplete { send_continue } => continues += usize::from(send_continue),
            Decoded::Request {
                head,
                body,
                consumed,
            } => {
                assert_eq!(head.path, "/e");
                assert_eq!(body, b"hello");
                done = Some(consumed);
                break;
            }
        }
    }
    assert_eq!(continues, 1);
    assert_eq!(done, Some(head_end + 15));
    assert!(!d.in_progress());
}

#[test]
fn pipelined_requests_decode_in_order() {
    let input = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut d = RequestDecoder::default();
    let mut at = 0;
    let mut paths = Vec::new();
    while at < input.len() {
        let mut storage = [httparse::EMPTY_HEADER; 16];
        match d
            .decode(&input[at..], &mut storage, &Limits::default())
            .unwrap()
        {
            Decoded::Request { head, consumed, .. } => {
                paths.push(head.path.to_string());
                at += consumed;
            }
            Decoded::Incomplete { .. } => panic!("incomplete at {at}"),
        }
    }
    assert_eq!(paths, ["/1", "/2", "/3"]);
}

#[test]
fn chunked_body_over_limit_is_413() {
    let limits = Limits {
        max_body: 4,
        ..Limits::default()
    };
    let input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(run(input, &limits), Out::Err(413));
}
