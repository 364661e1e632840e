//! Choosing between a file and its precompressed siblings (`.br`, `.gz`)
//! from `Accept-Encoding` (RFC 9110 §12.5.3).
//!
//! q-values are honoured: `q=0` refuses a coding, `*` covers codings not
//! named. Brotli wins ties. The identity is always acceptable here (a
//! client refusing `identity` still gets it rather than a `406`).

/// A representation's content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    Identity,
    Brotli,
    Gzip,
}

impl Coding {
    /// Suffix of the sibling file holding this coding.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
        }
    }

    /// The `Content-Encoding` value, none for the identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
        }
    }
}

/// q-value in thousandths, so no floating point is needed.
fn parse_q(params: &str) -> u16 {
    for param in params.split(';') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let value = value.trim();
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        return match int {
            "1" => 1000,
            "0" => {
                let mut q = 0u16;
                let mut scale = 100u16;
                for b in frac.bytes().take(3) {
                    if !b.is_ascii_digit() {
                        return 0;
                    }
                    q += u16::from(b - b'0') * scale;
                    scale /= 10;
                }
                q
            }
            // A malformed weight is treated as a refusal: safest reading.
            _ => 0,
        };
    }
    1000
}

/// Picks the coding to send, given which siblings exist.
pub(super) fn choose(accept_encoding: Option<&[u8]>, has_br: bool, has_gz: bool) -> Coding {
    if !has_br && !has_gz {
        return Coding::Identity;
    }
    let Some(value) = accept_encoding.and_then(|v| std::str::from_utf8(v).ok()) else {
        return Coding::Identity;
    };
    let (mut br, mut gz, mut star) = (None, None, None);
    for item in value.split(',') {
        let (coding, params) = item.split_once(';').unwrap_or((item, ""));
        let coding = coding.trim();
        let q = parse_q(params);
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gz = Some(gz.map_or(q, |old: u16| old.max(q)));
        } else if coding == "*" {
            star = Some(q);
        }
    }
    let br = if has_br { br.or(star).unwrap_or(0) } else { 0 };
    let gz = if has_gz { gz.or(star).unwrap_or(0) } else { 0 };
    if br > 0 && br >= gz {
        Coding::Brotli
    } else if gz > 0 {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}
