//! On-the-fly compression of static files (gzip, brotli, zstd) and the
//! per-worker cache of its results.
//!
//! Owns: which types are worth compressing ([`compressible`]: text,
//! JavaScript, JSON, XML, SVG, WebAssembly; never images, video, audio,
//! fonts already compressed, or archives), the encoders and their levels
//! (chosen for serving, not for archiving: brotli 5, zstd 3, gzip 6), and
//! [`Compressed`], a bounded cache of results keyed by the identity file's
//! version and the coding. Leaves to `mod.rs` when to compress (size bounds,
//! `Range`, precompressed siblings first) and to `encoding` which coding.
//! A result that is not smaller than the original is remembered as such,
//! so the identity is sent and the work is not done again.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::cache::FileId;
use super::encoding::Coding;

/// Most bytes of compressed results one worker keeps.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Results bigger than this are not kept (a big file is compressed for
/// each request: ship a precompressed sibling for those).
const MAX_KEPT: usize = 512 * 1024;

/// Whether a `Content-Type` (parameters allowed) is worth compressing.
pub(super) fn compressible(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
}

/// Compresses `data` with `coding`; `None` for the identity or a failure.
pub(super) fn compress(coding: Coding, data: &[u8]) -> Option<Vec<u8>> {
    match coding {
        Coding::Identity => None,
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 3),
                flate2::Compression::new(6),
            );
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        Coding::Zstd => zstd::bulk::compress(data, 3).ok(),
        Coding::Brotli => {
            let mut out = Vec::with_capacity(data.len() / 3);
            let params = brotli::enc::BrotliEncoderParams {
                quality: 5,
                lgwin: 22,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
            Some(out)
        }
    }
}

/// A cached result: the compressed bytes, or `None` when compressing did
/// not make the file smaller.
pub(super) type Result = Option<Arc<[u8]>>;

/// One worker's compressed results.
#[derive(Debug, Default)]
pub(super) struct Compressed {
    map: HashMap<(FileId, Coding), Result>,
    bytes: usize,
}

impl Compressed {
    pub fn get(&self, id: FileId, coding: Coding) -> Option<&Result> {
        self.map.get(&(id, coding))
    }

    /// Keeps a result if it is small enough; when the budget is spent the
    /// whole cache is dropped (cheap, bounded, and refilled by use).
    pub fn insert(&mut self, id: FileId, coding: Coding, result: Result) {
        let size = result.as_ref().map_or(0, |r| r.len());
        if size > MAX_KEPT {
            return;
        }
        if self.bytes + size > MAX_BYTES || self.map.len() >= 4096 {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        if let Some(Some(old)) = self.map.insert((id, coding), result) {
            self.bytes -= old.len();
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coding_round_trips() {
        let text = "function f() { return 42; }\n".repeat(200);
        for coding in [Coding::Gzip, Coding::Zstd, Coding::Brotli] {
            let packed = compress(coding, text.as_bytes()).unwrap();
            assert!(packed.len() < text.len() / 5, "{coding:?}");
            let back = match coding {
                Coding::Gzip => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&packed[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                Coding::Zstd => zstd::bulk::decompress(&packed, text.len()).unwrap(),
                _ => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut &packed[..], &mut out).unwrap();
                    out
                }
            };
            assert_eq!(back, text.as_bytes());
        }
    }

    #[test]
    fn only_text_like_types() {
        assert!(compressible("text/html; charset=utf-8"));
        assert!(compressible("application/javascript; charset=utf-8"));
        assert!(compressible("image/svg+xml"));
        for t in [
            "image/png",
            "image/jpeg",
            "video/mp4",
            "application/zip",
            "application/gzip",
            "font/woff2",
            "application/octet-stream",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }
}
