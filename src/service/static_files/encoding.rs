//! Choosing a content coding (identity, `br`, `zstd`, `gzip`) from
//! `Accept-Encoding` (RFC 9110 §12.5.3), among those a file offers:
//! precompressed siblings (`.br`, `.zst`, `.gz`) and, for compressible
//! types, on-the-fly compression.
//!
//! q-values are honoured: `q=0` refuses a coding, `*` covers codings not
//! named. On a tie the earlier offer wins (precompressed first, then
//! brotli, zstd, gzip). The identity is always acceptable here (a client
//! refusing `identity` still gets it rather than a `406`).

/// A representation's content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Coding {
    Identity,
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    /// Suffix of the sibling file holding this coding.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// The `Content-Encoding` value, none for the identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Brotli => Some("br"),
            Coding::Zstd => Some("zstd"),
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

/// Picks the coding to send, given which siblings exist (the tests' view).
#[cfg(test)]
pub(super) fn choose(accept_encoding: Option<&[u8]>, has_br: bool, has_gz: bool) -> Coding {
    let mut offers = Vec::with_capacity(2);
    if has_br {
        offers.push(Coding::Brotli);
    }
    if has_gz {
        offers.push(Coding::Gzip);
    }
    choose_among(accept_encoding, &offers)
}

/// Picks the coding to send among `offers` (in the server's order of
/// preference; the identity is always on offer).
pub(super) fn choose_among(accept_encoding: Option<&[u8]>, offers: &[Coding]) -> Coding {
    if offers.is_empty() {
        return Coding::Identity;
    }
    let Some(value) = accept_encoding.and_then(|v| std::str::from_utf8(v).ok()) else {
        return Coding::Identity;
    };
    let (mut br, mut zstd, mut gz, mut star) = (None, None, None, None);
    for item in value.split(',') {
        let (coding, params) = item.split_once(';').unwrap_or((item, ""));
        let coding = coding.trim();
        let q = parse_q(params);
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("zstd") {
            zstd = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gz = Some(gz.map_or(q, |old: u16| old.max(q)));
        } else if coding == "*" {
            star = Some(q);
        }
    }
    let mut best = (Coding::Identity, 0u16);
    for &offer in offers {
        let q = match offer {
            Coding::Identity => continue,
            Coding::Brotli => br,
            Coding::Zstd => zstd,
            Coding::Gzip => gz,
        }
        .or(star)
        .unwrap_or(0);
        if q > best.1 {
            best = (offer, q);
        }
    }
    best.0
}
