//! A TUN device (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`): one descriptor
//! carrying bare IPv4 packets to and from the userland TCP/IP stack, one
//! `read` or `write` per packet, non-blocking. Attaching to a device that
//! already exists (made by `ip tuntap add`) needs no privilege beyond its
//! owner's; creating one needs CAP_NET_ADMIN.
//!
//! Opened with offloads ([`Tun::open_offloaded`], `IFF_VNET_HDR`), every
//! packet carries a `struct virtio_net_hdr` in front ([`VnetHdr`]): ours
//! ask the kernel to finish the TCP checksum and to cut a long segment
//! into MSS-sized ones (segmentation offload, as a NIC's TSO), so a bulk
//! transfer costs one write per 64 KiB instead of one per 1.4 KiB.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `_IOW('T', 208, unsigned int)`: which offloads the kernel may use on
/// packets it hands us.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;

/// `struct virtio_net_hdr` (legacy layout, 10 bytes, native byte order as
/// TUN reads it by default): what the kernel is to do with the packet
/// behind it, or what it did to one it hands us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Bytes of headers each cut segment repeats (IPv4 and TCP).
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub const LEN: usize = 10;
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` is to
    /// be finished and stored `csum_offset` into it.
    pub const NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`.
    pub const GSO_TCPV4: u8 = 1;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        (b.len() >= Self::LEN).then(|| VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded
/// to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

pub struct Tun {
    fd: OwnedFd,
    /// The device's name, for the questions asked of it by name (its MTU).
    name: String,
}

impl Tun {
    /// Attaches to (or creates) the TUN device `name`.
    pub fn open(name: &str) -> io::Result<Tun> {
        Tun::open_flags(name, IFF_TUN | IFF_NO_PI)
    }

    /// As [`Tun::open`], with a [`VnetHdr`] in front of every packet both
    /// ways. The kernel is asked for no offloads on what it hands us (its
    /// packets come whole, checksummed); ours may ask for both.
    pub fn open_offloaded(name: &str) -> io::Result<Tun> {
        let tun = Tun::open_flags(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR)?;
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        cvt(unsafe { libc::ioctl(tun.fd.as_raw_fd(), TUNSETOFFLOAD, 0 as libc::c_uint) })?;
        Ok(tun)
    }

    fn open_flags(name: &str, flags: libc::c_short) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid TUN device name {name:?}: 1 to 15 bytes"),
            ));
        }
        // SAFETY: a NUL-terminated constant path; the result is checked.
        let raw = cvt(unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `raw` was just opened and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which
        // `req` is laid out as and outlives the call.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) })?;
        Ok(Tun {
            fd,
            name: name.to_string(),
        })
    }

    /// The device's MTU, as it is now (`ip link set DEV mtu N` changes it).
    pub fn mtu(&self) -> io::Result<usize> {
        super::netif::mtu(&self.name)
    }

    /// One packet, or `EAGAIN` when none waits.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n =
            cvt(unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
        Ok(n as usize)
    }

    /// One packet out behind its header, in one `writev` (a device opened
    /// with [`Tun::open_offloaded`] only).
    pub fn send_with(&self, hdr: &VnetHdr, packet: &[u8]) -> io::Result<usize> {
        let h = hdr.to_bytes();
        let iov = [
            libc::iovec {
                iov_base: h.as_ptr() as *mut libc::c_void,
                iov_len: h.len(),
            },
            libc::iovec {
                iov_base: packet.as_ptr() as *mut libc::c_void,
                iov_len: packet.len(),
            },
        ];
        // SAFETY: both iovecs point at live buffers of their lengths, which
        // writev only reads.
        let n = cvt(unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) })?;
        Ok(n as usize)
    }

    /// One packet out (the device queues it or says `EAGAIN`/`ENOBUFS`).
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        // SAFETY: `packet` is valid for reads of its length.
        let n =
            cvt(unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) })?;
        Ok(n as usize)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
