//! Conditional requests (RFC 9110 §13): validators and their precedence.
//!
//! Evaluation order is §13.2.2: `If-Match`, else `If-Unmodified-Since`
//! (either failing gives `412`); then `If-None-Match`, else
//! `If-Modified-Since` (a match gives `304` for `GET`/`HEAD`); `If-Range`
//! is checked later, only when a `Range` is present ([`if_range_allows`]).
//! `If-None-Match` uses the weak comparison and `*`; `If-Match` and
//! `If-Range` use the strong one. Dates compare at one-second resolution,
//! the resolution of `Last-Modified`.

use std::time::SystemTime;

use crate::app::Request;

/// What the preconditions say about a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Go on and send the representation.
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// A representation's validators.
pub(super) struct Validators<'a> {
    /// The strong entity tag, quotes included.
    pub etag: &'a str,
    /// Modification time truncated to whole seconds; `None` when it cannot
    /// be trusted, and then date preconditions are ignored (RFC 9110
    /// §13.1.3: without `Last-Modified` there is nothing to compare).
    pub modified: Option<SystemTime>,
}

/// Entity tags of a list header, as `(weak, "opaque")`; stops at the first
/// malformed member (what follows cannot be trusted).
fn tags(list: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        if !rest.starts_with('"') {
            rest = "";
            return None;
        }
        let end = rest[1..].find('"')? + 2;
        let tag = &rest[..end];
        rest = &rest[end..];
        Some((weak, tag))
    })
}

/// Weak comparison against a list (`If-None-Match`): `W/"x"` matches `"x"`.
pub(super) fn matches_weak(list: &str, etag: &str) -> bool {
    list.trim() == "*" || tags(list).any(|(_, tag)| tag == etag)
}

/// Strong comparison against a list (`If-Match`): weak tags never match.
pub(super) fn matches_strong(list: &str, etag: &str) -> bool {
    list.trim() == "*" || tags(list).any(|(weak, tag)| !weak && tag == etag)
}

fn date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// Evaluates the preconditions of a `GET` or `HEAD`.
pub(super) fn evaluate(req: &Request<'_>, v: &Validators<'_>) -> Verdict {
    if let Some(list) = req.header_str("If-Match") {
        if !matches_strong(list, v.etag) {
            return Verdict::Failed;
        }
    } else if let (Some(since), Some(modified)) = (
        req.header_str("If-Unmodified-Since").and_then(date),
        v.modified,
    ) {
        if modified > since {
            return Verdict::Failed;
        }
    }
    if let Some(list) = req.header("If-None-Match") {
        // A non-UTF-8 list cannot hold our (ASCII) tag: it does not match.
        let list = std::str::from_utf8(list).unwrap_or("");
        if matches_weak(list, v.etag) {
            return Verdict::NotModified;
        }
    } else if let (Some(since), Some(modified)) = (
        req.header_str("If-Modified-Since").and_then(date),
        v.modified,
    ) {
        if modified <= since {
            return Verdict::NotModified;
        }
    }
    Verdict::Proceed
}

/// Whether a `Range` may be honoured given `If-Range` (§13.1.5): an entity
/// tag must match strongly, a date must equal `Last-Modified` exactly.
/// Anything else means "send the whole representation".
pub(super) fn if_range_allows(req: &Request<'_>, v: &Validators<'_>) -> bool {
    let Some(value) = req.header("If-Range") else {
        return true;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return !value.starts_with("W/") && value == v.etag;
    }
    v.modified.is_some() && date(value) == v.modified
}
