//! One epoll instance: registration of descriptors under a `u64` token and
//! waiting for readiness.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::from_nix;

/// Readiness a registration asks for.
#[derive(Clone, Copy, Debug)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
    /// Edge-triggered: report a change once, the owner reads/writes until
    /// `EAGAIN`. Saves an `epoll_ctl` per write interest change.
    pub edge: bool,
    /// Wake only one of the epoll instances waiting on a shared descriptor.
    pub exclusive: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
        edge: false,
        exclusive: false,
    };
    /// Level-triggered read with EPOLLEXCLUSIVE, for a descriptor several
    /// epoll instances watch.
    pub const READ_EXCLUSIVE: Interest = Interest {
        read: true,
        write: false,
        edge: false,
        exclusive: true,
    };
    pub const READ_WRITE_EDGE: Interest = Interest {
        read: true,
        write: true,
        edge: true,
        exclusive: false,
    };

    fn flags(self) -> EpollFlags {
        // EPOLLEXCLUSIVE allows only IN/OUT/ET/WAKEUP beside it (else EINVAL).
        let mut f = if self.exclusive {
            EpollFlags::empty()
        } else {
            EpollFlags::EPOLLRDHUP
        };
        if self.read {
            f |= EpollFlags::EPOLLIN;
        }
        if self.write {
            f |= EpollFlags::EPOLLOUT;
        }
        if self.edge {
            f |= EpollFlags::EPOLLET;
        }
        if self.exclusive {
            f |= EpollFlags::EPOLLEXCLUSIVE;
        }
        f
    }
}

/// One readiness report.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
    /// Error or hang-up: the owner should read to find out which.
    pub hangup: bool,
}

/// Reusable storage for `epoll_wait` results.
pub struct Events {
    buf: Vec<EpollEvent>,
    len: usize,
}

impl Events {
    pub fn with_capacity(n: usize) -> Events {
        Events {
            buf: vec![EpollEvent::empty(); n],
            len: 0,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf[..self.len].iter().map(|e| {
            let f = e.events();
            Event {
                token: e.data(),
                readable: f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI),
                writable: f.contains(EpollFlags::EPOLLOUT),
                hangup: f.intersects(
                    EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR | EpollFlags::EPOLLRDHUP,
                ),
            }
        })
    }
}

/// An epoll instance (`epoll_create1(EPOLL_CLOEXEC)`).
pub struct Poller {
    ep: Epoll,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map(|ep| Poller { ep })
            .map_err(from_nix)
    }

    pub fn add<F: AsFd>(&self, fd: F, token: u64, interest: Interest) -> io::Result<()> {
        self.ep
            .add(fd, EpollEvent::new(interest.flags(), token))
            .map_err(from_nix)
    }

    pub fn delete<F: AsFd>(&self, fd: F) -> io::Result<()> {
        self.ep.delete(fd).map_err(from_nix)
    }

    /// Waits for readiness; `None` waits indefinitely. `EINTR` counts as a
    /// wake-up with no events.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let t = match timeout {
            None => EpollTimeout::NONE,
            // Round up so that a timer due in 0.3 ms does not spin with 0 ms waits.
            Some(d) => {
                let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128 - 1) as u32;
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::NONE)
            }
        };
        match self.ep.wait(&mut events.buf, t) {
            Ok(n) => {
                events.len = n;
                Ok(())
            }
            Err(nix::Error::EINTR) => {
                events.len = 0;
                Ok(())
            }
            Err(e) => Err(from_nix(e)),
        }
    }
}
