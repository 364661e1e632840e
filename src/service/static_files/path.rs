//! Turning a request path into a relative path that is safe to open.
//!
//! The request path arrives percent-encoded. It is split on `/` first and
//! each segment decoded on its own, so an encoded slash (`%2F`) can be told
//! apart from a real one and refused. Refused outright (the caller answers
//! `404`, exactly as for a missing file, so nothing about the tree leaks):
//! `..` segments (also as `%2e%2e`), encoded slashes, backslashes (`\` or
//! `%5C`), NUL (`%00`), any other ASCII control character, segments that are
//! not UTF-8 after decoding, and dotfiles (a segment starting with `.`, e.g.
//! `/.env`, `/.git/config`). Empty segments and `.` segments collapse.
//!
//! This is only the first wall: symlinks are left to `openat2` with
//! `RESOLVE_BENEATH` ([`crate::sys::fs::Root`]).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// A cleaned request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clean {
    /// Decoded segments joined with `/`, no leading or trailing slash;
    /// empty for the root.
    pub rel: String,
    /// The request path ended with `/` (asks for a directory).
    pub trailing_slash: bool,
}

impl Clean {
    /// True when the last segment has no extension (`/app/settings`, `/`),
    /// which makes a missing path a candidate for the SPA fallback.
    pub fn last_segment_has_extension(&self) -> bool {
        !self.trailing_slash && self.rel.rsplit('/').next().is_some_and(|s| s.contains('.'))
    }
}

/// Cleans a percent-encoded request path, or `None` when it must be refused.
pub(super) fn clean(raw: &str) -> Option<Clean> {
    let rest = raw.strip_prefix('/')?;
    let mut rel = String::with_capacity(rest.len());
    for segment in rest.split('/') {
        if segment.is_empty() {
            continue;
        }
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        if decoded == "." {
            continue;
        }
        // RFC 8615: `/.well-known/` is the one dot-directory meant to be
        // served (ACME challenges, security.txt), at the top only.
        let well_known = rel.is_empty() && decoded == ".well-known";
        if (decoded.starts_with('.') && !well_known)
            || decoded
                .bytes()
                .any(|b| b == b'/' || b == b'\\' || b.is_ascii_control())
        {
            return None;
        }
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(&decoded);
    }
    Some(Clean {
        rel,
        trailing_slash: raw.ends_with('/'),
    })
}

/// Bytes that must be escaped when a cleaned path goes back into a
/// `Location` header (`/` stays: segments never contain one).
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Re-encodes a cleaned relative path as an absolute URL path.
pub(super) fn encode(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len() + 2);
    out.push('/');
    out.extend(utf8_percent_encode(rel, PATH_ESCAPE));
    out
}
