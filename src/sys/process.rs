//! Processes for the process models (`forking`, `preforked`): `fork(2)`,
//! SIGCHLD as data (a signalfd; the signal is blocked in every thread by
//! [`super::signals::block_handled`]), reaping every ended child with
//! `waitpid(-1, WNOHANG)` in a loop, signalling a child, and leaving a
//! child with `_exit(2)` (no atexit handlers: they belong to the parent).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::from_nix;

/// Which side of a fork this is.
pub enum Forked {
    Parent(i32),
    Child,
}

/// Forks the calling process.
///
/// Only the calling thread exists in the child. The child must therefore
/// not wait on a lock another thread of the parent could have held at the
/// fork; the process models' children use only what they own (their
/// socket, a fresh metrics shard, the allocator, whose fork handlers glibc
/// installs, and stderr, whose lock is taken across the fork) and leave
/// with [`exit_child`].
pub fn fork() -> io::Result<Forked> {
    // The one lock every thread takes: stderr's, around each log line. Held
    // here across the fork, it cannot be held by another thread at that
    // instant, so the child (this thread, which owns it in both processes)
    // can write its first log line instead of waiting forever on a lock
    // whose holder did not come along.
    let stderr = std::io::stderr().lock();
    // SAFETY: fork is sound; its hazard (the child touching state another
    // thread left locked) the callers avoid, see above; memory is copied,
    // descriptors shared, and each side closes what it does not use.
    let forked = unsafe { nix::unistd::fork() }.map_err(from_nix);
    drop(stderr);
    match forked? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Asks the kernel to SIGKILL the calling child when the thread that
/// forked it ends (the parent's supervising thread, or the parent dying
/// however it dies), so no child outlives its server. False when the
/// parent is already gone (it ended before this call), in which case the
/// child should leave at once.
pub fn die_with_parent(parent: i32) -> bool {
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return false;
    }
    nix::unistd::getppid().as_raw() == parent
}

/// Ends a child at once with `code`, without unwinding or atexit handlers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit takes a plain integer and never returns; it runs no
    // user code, so no Rust invariant can be observed half-done.
    unsafe { libc::_exit(code) }
}

/// How a reaped child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
}

/// Reaps every child that has ended, without blocking: `waitpid(-1,
/// WNOHANG)` until it reports none, because one SIGCHLD may stand for many
/// children (signals of one kind do not queue).
pub fn reap(mut each: impl FnMut(i32, Ended)) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => each(pid.as_raw(), Ended::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                each(pid.as_raw(), Ended::Signalled(sig as i32))
            }
            // Stopped or continued children are still alive.
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            // ECHILD: no children at all.
            Err(_) => return,
        }
    }
}

/// Sends `sig` (a libc signal number) to process `pid`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    let sig = Signal::try_from(sig).map_err(from_nix)?;
    nix::sys::signal::kill(Pid::from_raw(pid), sig).map_err(from_nix)
}

/// The calling process's id.
pub fn pid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// A non-blocking signalfd for SIGCHLD.
pub struct ChildSignals {
    fd: SignalFd,
}

impl ChildSignals {
    pub fn new() -> io::Result<ChildSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map(|fd| ChildSignals { fd })
            .map_err(from_nix)
    }

    /// Empties the signalfd; true when at least one SIGCHLD was pending.
    pub fn clear(&self) -> bool {
        let mut any = false;
        loop {
            match self.fd.read_signal() {
                Ok(Some(_)) => any = true,
                Err(nix::Error::EINTR) => continue,
                Ok(None) | Err(_) => return any,
            }
        }
    }
}

impl AsFd for ChildSignals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Counters in memory shared by a parent and the children it forks after
/// making them (an anonymous `MAP_SHARED` mapping): atomics that every
/// process sees, for limits that span processes.
pub struct SharedCounters {
    ptr: std::ptr::NonNull<std::sync::atomic::AtomicUsize>,
    len: usize,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedCounters({})", self.len)
    }
}

// SAFETY: the mapping holds only atomics, which are Sync; the pointer is
// owned by this value and unmapped once, on drop.
unsafe impl Send for SharedCounters {}
// SAFETY: as above: every access goes through `AtomicUsize`.
unsafe impl Sync for SharedCounters {}

impl SharedCounters {
    /// `len` counters, all zero.
    pub fn new(len: usize) -> io::Result<SharedCounters> {
        let len = len.max(1);
        let bytes = len * std::mem::size_of::<std::sync::atomic::AtomicUsize>();
        // SAFETY: a fresh anonymous mapping, no address hint: the kernel
        // gives zeroed page-aligned memory or MAP_FAILED (checked below).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)?;
        Ok(SharedCounters { ptr, len })
    }

    /// Counter `i` (panics past the end, like a slice).
    pub fn get(&self, i: usize) -> &std::sync::atomic::AtomicUsize {
        assert!(i < self.len, "counter {i} of {}", self.len);
        // SAFETY: `i` is in bounds of the mapping, which lives as long as
        // `self`; zeroed memory is a valid AtomicUsize.
        unsafe { &*self.ptr.as_ptr().add(i) }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        let bytes = self.len * std::mem::size_of::<std::sync::atomic::AtomicUsize>();
        // SAFETY: the mapping made in `new`, unmapped once; no reference
        // from `get` outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
    }
}
