//! The `Range` header (RFC 9110 §14.2) for one representation length.
//!
//! Only a single `bytes` range is honoured: `a-b`, `a-` and `-n`. A list of
//! several ranges is answered with the whole representation (`200`) rather
//! than `multipart/byteranges`, which the RFC allows (§14.2: a server may
//! ignore `Range`). A header that does not parse, or names another unit, is
//! ignored the same way. A syntactically valid range starting at or past the
//! end (or `-0`, or any range of an empty file) is unsatisfiable: `416`.

/// What to send for a `Range`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ranged {
    /// No usable range: the whole representation, `200`.
    Full,
    /// `206` with `Content-Range: bytes start-(start+len-1)/total`.
    Partial { start: u64, len: u64 },
    /// `416` with `Content-Range: bytes */total`.
    Unsatisfiable,
}

fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Evaluates a `Range` header value against a representation of `total` bytes.
pub(super) fn evaluate(value: &[u8], total: u64) -> Ranged {
    let Ok(value) = std::str::from_utf8(value) else {
        return Ranged::Full;
    };
    let Some((unit, set)) = value.trim().split_once('=') else {
        return Ranged::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Ranged::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = number(last) else {
            return Ranged::Full;
        };
        if n == 0 || total == 0 {
            return Ranged::Unsatisfiable;
        }
        let len = n.min(total);
        return Ranged::Partial {
            start: total - len,
            len,
        };
    }
    let Some(start) = number(first) else {
        return Ranged::Full;
    };
    let end = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(end) if end >= start => Some(end),
            _ => return Ranged::Full,
        }
    };
    if start >= total {
        return Ranged::Unsatisfiable;
    }
    let end = end.map_or(total - 1, |end| end.min(total - 1));
    Ranged::Partial {
        start,
        len: end - start + 1,
    }
}
