//! The suites over glasshouse's own TCP/IP: with `GLASSHOUSE_TEST_STACK=user`
//! in the test's environment ([`test_user_stack`]; root only), every server
//! the harness starts runs `--stack user` on a TUN device in a network
//! namespace of its own ([`Netns`]), with the kernel of that namespace as
//! its peer. Each server gets its own address, `10.A.B.2:80`, so that one
//! registry maps a server's address to its namespace: [`enter_for`] moves
//! the calling thread into it before a client connects (a socket belongs
//! to the namespace of the thread that made it, and threads and processes
//! started afterwards inherit it), so a suite runs over the user stack
//! unchanged. The namespace is deleted when its server is dropped.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nix::sched::{setns, CloneFlags};

/// True when the suites run over the user stack.
pub fn test_user_stack() -> bool {
    std::env::var("GLASSHOUSE_TEST_STACK").is_ok_and(|v| v == "user")
}

fn registry() -> &'static Mutex<HashMap<SocketAddr, Arc<File>>> {
    static NS: OnceLock<Mutex<HashMap<SocketAddr, Arc<File>>>> = OnceLock::new();
    NS.get_or_init(Default::default)
}

/// Moves the calling thread into the namespace of the server at `addr`,
/// when it is one of the harness's user-stack servers.
pub fn enter_for(addr: SocketAddr) {
    let ns = registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&addr)
        .cloned();
    if let Some(ns) = ns {
        setns(&*ns, CloneFlags::CLONE_NEWNET).expect("setns into the server's namespace");
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip(8): GLASSHOUSE_TEST_STACK=user needs iproute2 and root");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One server's namespace: `tun0` with the kernel at `10.A.B.1/24`, the
/// stack to answer for `10.A.B.2`.
pub struct Netns {
    name: String,
    file: Arc<File>,
    /// The stack's own address, for `--listen`.
    pub addr: SocketAddrV4,
}

impl Netns {
    pub fn create() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("gh-st-{}-{n}", std::process::id());
        let (a, b) = (64 + ((n >> 8) & 63) as u8, (n & 255) as u8);
        let peer = format!("10.{a}.{b}.1/24");
        ip(&["netns", "add", &name]);
        let ns = Netns {
            file: Arc::new(
                File::open(format!("/run/netns/{name}")).expect("open the namespace's handle"),
            ),
            name,
            addr: SocketAddrV4::new(Ipv4Addr::new(10, a, b, 2), 80),
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &ns.name, "tuntap", "add", "dev", "tun0", "mode", "tun",
        ]);
        ip(&["-n", &ns.name, "addr", "add", &peer, "dev", "tun0"]);
        ip(&["-n", &ns.name, "link", "set", "tun0", "up"]);
        ns
    }

    /// Moves the calling thread into the namespace (the server spawned
    /// next is born in it).
    pub fn enter(&self) {
        setns(&*self.file, CloneFlags::CLONE_NEWNET).expect("setns into a test namespace");
    }

    /// Makes [`enter_for`] find this namespace for the server's address.
    pub fn register(&self) {
        registry()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(SocketAddr::V4(self.addr), self.file.clone());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        registry()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&SocketAddr::V4(self.addr));
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
