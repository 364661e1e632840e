//! The links `--stack user` runs on, each behind `net::link::Link` plus a
//! descriptor to wait on: a TUN device (`--link tun:NAME`), which carries
//! bare IPv4 packets, and an Ethernet interface through an `AF_PACKET`
//! socket (`--link packet:IFNAME`), where `net::ether` turns frames into
//! packets and answers and asks ARP. The drivers take either as a
//! [`UserLink`] and know no difference beyond its MTU and timers.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, PoisonError};

use crate::net::ether::{Ether, EtherConfig, EtherView, Out};
use crate::net::link::Link;
use crate::net::wire::ether::{Mac, HEADER_LEN};
use crate::net::wire::offload::complete_tcp_checksum;
use crate::net::Millis;
use crate::net::Packet;
use crate::sys::netif;
use crate::sys::packet::PacketSocket;
use crate::sys::tun::{Tun, VnetHdr};

/// Frames `PacketLink::recv` reads (ARP, IPv6, anything not for the
/// stack) before it returns, so that a flood of them cannot hold a driver.
const FRAME_BURST: usize = 64;

/// A link a driver can run on: packets, timers, and a descriptor that
/// polls readable when `recv` may have something.
pub trait UserLink: Link + AsFd + Send + Sync {}
impl<T: Link + AsFd + Send + Sync> UserLink for T {}

/// Opens the link `--link` names (`tun:NAME` or `packet:IFNAME`) for the
/// stack's address `ip`.
pub fn open(spec: &str, ip: Ipv4Addr, offload: bool) -> io::Result<Box<dyn UserLink>> {
    let (kind, name) = spec.split_once(':').unwrap_or(("", ""));
    // Asked of the kernel (SIOCGIFINDEX), not of /sys/class/net, which
    // shows the namespace sysfs was mounted in, not necessarily ours. For a
    // TUN device this also keeps TUNSETIFF from creating (as root) a missing
    // device that nothing routes to: the contract names an existing one.
    if matches!(kind, "tun" | "packet") && netif::index(name).is_err() {
        let hint = if kind == "tun" {
            "create it with scripts/usertcp.sh up"
        } else {
            "name an Ethernet interface of this namespace (ip link)"
        };
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network device {name:?} in this namespace ({hint})"),
        ));
    }
    match kind {
        "tun" => Ok(Box::new(TunLink::open(name, offload)?)),
        "packet" => Ok(Box::new(PacketLink::open(name, ip)?)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported --link {spec:?}: expected tun:NAME or packet:IFNAME"),
        )),
    }
}

/// A send the link had no room for is a packet lost on the wire (the
/// stack retransmits); so is one while the interface is down, or one
/// larger than an MTU lowered since the link opened.
fn dropped_ok(r: io::Result<usize>) -> io::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN | libc::ENOBUFS | libc::ENETDOWN | libc::EMSGSIZE)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A TUN device: one packet per read or write. With offloads, a
/// `virtio_net_hdr` rides in front of each (see `sys::tun`), by which the
/// kernel finishes our TCP checksums and cuts our long segments.
pub struct TunLink {
    tun: Tun,
    /// Read once at start, as the stack's MSS is.
    mtu: usize,
    offload: bool,
}

impl TunLink {
    pub fn open(name: &str, offload: bool) -> io::Result<TunLink> {
        let tun = if offload {
            Tun::open_offloaded(name)?
        } else {
            Tun::open(name)?
        };
        let mtu = tun.mtu()?;
        Ok(TunLink { tun, mtu, offload })
    }
}

/// The largest payload one offloaded segment carries: an IPv4 packet is at
/// most 65,535 bytes, less 20 of IPv4 header and up to 60 of TCP's.
pub const TSO_MAX: usize = 65_535 - 20 - 60;

impl Link for TunLink {
    fn send(&self, _now: Millis, packet: &[u8]) -> io::Result<()> {
        if self.offload {
            return dropped_ok(self.tun.send_with(&VnetHdr::default(), packet));
        }
        dropped_ok(self.tun.send(packet))
    }

    fn send_packet(&self, now: Millis, p: &Packet) -> io::Result<()> {
        if !self.offload {
            return self.send(now, &p.bytes);
        }
        let mut h = VnetHdr::default();
        if p.csum_partial {
            h.flags = VnetHdr::NEEDS_CSUM;
            h.csum_start = Packet::CSUM_START as u16;
            h.csum_offset = Packet::CSUM_OFFSET as u16;
        }
        if p.gso_size > 0 {
            h.gso_type = VnetHdr::GSO_TCPV4;
            h.gso_size = p.gso_size;
            h.hdr_len = p.header_len() as u16;
        }
        dropped_ok(self.tun.send_with(&h, &p.bytes))
    }

    fn recv<'b>(&self, _now: Millis, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        let n = match self.tun.recv(buf) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !self.offload {
            return Ok(Some(&buf[..n]));
        }
        let Some(h) = VnetHdr::parse(&buf[..n]) else {
            // Shorter than its header: nothing the stack could read.
            return Ok(Some(&buf[..0]));
        };
        let packet = &mut buf[VnetHdr::LEN..n];
        if h.flags & VnetHdr::NEEDS_CSUM != 0 {
            // Asked for no offloads, the kernel should not leave one to
            // us; if it does, the checksum is finished here.
            complete_tcp_checksum(packet);
        }
        Ok(Some(packet))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn offloads(&self) -> bool {
        self.offload
    }
}

impl AsFd for TunLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tun.as_fd()
    }
}

/// An Ethernet interface: frames through a packet socket, the interface
/// state (the ARP table) behind a mutex of its own, held for one frame's
/// decision. The frames it emits itself are sent under that mutex (ARP is
/// rare); a packet of the stack is sent after it is let go.
pub struct PacketLink {
    sock: PacketSocket,
    mtu: usize,
    iface: Mutex<Ether>,
}

/// Sends what the interface emits, keeping the first hard error.
fn emitter<'a>(
    sock: &'a PacketSocket,
    err: &'a mut Option<io::Error>,
) -> impl FnMut(&[u8; HEADER_LEN], &[u8]) + 'a {
    move |head, body| {
        if let Err(e) = dropped_ok(sock.send(head, body)) {
            err.get_or_insert(e);
        }
    }
}

impl PacketLink {
    /// Opens a packet socket on `name`, answering ARP for `ip` with the
    /// interface's own MAC, and announces the address (gratuitous ARP).
    pub fn open(name: &str, ip: Ipv4Addr) -> io::Result<PacketLink> {
        let sock = PacketSocket::open(name)?;
        let mac = Mac(netif::ether_addr(name)?);
        let mtu = netif::mtu(name)?;
        let link = PacketLink {
            sock,
            mtu,
            iface: Mutex::new(Ether::new(EtherConfig {
                mac,
                ip,
                neighbours: Default::default(),
            })),
        };
        let mut err = None;
        link.with(|e| e.announce(&mut emitter(&link.sock, &mut err)));
        tracing::info!(interface = name, %mac, mtu, %ip, "packet link open");
        err.map_or(Ok(link), Err)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Ether) -> R) -> R {
        // A panic under the lock left the table between two calls, each of
        // which keeps it consistent: carry on.
        f(&mut self.iface.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` with an emitter, then returns what the emitter failed with.
    fn emitting<R>(&self, f: impl FnOnce(&mut Ether, &mut Out<'_>) -> R) -> io::Result<R> {
        let mut err = None;
        let r = self.with(|e| f(e, &mut emitter(&self.sock, &mut err)));
        err.map_or(Ok(r), Err)
    }
}

impl Link for PacketLink {
    fn send(&self, now: Millis, packet: &[u8]) -> io::Result<()> {
        match self.emitting(|e, out| e.send(now, packet, out))? {
            Some(head) => dropped_ok(self.sock.send(&head, packet)),
            None => Ok(()),
        }
    }

    fn recv<'b>(&self, now: Millis, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        for _ in 0..FRAME_BURST {
            let frame = match self.sock.recv(buf) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
                Err(e) => return Err(e),
            };
            if frame.len > buf.len() {
                self.with(|e| e.counters.malformed += 1);
                continue;
            }
            // A VLAN's frame, its tag stripped by the NIC: not for the
            // untagged interface the stack answers on (no VLANs yet).
            if frame.vlan_tagged {
                self.with(|e| e.counters.other_ethertype += 1);
                continue;
            }
            let got = self.emitting(|e, out| {
                let n = e.receive(now, &mut buf[..frame.len], out).map(|p| p.len());
                if n.is_some() && frame.csum_not_ready {
                    e.counters.checksums_completed += 1;
                }
                n
            })?;
            if let Some(n) = got {
                let packet = &mut buf[HEADER_LEN..HEADER_LEN + n];
                if frame.csum_not_ready {
                    complete_tcp_checksum(packet);
                }
                return Ok(Some(packet));
            }
        }
        Ok(None)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn poll(&self, now: Millis) -> io::Result<()> {
        self.emitting(|e, out| e.poll(now, out))
    }

    fn poll_at(&self) -> Option<Millis> {
        self.with(|e| e.poll_at())
    }

    fn ether(&self) -> Option<EtherView> {
        Some(self.with(|e| e.view()))
    }
}

impl AsFd for PacketLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for PacketLink {
    fn drop(&mut self) {
        let (frames, table) = self.with(|e| (e.counters, e.neighbour_counters()));
        tracing::info!(?frames, ?table, "packet link closed");
    }
}
