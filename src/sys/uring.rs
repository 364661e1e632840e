//! One io_uring per worker, typed: the operations the io_uring transport
//! submits (multishot accept, multishot receive into a provided-buffer
//! ring, send, poll for writability, the bell's eventfd read, timeouts,
//! cancellation) and their completions. Everything the kernel may read or
//! write after a submission is owned here, never by the caller, so that no
//! safe code can free or reuse it while an operation is in flight: a send's
//! buffer is moved in and handed back only with its completion; receive
//! buffers live in one mapping that outlives every receive; the bell's
//! 8 bytes are boxed here. If the ring is dropped with such operations
//! still in flight, that memory is leaked rather than freed.
//!
//! Descriptors are another matter: the caller keeps a socket open until
//! the operations on it have completed (the kernel takes its own file
//! reference at submission, so this is about never aiming an operation at
//! a reused descriptor number, not about memory).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::socket::Stream;

/// The provided-buffer group every receive of a ring draws from.
const GROUP: u16 = 0;
/// Bits of a `user_data` that carry the caller's token; the op kind sits above.
const TOKEN_BITS: u32 = 60;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;

/// What a completion belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Poll = 4,
    Bell = 5,
    Timeout = 6,
    Cancel = 7,
    /// A listener has a connection queued (watched while out of descriptors).
    Queued = 8,
}

impl Op {
    fn from_bits(bits: u64) -> Option<Op> {
        Some(match bits {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Poll,
            5 => Op::Bell,
            6 => Op::Timeout,
            7 => Op::Cancel,
            8 => Op::Queued,
            _ => return None,
        })
    }

    fn tag(self, token: u64) -> u64 {
        debug_assert!(token <= TOKEN_MASK, "token {token:#x} too wide");
        ((self as u64) << TOKEN_BITS) | (token & TOKEN_MASK)
    }
}

/// One completion, decoded.
#[derive(Debug)]
pub struct Completion {
    pub op: Op,
    pub token: u64,
    /// The syscall-style result: a count or descriptor, or `-errno`.
    pub result: i32,
    /// A multishot operation stays armed (more completions will come).
    pub more: bool,
    /// For a receive: the provided buffer holding the bytes; read it with
    /// [`Ring::received`], then hand it back with [`Ring::recycle`].
    pub buffer: Option<u16>,
    /// For a send: the caller's buffer, back from the kernel.
    pub sent: Option<Vec<u8>>,
}

/// The provided-buffer ring: `count` buffers of `size` bytes in one
/// anonymous mapping, and the ring of descriptors the kernel takes them
/// from. Pages are touched only when the kernel first fills a buffer, so
/// idle connections cost none of it.
struct BufRing {
    ring: *mut types::BufRingEntry,
    ring_len: usize,
    bufs: *mut u8,
    bufs_len: usize,
    count: u16,
    size: usize,
    tail: u16,
}

fn map(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping asks nothing of existing memory;
    // the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as *mut u8)
}

impl BufRing {
    fn new(count: u16, size: usize) -> io::Result<BufRing> {
        assert!(
            count.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring_len = usize::from(count) * std::mem::size_of::<types::BufRingEntry>();
        let ring = map(ring_len)? as *mut types::BufRingEntry;
        let bufs_len = usize::from(count) * size;
        let bufs = match map(bufs_len) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: `ring` is the mapping of `ring_len` made just above.
                unsafe { libc::munmap(ring as *mut libc::c_void, ring_len) };
                return Err(e);
            }
        };
        let mut r = BufRing {
            ring,
            ring_len,
            bufs,
            bufs_len,
            count,
            size,
            tail: 0,
        };
        for bid in 0..count {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    /// Puts buffer `bid` at the tail (not yet visible to the kernel).
    fn push(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.count - 1));
        // SAFETY: idx < count, inside the ring mapping; the kernel reads
        // entries only below the published tail, and this one is at or past it.
        let entry = unsafe { &mut *self.ring.add(idx) };
        // SAFETY: bid < count, so the offset is inside the buffer mapping.
        entry.set_addr(unsafe { self.bufs.add(usize::from(bid) * self.size) } as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed buffer visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field sits inside the first entry of the ring
        // mapping, which lives as long as `self`; the kernel only reads it,
        // and the release store orders the entries written before it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    fn slice(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size);
        // The completion that named the buffer handed it to us; the kernel
        // writes it again only after `recycle` puts it back in the ring,
        // which needs `&mut self` and so cannot happen while this borrow lives.
        // SAFETY: inside the mapping, and ours until recycled (above).
        unsafe { std::slice::from_raw_parts(self.bufs.add(usize::from(bid) * self.size), len) }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both regions are the mappings made in `new`; the ring
        // drops this only when no receive can still write into them.
        unsafe {
            libc::munmap(self.ring as *mut libc::c_void, self.ring_len);
            libc::munmap(self.bufs as *mut libc::c_void, self.bufs_len);
        }
    }
}

/// A worker's ring.
pub struct Ring {
    ring: IoUring,
    bufs: Option<BufRing>,
    /// Send buffers the kernel holds, by token (one send per token at a time).
    sends: HashMap<u64, Vec<u8>>,
    /// Multishot receives still armed: the buffer mapping must outlive them.
    receives: usize,
    /// The eventfd read target, boxed so its address never moves.
    bell: Box<[u8; 8]>,
    bell_armed: bool,
    /// Timeouts copy their timespec at submission; kept here all the same.
    timespec: Box<types::Timespec>,
}

/// Why a ring could not be had, in one line for the operator.
fn refused(what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "--model io_uring: the kernel refused io_uring ({what}: {e}); \
             check kernel.io_uring_disabled and the seccomp profile \
             (Docker's default blocks io_uring), or use --model epoll"
        ),
    )
}

impl Ring {
    /// A ring of `entries` submission slots with `count` receive buffers of
    /// `size` bytes. Kernel refusal (disabled by sysctl, `ENOSYS`, `EPERM`
    /// from seccomp, no provided-buffer rings) comes back as
    /// `ErrorKind::Unsupported` with a message that says so.
    pub fn new(entries: u32, count: u16, size: usize) -> io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))
            .map_err(|e| refused("io_uring_setup", e))?;
        let bufs = BufRing::new(count, size)?;
        // SAFETY: the ring mapping is page-aligned (mmap), holds `count`
        // initialised entries, and is unregistered or leaked (never freed
        // while registered and in use) by `Drop for Ring`.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring as u64, count, GROUP, 0)
                .map_err(|e| refused("provided-buffer ring", e))?;
        }
        Ok(Ring {
            ring,
            bufs: Some(bufs),
            sends: HashMap::new(),
            receives: 0,
            bell: Box::new([0; 8]),
            bell_armed: false,
            timespec: Box::new(types::Timespec::new()),
        })
    }

    /// Queues an entry, submitting first if the queue is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built in this file points only at memory
            // this ring owns (see the module doc) or at nothing.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// Multishot accept: one completion per connection, each a new
    /// non-blocking, close-on-exec descriptor.
    pub fn accept_multi(&mut self, listener: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let e = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept.tag(token));
        self.push(e)
    }

    /// Multishot receive into the provided buffers.
    pub fn recv_multi(&mut self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let e = opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), GROUP)
            .build()
            .user_data(Op::Recv.tag(token));
        self.push(e)?;
        self.receives += 1;
        Ok(())
    }

    /// Sends `buf` (with `MSG_MORE` when `more`); the buffer comes back in
    /// the completion. One send per token at a time.
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: Vec<u8>,
        more: bool,
        token: u64,
    ) -> io::Result<()> {
        if self.sends.contains_key(&token) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a send is already in flight",
            ));
        }
        let len = buf.len().min(u32::MAX as usize) as u32;
        let mut flags = libc::MSG_NOSIGNAL;
        if more {
            flags |= libc::MSG_MORE;
        }
        // The heap block of a Vec does not move when the Vec does: the
        // pointer stays valid while the map owns the Vec.
        let e = opcode::Send::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), len)
            .flags(flags)
            .build()
            .user_data(Op::Send.tag(token));
        self.sends.insert(token, buf);
        if let Err(err) = self.push(e) {
            self.sends.remove(&token);
            return Err(err);
        }
        Ok(())
    }

    /// One completion when `fd` is writable.
    pub fn poll_writable(&mut self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLOUT as u32)
            .build()
            .user_data(Op::Poll.tag(token));
        self.push(e)
    }

    /// One completion when `listener` has a connection queued. Unlike an
    /// accept, a poll needs no descriptor of its own.
    pub fn watch_queue(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(listener.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(Op::Queued.tag(0));
        self.push(e)
    }

    /// Reads the bell's eventfd (clearing it); completes when it was rung.
    pub fn arm_bell(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if self.bell_armed {
            return Ok(());
        }
        let e = opcode::Read::new(types::Fd(fd.as_raw_fd()), self.bell.as_mut_ptr(), 8)
            .build()
            .user_data(Op::Bell.tag(0));
        self.push(e)?;
        self.bell_armed = true;
        Ok(())
    }

    /// One completion after `after`.
    pub fn timeout(&mut self, after: Duration) -> io::Result<()> {
        *self.timespec = types::Timespec::from(after);
        let e = opcode::Timeout::new(&*self.timespec)
            .build()
            .user_data(Op::Timeout.tag(0));
        self.push(e)
    }

    /// Cancels the operation `op` on `token` (its own completion says
    /// `-ECANCELED`, or its result if it had already finished).
    pub fn cancel(&mut self, op: Op, token: u64) -> io::Result<()> {
        let e = opcode::AsyncCancel::new(op.tag(token))
            .build()
            .user_data(Op::Cancel.tag(token));
        self.push(e)
    }

    /// Submits what is queued without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and waits for at least one completion.
    pub fn submit_and_wait(&mut self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves every ready completion into `out`.
    pub fn completions(&mut self, out: &mut Vec<Completion>) {
        // Fields borrowed apart: the completion queue, and the bookkeeping
        // each completion settles (no copy of the batch is needed).
        for cqe in self.ring.completion() {
            let (ud, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            let Some(op) = Op::from_bits(ud >> TOKEN_BITS) else {
                continue;
            };
            let token = ud & TOKEN_MASK;
            let more = cqueue::more(flags);
            let mut c = Completion {
                op,
                token,
                result,
                more,
                buffer: cqueue::buffer_select(flags),
                sent: None,
            };
            match op {
                Op::Recv if !more => self.receives -= 1,
                Op::Send => c.sent = self.sends.remove(&token),
                Op::Bell => self.bell_armed = false,
                _ => {}
            }
            out.push(c);
        }
    }

    /// The bytes a receive completion delivered in `bid`.
    pub fn received(&self, bid: u16, len: usize) -> &[u8] {
        match &self.bufs {
            Some(b) => b.slice(bid, len),
            None => &[],
        }
    }

    /// Gives a receive buffer back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        if let Some(b) = &mut self.bufs {
            b.push(bid);
            b.publish();
        }
    }

    /// Turns an accept completion's descriptor into a stream.
    pub fn accepted(result: i32) -> Stream {
        // SAFETY: a non-negative accept result is a descriptor the kernel
        // just installed for this process; nothing else owns it.
        Stream::from_fd(unsafe { OwnedFd::from_raw_fd(result) })
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel tears a ring down asynchronously after its descriptor
        // closes: memory that in-flight operations may still touch must not
        // be freed.
        if self.receives > 0 {
            std::mem::forget(self.bufs.take());
        } else {
            let _ = self.ring.submitter().unregister_buf_ring(GROUP);
        }
        for (_, buf) in self.sends.drain() {
            std::mem::forget(buf);
        }
        if self.bell_armed {
            let bell = std::mem::replace(&mut self.bell, Box::new([0; 8]));
            std::mem::forget(bell);
        }
    }
}
