//! `--stack user`: the whole server over glasshouse's own TCP/IP
//! (`crate::net`) on a TUN device. This file owns the device and the
//! choice of driver (`--stack-driver`): `single`, one thread that reads
//! the device, fires the stack's timers and runs the engines
//! ([`single`]), or `threaded`, the document's design of a receive
//! thread, a timer thread and a main thread around one mutex
//! ([`threaded`]). Under both, the engines run through the same
//! `driver::step` as the socket models, over a `driver::Pipe` that is a
//! connection of the stack instead of a socket ([`engines`], [`pool`]).
//! File regions are read into the stack's send buffer (there is no
//! `sendfile` into user space).

mod engines;
mod pool;
mod single;
mod threaded;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Instant;

use super::{Done, Shared};
use crate::config::StackDriver;
use crate::net::{Stack, StackConfig};
use crate::reactor::WorkerHandle;
use crate::sys::eventfd::Bell;
use crate::sys::poll::PollSet;
use crate::sys::tun::Tun;
use crate::telemetry::WorkerMetrics;
use engines::Engines;

/// Packets read from the device per turn, so that a flood cannot starve
/// the engines.
const PACKET_BURST: usize = 512;
/// Largest packet the device hands us (its MTU is 1500).
const MTU_BUF: usize = 65536;
/// The accept queue of the listener.
const BACKLOG: usize = 1024;

/// Puts one packet on the device. A full device queue drops it, as a wire
/// would; retransmission recovers it.
fn send_packet(tun: &Tun, p: &[u8]) -> io::Result<()> {
    match tun.send(p) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `--stack user` needs beyond the server's settings.
pub struct UserStack {
    /// The TUN device, already attached.
    pub tun: Tun,
    /// The stack's own address and the port it serves.
    pub addr: SocketAddrV4,
    /// Which driver runs it (`--stack-driver`).
    pub driver: StackDriver,
    /// `--tcp-keepalive` and `--tcp-rto-min`.
    pub keepalive: Option<crate::net::tcp::Keepalive>,
    pub rto_min: crate::net::Millis,
}

impl UserStack {
    /// Attaches to the TUN device named by `--link tun:NAME`.
    pub fn open(link: &str, addr: SocketAddrV4, driver: StackDriver) -> io::Result<UserStack> {
        let name = link.strip_prefix("tun:").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported --link {link:?}: expected tun:NAME"),
            )
        })?;
        // TUNSETIFF would create a missing device (as root) that nothing
        // routes to: the contract names an existing one. Asked of the
        // kernel (SIOCGIFINDEX), not of /sys/class/net, which shows the
        // namespace sysfs was mounted in, not necessarily ours.
        if nix::net::if_::if_nametoindex(name).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no network device {name:?} in this namespace (create it with scripts/usertcp.sh up)"),
            ));
        }
        Ok(UserStack {
            tun: Tun::open(name)?,
            addr,
            driver,
            keepalive: None,
            rto_min: crate::net::tcp::TcpConfig::default().rto_min,
        })
    }

    /// The TCP knobs the command line sets.
    pub fn tuned(
        mut self,
        keepalive: Option<crate::net::tcp::Keepalive>,
        rto_min: crate::net::Millis,
    ) -> UserStack {
        self.keepalive = keepalive;
        self.rto_min = rto_min;
        self
    }
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
    cfg.tcp.keepalive = us.keepalive;
    cfg.tcp.rto_min = us.rto_min;
    let bell = Arc::new(Bell::new()?);
    let ours = bell.clone();
    let port = us.addr.port();
    let thread = std::thread::Builder::new()
        .name("usertcp".into())
        .spawn(move || {
            let _done = Done(shared.life.clone());
            let mut stack = Stack::new(cfg);
            stack.listen(port, BACKLOG);
            let start = Instant::now();
            let r = match us.driver {
                StackDriver::Single => single::Single {
                    engines: Engines::new(RefCell::new(stack), port, start, shared, metrics),
                    tun: us.tun,
                    bell: ours,
                    packet: vec![0; MTU_BUF],
                    set: PollSet::default(),
                }
                .run(),
                StackDriver::Threaded => threaded::Wire::new(stack, us.tun, start).and_then(|w| {
                    threaded::Threaded {
                        engines: Engines::new(Arc::new(w), port, start, shared, metrics),
                        bell: ours,
                        set: PollSet::default(),
                    }
                    .run()
                }),
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "usertcp loop failed");
            }
        })?;
    Ok(vec![WorkerHandle { bell, thread }])
}
