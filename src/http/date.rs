//! The `Date` header value (RFC 9110 §6.6.1), formatted at most once a second
//! and shared by every response of that second.

use std::time::{SystemTime, UNIX_EPOCH};

/// A cached IMF-fixdate.
#[derive(Debug, Clone)]
pub struct DateCache {
    secs: u64,
    value: [u8; 29],
}

impl DateCache {
    pub fn new(now: SystemTime) -> DateCache {
        let mut d = DateCache {
            secs: u64::MAX,
            value: [b' '; 29],
        };
        d.refresh(now);
        d
    }

    /// Re-formats only when the second has changed.
    pub fn refresh(&mut self, now: SystemTime) {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs != self.secs {
            self.secs = secs;
            let s = httpdate::fmt_http_date(now);
            let n = s.len().min(29);
            self.value[..n].copy_from_slice(&s.as_bytes()[..n]);
        }
    }

    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_imf_fixdate_and_updates_per_second() {
        let t = UNIX_EPOCH + Duration::from_secs(784111777);
        let mut d = DateCache::new(t);
        assert_eq!(d.value(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        d.refresh(t + Duration::from_millis(900));
        assert_eq!(d.value(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        d.refresh(t + Duration::from_secs(1));
        assert_eq!(d.value(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
