//! The per-worker cache of resolved files, keyed by the raw request path.
//!
//! An [`Entry`] remembers what a path resolved to: one [`Rep`] per
//! representation (the file and its `.br`/`.gz` siblings) with every header
//! value precomputed, and the bytes themselves for files up to
//! [`Limits::small_file`]. A hit younger than [`REVALIDATE_AFTER`] is served
//! without a syscall (bigger files keep their descriptor open for `sendfile`). Older hits
//! are resolved again; representations whose [`FileId`] did not change keep
//! their bytes. The cache is bounded in entries and bytes and evicts the
//! least recently used entry. One instance per worker: no locks.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::encoding::Coding;

/// How long a cached entry is trusted without looking at the disk.
pub(super) const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// Sizes that bound a worker's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Files up to this size are kept in memory; larger ones go out with
    /// `sendfile` (`Body::File`).
    pub small_file: u64,
    /// Most entries (paths) remembered.
    pub max_entries: usize,
    /// Most file bytes held in memory.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            small_file: 64 * 1024,
            max_entries: 1024,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What identifies one version of a file on disk. The change time is part
/// of it because the modification time can be set at will (reproducible
/// builds set it to the epoch): a file rewritten in place with the same
/// size and mtime still gets a new ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
}

/// One representation of a path: the file itself or a precompressed sibling.
#[derive(Debug)]
pub(super) struct Rep {
    pub coding: Coding,

    pub id: FileId,
    pub size: u64,
    /// Modification time truncated to seconds (what `Last-Modified` says);
    /// `None` when the mtime cannot be trusted (at or near the epoch), so
    /// neither `Last-Modified` nor date preconditions are used.
    pub modified: Option<SystemTime>,
    /// Strong entity tag, quotes included.
    pub etag: String,
    /// Empty when `modified` is `None`.
    pub last_modified: String,
    pub content_type: String,
    pub cache_control: &'static str,
    /// The bytes, when small enough to keep.
    pub data: Option<Arc<[u8]>>,
    /// The open file, for representations sent with `sendfile`: kept like
    /// the bytes of small files (until the entry is revalidated), so a hit
    /// costs no open/fstat/close. `sendfile` with an explicit offset never
    /// moves the descriptor's position, so responses can share it.
    pub fd: Option<Arc<std::fs::File>>,
}

/// What one raw path resolved to.
#[derive(Debug)]
pub(super) struct Entry {
    /// The identity first, then any siblings.
    pub reps: Vec<Rep>,
    /// Some sibling exists, so responses say `Vary: Accept-Encoding`.
    pub vary: bool,
    /// When the disk was last consulted for this entry.
    pub checked: Instant,
    /// When the entry last served a request (for eviction).
    pub last_used: Instant,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.reps
            .iter()
            .map(|r| r.data.as_ref().map_or(0, |d| d.len()))
            .sum()
    }

    pub fn rep(&self, coding: Coding) -> Option<&Rep> {
        self.reps.iter().find(|r| r.coding == coding)
    }
}

/// The cache itself.
#[derive(Debug)]
pub(super) struct Cache {
    map: HashMap<Box<str>, Entry>,
    /// Sum of the bytes held by all entries.
    bytes: usize,
    limits: Limits,
}

impl Cache {
    pub fn new(limits: Limits) -> Cache {
        Cache {
            map: HashMap::new(),
            bytes: 0,
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.bytes -= entry.bytes();
        Some(entry)
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Stores an entry, evicting the least recently used ones to make room.
    /// An entry bigger than the whole byte budget is not stored.
    pub fn insert(&mut self, key: &str, entry: Entry) {
        self.remove(key);
        let size = entry.bytes();
        if size > self.limits.max_bytes || self.limits.max_entries == 0 {
            return;
        }
        while self.map.len() >= self.limits.max_entries || self.bytes + size > self.limits.max_bytes
        {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
        self.bytes += size;
        self.map.insert(key.into(), entry);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
