//! The process's spare descriptor, for running out of descriptors (EMFILE)
//! without spinning and without going silent.
//!
//! A listener stays readable while the process cannot accept from it, so
//! an accept loop must either spin or stop looking — and a stopped loop
//! leaves clients waiting in the backlog with no answer. The classic way
//! out is one descriptor kept in reserve: free it, accept one connection
//! into its slot, answer 503, and keep the slot.
//!
//! The descriptor table belongs to the process, not to a thread, so the
//! reserve does too. Per-thread reserves lose their slots in a race: while
//! one thread has freed its spare, another thread's accept takes the slot,
//! the first thread's accept fails and its spare cannot be reopened. Once
//! every thread has lost its spare, a saturated server stops refusing and
//! queued clients hang. Here a thread that finds the spare's slot taken
//! leaves the spare *lent*; whichever thread accepts next hands its
//! connection's slot back (the client gets the 503, which is right: the
//! process was at its limit). The lock is taken only on those two paths,
//! so the accept of a process with descriptors to spare costs one atomic
//! load.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use crate::sys::socket::{Accepted, Stream};

/// What holds the spare slot: `/dev/null`, or the last connection refused
/// through it, answered and half-closed, kept open only for its slot.
type Spare = OwnedFd;

/// The reserve of one process.
#[derive(Debug)]
pub struct Reserve {
    spare: Mutex<Option<Spare>>,
    /// The spare was freed and its slot went to some other accept.
    lent: AtomicBool,
}

/// What [`Reserve::refuse_one`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A queued connection was taken into the spare slot and answered.
    Refused,
    /// The spare was freed but the queue was empty, or another thread took
    /// the slot first; nothing was refused this time.
    Missed,
    /// No spare to free (lent, or another thread is using it): the caller
    /// should stop watching the listener briefly.
    NoSpare,
}

/// EMFILE or ENFILE: the process or the system is out of descriptors.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

static PROCESS: Reserve = Reserve {
    spare: Mutex::new(None),
    lent: AtomicBool::new(false),
};

fn open_null() -> Option<Spare> {
    File::open("/dev/null").ok().map(OwnedFd::from)
}

impl Reserve {
    /// The reserve of this process, with its spare opened if it can be.
    pub fn process() -> &'static Reserve {
        PROCESS.arm();
        &PROCESS
    }

    /// The spare, unless another thread is using it. (It holds only a
    /// descriptor, consistent even if a holder panicked.)
    fn try_spare(&self) -> Option<MutexGuard<'_, Option<Spare>>> {
        match self.spare.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Opens the spare if there is none and a descriptor is free.
    fn arm(&self) {
        if let Some(mut spare) = self.try_spare() {
            if spare.is_none() {
                *spare = open_null();
                if spare.is_some() {
                    self.lent.store(false, Ordering::SeqCst);
                }
            }
        }
    }

    /// EMFILE/ENFILE: frees the spare, lets `accept` take one connection
    /// into its slot, hands it to `refuse` (which writes the 503), and keeps
    /// the slot as the new spare.
    pub fn refuse_one(
        &self,
        accept: impl FnOnce() -> io::Result<Accepted>,
        refuse: impl FnOnce(&Stream),
    ) -> Refusal {
        let Some(mut spare) = self.try_spare() else {
            return Refusal::NoSpare;
        };
        if spare.is_none() {
            // Lent earlier; a connection may have closed since.
            *spare = open_null();
            if spare.is_none() {
                return Refusal::NoSpare;
            }
        }
        // Set before the slot is freed, so a thread whose accept takes it
        // sees the flag once its accept returns.
        self.lent.store(true, Ordering::SeqCst);
        drop(spare.take());
        match accept() {
            Ok(Accepted::Stream(stream, _)) => {
                refuse(&stream);
                let _ = stream.shutdown_write();
                *spare = Some(stream.into());
                self.lent.store(false, Ordering::SeqCst);
                Refusal::Refused
            }
            _ => {
                // Either nobody was queued (the slot is still free) or the
                // slot went elsewhere (then it stays lent).
                *spare = open_null();
                if spare.is_some() {
                    self.lent.store(false, Ordering::SeqCst);
                }
                Refusal::Missed
            }
        }
    }

    /// Called with every accepted connection: if the spare is lent, its slot
    /// may be this connection's; then the connection is refused through
    /// `refuse` and kept as the spare (`None`), unless a descriptor is free
    /// for `/dev/null` after all. Otherwise the connection comes back.
    pub fn reclaim(&self, stream: Stream, refuse: impl FnOnce(&Stream)) -> Option<Stream> {
        if !self.lent.load(Ordering::SeqCst) {
            return Some(stream);
        }
        // Waited for, unlike in `refuse_one`: the holder is refusing one
        // connection and will be done in a moment, and a thread that gave
        // up here could leave the slot with a served connection and the
        // spare lent for good.
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.is_some() || !self.lent.load(Ordering::SeqCst) {
            return Some(stream);
        }
        *spare = open_null();
        self.lent.store(false, Ordering::SeqCst);
        if spare.is_some() {
            return Some(stream);
        }
        refuse(&stream);
        let _ = stream.shutdown_write();
        *spare = Some(stream.into());
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::socket::{ListenOptions, Listener};
    use std::os::fd::AsRawFd;

    /// What the spare descriptor refers to, as /proc/self/fd shows it.
    fn spare_target(reserve: &Reserve) -> std::path::PathBuf {
        let spare = reserve.spare.lock().unwrap();
        let fd = spare.as_ref().expect("a spare").as_raw_fd();
        std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap()
    }

    fn listener() -> Listener {
        Listener::bind(
            &"127.0.0.1:0".parse().unwrap(),
            ListenOptions {
                reuse_port: false,
                backlog: 16,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_refusal_keeps_the_slot_as_the_spare() {
        let reserve = Reserve {
            spare: Mutex::new(open_null()),
            lent: AtomicBool::new(false),
        };
        let l = listener();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let mut refused = 0;
        // The handshake completes asynchronously: poll the queue briefly.
        for _ in 0..200 {
            match reserve.refuse_one(|| l.accept(), |_| refused += 1) {
                Refusal::Refused => break,
                Refusal::Missed => std::thread::sleep(std::time::Duration::from_millis(5)),
                Refusal::NoSpare => panic!("the spare was there"),
            }
        }
        assert_eq!(refused, 1);
        let kept = spare_target(&reserve);
        assert!(
            kept.to_string_lossy().starts_with("socket:"),
            "the refused connection holds the slot: {kept:?}"
        );
        assert!(!reserve.lent.load(Ordering::SeqCst));
        drop(client);
    }

    #[test]
    fn a_lent_spare_is_reopened_or_reclaimed_from_the_next_connection() {
        let reserve = Reserve {
            spare: Mutex::new(None),
            lent: AtomicBool::new(true),
        };
        let l = listener();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let stream = loop {
            if let Ok(Accepted::Stream(s, _)) = l.accept() {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        // Descriptors are free here, so /dev/null fills the spare and the
        // connection is served.
        let back = reserve.reclaim(stream, |_| panic!("not refused"));
        assert!(back.is_some());
        assert_eq!(spare_target(&reserve), std::path::Path::new("/dev/null"));
        assert!(!reserve.lent.load(Ordering::SeqCst));
    }
}
