//! An eventfd used as a cross-thread doorbell: the controller rings a
//! worker's bell to make its `epoll_wait` return.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::from_nix;

pub struct Bell {
    fd: EventFd,
}

impl Bell {
    pub fn new() -> io::Result<Bell> {
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map(|fd| Bell { fd })
            .map_err(from_nix)
    }

    /// Makes the descriptor readable. Never blocks: a saturated counter
    /// (EAGAIN) is already readable.
    pub fn ring(&self) {
        let _ = self.fd.write(1);
    }

    /// Resets the counter after a wake-up.
    pub fn clear(&self) {
        let _ = self.fd.read();
    }
}

impl AsFd for Bell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
