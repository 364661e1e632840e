//! The descriptor limit: raised to the hard limit at start so that
//! `--max-connections` is not silently capped by a small soft limit.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}
