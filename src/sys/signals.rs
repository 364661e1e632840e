//! Signals as data: the process blocks the signals it handles in every thread
//! and the controller reads them from a signalfd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::from_nix;

/// The signals the controller owns.
pub const HANDLED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
];

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

/// Blocks the handled signals in the calling thread (threads spawned later
/// inherit the mask) and ignores SIGPIPE process-wide, so a write to a
/// closed socket is an `EPIPE` error rather than a death. SIGCHLD is
/// blocked too, so the process models read it from a signalfd
/// ([`super::process::ChildSignals`]): a thread that did not block it would
/// take it and discard it (its default action is to ignore it).
pub fn block_handled() -> io::Result<()> {
    let mut set = handled_set();
    set.add(Signal::SIGCHLD);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(from_nix)?;
    // SAFETY: installing SIG_IGN runs no handler code, so no async-signal-safety concern.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map_err(from_nix)?;
    Ok(())
}

/// A signal that arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Term,
    Int,
    Quit,
    Hup,
}

impl Sig {
    pub fn name(self) -> &'static str {
        match self {
            Sig::Term => "SIGTERM",
            Sig::Int => "SIGINT",
            Sig::Quit => "SIGQUIT",
            Sig::Hup => "SIGHUP",
        }
    }
}

/// A non-blocking signalfd for the handled signals.
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    pub fn new() -> io::Result<Signals> {
        SignalFd::with_flags(
            &handled_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map(|fd| Signals { fd })
        .map_err(from_nix)
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> io::Result<Option<Sig>> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    let sig = match info.ssi_signo as i32 {
                        libc::SIGTERM => Sig::Term,
                        libc::SIGINT => Sig::Int,
                        libc::SIGQUIT => Sig::Quit,
                        libc::SIGHUP => Sig::Hup,
                        _ => continue,
                    };
                    return Ok(Some(sig));
                }
                Ok(None) => return Ok(None),
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(from_nix(e)),
            }
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
