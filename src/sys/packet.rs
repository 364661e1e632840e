//! An `AF_PACKET` `SOCK_RAW` socket bound to one interface: whole Ethernet
//! frames in and out, one `recvmsg` or `sendmsg` per frame, non-blocking and
//! close-on-exec. It taps frames where the device hands them to the kernel,
//! before IP input and netfilter, which is why a userland stack can serve
//! on it beside the kernel's. What the frames mean (Ethernet, ARP, IPv4) is
//! `net`'s business. Needs CAP_NET_RAW.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, netif};

/// `<linux/if_packet.h>`, spelled here so that an older libc still builds.
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const PACKET_OUTGOING: u8 = 4;
/// Frames looked at and skipped (our own, read back) before `recv` says
/// `EAGAIN`, so that it always returns.
const SKIP_BOUND: usize = 64;

/// `struct tpacket_auxdata`, the control message `PACKET_AUXDATA` adds.
#[repr(C)]
#[derive(Clone, Copy)]
struct AuxData {
    tp_status: u32,
    /// `tp_len`, `tp_snaplen`, `tp_mac`, `tp_net`, `tp_vlan_tci`,
    /// `tp_vlan_tpid`: nothing we read.
    _rest: [u8; 16],
}

/// One frame read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Its length on the wire; more than the buffer when it was cut short.
    pub len: usize,
    /// The sender left the transport checksum to offload (a veth peer or
    /// a frame this host sent): the field holds only the pseudo-header's
    /// sum.
    pub csum_not_ready: bool,
    /// The NIC stripped an 802.1Q tag off it (the tag is in the control
    /// message, not the frame): the frame belongs to a VLAN.
    pub vlan_tagged: bool,
}

pub struct PacketSocket {
    fd: OwnedFd,
    /// The kernel has no `PACKET_IGNORE_OUTGOING` (before 4.20): our own
    /// frames come back and `recv` skips them by their packet type.
    skip_outgoing: bool,
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is one `c_int` that outlives the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

impl PacketSocket {
    /// Opens a packet socket on the interface `name` (of the current
    /// network namespace), receiving every protocol.
    pub fn open(name: &str) -> io::Result<PacketSocket> {
        let ifindex = netif::index(name)?;
        // Protocol 0 receives nothing until the bind names the interface,
        // so no frame of another interface slips in between.
        // SAFETY: a plain socket(2) call; the result is checked.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `raw` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let skip_outgoing =
            setsockopt_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1).is_err();
        setsockopt_int(&fd, libc::SOL_PACKET, PACKET_AUXDATA, 1)?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `sll` is a valid sockaddr_ll of the length passed.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(PacketSocket { fd, skip_outgoing })
    }

    /// One frame into `buf`, or `EAGAIN` when none waits. A frame longer
    /// than `buf` is cut; [`Frame::len`] says so.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Frame> {
        for _ in 0..SKIP_BOUND {
            // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // Room for one cmsg carrying `AuxData`, u64-aligned.
            let mut cbuf = [MaybeUninit::<u64>::uninit(); 8];
            // SAFETY: msghdr is plain old data; all-zero is a valid value.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 8]>();
            // SAFETY: every pointer in `msg` is valid for the length it
            // states and outlives the call. MSG_TRUNC returns the frame's
            // real length.
            let n = cvt(unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) })?;
            if self.skip_outgoing && from.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            let (mut csum_not_ready, mut vlan_tagged) = (false, false);
            // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR and
            // CMSG_NXTHDR stay within `msg_controllen` of `cbuf`.
            let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
            while !c.is_null() {
                // SAFETY: `c` is a cmsghdr within `cbuf` (checked non-null).
                let h = unsafe { &*c };
                if h.cmsg_level == libc::SOL_PACKET && h.cmsg_type == PACKET_AUXDATA {
                    // SAFETY: this control message carries one
                    // `tpacket_auxdata`, possibly unaligned in `cbuf`.
                    let aux: AuxData =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                    csum_not_ready = aux.tp_status & TP_STATUS_CSUMNOTREADY != 0;
                    vlan_tagged = aux.tp_status & TP_STATUS_VLAN_VALID != 0;
                }
                // SAFETY: as for CMSG_FIRSTHDR.
                c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
            }
            return Ok(Frame {
                len: n as usize,
                csum_not_ready,
                vlan_tagged,
            });
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    /// One frame out, gathered from `head` (the Ethernet header) and
    /// `body` so that the packet above is never copied. A full device
    /// queue says `EAGAIN` or `ENOBUFS`.
    pub fn send(&self, head: &[u8], body: &[u8]) -> io::Result<usize> {
        let iov = [
            libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: body.as_ptr() as *mut libc::c_void,
                iov_len: body.len(),
            },
        ];
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len();
        // SAFETY: both iovecs point at live slices of the lengths stated;
        // sendmsg only reads them. The bound socket names the interface.
        let n = cvt(unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) })?;
        Ok(n as usize)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
