//! TCP sockets: listeners (socket, setsockopt, bind, listen, accept4) and
//! connected streams (read, write, writev, sendfile, shutdown), IPv4 and IPv6.
//! Descriptors are close-on-exec and non-blocking, except where a blocking
//! server model asks for blocking ones ([`Listener::set_nonblocking`],
//! [`Listener::accept_blocking`]); those bound every wait with
//! `SO_RCVTIMEO`/`SO_SNDTIMEO` so that a blocked call returns `EAGAIN`.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::cvt;

/// Converts a std address into a `sockaddr_storage` and its length.
fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Converts a kernel-filled `sockaddr_storage` back into a std address.
fn from_raw(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unsupported address family",
        )),
    }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// SO_RCVTIMEO / SO_SNDTIMEO. The kernel reads a zero timeout as "wait
/// forever", so a zero (or sub-microsecond) wait is raised to 1 µs.
fn set_timeout(fd: RawFd, name: libc::c_int, d: Duration) -> io::Result<()> {
    let d = d.max(Duration::from_micros(1));
    let tv = libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: passes a pointer to a live timeval and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            &tv as *const libc::timeval as *const libc::c_void,
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets or clears O_NONBLOCK on the open file description (shared by every
/// thread that holds the descriptor).
fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl on a descriptor the caller owns.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above; F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

fn sockname(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len describe a writable buffer of the stated size.
    cvt(unsafe { libc::getsockname(fd, storage.as_mut_ptr() as *mut libc::sockaddr, &mut len) })?;
    // SAFETY: zero-initialised and then filled by the kernel.
    from_raw(unsafe { storage.assume_init_ref() })
}

fn peername(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len describe a writable buffer of the stated size.
    cvt(unsafe { libc::getpeername(fd, storage.as_mut_ptr() as *mut libc::sockaddr, &mut len) })?;
    // SAFETY: zero-initialised and then filled by the kernel.
    from_raw(unsafe { storage.assume_init_ref() })
}

/// Options for a listening socket.
#[derive(Clone, Copy, Debug)]
pub struct ListenOptions {
    /// SO_REUSEPORT: several listeners (one per worker) share the port and
    /// the kernel spreads connections among them.
    pub reuse_port: bool,
    pub backlog: i32,
}

/// A listening TCP socket.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

/// Outcome of one `accept4` call.
pub enum Accepted {
    Stream(Stream, SocketAddr),
    /// Nothing pending (`EAGAIN`).
    None,
}

impl Listener {
    /// SO_KEEPALIVE with its idle time, interval and count (seconds,
    /// probes). Set on the listener, it is inherited by every connection
    /// accepted from it.
    pub fn set_keepalive(&self, idle: u32, interval: u32, probes: u32) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        let int = |v: u32| libc::c_int::try_from(v).map_err(|_| io::ErrorKind::InvalidInput);
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, int(idle)?)?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, int(interval)?)?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, int(probes)?)
    }

    /// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen.
    pub fn bind(addr: &SocketAddr, opts: ListenOptions) -> io::Result<Listener> {
        let family = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain syscall; the returned descriptor is owned right below.
        let raw = cvt(unsafe {
            libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if opts.reuse_port {
            setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if addr.is_ipv6() {
            // `[::]` serves IPv6 only; bind 0.0.0.0 separately for IPv4. This
            // keeps behaviour independent of the host's bindv6only sysctl.
            setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        let (storage, len) = to_raw(addr);
        // SAFETY: storage holds a valid sockaddr of length `len`.
        cvt(unsafe { libc::bind(raw, &storage as *const _ as *const libc::sockaddr, len) })?;
        // SAFETY: plain syscall on a descriptor we own.
        cvt(unsafe { libc::listen(raw, opts.backlog) })?;
        Ok(Listener { fd })
    }

    /// The listening socket systemd passed at descriptor `fd` (socket
    /// activation, `sd_listen_fds(3)`: descriptors start at 3). Checked to be
    /// a listening TCP stream socket, then made non-blocking and close-on-exec
    /// like one [`Listener::bind`] makes. The caller vouches, from
    /// `LISTEN_PID`/`LISTEN_FDS`, that the descriptor was passed to this
    /// process and that nothing else in it owns the descriptor.
    pub fn inherited(fd: RawFd) -> io::Result<Listener> {
        if fd < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "passed descriptors start at 3",
            ));
        }
        let mut kind: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `kind` and `len` describe a writable c_int; a descriptor
        // that is not a socket only makes the call fail.
        cvt(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                &mut kind as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        })?;
        let mut listening: libc::c_int = 0;
        // SAFETY: as above.
        cvt(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                &mut listening as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        })?;
        if kind != libc::SOCK_STREAM || listening == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the passed descriptor is not a listening stream socket",
            ));
        }
        // SAFETY: fcntl on a descriptor just checked to be a socket.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        set_nonblocking(fd, true)?;
        // SAFETY: the caller vouches that the descriptor was passed to this
        // process and is owned by nothing else here; from now on the
        // `OwnedFd` is its only owner and closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        sockname(fd.as_raw_fd())?;
        Ok(Listener { fd })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockname(self.fd.as_raw_fd())
    }

    /// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), returning the peer address from
    /// the same call.
    pub fn accept(&self) -> io::Result<Accepted> {
        self.accept_with(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    }

    /// accept4(SOCK_CLOEXEC): a blocking stream for the blocking models.
    /// On a blocking listener this waits for a connection, at most the
    /// [`Listener::set_accept_timeout`] (then `Accepted::None`); on a
    /// non-blocking one it returns `Accepted::None` at once when none is queued.
    pub fn accept_blocking(&self) -> io::Result<Accepted> {
        self.accept_with(libc::SOCK_CLOEXEC)
    }

    /// Blocking (`false`) or non-blocking (`true`) accepts, for every holder
    /// of this listener at once.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        set_nonblocking(self.fd.as_raw_fd(), on)
    }

    /// Longest wait of a blocking accept (SO_RCVTIMEO, which accept honours).
    pub fn set_accept_timeout(&self, d: Duration) -> io::Result<()> {
        set_timeout(self.fd.as_raw_fd(), libc::SO_RCVTIMEO, d)
    }

    fn accept_with(&self, flags: libc::c_int) -> io::Result<Accepted> {
        let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        loop {
            // SAFETY: storage and len describe a writable buffer of the stated size.
            let r = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    storage.as_mut_ptr() as *mut libc::sockaddr,
                    &mut len,
                    flags,
                )
            };
            if r >= 0 {
                // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(r) };
                // SAFETY: zero-initialised and filled by the kernel.
                let peer = from_raw(unsafe { storage.assume_init_ref() })?;
                return Ok(Accepted::Stream(Stream { fd }, peer));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(Accepted::None),
                // The peer gave up between SYN and accept: not our error.
                Some(libc::ECONNABORTED) | Some(libc::EPROTO) => continue,
                _ => return Err(err),
            }
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A connected TCP stream (non-blocking unless accepted with
/// [`Listener::accept_blocking`]).
#[derive(Debug)]
pub struct Stream {
    fd: OwnedFd,
}

/// Result of a non-blocking I/O call.
pub type IoResult = io::Result<usize>;

/// True for the error that means "try again when ready".
pub fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

impl Stream {
    /// A connected socket whose descriptor came from elsewhere (an
    /// io_uring accept completion).
    pub fn from_fd(fd: OwnedFd) -> Stream {
        Stream { fd }
    }

    /// The peer's address (getpeername), for a stream accepted without one.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peername(self.fd.as_raw_fd())
    }

    pub fn set_nodelay(&self) -> io::Result<()> {
        setsockopt_int(self.fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
    }

    /// SO_LINGER on with a zero timeout: the close that follows resets the
    /// connection (RST) and drops what the send buffer still holds,
    /// instead of a FIN queued behind it.
    pub fn set_linger_zero(&self) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: passes a pointer to a live `struct linger` and its exact
        // size.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &l as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// The listening socket systemd passed at descriptor `fd` (socket
    /// activation, `sd_listen_fds(3)`: descriptors start at 3). Checked to be
    /// a listening TCP stream socket, then made non-blocking and close-on-exec
    /// like one [`Listener::bind`] makes. The caller vouches, from
    /// `LISTEN_PID`/`LISTEN_FDS`, that the descriptor was passed to this
    /// process and that nothing else in it owns the descriptor.
    pub fn inherited(fd: RawFd) -> io::Result<Listener> {
        if fd < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "passed descriptors start at 3",
            ));
        }
        let mut kind: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `kind` and `len` describe a writable c_int; a descriptor
        // that is not a socket only makes the call fail.
        cvt(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                &mut kind as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        })?;
        let mut listening: libc::c_int = 0;
        // SAFETY: as above.
        cvt(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                &mut listening as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        })?;
        if kind != libc::SOCK_STREAM || listening == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the passed descriptor is not a listening stream socket",
            ));
        }
        // SAFETY: fcntl on a descriptor just checked to be a socket.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        set_nonblocking(fd, true)?;
        // SAFETY: the caller vouches that the descriptor was passed to this
        // process and is owned by nothing else here; from now on the
        // `OwnedFd` is its only owner and closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        sockname(fd.as_raw_fd())?;
        Ok(Listener { fd })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockname(self.fd.as_raw_fd())
    }

    /// Longest wait of a blocking read (SO_RCVTIMEO); then `EAGAIN`.
    pub fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        set_timeout(self.fd.as_raw_fd(), libc::SO_RCVTIMEO, d)
    }

    /// Longest wait of a blocking send or sendfile (SO_SNDTIMEO); then what
    /// was sent, or `EAGAIN` when nothing was.
    pub fn set_write_timeout(&self, d: Duration) -> io::Result<()> {
        set_timeout(self.fd.as_raw_fd(), libc::SO_SNDTIMEO, d)
    }

    /// read(2); `Ok(0)` is end of stream.
    pub fn read(&self, buf: &mut [u8]) -> IoResult {
        loop {
            // SAFETY: buf is a writable slice of the given length.
            let r = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            match cvt(r) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                other => return other.map(|n| n as usize),
            }
        }
    }

    /// send(2) with MSG_NOSIGNAL (no SIGPIPE even if the mask changed).
    pub fn write(&self, buf: &[u8]) -> IoResult {
        self.send_flags(buf, libc::MSG_NOSIGNAL)
    }

    /// send(2) with MSG_MORE: more data (a sendfile body) follows at once, so
    /// the kernel may hold this back to fill a segment instead of sending a
    /// small packet for the head alone.
    pub fn write_more(&self, buf: &[u8]) -> IoResult {
        self.send_flags(buf, libc::MSG_NOSIGNAL | libc::MSG_MORE)
    }

    fn send_flags(&self, buf: &[u8], flags: libc::c_int) -> IoResult {
        loop {
            // SAFETY: buf is a readable slice of the given length.
            let r = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    flags,
                )
            };
            match cvt(r) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                other => return other.map(|n| n as usize),
            }
        }
    }

    /// sendfile(2) from `file` at `offset`, advancing `offset`.
    pub fn sendfile<F: AsFd>(&self, file: F, offset: &mut u64, count: usize) -> IoResult {
        let mut off = *offset as libc::off_t;
        loop {
            // SAFETY: both descriptors are valid for the call; `off` is a live local.
            let r = unsafe {
                libc::sendfile(
                    self.fd.as_raw_fd(),
                    file.as_fd().as_raw_fd(),
                    &mut off,
                    count,
                )
            };
            match cvt(r) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(n) => {
                    *offset = off as u64;
                    return Ok(n as usize);
                }
            }
        }
    }

    /// shutdown(SHUT_WR): sends FIN after the queued data, keeps reading.
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain syscall on a descriptor we own.
        cvt(unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) }).map(drop)
    }
}

impl From<Stream> for OwnedFd {
    fn from(s: Stream) -> OwnedFd {
        s.fd
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_accepts_ipv4_and_reports_addresses() {
        let l = Listener::bind(
            &"127.0.0.1:0".parse().unwrap(),
            ListenOptions {
                reuse_port: true,
                backlog: 16,
            },
        )
        .unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        assert!(matches!(l.accept().unwrap(), Accepted::None));
        let client = std::net::TcpStream::connect(addr).unwrap();
        let mut got = None;
        for _ in 0..100 {
            if let Accepted::Stream(s, peer) = l.accept().unwrap() {
                got = Some((s, peer));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (s, peer) = got.expect("connection accepted");
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(s.local_addr().unwrap(), addr);
        assert_eq!(s.write(b"hi").unwrap(), 2);
    }

    #[test]
    fn blocking_accept_and_read_return_at_their_timeouts() {
        let l = Listener::bind(
            &"127.0.0.1:0".parse().unwrap(),
            ListenOptions {
                reuse_port: false,
                backlog: 16,
            },
        )
        .unwrap();
        l.set_nonblocking(false).unwrap();
        l.set_accept_timeout(Duration::from_millis(10)).unwrap();
        // Nothing queued: the blocking accept gives up at its timeout.
        assert!(matches!(l.accept_blocking().unwrap(), Accepted::None));
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let Accepted::Stream(s, _) = l.accept_blocking().unwrap() else {
            panic!("a queued connection is accepted");
        };
        s.set_read_timeout(Duration::ZERO).unwrap();
        let mut buf = [0u8; 8];
        assert!(would_block(&s.read(&mut buf).unwrap_err()));
        std::io::Write::write_all(&mut client, b"hi").unwrap();
        s.set_read_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(s.read(&mut buf).unwrap(), 2);
    }

    #[test]
    fn ipv6_loopback_round_trips_addresses() {
        let Ok(l) = Listener::bind(
            &"[::1]:0".parse().unwrap(),
            ListenOptions {
                reuse_port: false,
                backlog: 4,
            },
        ) else {
            return; // no IPv6 on this host
        };
        let addr = l.local_addr().unwrap();
        assert!(addr.is_ipv6());
        assert_ne!(addr.port(), 0);
    }

    #[test]
    fn port_in_use_is_an_error_without_reuseport() {
        let a = Listener::bind(
            &"127.0.0.1:0".parse().unwrap(),
            ListenOptions {
                reuse_port: false,
                backlog: 4,
            },
        )
        .unwrap();
        let err = Listener::bind(
            &a.local_addr().unwrap(),
            ListenOptions {
                reuse_port: false,
                backlog: 4,
            },
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    }
}
