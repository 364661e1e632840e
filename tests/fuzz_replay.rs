//! The fuzz targets' checks on stable, over the seed corpora kept in the
//! repository (`fuzz/corpus/TARGET`, written by `scripts/fuzz_seeds.py`),
//! each seed under every value of its first selector byte, so the
//! properties the fuzzer holds the parsers to are checked in every
//! `cargo test`, with or without a nightly toolchain; so are the inputs it
//! once found failing (`fuzz/regressions/TARGET`). The engine's corpus is
//! replayed by `tests/engine.rs`.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8]), vary_first: bool) {
    // Inputs the fuzzer once found failing, kept apart from the seeds so
    // they stay even when a corpus is regenerated.
    let fixed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    if let Ok(entries) = std::fs::read_dir(&fixed) {
        for entry in entries {
            check(&std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let mut data = std::fs::read(entry.unwrap().path()).unwrap();
        check(&data);
        if vary_first && !data.is_empty() {
            for first in 0..=255u8 {
                data[0] = first;
                check(&data);
            }
        }
        seeds += 1;
    }
    assert!(seeds >= 10, "{target}: the corpus has its seeds ({seeds})");
}

#[test]
fn head_parser_invariants_hold_on_its_corpus() {
    replay("head", glasshouse::http::invariants::check_head, true);
}

#[test]
fn chunked_decoder_invariants_hold_on_its_corpus() {
    replay("chunked", glasshouse::http::invariants::check_chunked, true);
}

#[test]
fn websocket_session_invariants_hold_on_its_corpus() {
    replay(
        "ws_session",
        glasshouse::ws::invariants::check_session,
        true,
    );
}

#[test]
fn inflate_invariants_hold_on_its_corpus() {
    replay("inflate", glasshouse::ws::invariants::check_inflate, true);
}

#[test]
fn path_cleaner_invariants_hold_on_its_corpus() {
    replay(
        "static_path",
        glasshouse::service::static_files::invariants::check_path,
        false,
    );
}

#[test]
fn ether_interface_invariants_hold_on_its_corpus() {
    replay(
        "ether_frame",
        glasshouse::net::ether::invariants::check,
        true,
    );
}
