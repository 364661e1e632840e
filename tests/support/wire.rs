//! [`Wire`]: the client end of a test connection, plain TCP or TLS
//! (rustls) over TCP, with the `TcpStream` methods the suites use (Read,
//! Write, timeouts, `shutdown`, `try_clone`, addresses, the descriptor).
//!
//! [`connect`](super::connect) picks TLS for a server that the harness
//! started with a test certificate ([`register_tls`]; see
//! `GLASSHOUSE_TEST_TLS` in `server.rs`), so a suite written against plain
//! sockets runs over TLS unchanged.
//!
//! A TLS wire's clones share one `rustls::ClientConnection` behind a mutex,
//! so one thread may write while another reads. Neither holds the lock
//! while it waits on the socket: a reader reads ciphertext outside it and
//! feeds it in under it, a writer encrypts under it and writes outside it
//! (a writer blocked on a server that is not reading must not stop the
//! reader that would let the server go on). Two more locks keep the
//! ciphertext in order: one reader of the socket at a time, and TLS bytes
//! leave in the order rustls made them. The handshake happens on the
//! first read, write or shutdown, so a connect returns when TCP is
//! connected, as it does for plain TCP.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// The client configuration of each server address that speaks TLS.
fn registry() -> &'static Mutex<HashMap<SocketAddr, Arc<ClientConfig>>> {
    static TLS: OnceLock<Mutex<HashMap<SocketAddr, Arc<ClientConfig>>>> = OnceLock::new();
    TLS.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding it leaves the data as good as it was.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes every later [`Wire::connect`] to `addr` speak TLS with `cfg`.
pub fn register_tls(addr: SocketAddr, cfg: Arc<ClientConfig>) {
    lock(registry()).insert(addr, cfg);
}

/// Undoes [`register_tls`] (when `cfg` is still the one registered: the
/// port may have gone to another server since).
pub fn forget_tls(addr: SocketAddr, cfg: &Arc<ClientConfig>) {
    let mut map = lock(registry());
    if map.get(&addr).is_some_and(|c| Arc::ptr_eq(c, cfg)) {
        map.remove(&addr);
    }
}

/// The TLS client configuration registered for `addr`, if any.
pub fn tls_config_for(addr: SocketAddr) -> Option<Arc<ClientConfig>> {
    lock(registry()).get(&addr).cloned()
}

/// A client connection: plain TCP, or TLS over TCP.
pub enum Wire {
    Plain(TcpStream),
    Tls(TlsWire),
}

impl Wire {
    /// Wraps a connected socket: TLS when `addr` was registered.
    pub fn over(tcp: TcpStream, addr: SocketAddr) -> io::Result<Wire> {
        Ok(match tls_config_for(addr) {
            Some(cfg) => Wire::Tls(TlsWire::new(tcp, cfg)?),
            None => Wire::Plain(tcp),
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(t) => &t.tcp,
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(t)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Another handle on the same connection (TLS: the same session).
    pub fn try_clone(&self) -> io::Result<Wire> {
        Ok(match self {
            Wire::Plain(s) => Wire::Plain(s.try_clone()?),
            Wire::Tls(t) => Wire::Tls(TlsWire {
                tcp: t.tcp.try_clone()?,
                shared: Arc::clone(&t.shared),
            }),
        })
    }

    /// TCP's `shutdown`; over TLS, shutting the write side sends a
    /// close_notify first (RFC 8446 §6.1: it closes our direction only).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Wire::Tls(t) = self {
            if how != Shutdown::Read {
                t.close_notify();
            }
        }
        self.tcp().shutdown(how)
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(t) => t.flush_tls(),
        }
    }
}

impl AsFd for Wire {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp().as_fd()
    }
}

impl AsRawFd for Wire {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

/// TLS over a socket; see the module documentation.
pub struct TlsWire {
    tcp: TcpStream,
    shared: Arc<Shared>,
}

struct Shared {
    session: Mutex<Session>,
    /// Held by the one thread reading ciphertext from the socket and
    /// feeding it in.
    reading: Mutex<()>,
    /// Held from taking TLS bytes out of the session until they are on
    /// the socket.
    writing: Mutex<()>,
}

struct Session {
    conn: ClientConnection,
    /// Ciphertext read from the socket and not yet taken by rustls.
    pending: Vec<u8>,
    /// The socket said EOF (or rustls will read no more).
    tcp_eof: bool,
    /// rustls has been told of the EOF.
    eof_fed: bool,
    /// The TLS error that ended the session, returned from then on.
    failed: Option<String>,
}

impl Session {
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::new(ErrorKind::InvalidData, e.clone())),
            None => Ok(()),
        }
    }

    fn can_feed(&self) -> bool {
        !self.pending.is_empty() || (self.tcp_eof && !self.eof_fed)
    }

    /// Hands rustls one read of the pending ciphertext (or the EOF) and
    /// processes it.
    fn feed(&mut self) -> io::Result<()> {
        let n = self.conn.read_tls(&mut &self.pending[..])?;
        if n == 0 {
            // EOF told, or a close_notify seen: rustls reads no more.
            self.pending.clear();
            self.tcp_eof = true;
            self.eof_fed = true;
        } else {
            self.pending.drain(..n);
        }
        if let Err(e) = self.conn.process_new_packets() {
            self.failed = Some(format!("TLS: {e}"));
            return self.check();
        }
        Ok(())
    }
}

impl TlsWire {
    /// A client session for `localhost` over a connected socket (the test
    /// certificate names `localhost` and 127.0.0.1).
    pub fn new(tcp: TcpStream, cfg: Arc<ClientConfig>) -> io::Result<TlsWire> {
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = ClientConnection::new(cfg, name)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        Ok(TlsWire {
            tcp,
            shared: Arc::new(Shared {
                session: Mutex::new(Session {
                    conn,
                    pending: Vec::new(),
                    tcp_eof: false,
                    eof_fed: false,
                    failed: None,
                }),
                reading: Mutex::new(()),
                writing: Mutex::new(()),
            }),
        })
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        lock(&self.shared.session)
    }

    /// True once the handshake has completed.
    pub fn handshaken(&self) -> bool {
        !self.session().conn.is_handshaking()
    }

    /// The protocol version agreed (after the handshake).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.session().conn.protocol_version()
    }

    /// Writes whatever TLS bytes the session has made, in order.
    fn flush_tls(&self) -> io::Result<()> {
        let _w = lock(&self.shared.writing);
        self.send_made()
    }

    /// [`Self::flush_tls`] unless a writer is at it (it may be blocked on
    /// a server that waits for this reader).
    fn try_flush_tls(&self) -> io::Result<()> {
        match self.shared.writing.try_lock() {
            Ok(_w) => self.send_made(),
            Err(_) => Ok(()),
        }
    }

    /// The session's TLS bytes onto the socket; the caller holds `writing`.
    fn send_made(&self) -> io::Result<()> {
        let out = {
            let mut s = self.session();
            let mut out = Vec::new();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut out)?;
            }
            out
        };
        if !out.is_empty() {
            (&self.tcp).write_all(&out)?;
        }
        Ok(())
    }

    /// One step of input: feeds what is pending, or else reads the socket
    /// (outside the session lock) and feeds that. The caller holds
    /// `reading`. On a TLS error the alert rustls made is sent (best
    /// effort) before the error is returned.
    fn advance(&self) -> io::Result<()> {
        let fed = {
            let mut s = self.session();
            s.check()?;
            if s.eof_fed {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
            if s.can_feed() {
                Some(s.feed())
            } else {
                None
            }
        };
        let fed = match fed {
            Some(r) => r,
            None => {
                let mut chunk = vec![0u8; 32 * 1024];
                let n = (&self.tcp).read(&mut chunk)?;
                let mut s = self.session();
                if n == 0 {
                    s.tcp_eof = true;
                } else {
                    s.pending.extend_from_slice(&chunk[..n]);
                }
                s.feed()
            }
        };
        if fed.is_err() {
            let _ = self.flush_tls();
        }
        fed
    }

    /// Completes the handshake if it is not done yet.
    fn handshake(&self) -> io::Result<()> {
        loop {
            let (handshaking, wants_write) = {
                let s = self.session();
                s.check()?;
                (s.conn.is_handshaking(), s.conn.wants_write())
            };
            if wants_write {
                self.flush_tls()?;
            }
            if !handshaking {
                return Ok(());
            }
            let _r = lock(&self.shared.reading);
            self.advance()?;
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.handshake()?;
        let _r = lock(&self.shared.reading);
        loop {
            let wants_write = {
                let mut s = self.session();
                s.check()?;
                match s.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // TCP's EOF without a close_notify: the suites read
                    // it as the close it is.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                s.conn.wants_write()
            };
            if wants_write {
                self.try_flush_tls()?;
            }
            self.advance()?;
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.handshake()?;
        let _w = lock(&self.shared.writing);
        let n = {
            let mut s = self.session();
            s.check()?;
            s.conn.writer().write(buf)?
        };
        self.send_made()?;
        Ok(n)
    }

    /// Sends a close_notify (after the handshake, if it can complete).
    fn close_notify(&self) {
        if self.handshake().is_ok() {
            self.session().conn.send_close_notify();
            let _ = self.flush_tls();
        }
    }
}
