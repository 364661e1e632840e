//! Questions about one network interface, asked of the kernel by name
//! through `struct ifreq` ioctls: its MTU (`SIOCGIFMTU`) and its Ethernet
//! address (`SIOCGIFHWADDR`). The links of the userland stack ask them once
//! at start; nothing here changes an interface.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt;

/// `struct ifreq`: the name, then the union the request fills (an `int`
/// for the MTU, a `struct sockaddr` for the hardware address), padded to
/// the kernel's 40 bytes. Aligned like the union's pointers.
#[repr(C, align(8))]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?}: 1 to 15 bytes"),
            ));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(req)
    }

    /// Runs one `SIOCGIF*` request on a throwaway datagram socket (any
    /// socket will do; the request names the interface).
    fn ask(mut self, request: libc::c_ulong) -> io::Result<IfReq> {
        // SAFETY: a plain socket(2) call; the result is checked.
        let raw =
            cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `raw` was just created and is owned by nobody else.
        let sock = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the SIOCGIF* requests read the name and write the union
        // of one `struct ifreq`, which `self` is laid out as and outlives
        // the call.
        cvt(unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut self as *mut IfReq) })?;
        Ok(self)
    }
}

/// The interface's MTU: the largest IP packet it carries.
pub fn mtu(name: &str) -> io::Result<usize> {
    let req = IfReq::new(name)?.ask(libc::SIOCGIFMTU)?;
    let mtu = i32::from_ne_bytes([req.data[0], req.data[1], req.data[2], req.data[3]]);
    usize::try_from(mtu).map_err(|_| io::Error::other(format!("{name}: MTU {mtu}")))
}

/// The interface's Ethernet address. Fails on an interface that has none
/// (a TUN device, loopback).
pub fn ether_addr(name: &str) -> io::Result<[u8; 6]> {
    let req = IfReq::new(name)?.ask(libc::SIOCGIFHWADDR)?;
    // `struct sockaddr`: a two-byte family, then the address bytes.
    let family = u16::from_ne_bytes([req.data[0], req.data[1]]);
    if family != libc::ARPHRD_ETHER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not an Ethernet interface (hardware type {family})"),
        ));
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req.data[2..8]);
    Ok(mac)
}

/// The interface's index, or `NotFound` when the current network
/// namespace has no interface of that name.
pub fn index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface {name:?} in this namespace"),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_has_an_mtu_and_no_ethernet_address() {
        assert!(super::mtu("lo").unwrap() >= 1280);
        assert!(super::ether_addr("lo").is_err());
        assert!(super::index("lo").unwrap() > 0);
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(super::mtu("").is_err());
        assert!(super::mtu("a-name-far-too-long").is_err());
        assert_eq!(
            super::index("gh-no-such-if").unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
