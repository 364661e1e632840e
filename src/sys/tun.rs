//! A TUN device (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`): one descriptor
//! carrying bare IPv4 packets to and from the userland TCP/IP stack, one
//! `read` or `write` per packet, non-blocking. Attaching to a device that
//! already exists (made by `ip tuntap add`) needs no privilege beyond its
//! owner's; creating one needs CAP_NET_ADMIN.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

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
            flags: IFF_TUN | IFF_NO_PI,
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
