//! Opening files beneath a root directory without ever leaving it.
//!
//! [`Root`] holds a directory opened once (`O_PATH | O_DIRECTORY`) and opens
//! paths relative to it with `openat2(2)` and `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS`: relative symlinks that stay inside the root are
//! followed; `..` climbing above it, absolute paths and absolute symlinks
//! (even ones pointing back inside: the kernel refuses them all) fail with
//! `EXDEV`, magic links (`/proc/self/fd/N`) with `ELOOP`.
//!
//! On kernels without `openat2` (before 5.6, or a seccomp filter answering
//! `ENOSYS` or `EPERM`) the path is opened with plain `openat` and the
//! descriptor's real path (`/proc/self/fd/N`) must lie under the root's real
//! path, or the open fails with `EXDEV`. That check judges where a path
//! ends up, not how: an absolute symlink pointing inside the root is
//! accepted there. Support is probed once per process. Either way the file
//! is open before anyone looks at it, so there is no check-then-open race.
//!
//! What it leaves to callers: deciding which paths are acceptable at all
//! (decoding, `..` segments, dotfiles) and what a file's type means.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::cvt;

/// `struct open_how` from `linux/openat2.h`; `libc::open_how` is
/// `#[non_exhaustive]`, so it cannot be built outside libc.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// How many times an `openat2` answering `EAGAIN` (a concurrent rename seen
/// during a `RESOLVE_BENEATH` walk) is retried before giving up.
const EAGAIN_RETRIES: usize = 4;

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

/// Whether this kernel has `openat2`, learnt from the first call.
static OPENAT2: AtomicU8 = AtomicU8::new(UNKNOWN);

/// How a [`Root`] confines opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confinement {
    /// `openat2` with `RESOLVE_BENEATH` when the kernel has it, otherwise
    /// the `/proc/self/fd` check.
    Auto,
    /// Always the `/proc/self/fd` check (for tests of the fallback).
    ProcCheck,
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: no symlink
    /// beneath the root is followed at all (`ELOOP`). Needs `openat2`
    /// (Linux 5.6); [`Root::new`] refuses it where the kernel lacks it.
    NoSymlinks,
}

/// A directory that paths are opened beneath.
#[derive(Debug)]
pub struct Root {
    /// `O_PATH | O_DIRECTORY` descriptor every open is relative to.
    dir: OwnedFd,
    /// The directory's canonical path, for the fallback check.
    canonical: PathBuf,
    confinement: Confinement,
    /// Device and inode of the directory, to notice when the configured
    /// path comes to name another one (a rebuilt or symlink-swapped root).
    id: (u64, u64),
}

/// What to open beneath a [`Root`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anything readable (regular files and directories alike); callers
    /// check the type with `metadata()`.
    Any,
    /// A directory only (`O_DIRECTORY`).
    Directory,
}

impl Root {
    /// Opens `path` as a root directory. Fails when it does not exist, is
    /// not a directory, or cannot be listed.
    pub fn new(path: &Path, confinement: Confinement) -> io::Result<Root> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        let fd = cvt(unsafe { libc::open(c_path.as_ptr(), flags) })?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        // The path of the directory actually opened, not of whatever the
        // configured path names a moment later.
        let canonical = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .or_else(|_| std::fs::canonicalize(path))?;
        let mut root = Root {
            dir,
            canonical,
            confinement,
            id: (0, 0),
        };
        if confinement == Confinement::NoSymlinks && !root.openat2_supported() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "refusing symlinks needs openat2 (Linux 5.6 or later)",
            ));
        }
        // O_PATH needs no read permission; make sure the directory can be read.
        let meta = root.open(".", Kind::Directory)?.metadata()?;
        root.id = (meta.dev(), meta.ino());
        Ok(root)
    }

    /// True when `path` still names this very directory (it was not
    /// deleted and recreated, and a symlink to it was not swapped).
    pub fn is_at(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    /// True when opens are confined by `openat2` rather than the
    /// `/proc/self/fd` check (worth a line in the startup log).
    pub fn uses_openat2(&self) -> bool {
        self.confinement != Confinement::ProcCheck && self.openat2_supported()
    }

    /// Opens `rel` (relative, no leading `/`; `"."` for the root itself)
    /// read-only beneath the root. Escapes fail with `EXDEV` (or `ELOOP` for
    /// magic links); the descriptor is close-on-exec and non-blocking so a
    /// FIFO cannot stall the worker.
    pub fn open(&self, rel: &str, kind: Kind) -> io::Result<File> {
        let c_rel = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        if kind == Kind::Directory {
            flags |= libc::O_DIRECTORY;
        }
        if self.confinement != Confinement::ProcCheck && self.openat2_supported() {
            self.openat2(&c_rel, flags)
        } else {
            self.open_checked(&c_rel, flags)
        }
    }

    /// Whether to use `openat2`, probed once per process by opening the
    /// root itself. `ENOSYS` means an old kernel; `EPERM` is what older
    /// container seccomp profiles answer for syscalls they do not know.
    /// Any other failure leaves the question open for the next call.
    fn openat2_supported(&self) -> bool {
        match OPENAT2.load(Ordering::Relaxed) {
            SUPPORTED => return true,
            UNSUPPORTED => return false,
            _ => {}
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let supported = match self.openat2(c".", flags) {
            Ok(_) => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => false,
            Err(_) => return true,
        };
        let state = if supported { SUPPORTED } else { UNSUPPORTED };
        OPENAT2.store(state, Ordering::Relaxed);
        supported
    }

    fn openat2(&self, rel: &CStr, flags: libc::c_int) -> io::Result<File> {
        let how = OpenHow {
            flags: flags as u64,
            mode: 0,
            resolve: RESOLVE_BENEATH
                | RESOLVE_NO_MAGICLINKS
                | if self.confinement == Confinement::NoSymlinks {
                    RESOLVE_NO_SYMLINKS
                } else {
                    0
                },
        };
        let mut tries = 0;
        loop {
            // SAFETY: the descriptor is open for the life of `self`, `rel` is
            // NUL-terminated, and `how` is a live `open_how` whose size is passed.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.dir.as_raw_fd(),
                    rel.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            match cvt(ret) {
                // SAFETY: the kernel just returned this descriptor to us alone.
                Ok(fd) => return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) }),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < EAGAIN_RETRIES => {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The fallback: a plain `openat`, then the opened file's real path must
    /// be the root or lie under it.
    fn open_checked(&self, rel: &CStr, flags: libc::c_int) -> io::Result<File> {
        // SAFETY: the descriptor is open for the life of `self` and `rel` is
        // NUL-terminated.
        let fd = cvt(unsafe { libc::openat(self.dir.as_raw_fd(), rel.as_ptr(), flags) })?;
        // SAFETY: `openat` just returned this descriptor to us alone.
        let file = unsafe { File::from_raw_fd(fd) };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        if real.starts_with(&self.canonical) {
            Ok(file)
        } else {
            Err(io::Error::from_raw_os_error(libc::EXDEV))
        }
    }
}
