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
/// installs) and leave with [`exit_child`].
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork itself is sound; the hazard is the child touching state
    // another thread left locked, which the callers avoid (see above). No
    // Rust object is duplicated unsoundly: memory is copied, descriptors
    // are shared and each side closes what it does not use.
    match unsafe { nix::unistd::fork() }.map_err(from_nix)? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        ForkResult::Child => Ok(Forked::Child),
    }
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
