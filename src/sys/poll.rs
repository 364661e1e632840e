//! poll(2): a set of descriptors and the readiness each asks for, waited
//! on in one call. The set holds raw descriptor numbers; the caller keeps
//! the descriptors open while it waits (a closed one is reported as
//! invalid by the kernel, never touched), and rebuilds the set each turn,
//! which is what poll(2) costs by design.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::cvt;

/// What one entry asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    pub read: bool,
    pub write: bool,
}

/// What the kernel reported for one entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// Hang-up, error or an invalid descriptor: the owner should read (or
    /// write) to find out which.
    pub hangup: bool,
}

impl Ready {
    pub fn any(self) -> bool {
        self.readable || self.writable || self.hangup
    }
}

/// The `pollfd` array of one wait.
#[derive(Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds a descriptor; returns its index for [`PollSet::ready`].
    pub fn push(&mut self, fd: BorrowedFd<'_>, want: Want) -> usize {
        let mut events = 0;
        if want.read {
            events |= libc::POLLIN;
        }
        if want.write {
            events |= libc::POLLOUT;
        }
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Waits until an entry is ready or `timeout` passes (`None`: no
    /// limit); returns how many are ready. An interrupted wait returns 0.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let ms = match timeout {
            None => -1,
            // Rounded up: a wait cut short of a deadline would spin.
            Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: the pointer and length describe our own live pollfd array,
        // which the kernel only writes `revents` of.
        let r = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        match cvt(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The readiness of entry `i` after a wait.
    pub fn ready(&self, i: usize) -> Ready {
        let r = self.fds.get(i).map_or(0, |p| p.revents);
        Ready {
            readable: r & libc::POLLIN != 0,
            writable: r & libc::POLLOUT != 0,
            hangup: r & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::eventfd::Bell;
    use std::os::fd::AsFd;

    #[test]
    fn reports_a_rung_bell_and_times_out_on_a_silent_one() {
        let bell = Bell::new().unwrap();
        let mut set = PollSet::default();
        let i = set.push(
            bell.as_fd(),
            Want {
                read: true,
                write: false,
            },
        );
        assert_eq!(set.wait(Some(Duration::from_millis(1))).unwrap(), 0);
        assert!(!set.ready(i).any());
        bell.ring();
        assert_eq!(set.wait(None).unwrap(), 1);
        assert!(set.ready(i).readable);
    }
}
