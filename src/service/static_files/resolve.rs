//! Finding what a cleaned path names beneath the root: a regular file, a
//! directory's `index.html`, a directory to redirect to, or nothing.
//!
//! Directories requested without a trailing slash are redirected (`301`)
//! to the slashed form, like nginx, so relative links inside their
//! `index.html` resolve. There is no directory listing: a directory without
//! `index.html` is "missing". Anything that is not a regular file (FIFO,
//! socket, device) is missing too. Escapes refused by `openat2` (`EXDEV`,
//! `ELOOP`) are reported apart so no fallback page is served for them.

use std::fs::{File, Metadata};
use std::io;

use super::encoding::Coding;
use super::path::{self, Clean};
use crate::sys::fs::{Kind, Root};

/// What a path names.
#[derive(Debug)]
pub(super) enum Found {
    /// A regular file, already open.
    File {
        /// Its path relative to the root.
        rel: String,
        file: File,
        meta: Metadata,
    },
    /// A directory asked for without a trailing slash: where to redirect.
    Redirect(String),
    /// Nothing servable there (candidate for the SPA fallback).
    Missing,
    /// The path tried to leave the root.
    Refused,
    /// The filesystem failed in a way that is not the client's doing
    /// (`EMFILE`, `EIO`, ...).
    Failed(io::Error),
}

/// Sorts an open error into missing / refused / failed.
fn classify(e: io::Error) -> Found {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ENAMETOOLONG | libc::EINVAL) => {
            Found::Missing
        }
        Some(libc::EXDEV | libc::ELOOP) => Found::Refused,
        _ => Found::Failed(e),
    }
}

fn open_regular(root: &Root, rel: String) -> Found {
    let target = if rel.is_empty() { "." } else { rel.as_str() };
    let file = match root.open(target, Kind::Any) {
        Ok(file) => file,
        Err(e) => return classify(e),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => Found::File { rel, file, meta },
        Ok(meta) if meta.is_dir() => Found::Redirect(format!("{}/", path::encode(&rel))),
        Ok(_) => Found::Missing,
        Err(e) => Found::Failed(e),
    }
}

/// Resolves a cleaned path.
pub(super) fn find(root: &Root, clean: &Clean) -> Found {
    if clean.trailing_slash || clean.rel.is_empty() {
        let rel = if clean.rel.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{}/index.html", clean.rel)
        };
        return match open_regular(root, rel) {
            // `index.html` being a directory is not an index.
            Found::Redirect(_) => Found::Missing,
            other => other,
        };
    }
    open_regular(root, clean.rel.clone())
}

/// Opens the precompressed sibling of `rel` for `coding`, if it is a
/// regular file. Files that are themselves compressed have no siblings.
pub(super) fn sibling(root: &Root, rel: &str, coding: Coding) -> Option<(File, Metadata)> {
    if rel.ends_with(".br") || rel.ends_with(".gz") || rel.ends_with(".zst") {
        return None;
    }
    let mut name = String::with_capacity(rel.len() + 3);
    name.push_str(rel);
    name.push_str(coding.suffix());
    let file = root.open(&name, Kind::Any).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}
