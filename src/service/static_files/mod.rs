//! Static files under a root directory, for `GET` and `HEAD`.
//!
//! Owns: turning a request path into a file beneath the root (never outside
//! it), content negotiation between a file, its precompressed
//! `.br`/`.zst`/`.gz` siblings and on-the-fly compression (`compress`),
//! validators and conditional requests, single byte ranges, the
//! single-page-app fallback, the built-in "frontend not built" page, and a
//! per-worker cache of small files. Leaves to others: routing (the router
//! decides which paths reach [`StaticFiles::serve`]), `Content-Length`,
//! `Date` and framing (the protocol layer), and sending `Body::File` with
//! `sendfile` (the reactor).
//!
//! Architecture exception: this is the one application module that uses
//! `sys`, and only [`crate::sys::fs::Root`] (opening files beneath the root
//! with `openat2`), because confinement cannot be had without a syscall.
//! It never sees sockets, the loop, or threads.
//!
//! Behaviour, in the order a request meets it:
//!
//! - Methods other than `GET`/`HEAD` get `405` with `Allow: GET, HEAD`.
//! - `HEAD` gets exactly the `GET` response, body included (`Body::Shared`
//!   or `Body::File`): the protocol layer takes `Content-Length` from it and
//!   drops the body. `Range` is ignored for `HEAD` (RFC 9110 §14.2).
//! - The path is percent-decoded segment by segment and refused with `404`
//!   (never `400`: a refusal looks exactly like a missing file) for `..`,
//!   `%2F`, `\`/`%5C`, `%00` and other controls, invalid UTF-8 and dotfiles;
//!   see the `path` module. The file is then opened with `openat2`
//!   `RESOLVE_BENEATH`, so symlinks inside the root work and ones leading
//!   out are refused (`404`).
//! - A directory without a trailing slash is redirected (`301`, `Location`
//!   keeps the query); with one, its `index.html` is served (no listings).
//! - A missing path whose last segment has no extension, asked with an
//!   `Accept` containing `text/html`, gets the root's `index.html` (`200`):
//!   the single-page-app fallback. Otherwise `404` with the JSON error.
//! - No root directory, or no `index.html` in it: `/` and the SPA fallback
//!   get a built-in page saying how to build the frontend.
//! - Headers: `Content-Type` (from the extension; `charset=utf-8` for text,
//!   JavaScript, JSON, XML), strong `ETag` (`"<size hex>-<mtime ns hex>"`,
//!   plus `.br`/`.zst`/`.gz` for precompressed siblings and `+br`/`+zstd`/
//!   `+gzip` for on-the-fly codings; for an mtime at or near the epoch, as
//!   reproducible builds leave it, `"h-<content SHA-1>"` and no
//!   `Last-Modified`), `Last-Modified`,
//!   `Accept-Ranges: bytes`, `Cache-Control` (`immutable` for the hashed
//!   files under `assets/`, `no-cache` otherwise so browsers revalidate),
//!   `Content-Encoding` and `Vary: Accept-Encoding` when siblings exist.
//! - Coding: the best q-value of `Accept-Encoding` among the siblings and,
//!   for text-like types between the policy's size bounds, brotli, zstd and
//!   gzip made on the fly (a sibling wins a tie). `Vary: Accept-Encoding` on
//!   every answer of such a file (304, 206 and 416 included). A `Range`
//!   is always served from the identity.
//! - Preconditions per RFC 9110 §13.2.2 (`304`, `412`), then `Range`: one
//!   range gives `206`; several give the whole file (`200`); unsatisfiable
//!   gives `416` with `Content-Range: bytes */len`; `If-Range` that does not
//!   match gives the whole file.
//! - Siblings are trusted as they are: a `.br` older than its original is
//!   still served (as nginx's `gzip_static` does); build them together.
//! - Files up to [`Limits::small_file`] (64 KiB) are answered from the
//!   worker's cache, looked at on disk again at most once a second (by the
//!   `now` passed in); bigger ones keep their descriptor open in the cache
//!   for as long and are sent as `Body::File` (sendfile). The root path is looked at once a second too: a missing
//!   root that appears, or a path now naming another directory (a rebuilt
//!   `dist`, a swapped `current -> releases/N` symlink), is picked up.

mod builtin;
mod cache;
mod compress;
mod conditional;
mod encoding;
pub mod invariants;
mod path;
mod range;
mod represent;
mod resolve;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{Body, Request, Response};
use crate::service::rules::Compression;
use crate::sys::fs::{Confinement, Root};
use cache::{Cache, Entry, Rep, REVALIDATE_AFTER};
use compress::Compressed;
use conditional::{Validators, Verdict};
use encoding::Coding;
use range::Ranged;
use resolve::Found;

pub use cache::Limits;

/// The root used when none is configured (`--root` default).
pub const DEFAULT_ROOT: &str = "frontend/dist";

/// How often the root path is looked at again (missing, or replaced).
const ROOT_CHECK: Duration = Duration::from_secs(1);

/// What to do when the root directory does not exist at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootPolicy {
    /// A missing root is a configuration error (an explicit `--root`).
    Required,
    /// A missing root is fine: serve the built-in page at `/` until it
    /// appears (checked at most once a second). Meant for [`DEFAULT_ROOT`]
    /// only, so a fresh checkout runs before the frontend is built.
    MayBeMissing,
}

/// The static-file service of one worker.
#[derive(Debug)]
pub struct StaticFiles {
    /// The root as configured, to retry opening it while it is missing.
    root_path: PathBuf,
    /// The open root, shared by the workers' copies; `None` while it does
    /// not exist.
    root: Option<Arc<Root>>,
    /// Earliest time to look at the root path again.
    next_root_check: Option<Instant>,
    confinement: Confinement,
    cache: Cache,
    /// Results of on-the-fly compression, this worker's own.
    compressed: Compressed,
}

impl StaticFiles {
    /// Opens `root` once for this worker. The error names the root and says
    /// why (missing under [`RootPolicy::Required`], not a directory,
    /// unreadable).
    pub fn new(root: &Path, policy: RootPolicy) -> Result<StaticFiles, String> {
        StaticFiles::with_limits(root, policy, Limits::default())
    }

    /// [`StaticFiles::new`] refusing every symlink beneath the root
    /// (`--no-symlinks`: `openat2` `RESOLVE_NO_SYMLINKS`) when
    /// `follow_symlinks` is false.
    pub fn with_symlinks(
        root: &Path,
        policy: RootPolicy,
        follow_symlinks: bool,
    ) -> Result<StaticFiles, String> {
        let confinement = if follow_symlinks {
            Confinement::Auto
        } else {
            Confinement::NoSymlinks
        };
        StaticFiles::open(root, policy, Limits::default(), confinement)
    }

    /// [`StaticFiles::new`] with explicit cache sizes.
    pub fn with_limits(
        root: &Path,
        policy: RootPolicy,
        limits: Limits,
    ) -> Result<StaticFiles, String> {
        StaticFiles::open(root, policy, limits, Confinement::Auto)
    }

    fn open(
        root: &Path,
        policy: RootPolicy,
        limits: Limits,
        confinement: Confinement,
    ) -> Result<StaticFiles, String> {
        let opened = match Root::new(root, confinement) {
            Ok(opened) => Some(Arc::new(opened)),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && policy == RootPolicy::MayBeMissing =>
            {
                None
            }
            Err(e) => return Err(format!("static root {}: {e}", root.display())),
        };
        Ok(StaticFiles {
            root_path: root.to_path_buf(),
            root: opened,
            next_root_check: None,
            confinement,
            cache: Cache::new(limits),
            compressed: Compressed::default(),
        })
    }

    /// A copy for another worker: the same root directory (one descriptor
    /// shared by all), an empty cache of its own. Infallible, so a
    /// `HandlerFactory` can call it: open the root once at start with
    /// [`StaticFiles::new`] (exit 2 on its error), then give each worker
    /// `template.for_worker()`.
    pub fn for_worker(&self) -> StaticFiles {
        StaticFiles {
            root_path: self.root_path.clone(),
            root: self.root.clone(),
            next_root_check: self.next_root_check,
            confinement: self.confinement,
            cache: Cache::new(self.cache.limits()),
            compressed: Compressed::default(),
        }
    }

    /// True when the root directory exists (else only the built-in page is
    /// served).
    pub fn has_root(&self) -> bool {
        self.root.is_some()
    }

    /// Answers a request for a path under the root. `now` is the loop's
    /// clock ([`crate::app::Ctx::now`]); cached entries are revalidated
    /// against the disk at most once a second by it.
    pub fn serve(&mut self, req: &Request<'_>, now: Instant) -> Response {
        static UNCOUNTED: AtomicU64 = AtomicU64::new(0);
        self.serve_with(req, now, &Compression::off(), &UNCOUNTED)
    }

    /// [`StaticFiles::serve`] with on-the-fly compression as `compression`
    /// says (the router passes the policy in force).
    pub fn serve_with(
        &mut self,
        req: &Request<'_>,
        now: Instant,
        compression: &Compression,
        saved: &AtomicU64,
    ) -> Response {
        let mut fly = Fly { compression, saved };
        if req.method != "GET" && req.method != "HEAD" {
            return Response::error(405, "method not allowed").header("Allow", "GET, HEAD");
        }
        self.refresh_root(now);
        if self.root.is_none() {
            return match path::clean(req.path) {
                Some(clean) if clean.rel.is_empty() || spa_eligible(req, &clean) => not_built(),
                _ => not_found(),
            };
        }
        self.serve_key(req.path, req, now, &mut fly)
    }

    /// Answers `req` with what the raw path `key` names: from the cache when
    /// the entry is fresh (no syscalls unless the file is too big to keep),
    /// else from the disk.
    fn serve_key(
        &mut self,
        key: &str,
        req: &Request<'_>,
        now: Instant,
        fly: &mut Fly<'_>,
    ) -> Response {
        if let (Some(_), Some(entry)) = (&self.root, self.cache.get_mut(key)) {
            if now.saturating_duration_since(entry.checked) < REVALIDATE_AFTER {
                entry.last_used = now;
                if let Some(response) = respond(entry, req, fly, &mut self.compressed) {
                    return response;
                }
            }
        }
        self.serve_path(key, req, now, fly)
    }

    /// At most once a second: open the root if it was missing, or again
    /// if its path now names another directory (the frontend was rebuilt
    /// into a fresh `dist`, or a `current -> releases/N` symlink was
    /// swapped). If the path vanished, the old directory stays in use.
    fn refresh_root(&mut self, now: Instant) {
        if self.next_root_check.is_some_and(|at| now < at) {
            return;
        }
        self.next_root_check = Some(now + ROOT_CHECK);
        if self.root.as_ref().is_some_and(|r| r.is_at(&self.root_path)) {
            return;
        }
        if let Ok(root) = Root::new(&self.root_path, self.confinement) {
            self.root = Some(Arc::new(root));
            self.cache.clear();
            self.compressed.clear();
        }
    }

    /// The slow path: resolve `key` on disk, refresh its cache entry, answer.
    fn serve_path(
        &mut self,
        key: &str,
        req: &Request<'_>,
        now: Instant,
        fly: &mut Fly<'_>,
    ) -> Response {
        let Some(root) = &self.root else {
            return not_built();
        };
        let Some(clean) = path::clean(key) else {
            return not_found();
        };
        match resolve::find(root, &clean) {
            Found::File { rel, file, meta } => {
                let old = self.cache.remove(key);
                let entry =
                    represent::build_entry(root, rel, file, meta, old, self.cache.limits(), now);
                let response = respond(&entry, req, fly, &mut self.compressed)
                    .unwrap_or_else(|| Response::error(500, "file changed while serving"));
                self.cache.insert(key, entry);
                response
            }
            Found::Redirect(mut location) => {
                if !req.query.is_empty() {
                    location.push('?');
                    location.push_str(req.query);
                }
                Response::new(301, Body::Empty).header("Location", location)
            }
            Found::Missing => {
                self.cache.remove(key);
                if clean.rel.is_empty() {
                    not_built()
                } else if spa_eligible(req, &clean) {
                    self.serve_key("/", req, now, fly)
                } else {
                    not_found()
                }
            }
            Found::Refused => not_found(),
            Found::Failed(e) => {
                tracing::warn!(error = %e, path = %clean.rel, "static file could not be opened");
                Response::error(500, "file could not be read")
            }
        }
    }
}

fn not_found() -> Response {
    Response::error(404, "not found")
}

fn not_built() -> Response {
    Response::new(200, Body::Static(builtin::NOT_BUILT))
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
}

/// The SPA fallback applies to extensionless paths asked for as HTML.
fn spa_eligible(req: &Request<'_>, clean: &path::Clean) -> bool {
    !clean.last_segment_has_extension()
        && req.header("Accept").is_some_and(|accept| {
            accept
                .windows(b"text/html".len())
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        })
}

/// What a request may get compressed with, and where the saving is counted.
struct Fly<'a> {
    compression: &'a Compression,
    /// `glasshouse_compression_saved_bytes_total`.
    saved: &'a AtomicU64,
}

fn coding_of(name: &str) -> Option<Coding> {
    match name {
        "br" => Some(Coding::Brotli),
        "zstd" => Some(Coding::Zstd),
        "gzip" => Some(Coding::Gzip),
        _ => None,
    }
}

/// The identity's bytes: kept in memory, or read whole from its descriptor.
fn identity_bytes(rep: &Rep) -> Option<std::borrow::Cow<'_, [u8]>> {
    if let Some(d) = &rep.data {
        return Some(std::borrow::Cow::Borrowed(d));
    }
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; usize::try_from(rep.size).ok()?];
    rep.fd.as_ref()?.read_exact_at(&mut buf, 0).ok()?;
    Some(std::borrow::Cow::Owned(buf))
}

/// The strong ETag of an on-the-fly coding of `identity`: its own tag with
/// the coding appended, so every representation has a tag of its own.
fn fly_etag(identity: &str, coding: Coding) -> String {
    let inner = identity.trim_end_matches('"');
    format!("{inner}+{}\"", coding.header().unwrap_or(""))
}

/// Answers from an entry: picks the representation (a precompressed
/// sibling, an on-the-fly coding, or the identity; `Range` always from the
/// identity), evaluates preconditions against it, then sends it. `None`
/// when the file changed under us.
fn respond(
    entry: &Entry,
    req: &Request<'_>,
    fly: &mut Fly<'_>,
    compressed: &mut Compressed,
) -> Option<Response> {
    let identity = entry.reps.first()?;
    let c = fly.compression;
    let on_the_fly = c.enabled
        && identity.size >= c.min_size
        && identity.size <= c.max_size
        && compress::compressible(&identity.content_type);
    let vary = entry.vary || on_the_fly;
    let ranged = req.header("Range").is_some() && !req.is_head();
    let mut offers: Vec<Coding> = Vec::new();
    if !ranged {
        for coding in [Coding::Brotli, Coding::Zstd, Coding::Gzip] {
            if entry.rep(coding).is_some() {
                offers.push(coding);
            }
        }
        if on_the_fly {
            for coding in c.codings.iter().filter_map(|n| coding_of(n)) {
                if !offers.contains(&coding) {
                    offers.push(coding);
                }
            }
        }
    }
    let coding = encoding::choose_among(req.header("Accept-Encoding"), &offers);
    if coding != Coding::Identity && entry.rep(coding).is_none() {
        if let Some(response) = respond_compressed(identity, coding, req, fly, compressed) {
            return Some(response);
        }
        // Not smaller compressed: the identity, still varying.
        return respond_rep(identity, req, vary);
    }
    let rep = entry.rep(coding).unwrap_or(identity);
    respond_rep(rep, req, vary)
}

/// Pushes the validators and caching headers every answer of `rep` carries.
fn validator_headers(headers: &mut Vec<(&'static str, String)>, rep: &Rep, etag: &str) {
    headers.push(("ETag", etag.to_owned()));
    if !rep.last_modified.is_empty() {
        headers.push(("Last-Modified", rep.last_modified.clone()));
    }
    headers.push(("Cache-Control", rep.cache_control.to_owned()));
}

fn vary_header(headers: &mut Vec<(&'static str, String)>, vary: bool) {
    if vary {
        headers.push(("Vary", "Accept-Encoding".to_owned()));
    }
}

/// An on-the-fly coding of `identity` (never ranged); `None` when
/// compressing does not make it smaller.
fn respond_compressed(
    identity: &Rep,
    coding: Coding,
    req: &Request<'_>,
    fly: &mut Fly<'_>,
    compressed: &mut Compressed,
) -> Option<Response> {
    let etag = fly_etag(&identity.etag, coding);
    let validators = Validators {
        etag: &etag,
        modified: identity.modified,
    };
    match conditional::evaluate(req, &validators) {
        Verdict::Proceed => {}
        Verdict::Failed => return Some(Response::error(412, "precondition failed")),
        Verdict::NotModified => {
            let mut response = Response::new(304, Body::Empty);
            validator_headers(&mut response.headers, identity, &etag);
            vary_header(&mut response.headers, true);
            return Some(response);
        }
    }
    let bytes = match compressed.get(identity.id, coding) {
        Some(result) => result.clone()?,
        None => {
            let source = identity_bytes(identity)?;
            let result: compress::Result = compress::compress(coding, &source)
                .filter(|packed| packed.len() < source.len())
                .map(Into::into);
            compressed.insert(identity.id, coding, result.clone());
            result?
        }
    };
    fly.saved.fetch_add(
        identity.size.saturating_sub(bytes.len() as u64),
        Ordering::Relaxed,
    );
    let mut response = Response::new(200, Body::Shared(bytes));
    let headers = &mut response.headers;
    headers.reserve(8);
    headers.push(("Content-Type", identity.content_type.clone()));
    validator_headers(headers, identity, &etag);
    headers.push(("Accept-Ranges", "bytes".to_owned()));
    headers.push((
        "Content-Encoding",
        coding.header().unwrap_or_default().to_owned(),
    ));
    vary_header(headers, true);
    Some(response)
}

/// Answers with one stored representation (the identity or a sibling).
fn respond_rep(rep: &Rep, req: &Request<'_>, vary: bool) -> Option<Response> {
    let validators = Validators {
        etag: &rep.etag,
        modified: rep.modified,
    };
    match conditional::evaluate(req, &validators) {
        Verdict::Proceed => {}
        Verdict::Failed => return Some(Response::error(412, "precondition failed")),
        Verdict::NotModified => {
            let mut response = Response::new(304, Body::Empty);
            response.headers.reserve(4);
            validator_headers(&mut response.headers, rep, &rep.etag);
            vary_header(&mut response.headers, vary);
            return Some(response);
        }
    }
    let ranged = match req.header("Range") {
        Some(value) if !req.is_head() && conditional::if_range_allows(req, &validators) => {
            range::evaluate(value, rep.size)
        }
        _ => Ranged::Full,
    };
    let (status, start, len) = match ranged {
        Ranged::Full => (200, 0, rep.size),
        Ranged::Partial { start, len } => (206, start, len),
        Ranged::Unsatisfiable => {
            let mut response = Response::error(416, "range not satisfiable")
                .header("Content-Range", format!("bytes */{}", rep.size));
            vary_header(&mut response.headers, vary);
            return Some(response);
        }
    };
    let body = match &rep.data {
        Some(data) if status == 200 => Body::Shared(Arc::clone(data)),
        Some(data) => {
            let from = usize::try_from(start).ok()?;
            let to = usize::try_from(start + len).ok()?;
            Body::Bytes(data.get(from..to)?.to_vec())
        }
        None => Body::File {
            file: Arc::clone(rep.fd.as_ref()?),
            offset: start,
            len,
        },
    };
    let mut response = Response::new(status, body);
    let headers = &mut response.headers;
    headers.reserve(8);
    headers.push(("Content-Type", rep.content_type.clone()));
    validator_headers(headers, rep, &rep.etag);
    headers.push(("Accept-Ranges", "bytes".to_owned()));
    if let Some(encoding) = rep.coding.header() {
        headers.push(("Content-Encoding", encoding.to_owned()));
    }
    vary_header(headers, vary);
    if status == 206 {
        headers.push((
            "Content-Range",
            format!("bytes {start}-{}/{}", start + len - 1, rep.size),
        ));
    }
    Some(response)
}
