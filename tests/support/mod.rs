//! Shared support for the integration tests, one of each: the real
//! `glasshouse` binary on `127.0.0.1:0` ([`Server`], [`Builder`],
//! [`run_to_exit`]), a raw-socket HTTP/1.1 client with a small response
//! parser ([`Client`], [`send_raw`], [`parse_response`]), WebSocket frames
//! through the library's client codec ([`ws_open`], [`ws_send`],
//! [`ws_next`]), headless Chromium ([`chromium`], [`dump_dom`]), and
//! Prometheus text lookups ([`prom_value`]), test certificates ([`Pki`])
//! and a client connection that is plain TCP or TLS ([`Wire`]): with
//! `GLASSHOUSE_TEST_TLS=1` the harness serves HTTPS and the clients speak
//! TLS, so a suite runs over TLS unchanged. Every wait is bounded; none
//! measures time.
//!
//! `support/otlp_receiver.rs` (an OTLP/HTTP collector) is included on its
//! own, with `#[path]`, by the tests that need it.

#![allow(dead_code)] // each test crate uses its own subset

mod browser;
mod http;
mod netns;
mod pki;
mod server;
mod wire;
mod ws;

use std::time::Duration;

// One flat namespace (`support::Server`, `support::send_raw`, ...); a
// test crate that uses nothing from one file would warn without the allow.
#[allow(unused_imports)]
pub use browser::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use netns::*;
#[allow(unused_imports)]
pub use pki::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use wire::*;
#[allow(unused_imports)]
pub use ws::*;

/// How long a test waits for anything that should happen "now".
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long a test waits for a preforked pool to be replaced after a
/// reload: every worker process drains and its successor forks, 256 of
/// them in the suites, on a CI machine that runs other suites beside.
pub const POOL_PATIENCE: Duration = Duration::from_secs(60);

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of a Prometheus sample line whose name and labels start as
/// `prefix` (e.g. `glasshouse_telemetry_dropped_total{signal="traces"}`);
/// the sum when several lines match.
pub fn prom_value(text: &str, prefix: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let matches = line.starts_with(prefix)
            && line[prefix.len()..]
                .chars()
                .next()
                .is_some_and(|c| c == ' ' || c == '{' || c == ',' || prefix.ends_with('}'));
        if matches {
            let v: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}
