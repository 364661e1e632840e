//! `--stack user`: the whole server over glasshouse's own TCP/IP
//! (`crate::net`) on a TUN device, driven by one thread — the
//! single-threaded driver of issue 13. The loop reads every packet the
//! device has into the stack, lets the stack fire its timers, gives each
//! established connection an engine, and runs the engines through the same
//! `driver::step` as the socket models, over a `driver::Pipe` that is a connection of
//! the stack instead of a socket. File regions are read into the stack's
//! send buffer (there is no `sendfile` into user space). It waits in
//! poll(2) on the device and the bell, until the stack's or an engine's
//! next deadline.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::{step, Admission, Lent, Pipe, Step, SCRATCH};
use super::{listener_closed, Done, Shared, TICK};
use crate::net::tcp::TcpError;
use crate::net::{Handle, Millis, Stack, StackConfig};
use crate::reactor::{State, WorkerHandle};
use crate::sys::eventfd::Bell;
use crate::sys::poll::{PollSet, Want};
use crate::sys::tun::Tun;
use crate::telemetry::{HttpObserver, Metrics, WorkerMetrics};
use crate::tls::Session;

/// Packets read from the device per turn, so that a flood cannot starve
/// the engines.
const PACKET_BURST: usize = 512;
/// Engine steps per connection per turn.
const STEPS: usize = 64;
/// Largest packet the device hands us (its MTU is 1500).
const MTU_BUF: usize = 65536;
/// The accept queue of the listener.
const BACKLOG: usize = 1024;
/// How often the stack's STATUS is copied out for `/api/tcp`.
const VIEW_EVERY: Duration = Duration::from_millis(200);
/// How long a stopping server keeps the stack running for closes in
/// progress, once every engine has finished.
const LINGER: Duration = Duration::from_secs(2);

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// One connection of the stack, seen as a socket by [`step`].
struct UserPipe<'a> {
    stack: &'a RefCell<Stack>,
    handle: Handle,
}

impl Pipe for UserPipe<'_> {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stack.borrow_mut().recv(self.handle, buf) {
            Ok(n) => Ok(n),
            Err(TcpError::WouldBlock) => Err(errno(libc::EAGAIN)),
            Err(TcpError::TimedOut) => Err(errno(libc::ETIMEDOUT)),
            Err(_) => Err(errno(libc::ECONNRESET)),
        }
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        match self.stack.borrow_mut().send(self.handle, data) {
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
            .stack
            .borrow()
            .tcb(self.handle)
            .map_or(0, |t| t.send_room());
        if room == 0 {
            return Err(errno(libc::EAGAIN));
        }
        let mut buf = vec![0u8; room.min(count).min(SCRATCH)];
        let n = file.read_at(&mut buf, *offset)?;
        if n == 0 {
            return Ok(0);
        }
        let sent = self.write(&buf[..n])?;
        *offset += sent as u64;
        Ok(sent)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.stack.borrow_mut().close(self.handle);
        Ok(())
    }
}

/// What `--stack user` needs beyond the server's settings.
pub struct UserStack {
    /// The TUN device, already attached.
    pub tun: Tun,
    /// The stack's own address and the port it serves.
    pub addr: SocketAddrV4,
}

impl UserStack {
    /// Attaches to the TUN device named by `--link tun:NAME`.
    pub fn open(link: &str, addr: SocketAddrV4) -> io::Result<UserStack> {
        let name = link.strip_prefix("tun:").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported --link {link:?}: expected tun:NAME"),
            )
        })?;
        // TUNSETIFF would create a missing device (as root) that nothing
        // routes to: the contract names an existing one.
        if name.contains('/') || !std::path::Path::new("/sys/class/net").join(name).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no network device {name:?} in this namespace (create it with scripts/usertcp.sh up)"),
            ));
        }
        Ok(UserStack {
            tun: Tun::open(name)?,
            addr,
        })
    }
}

struct Conn {
    engine: Session<HttpObserver>,
    _admission: Admission,
}

pub(super) fn spawn(
    us: UserStack,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    let metrics = metrics
        .into_iter()
        .next()
        .ok_or(io::ErrorKind::InvalidInput)?;
    let mut secret = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut secret)?;
    let mut cfg = StackConfig::new(*us.addr.ip(), secret);
    // The device's MTU is 1500.
    cfg.tcp.mss = 1460;
    let bell = Arc::new(Bell::new()?);
    let ours = bell.clone();
    let thread = std::thread::Builder::new()
        .name("usertcp".into())
        .spawn(move || {
            let _done = Done(shared.life.clone());
            let mut stack = Stack::new(cfg);
            stack.listen(us.addr.port(), BACKLOG);
            let figures = shared.metrics.clone();
            let mut l = Loop {
                figures,
                lent: Lent::new(0, shared, metrics),
                tun: us.tun,
                port: us.addr.port(),
                stack: RefCell::new(stack),
                conns: HashMap::new(),
                bell: ours,
                scratch: vec![0; SCRATCH],
                packet: vec![0; MTU_BUF],
                set: PollSet::default(),
                seen: State::Running,
                start: Instant::now(),
                listening: true,
                linger_until: None,
                viewed: None,
            };
            if let Err(e) = l.run() {
                tracing::error!(error = %e, "usertcp loop failed");
            }
        })?;
    Ok(vec![WorkerHandle { bell, thread }])
}

struct Loop {
    /// The whole server's figures, where the stack's STATUS is published.
    figures: Arc<Metrics>,
    lent: Lent,
    tun: Tun,
    port: u16,
    stack: RefCell<Stack>,
    conns: HashMap<Handle, Conn>,
    bell: Arc<Bell>,
    scratch: Vec<u8>,
    packet: Vec<u8>,
    set: PollSet,
    seen: State,
    /// The stack's clock counts milliseconds from here.
    start: Instant,
    listening: bool,
    /// When the drain's last engine finished: the stack stops by then.
    linger_until: Option<Instant>,
    /// When the stack's STATUS was last published.
    viewed: Option<Instant>,
}

impl Loop {
    fn now_ms(&self) -> Millis {
        self.lent
            .now
            .saturating_duration_since(self.start)
            .as_millis() as Millis
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            self.lent.refresh();
            if self.lent.state != self.seen {
                self.seen = self.lent.state;
                match self.seen {
                    State::Draining => self.begin_drain(),
                    State::Forced => self.force_close(),
                    State::Running => {}
                }
            }
            let now = self.now_ms();
            for _ in 0..PACKET_BURST {
                match self.tun.recv(&mut self.packet) {
                    Ok(n) => self.stack.get_mut().receive(now, &self.packet[..n]),
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                    Err(e) => return Err(e),
                }
            }
            self.stack.get_mut().poll(now);
            self.accept();
            let mut touched = self.stack.get_mut().take_events();
            let due: Vec<Handle> = self
                .conns
                .iter()
                .filter(|(_, c)| c.engine.next_deadline().is_some_and(|d| d <= self.lent.now))
                .map(|(h, _)| *h)
                .collect();
            touched.extend(due);
            touched.sort();
            touched.dedup();
            for h in touched {
                self.drive(h);
            }
            self.flush(now)?;
            self.publish(now);
            if self.seen != State::Running && self.conns.is_empty() {
                // The engines are done; the closes they began still need
                // their FINs acknowledged (a peer left waiting for an ACK
                // would retransmit into silence: nobody else answers for
                // this address). Bounded by LINGER.
                let linger = *self.linger_until.get_or_insert(self.lent.now + LINGER);
                if self.stack.get_mut().active() == 0 || self.lent.now >= linger {
                    return Ok(());
                }
            }
            self.wait()?;
        }
    }

    /// A copy of the stack's STATUS for `/api/tcp`, every [`VIEW_EVERY`]:
    /// a reader never waits on the stack, and the stack's thread spends
    /// one walk of its table per copy.
    fn publish(&mut self, now: Millis) {
        if self.viewed.is_some_and(|t| self.lent.now < t + VIEW_EVERY) {
            return;
        }
        self.viewed = Some(self.lent.now);
        let view = self.stack.get_mut().view(now);
        self.figures.tcp.publish(view);
    }

    /// Everything the stack queued goes to the device.
    fn flush(&mut self, now: Millis) -> io::Result<()> {
        let stack = self.stack.get_mut();
        stack.poll(now);
        while let Some(p) = stack.transmit() {
            match self.tun.send(&p) {
                Ok(_) => {}
                // A full device queue drops the packet, as a wire would;
                // retransmission recovers it.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn wait(&mut self) -> io::Result<()> {
        let now = self.now_ms();
        let mut wake = self.lent.now + TICK;
        if let Some(t) = self.stack.get_mut().poll_at(now) {
            wake = wake.min(self.start + Duration::from_millis(t));
        }
        for c in self.conns.values() {
            if let Some(d) = c.engine.next_deadline() {
                wake = wake.min(d);
            }
        }
        let read = Want {
            read: true,
            write: false,
        };
        self.set.clear();
        let tun_ix = self.set.push(self.tun.as_fd(), read);
        let bell_ix = self.set.push(self.bell.as_fd(), read);
        let _ = tun_ix;
        self.set
            .wait(Some(wake.saturating_duration_since(Instant::now())))?;
        if self.set.ready(bell_ix).any() {
            self.bell.clear();
        }
        Ok(())
    }

    fn accept(&mut self) {
        let max = self.lent.max_connections();
        while let Some(h) = self.stack.get_mut().accept(self.port) {
            let peer = {
                let s = self.stack.get_mut();
                let t = s.tcb(h).expect("an accepted handle is live");
                IpAddr::V4(*t.remote.ip())
            };
            let Some(admission) =
                Admission::enter(self.lent.life(), max, peer, self.lent.metrics())
            else {
                let now = self.now_ms();
                let s = self.stack.get_mut();
                s.abort(h);
                s.release(now, h);
                continue;
            };
            let (local, remote) = {
                let s = self.stack.get_mut();
                let t = s.tcb(h).expect("an accepted handle is live");
                (t.local, t.remote)
            };
            let Some(mut engine) = self
                .lent
                .connection_at(SocketAddr::V4(remote), SocketAddr::V4(local))
            else {
                let now = self.now_ms();
                let s = self.stack.get_mut();
                s.abort(h);
                s.release(now, h);
                continue;
            };
            if self.seen != State::Running {
                self.lent.drain(&mut engine);
            }
            self.conns.insert(
                h,
                Conn {
                    engine,
                    _admission: admission,
                },
            );
        }
    }

    fn drive(&mut self, h: Handle) {
        let Some(c) = self.conns.get_mut(&h) else {
            return;
        };
        let mut env = self.lent.env();
        if c.engine.next_deadline().is_some_and(|d| d <= env.now) {
            c.engine.on_timer(&mut env);
        }
        let pipe = UserPipe {
            stack: &self.stack,
            handle: h,
        };
        let mut close = false;
        for _ in 0..STEPS {
            match step(&pipe, &mut c.engine, &mut env, &mut self.scratch, true) {
                Step::Moved | Step::Read(_) => {}
                Step::Blocked { .. } | Step::Idle => break,
                Step::Close => {
                    close = true;
                    break;
                }
            }
        }
        self.lent.collect_drained(&mut c.engine);
        if close {
            self.close(h, false);
        }
    }

    fn close(&mut self, h: Handle, forced: bool) {
        let Some(c) = self.conns.remove(&h) else {
            return;
        };
        let now = self.now_ms();
        let s = self.stack.get_mut();
        if forced {
            s.abort(h);
        } else {
            s.close(h);
        }
        s.release(now, h);
        self.lent.close(c.engine, forced);
    }

    fn begin_drain(&mut self) {
        if self.listening {
            self.listening = false;
            self.accept();
            self.stack.get_mut().unlisten(self.port);
        }
        let handles: Vec<Handle> = self.conns.keys().copied().collect();
        for h in handles {
            self.drive(h);
            if let Some(c) = self.conns.get_mut(&h) {
                self.lent.drain(&mut c.engine);
            }
            self.drive(h);
        }
        listener_closed(self.lent.life());
    }

    fn force_close(&mut self) {
        let handles: Vec<Handle> = self.conns.keys().copied().collect();
        for h in handles {
            self.close(h, true);
        }
    }
}
