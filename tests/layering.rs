//! Keeps the architecture invariants of ARCHITECTURE.md true by scanning the
//! source tree: `unsafe` only under `src/sys/`, no `sys`/`reactor` imports in
//! the application layers, the connection engine between them (it sees no
//! descriptor; the transport reads no header; the protocols and the
//! application do not know the engine), the OpenTelemetry SDK only under
//! `src/telemetry/`.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 10,
        "expected the source tree under {}",
        root.display()
    );
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root.parent().unwrap())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Code lines only: comments and doc comments may mention anything.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
}

#[test]
fn unsafe_lives_only_in_sys() {
    for (path, text) in sources() {
        if path.starts_with("src/sys/") {
            continue;
        }
        for line in code_lines(&text) {
            assert!(
                !(line.contains("unsafe {")
                    || line.contains("unsafe fn")
                    || line.contains("unsafe impl")),
                "{path}: unsafe outside src/sys: {line}"
            );
        }
    }
}

#[test]
fn every_unsafe_block_has_a_safety_comment() {
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("unsafe {") && !line.trim_start().starts_with("//") {
                let window = &lines[i.saturating_sub(3)..=i];
                assert!(
                    window.iter().any(|l| l.contains("SAFETY:")),
                    "{path}:{}: unsafe block without SAFETY comment",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn application_layers_do_not_see_descriptors_or_loops() {
    for (path, text) in sources() {
        let upper = ["src/app/", "src/service/", "src/http/", "src/ws/"];
        if !upper.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        for line in code_lines(&text) {
            // Static files resolve paths through openat2 (sys::fs): the one
            // kernel service the application may use, documented in ARCHITECTURE.md.
            if path.starts_with("src/service/static_files/") && line.contains("crate::sys::fs") {
                continue;
            }
            for banned in [
                "crate::sys",
                "crate::reactor",
                "glasshouse::sys",
                "glasshouse::reactor",
            ] {
                assert!(!line.contains(banned), "{path} uses {banned}: {line}");
            }
        }
    }
}

#[test]
fn only_telemetry_touches_the_otel_sdk() {
    for (path, text) in sources() {
        if path.starts_with("src/telemetry/") {
            continue;
        }
        for line in code_lines(&text) {
            for banned in ["opentelemetry", "tracing_opentelemetry"] {
                assert!(!line.contains(banned), "{path} uses {banned}: {line}");
            }
        }
    }
}

#[test]
fn every_module_opens_with_a_doc_paragraph() {
    for (path, text) in sources() {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.starts_with("//!"),
            "{path} does not open with a //! paragraph"
        );
    }
}

/// Fails when a file under one of `dirs` has a code line containing one of
/// `banned`.
fn forbid(dirs: &[&str], banned: &[&str], why: &str) {
    let mut checked = 0;
    for (path, text) in sources() {
        if !dirs.iter().any(|d| path.starts_with(d)) {
            continue;
        }
        checked += 1;
        for line in code_lines(&text) {
            for b in banned {
                assert!(!line.contains(b), "{path} uses {b} ({why}): {line}");
            }
        }
    }
    assert!(checked > 0, "no files under {dirs:?}");
}

#[test]
fn the_engine_sees_no_descriptor_and_no_transport() {
    forbid(
        &["src/engine/"],
        &["crate::sys", "crate::reactor", "libc::", " nix::"],
        "the engine is sans-I/O",
    );
}

#[test]
fn the_transport_leaves_http_to_the_engine() {
    forbid(
        &["src/reactor/", "src/models/"],
        &[
            "httparse",
            "crate::http::head",
            "crate::http::decoder",
            "crate::http::encode",
            "RequestDecoder",
            ".header(",
            ".header_str(",
            "crate::ws::",
            "crate::app::Request",
            "crate::app::Response",
        ],
        "a transport only moves bytes",
    );
}

#[test]
fn protocols_and_application_do_not_know_the_engine() {
    forbid(
        &["src/http/", "src/ws/", "src/app/", "src/service/"],
        &["crate::engine", "glasshouse::engine"],
        "the engine sits above the protocols and drives the application",
    );
    forbid(
        &["src/http/"],
        &["crate::app", "crate::ws"],
        "HTTP knows nothing of the application",
    );
    forbid(
        &["src/ws/"],
        &["crate::app"],
        "the WebSocket handshake is the engine's upgrade step",
    );
}
