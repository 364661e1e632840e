//! A kernel that refuses io_uring: `--model io_uring` says so in one line
//! and exits 2 (a setting to fix, like bad configuration). The refusal is
//! made real with `kernel.io_uring_disabled=2` for the length of the test
//! and restored after, whatever happens; this suite is its own binary so
//! that no io_uring test of another suite runs while the switch is off.
//! Without the sysctl (an old kernel) or the right to write it (an
//! unprivileged container), the test says so and does not run.

mod support;

use std::fs;
use std::time::Duration;

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Puts the sysctl back as it was when dropped (a failed assertion too).
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = fs::write(SYSCTL, &self.0);
    }
}

#[test]
fn a_kernel_that_refuses_io_uring_is_one_line_and_exit_2() {
    let Ok(before) = fs::read_to_string(SYSCTL) else {
        eprintln!("skipped: {SYSCTL} does not exist on this kernel");
        return;
    };
    let restore = Restore(before.trim().to_string());
    if fs::write(SYSCTL, "2").is_err() {
        eprintln!("skipped: cannot write {SYSCTL} (not root, or a read-only /proc)");
        return;
    }
    let (status, stderr) = support::run_to_exit(
        &["--model", "io_uring", "--listen", "127.0.0.1:0"],
        Duration::from_secs(20),
    );
    drop(restore);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("io_uring") && stderr.contains("kernel.io_uring_disabled"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(SYSCTL).unwrap().trim(),
        before.trim(),
        "the sysctl is restored"
    );
}
