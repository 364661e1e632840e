//! The properties a WebSocket session and permessage-deflate inflation must
//! keep on any input from the peer, for the fuzz targets `ws_session` and
//! `inflate` (`fuzz/fuzz_targets/`) and their stable replay over the seed
//! corpus (`tests/fuzz_replay.rs`). Each `check_*` panics, naming the
//! broken property, when one fails.
//!
//! What they hold to: everything the session writes parses as unmasked
//! server frames, control frames are short and final, at most one Close is
//! sent and nothing after it, no message larger than the limit is echoed,
//! a session that stopped reading reads nothing more, and a started close
//! ends within the close timeout. Inflation never grows its output past the
//! limit (a deflate bomb costs an error, not memory) and accepts or refuses
//! a message, with the same bytes, however it is split.

use std::time::{Duration, Instant};

use super::apps::EchoApp;
use super::client;
use super::deflate::Inflater;
use super::extension::DeflateParams;
use super::frame::OpCode;
use super::session::Session;
use super::SessionConfig;

fn config(sel: u8) -> SessionConfig {
    let deflate = (sel & 1 == 1).then_some(DeflateParams {
        server_no_context_takeover: sel & 2 == 2,
        client_no_context_takeover: sel & 4 == 4,
        server_max_window_bits: 15,
        send_server_max_window_bits: false,
    });
    SessionConfig {
        max_message: 16 << (sel >> 4),
        max_output: 64 << 10,
        ping_interval: None,
        close_timeout: Duration::from_secs(5),
        deflate,
        protocol: None,
    }
}

/// An echo session fed `data`: the first byte picks the settings, the
/// second the size of each read, the rest is what the peer sent.
pub fn check_session(data: &[u8]) {
    let [sel, step, input @ ..] = data else {
        return;
    };
    let config = config(*sel);
    let max_message = config.max_message;
    let now = Instant::now();
    let mut session = Session::new(config, Box::new(EchoApp), now);
    let mut written = Vec::new();
    let step = usize::from(*step) + 1;
    for piece in input.chunks(step) {
        let reading = session.wants_read();
        let used = session.receive(piece, now);
        if reading {
            assert!(used <= piece.len());
        } else {
            assert_eq!(used, 0, "a session that stopped reading read on");
        }
        written.extend_from_slice(session.output());
        session.consume_output(session.output().len());
    }
    // Time passes: a close that was started must end in its timeout.
    session.on_timer(now + Duration::from_secs(6));
    written.extend_from_slice(session.output());
    session.consume_output(session.output().len());

    let (frames, used) = match client::decode(&written) {
        Ok(decoded) => decoded,
        Err(e) => panic!("the session wrote a frame a client cannot parse: {e}"),
    };
    assert_eq!(used, written.len(), "the session wrote a partial frame");
    let mut closed = false;
    for frame in &frames {
        assert!(!closed, "a frame after the Close");
        assert!(
            !matches!(frame.opcode, OpCode::Reserved(_)),
            "reserved opcode sent"
        );
        if frame.opcode.is_control() {
            assert!(frame.fin, "fragmented control frame sent");
            assert!(frame.payload.len() <= 125, "control frame over 125 bytes");
        }
        if frame.opcode == OpCode::Close {
            closed = true;
            if let Some(code) = frame.close_code() {
                assert!(
                    super::close::is_valid_code(code),
                    "invalid close code {code} sent"
                );
                assert!(
                    std::str::from_utf8(&frame.payload[2..]).is_ok(),
                    "close reason is not UTF-8"
                );
            }
        }
        if !frame.rsv1 && !frame.opcode.is_control() {
            assert!(
                frame.payload.len() <= max_message,
                "echoed a message over the limit"
            );
            if frame.opcode == OpCode::Text {
                assert!(
                    std::str::from_utf8(&frame.payload).is_ok(),
                    "echoed text is not UTF-8"
                );
            }
        }
    }
    let (sent_close, _) = session.close_codes();
    if sent_close.is_some() {
        assert!(closed, "a Close counted but not written");
        assert!(
            session.should_close_transport(),
            "a started close did not end in its timeout"
        );
    }
}

/// Inflation of one message: the first byte picks the limit and context
/// mode, the second where the message is split, the rest is compressed.
pub fn check_inflate(data: &[u8]) {
    let [sel, split, input @ ..] = data else {
        return;
    };
    let max = 1usize << (sel % 20);
    let no_context_takeover = sel & 0x80 != 0;

    let mut whole = Vec::new();
    let whole_result = Inflater::new(no_context_takeover).inflate(input, &mut whole, max);
    assert!(whole.len() <= max, "inflated past the limit");

    let cut = usize::from(*split) * input.len() / 256;
    let mut pieces = Vec::new();
    let mut inflater = Inflater::new(no_context_takeover);
    let pieces_result = inflater
        .push(&input[..cut], &mut pieces, max)
        .and_then(|()| inflater.push(&input[cut..], &mut pieces, max))
        .and_then(|()| inflater.finish(&mut pieces, max));
    assert!(pieces.len() <= max, "inflated past the limit in pieces");
    // A message both too big and corrupt may be called either, depending
    // on whether the corrupt byte arrives in the same inflate step that
    // overflows (found by the fuzzer: fuzz/regressions/inflate): both
    // close the session. Accepting or refusing must not depend on the split.
    assert_eq!(
        whole_result.is_ok(),
        pieces_result.is_ok(),
        "the split at {cut} changed the verdict: {whole_result:?} whole, {pieces_result:?} split"
    );
    if whole_result.is_ok() {
        assert_eq!(whole, pieces, "the split at {cut} changed the message");
    }
}
