//! Kernel TLS glue over libc: whether this kernel offers the `tls`
//! upper-layer protocol (`setsockopt(TCP_ULP, "tls")`), the `crypto_info`
//! structures of `<linux/tls.h>` that carry a direction's key, salt, IV
//! and record sequence, and the calls that hand them to a socket
//! (`SOL_TLS`, `TLS_TX`/`TLS_RX`). The probe runs once at start-up on a
//! fresh, unconnected TCP socket: ENOENT means the kernel has no TLS ULP
//! (built without `CONFIG_TLS`, or the module absent); ENOTCONN (the
//! socket is not connected) means it is there.
//!
//! Once keys are in, plain `read`/`write`/`sendfile` carry application
//! data; any other record (an alert, a post-handshake message such as
//! KeyUpdate) travels with its content type in a `SOL_TLS` control
//! message: [`recv_record`] reads `TLS_GET_RECORD_TYPE`, [`send_record`]
//! sets `TLS_SET_RECORD_TYPE`. The control-message bytes are built and
//! parsed here in safe code ([`record_type`]) so that tests can reach them.

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

/// The ciphers this kernel installs keys for (of AES-GCM-128,
/// AES-GCM-256 and ChaCha20-Poly1305), each tried with dummy TLS 1.3 keys
/// in both directions on a loopback connection of its own: the TLS ULP
/// can be there while a cipher's module is not, and a key refused after
/// rustls has given up its state would cost the connection.
pub fn probe_ciphers() -> io::Result<Vec<u16>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut found = Vec::new();
    for cipher in [
        TLS_CIPHER_AES_GCM_128,
        TLS_CIPHER_AES_GCM_256,
        TLS_CIPHER_CHACHA20_POLY1305,
    ] {
        let ours = std::net::TcpStream::connect(addr)?;
        let _theirs = listener.accept()?;
        let info = InfoHeader {
            version: TLS_1_3_VERSION,
            cipher_type: cipher,
        };
        let info = match cipher {
            TLS_CIPHER_AES_GCM_128 => CryptoInfo::AesGcm128(AesGcm128 {
                info,
                iv: [0; 8],
                key: [0; 16],
                salt: [0; 4],
                rec_seq: [0; 8],
            }),
            TLS_CIPHER_AES_GCM_256 => CryptoInfo::AesGcm256(AesGcm256 {
                info,
                iv: [0; 8],
                key: [0; 32],
                salt: [0; 4],
                rec_seq: [0; 8],
            }),
            _ => CryptoInfo::Chacha20Poly1305(Chacha20Poly1305 {
                info,
                iv: [0; 12],
                key: [0; 32],
                rec_seq: [0; 8],
            }),
        };
        attach_ulp(&ours)?;
        if set_keys(&ours, Direction::Transmit, &info).is_ok()
            && set_keys(&ours, Direction::Receive, &info).is_ok()
        {
            found.push(cipher);
        }
    }
    Ok(found)
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

/// The TLS content type of application data: what a record carries when
/// the kernel attaches no record-type control message.
pub const APPLICATION_DATA: u8 = 23;

// `<linux/tls.h>`: the control-message types at level `SOL_TLS`.
const TLS_SET_RECORD_TYPE: libc::c_int = 1;
const TLS_GET_RECORD_TYPE: libc::c_int = 2;

/// `CMSG_ALIGN`: control messages are padded to the alignment of `size_t`.
const fn cmsg_align(n: usize) -> usize {
    let a = size_of::<usize>();
    (n + a - 1) & !(a - 1)
}
/// Where a control message's data begins (`CMSG_DATA - cmsg`).
const CMSG_HDR: usize = cmsg_align(size_of::<libc::cmsghdr>());
/// Room for one control message of one byte (`CMSG_SPACE(1)`), rounded
/// up to whole `u64`s for the aligned buffer below.
const CONTROL_WORDS: usize = (CMSG_HDR + cmsg_align(1)).div_ceil(8);

/// A control-message buffer aligned for `struct cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; CONTROL_WORDS * 8]);

/// Writes one `SOL_TLS` control message carrying `record_type` at the
/// start of `buf`; returns its length (`CMSG_SPACE(1)`).
fn write_record_type(buf: &mut [u8], record_type: u8) -> usize {
    let len = CMSG_HDR + 1;
    let level = std::mem::offset_of!(libc::cmsghdr, cmsg_level);
    let kind = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
    buf[..CMSG_HDR + cmsg_align(1)].fill(0);
    buf[..size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
    buf[level..level + 4].copy_from_slice(&libc::SOL_TLS.to_ne_bytes());
    buf[kind..kind + 4].copy_from_slice(&TLS_SET_RECORD_TYPE.to_ne_bytes());
    buf[CMSG_HDR] = record_type;
    CMSG_HDR + cmsg_align(1)
}

/// The record type a received control-message buffer names, if any:
/// the first `SOL_TLS`/`TLS_GET_RECORD_TYPE` message with a data byte.
/// Malformed lengths end the walk (nothing past them can be trusted).
pub fn record_type(control: &[u8]) -> Option<u8> {
    let word = size_of::<usize>();
    let level_at = std::mem::offset_of!(libc::cmsghdr, cmsg_level);
    let kind_at = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
    let mut at = 0;
    while control.len() >= at + CMSG_HDR {
        let h = &control[at..];
        let len = usize::from_ne_bytes(h[..word].try_into().ok()?);
        if len < CMSG_HDR || len > h.len() {
            return None;
        }
        let level = i32::from_ne_bytes(h[level_at..level_at + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(h[kind_at..kind_at + 4].try_into().ok()?);
        if level == libc::SOL_TLS && kind == TLS_GET_RECORD_TYPE && len > CMSG_HDR {
            return Some(h[CMSG_HDR]);
        }
        at += cmsg_align(len);
    }
    None
}

/// Reads from a kTLS socket: the bytes of one or more records of one
/// content type (the kernel never mixes types in one read) and that type.
/// `(0, APPLICATION_DATA)` is the peer's FIN. A record that failed to
/// decrypt or authenticate is an error (`EBADMSG`), as is a control
/// record too large for `buf` (`MSG_CTRUNC` or `MSG_TRUNC`: `EMSGSIZE`).
pub fn recv_record(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    let mut control = Control([0; CONTROL_WORDS * 8]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data (pointers, lengths and flags): all zero
    // is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and at `control`,
        // all live and writable for the call, with their true lengths.
        match cvt(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) }) {
            Ok(n) => break n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if msg.msg_flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0 {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    let used = (msg.msg_controllen as usize).min(control.0.len());
    let kind = record_type(&control.0[..used]).unwrap_or(APPLICATION_DATA);
    Ok((n, kind))
}

/// Sends `data` as one record of content type `record_type` (an alert, a
/// handshake message) on a kTLS socket; the kernel encrypts it with the
/// current transmit key. Returns the bytes taken (all or an error: the
/// kernel takes a record whole or not at all for data this small).
pub fn send_record(fd: &impl AsRawFd, record_type: u8, data: &[u8]) -> io::Result<usize> {
    let mut control = Control([0; CONTROL_WORDS * 8]);
    let control_len = write_record_type(&mut control.0, record_type);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: as in `recv_record`: all zero is a valid empty msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control_len as _;
    loop {
        // SAFETY: `msg` points at `iov` (over `data`, which the kernel only
        // reads) and at `control`, both live for the call; MSG_NOSIGNAL
        // turns a closed peer into EPIPE rather than a signal.
        match cvt(unsafe {
            libc::sendmsg(
                fd.as_raw_fd(),
                &msg,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        }) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_type_message_written_is_read_back() {
        let mut buf = [0u8; CONTROL_WORDS * 8];
        let n = write_record_type(&mut buf, 21);
        // What the kernel's own macros say the message takes.
        // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
        let (space, len) = unsafe { (libc::CMSG_SPACE(1) as usize, libc::CMSG_LEN(1) as usize) };
        assert_eq!(n, space);
        assert_eq!(
            usize::from_ne_bytes(buf[..size_of::<usize>()].try_into().unwrap()),
            len
        );
        // The writer sets the send type; the kernel answers with the get
        // type, which the parser wants.
        let kind = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
        assert_eq!(record_type(&buf[..n]), None);
        buf[kind..kind + 4].copy_from_slice(&TLS_GET_RECORD_TYPE.to_ne_bytes());
        assert_eq!(record_type(&buf[..n]), Some(21));
    }

    #[test]
    fn a_foreign_or_malformed_control_message_names_no_type() {
        let mut buf = [0u8; CONTROL_WORDS * 8];
        let n = write_record_type(&mut buf, 22);
        let kind = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
        buf[kind..kind + 4].copy_from_slice(&TLS_GET_RECORD_TYPE.to_ne_bytes());
        let level = std::mem::offset_of!(libc::cmsghdr, cmsg_level);
        let mut other = buf;
        other[level..level + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        assert_eq!(record_type(&other[..n]), None);
        let mut short = buf;
        short[..size_of::<usize>()].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(record_type(&short[..n]), None);
        let mut long = buf;
        long[..size_of::<usize>()].copy_from_slice(&(n + 1).to_ne_bytes());
        assert_eq!(record_type(&long[..n]), None);
        assert_eq!(record_type(&[]), None);
        assert_eq!(record_type(&buf[..n]), Some(22));
    }

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
    fn the_cipher_probe_finds_ciphers_where_the_kernel_has_tls() {
        if probe().unwrap() == Support::Absent {
            eprintln!("skipped: this kernel has no TLS ULP (TCP_ULP \"tls\" gives ENOENT)");
            assert!(probe_ciphers().is_err(), "no ULP, so attaching must fail");
            return;
        }
        // Every kTLS kernel has AES-GCM-128 (it came first).
        assert!(probe_ciphers().unwrap().contains(&TLS_CIPHER_AES_GCM_128));
    }

    #[test]
    fn the_probe_answers() {
        // Either answer is right on some kernel; an error is not.
        super::probe().expect("TCP_ULP probe");
    }
}
