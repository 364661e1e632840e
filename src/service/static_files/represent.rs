//! What a resolved file becomes in the cache: one [`Rep`] per
//! representation (the file and its precompressed siblings) with the bytes
//! of small ones and every header value computed once.
//!
//! Header policy lives here: `Content-Type` from the extension (with
//! `charset=utf-8` for text, JavaScript, JSON and XML), the strong `ETag`
//! `"<size hex>-<mtime ns hex>"` (plus `.br`/`.zst`/`.gz` so representations
//! never share one) or, when the mtime is at or near the epoch (reproducible
//! builds), `"h-<content SHA-1, 128 bits>"` computed once per file version
//! (device, inode, size, mtime and ctime), `Last-Modified` (none for such
//! files), and `Cache-Control`: `immutable` for the
//! content-hashed files under `assets/`, `no-cache` (always revalidate,
//! cheap with the validators) for everything else.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::cache::{Entry, FileId, Limits, Rep};
use super::encoding::Coding;
use super::resolve;
use crate::sys::fs::Root;

fn content_type(rel: &str) -> String {
    let mime = mime_guess::from_path(rel)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let textual = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml");
    if textual {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn cache_control(rel: &str) -> &'static str {
    if rel.starts_with("assets/") && !rel.ends_with(".html") {
        // Vite and friends put content-hashed names there.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Reads exactly `size` bytes, or gives up (the file changed under us).
fn read_whole(file: &mut File, size: u64) -> Option<Arc<[u8]>> {
    let mut data = Vec::with_capacity(usize::try_from(size).ok()?);
    file.take(size + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 == size).then(|| data.into())
}

/// Modification times before this (1980-01-02, past the zip epoch) are
/// taken for a reproducible build's placeholder (Nix sets 1, others 0 or
/// the zip epoch), not for when the content changed.
const TRUSTED_MTIME: i64 = 315_619_200;

/// The content hash ETag of `data`: `"h-<first 16 bytes of SHA-1>"`.
fn content_tag(data: &[u8], coding: Coding) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(data);
    let mut tag = String::with_capacity(40);
    tag.push_str("\"h-");
    for b in &digest[..16] {
        tag.push_str(&format!("{b:02x}"));
    }
    tag.push_str(coding.suffix());
    tag.push('"');
    tag
}

/// Hashes a file's content by reading it through (for files too big to
/// keep in memory); `None` when it cannot be read whole.
fn hash_file(file: &File, size: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut data = vec![0u8; usize::try_from(size).ok()?];
    file.read_exact_at(&mut data, 0).ok()?;
    Some(data)
}

fn make_rep(
    coding: Coding,
    meta: &Metadata,
    content_type: &str,
    cache_control: &'static str,
    data: Option<Arc<[u8]>>,
    fd: Option<Arc<File>>,
    old_tag: Option<String>,
) -> Rep {
    let id = FileId::of(meta);
    let nanos = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    let trusted = meta.mtime() >= TRUSTED_MTIME;
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    let modified = trusted.then(|| UNIX_EPOCH + Duration::from_secs(secs));
    let etag = if trusted {
        format!(
            "\"{:x}-{:x}{}\"",
            meta.size(),
            nanos.max(0),
            coding.suffix()
        )
    } else if let Some(tag) = old_tag {
        tag
    } else {
        match (&data, &fd) {
            (Some(d), _) => content_tag(d, coding),
            (None, Some(f)) => match hash_file(f, meta.size()) {
                Some(d) => content_tag(&d, coding),
                // Unreadable now: an inode-based tag that a change of ctime
                // (any rewrite) still changes.
                None => format!(
                    "\"i-{:x}-{:x}-{:x}{}\"",
                    meta.ino(),
                    meta.size(),
                    meta.ctime_nsec() ^ (meta.ctime() << 30),
                    coding.suffix()
                ),
            },
            (None, None) => format!("\"{:x}{}\"", meta.size(), coding.suffix()),
        }
    };
    Rep {
        coding,
        id,
        size: meta.size(),
        modified,
        etag,
        last_modified: modified.map(httpdate::fmt_http_date).unwrap_or_default(),
        content_type: content_type.to_owned(),
        cache_control,
        data,
        fd,
    }
}

/// Builds the entry for a resolved file and its siblings. Bytes of small
/// representations are read (or taken from `old` when the file did not
/// change); the others keep their open file for `sendfile`.
pub(super) fn build_entry(
    root: &Root,
    rel: String,
    file: File,
    meta: Metadata,
    old: Option<Entry>,
    limits: Limits,
    now: Instant,
) -> Entry {
    let content_type = content_type(&rel);
    let cache_control = cache_control(&rel);
    let mut found = Vec::with_capacity(3);
    for coding in [Coding::Brotli, Coding::Zstd, Coding::Gzip] {
        if let Some((file, meta)) = resolve::sibling(root, &rel, coding) {
            found.push((coding, format!("{rel}{}", coding.suffix()), file, meta));
        }
    }
    found.insert(0, (Coding::Identity, rel, file, meta));
    let vary = found.len() > 1;
    let mut reps = Vec::with_capacity(found.len());
    for (coding, _rel, mut file, meta) in found {
        let same = old
            .as_ref()
            .and_then(|o| o.rep(coding))
            .filter(|r| r.id == FileId::of(&meta));
        let kept = same.and_then(|r| r.data.clone());
        // A content hash is computed once per version of the file.
        let old_tag = same.map(|r| r.etag.clone());
        let data = kept.or_else(|| {
            (meta.size() <= limits.small_file)
                .then(|| read_whole(&mut file, meta.size()))
                .flatten()
        });
        let fd = data.is_none().then(|| Arc::new(file));
        reps.push(make_rep(
            coding,
            &meta,
            &content_type,
            cache_control,
            data,
            fd,
            old_tag,
        ));
    }
    Entry {
        reps,
        vary,
        checked: now,
        last_used: now,
    }
}
