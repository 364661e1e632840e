//! Headless Chromium as a test client: whether it is installed, and the DOM
//! of a page once its scripts have run (`--dump-dom` with a virtual-time
//! budget), optionally with a `HOME` of the test's own, whose NSS database
//! (`HOME/.pki/nssdb`) is where Chromium on Linux looks for trusted CAs.

use std::path::Path;
use std::process::Command;

/// The Chromium binary, if one is installed (`scripts/deps.sh` installs it).
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The DOM of `url` after its scripts ran, bounded by `timeout(1)`.
pub fn dump_dom(bin: &str, url: &str, home: Option<&Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["60", bin, "--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", url]);
    if let Some(home) = home {
        cmd.env("HOME", home);
    }
    let out = cmd.output().expect("chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
