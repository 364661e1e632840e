//! `--stack user`: the whole server over glasshouse's own TCP/IP
//! (`crate::net`) on a link: a TUN device or an Ethernet interface through
//! `AF_PACKET` ([`link`]). This file owns opening the link and the
//! choice of driver (`--stack-driver`): `single`, one thread that reads
//! the link, fires the stack's and the link's timers and runs the engines
//! ([`single`]), or `threaded`, the document's design of a receive
//! thread, a timer thread and a main thread around one mutex
//! ([`threaded`]). Under both, the engines run through the same
//! `driver::step` as the socket models, over a `driver::Pipe` that is a
//! connection of the stack instead of a socket ([`engines`], [`pool`]).
//! File regions are read into the stack's send buffer (there is no
//! `sendfile` into user space).

mod engines;
pub mod link;
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
use crate::telemetry::WorkerMetrics;
use engines::Engines;
use link::UserLink;

/// Packets read from the link per turn, so that a flood cannot starve
/// the engines.
const PACKET_BURST: usize = 512;
/// Room for the largest packet a link hands us, with its link header: a
/// veth peer passes on its offloaded 64 KiB segments whole.
const MTU_BUF: usize = 65536 + 64;
/// The accept queue of the listener.
const BACKLOG: usize = 1024;

/// What `--stack user` needs beyond the server's settings.
pub struct UserStack {
    /// The link, already open.
    pub link: Box<dyn UserLink>,
    /// The stack's own address and the port it serves.
    pub addr: SocketAddrV4,
    /// Which driver runs it (`--stack-driver`).
    pub driver: StackDriver,
    /// `--tcp-keepalive` and `--tcp-rto-min`.
    pub keepalive: Option<crate::net::tcp::Keepalive>,
    pub rto_min: crate::net::Millis,
}

impl UserStack {
    /// Opens the link `--link` names (`tun:NAME` or `packet:IFNAME`).
    /// `offload`: `--stack-offload` (TUN links only).
    pub fn open(
        link: &str,
        addr: SocketAddrV4,
        driver: StackDriver,
        offload: bool,
    ) -> io::Result<UserStack> {
        Ok(UserStack {
            link: link::open(link, *addr.ip(), offload)?,
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
    // Segments that fill the link's MTU (RFC 9293 §3.7.1: MTU less the
    // 40 bytes of IPv4 and TCP headers without options), within the
    // 536..=65495 a peer can be offered.
    cfg.tcp.mss = us.link.mtu().saturating_sub(40).clamp(536, 65495);
    cfg.tcp.keepalive = us.keepalive;
    cfg.tcp.rto_min = us.rto_min;
    if us.link.offloads() {
        cfg.csum_offload = true;
        cfg.tcp.tso_max = link::TSO_MAX;
    }
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
                    link: us.link,
                    bell: ours,
                    packet: vec![0; MTU_BUF],
                    set: PollSet::default(),
                }
                .run(),
                StackDriver::Threaded => threaded::Wire::new(stack, us.link, start).and_then(|w| {
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
