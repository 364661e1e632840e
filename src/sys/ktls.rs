//! Kernel TLS glue: whether this kernel offers the `tls` upper-layer
//! protocol (`setsockopt(TCP_ULP, "tls")`). Probed once at start-up on a
//! fresh, unconnected TCP socket: ENOENT means the kernel has no TLS ULP
//! (built without `CONFIG_TLS`, or the module absent); any other answer
//! (ENOTCONN on an unconnected socket) means it is there.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt;

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The kernel can take TLS keys (`TCP_ULP "tls"` exists).
    Available,
    /// No TLS ULP: userspace TLS only.
    Absent,
}

/// Probes for the kernel TLS upper-layer protocol.
pub fn probe() -> io::Result<Support> {
    // SAFETY: socket(2) with constant arguments; the result is checked
    // before it is wrapped.
    let raw =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a descriptor we just created and own alone.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let name = b"tls";
    // SAFETY: the option value is a valid buffer of the given length for
    // the duration of the call; the descriptor is open.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if ret == 0 {
        return Ok(Support::Available);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) => Ok(Support::Absent),
        Some(libc::ENOTCONN) => Ok(Support::Available),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_answers() {
        // Either answer is right on some kernel; an error is not.
        super::probe().expect("TCP_ULP probe");
    }
}
