//! Thin, typed wrappers over the Linux syscalls the server is built on: this
//! is the only module allowed `unsafe`, and every block says why it is sound.
//! Descriptors are `OwnedFd`s, closed on drop; every call returns
//! `io::Result`. Where `nix` covers a call we use it; raw `libc` fills the gaps.
//! Nothing here knows about HTTP, connections or threads.

pub mod epoll;
pub mod eventfd;
pub mod fs;
pub mod ktls;
pub mod netif;
pub mod packet;
pub mod poll;
pub mod process;
pub mod rlimit;
pub mod signals;
pub mod socket;
pub mod tun;
pub mod uring;

use std::io;

/// Turns a `-1`-on-error libc return into `io::Result`.
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn from_nix(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}
