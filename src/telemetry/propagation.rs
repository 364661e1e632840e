//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): parsing the
//! `traceparent` and `tracestate` request headers into a remote parent, and
//! formatting the `traceresponse` answer header (Trace Context Level 2).
//! A malformed header is ignored (the request starts a new trace), as the
//! specification asks; it never fails the request.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// Value of lower-case hex digits; `None` on anything else (upper case
/// included, as the specification requires).
fn hex_value(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |acc, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

/// Parses a `traceparent` value (section 3.2). Returns `None` for anything
/// invalid: wrong lengths, upper-case or non-hex digits, version `ff`, an
/// all-zero trace or parent id, or extra data after a version-00 value.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let v = value.trim_matches(|c| c == ' ' || c == '\t');
    if v.len() < 55 || !v.is_ascii() {
        return None;
    }
    let (version, trace_id, parent_id, flags) = (&v[0..2], &v[3..35], &v[36..52], &v[53..55]);
    if [2, 35, 52].iter().any(|&i| v.as_bytes()[i] != b'-') {
        return None;
    }
    if hex_value(version).is_none() || version == "ff" {
        return None;
    }
    // Version 00 is exactly 55 characters; a later version may append
    // fields after another dash, which we ignore.
    if v.len() > 55 && (version == "00" || v.as_bytes()[55] != b'-') {
        return None;
    }
    let trace_id = hex_value(trace_id).filter(|t| *t != 0)?;
    let span_id = hex_value(parent_id).filter(|s| *s != 0)? as u64;
    let flags = hex_value(flags)? as u8;
    let (trace_id, span_id) = (TraceId::from(trace_id), SpanId::from(span_id));
    // Only the sampled bit is defined for version 00.
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// The remote parent described by the two headers, if `traceparent` is
/// valid. An invalid `tracestate` is dropped, keeping the parent.
pub fn remote_parent(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<SpanContext> {
    let (trace_id, span_id, flags) = parse_traceparent(traceparent?)?;
    let state = tracestate
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// `00-<trace-id>-<span-id>-<flags>` for a span context.
pub fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_specification_example() {
        let (t, s, f) = parse_traceparent(VALID).expect("valid");
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert!(f.is_sampled());
        let (_, _, f) = parse_traceparent(&VALID.replace("-01", "-00")).expect("valid");
        assert!(!f.is_sampled());
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "00",
            // upper case
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // version ff
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // short ids, wrong separators, non-hex
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // version 00 with trailing data
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // future version with trailing data not after a dash
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            // non-ASCII
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
        ] {
            assert!(
                parse_traceparent(bad).is_none(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn accepts_future_versions_with_more_fields() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future";
        assert!(parse_traceparent(v).is_some());
    }

    #[test]
    fn tracestate_is_kept_or_dropped_alone() {
        let sc = remote_parent(Some(VALID), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            .expect("parent");
        assert!(sc.is_remote());
        assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
        let sc = remote_parent(Some(VALID), Some("not a tracestate")).expect("parent");
        assert_eq!(sc.trace_state().header(), "");
        assert!(remote_parent(None, Some("a=b")).is_none());
        assert_eq!(format_traceparent(&sc), VALID);
    }
}
