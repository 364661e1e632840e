//! Kernel TLS glue over libc: whether this kernel offers the `tls`
//! upper-layer protocol (`setsockopt(TCP_ULP, "tls")`), the `crypto_info`
//! structures of `<linux/tls.h>` that carry a direction's key, salt, IV
//! and record sequence, and the calls that hand them to a socket
//! (`SOL_TLS`, `TLS_TX`/`TLS_RX`). The probe runs once at start-up on a
//! fresh, unconnected TCP socket: ENOENT means the kernel has no TLS ULP
//! (built without `CONFIG_TLS`, or the module absent); ENOTCONN (the
//! socket is not connected) means it is there.

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

/// `struct tls_crypto_info`: the header of every `crypto_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoHeader {
    pub version: u16,
    pub cipher_type: u16,
}

pub const TLS_1_2_VERSION: u16 = 0x0303;
pub const TLS_1_3_VERSION: u16 = 0x0304;
pub const TLS_CIPHER_AES_GCM_128: u16 = 51;
pub const TLS_CIPHER_AES_GCM_256: u16 = 52;
pub const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;
const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;

/// `struct tls12_crypto_info_aes_gcm_128` (also used for TLS 1.3).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AesGcm128 {
    pub info: InfoHeader,
    pub iv: [u8; 8],
    pub key: [u8; 16],
    pub salt: [u8; 4],
    pub rec_seq: [u8; 8],
}

/// `struct tls12_crypto_info_aes_gcm_256`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AesGcm256 {
    pub info: InfoHeader,
    pub iv: [u8; 8],
    pub key: [u8; 32],
    pub salt: [u8; 4],
    pub rec_seq: [u8; 8],
}

/// `struct tls12_crypto_info_chacha20_poly1305` (no salt: the 12-byte IV
/// is the whole nonce base).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chacha20Poly1305 {
    pub info: InfoHeader,
    pub iv: [u8; 12],
    pub key: [u8; 32],
    pub rec_seq: [u8; 8],
}

/// One direction's keys in the kernel's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoInfo {
    AesGcm128(AesGcm128),
    AesGcm256(AesGcm256),
    Chacha20Poly1305(Chacha20Poly1305),
}

impl CryptoInfo {
    /// The bytes `setsockopt(SOL_TLS, ...)` takes.
    fn as_bytes(&self) -> &[u8] {
        fn bytes<T>(v: &T) -> &[u8] {
            // T is one of the `repr(C)` structs above, made only of u16
            // and u8 arrays with no padding (sizes 40 and 56, checked by a
            // test).
            // SAFETY: its bytes are initialised memory that lives as long
            // as the borrow.
            unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
        }
        match self {
            CryptoInfo::AesGcm128(v) => bytes(v),
            CryptoInfo::AesGcm256(v) => bytes(v),
            CryptoInfo::Chacha20Poly1305(v) => bytes(v),
        }
    }
}

/// Which direction a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Transmit,
    Receive,
}

/// Attaches the TLS ULP to a connected socket.
pub fn attach_ulp(fd: &impl AsRawFd) -> io::Result<()> {
    let name = b"tls";
    // SAFETY: the option value is a valid buffer of the given length for
    // the duration of the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Hands one direction's keys to the kernel (after [`attach_ulp`]).
pub fn set_keys(fd: &impl AsRawFd, dir: Direction, info: &CryptoInfo) -> io::Result<()> {
    let opt = match dir {
        Direction::Transmit => TLS_TX,
        Direction::Receive => TLS_RX,
    };
    let bytes = info.as_bytes();
    // SAFETY: `bytes` is a valid buffer of the given length for the
    // duration of the call; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TLS,
            opt,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_socket_takes_the_ulp_and_keys_where_the_kernel_has_tls() {
        if probe().unwrap() == Support::Absent {
            eprintln!("skipped: this kernel has no TLS ULP (TCP_ULP \"tls\" gives ENOENT)");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _peer = l.accept().unwrap();
        attach_ulp(&c).unwrap();
        let info = CryptoInfo::AesGcm128(AesGcm128 {
            info: InfoHeader {
                version: TLS_1_3_VERSION,
                cipher_type: TLS_CIPHER_AES_GCM_128,
            },
            iv: [1; 8],
            key: [2; 16],
            salt: [3; 4],
            rec_seq: [0; 8],
        });
        set_keys(&c, Direction::Transmit, &info).unwrap();
        set_keys(&c, Direction::Receive, &info).unwrap();
    }

    #[test]
    fn the_layouts_are_the_kernels() {
        assert_eq!(size_of::<AesGcm128>(), 40);
        assert_eq!(size_of::<AesGcm256>(), 56);
        assert_eq!(size_of::<Chacha20Poly1305>(), 56);
        let info = CryptoInfo::AesGcm128(AesGcm128 {
            info: InfoHeader {
                version: TLS_1_3_VERSION,
                cipher_type: TLS_CIPHER_AES_GCM_128,
            },
            iv: [1; 8],
            key: [2; 16],
            salt: [3; 4],
            rec_seq: [4; 8],
        });
        let b = info.as_bytes();
        assert_eq!(&b[..4], &[0x04, 0x03, 51, 0]);
        assert_eq!(&b[4..12], &[1; 8]);
        assert_eq!(&b[12..28], &[2; 16]);
        assert_eq!(&b[28..32], &[3; 4]);
        assert_eq!(&b[32..40], &[4; 8]);
    }

    #[test]
    fn the_probe_answers() {
        // Either answer is right on some kernel; an error is not.
        super::probe().expect("TCP_ULP probe");
    }
}
