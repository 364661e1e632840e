//! The properties the request-path cleaner must keep on any raw target, for
//! the fuzz target `static_path` (`fuzz/fuzz_targets/`) and its stable
//! replay (`tests/fuzz_replay.rs`). [`check_path`] panics, naming the
//! broken property, when one fails.
//!
//! What it holds to: a cleaned path joined to a root never names anything
//! outside it (no parent, root or prefix component), carries no dotfile
//! (a top-level `.well-known` excepted), backslash or control character,
//! and cleaning the re-encoded form of a
//! cleaned path gives it back unchanged (what a redirect's `Location`
//! says is what the next request opens).

use std::path::{Component, Path};

use super::path::{clean, encode};

/// Cleans `data` as a request path (when it is UTF-8) and checks the result.
pub fn check_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Some(cleaned) = clean(raw) else {
        return;
    };
    let rel = &cleaned.rel;
    assert!(
        !rel.starts_with('/') && !rel.ends_with('/'),
        "slash at an end of {rel:?}"
    );
    for (i, segment) in rel.split('/').filter(|_| !rel.is_empty()).enumerate() {
        assert!(!segment.is_empty(), "empty segment in {rel:?}");
        // RFC 8615's `/.well-known/` is the one dot-directory allowed, and
        // only at the top.
        let well_known = i == 0 && segment == ".well-known";
        assert!(
            !segment.starts_with('.') || well_known,
            "dot segment or dotfile in {rel:?}"
        );
        assert!(
            !segment.bytes().any(|b| b == b'\\' || b.is_ascii_control()),
            "backslash or control character in {rel:?}"
        );
    }
    let root = Path::new("/srv/root");
    let joined = root.join(rel);
    assert!(joined.starts_with(root), "{rel:?} left the root");
    for component in joined.strip_prefix(root).unwrap().components() {
        assert!(
            matches!(component, Component::Normal(_)),
            "{rel:?} has a {component:?} component"
        );
    }
    let again = clean(&encode(rel)).expect("a re-encoded clean path is refused");
    assert_eq!(&again.rel, rel, "re-encoding changed the path");
}
