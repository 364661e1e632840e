//! The connection pool as the engines reach it: the stack behind
//! [`Pool::with`], a `RefCell` when one thread drives everything and the
//! document's one mutex when a receive thread and a timer thread share it,
//! and [`UserPipe`], one connection of that pool seen by `driver::step` as
//! a socket (RECEIVE, SEND and CLOSE of the document's user calls).

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, PoisonError};

use crate::models::driver::{Pipe, SCRATCH};
use crate::net::tcp::TcpError;
use crate::net::{Handle, Stack};

/// Access to the one stack. Every call holds it only for `f`.
pub trait Pool {
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R;
}

impl Pool for RefCell<Stack> {
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

impl Pool for Mutex<Stack> {
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        // A thread that panicked holding the lock left the stack between
        // two calls, each of which keeps it consistent: carry on.
        f(&mut self.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<P: Pool> Pool for std::sync::Arc<P> {
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        (**self).with(f)
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// One connection of the stack, seen as a socket by `driver::step`.
pub struct UserPipe<'a, P> {
    pub pool: &'a P,
    pub handle: Handle,
    /// Where a file region is read before it is copied into the send
    /// buffer (there is no `sendfile` into user space).
    pub file_buf: &'a RefCell<Vec<u8>>,
}

impl<P: Pool> Pipe for UserPipe<'_, P> {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.pool.with(|s| s.recv(self.handle, buf)) {
            Ok(n) => Ok(n),
            Err(TcpError::WouldBlock) => Err(errno(libc::EAGAIN)),
            Err(TcpError::TimedOut) => Err(errno(libc::ETIMEDOUT)),
            Err(_) => Err(errno(libc::ECONNRESET)),
        }
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        match self.pool.with(|s| s.send(self.handle, data)) {
            Ok(n) => Ok(n),
            Err(TcpError::WouldBlock) => Err(errno(libc::EAGAIN)),
            Err(_) => Err(errno(libc::EPIPE)),
        }
    }

    fn write_more(&self, data: &[u8]) -> io::Result<usize> {
        self.write(data)
    }

    fn sendfile(&self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        let room = self
            .pool
            .with(|s| s.tcb(self.handle).map_or(0, |t| t.send_room()));
        if room == 0 {
            return Err(errno(libc::EAGAIN));
        }
        let mut buf = self.file_buf.borrow_mut();
        if buf.len() < SCRATCH {
            buf.resize(SCRATCH, 0);
        }
        let want = room.min(count).min(SCRATCH);
        // The file is read outside the pool's lock: a disk read must not
        // hold up the receive and timer threads.
        let n = file.read_at(&mut buf[..want], *offset)?;
        if n == 0 {
            return Ok(0);
        }
        let sent = self.write(&buf[..n])?;
        *offset += sent as u64;
        Ok(sent)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.pool.with(|s| s.close(self.handle));
        Ok(())
    }
}
