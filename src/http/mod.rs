//! HTTP/1.1 (RFC 9110, RFC 9112) as a sans-I/O machine: bytes in, requests
//! out ([`decoder`]); responses in, bytes out ([`encode`]). No descriptors,
//! no threads, no clocks beyond the cached `Date` value the caller refreshes:
//! any transport (epoll, io_uring, a userland TCP stack) can drive it.

pub mod chunked;
pub mod date;
pub mod decoder;
pub mod encode;
pub mod error;
pub mod forwarded;
pub mod head;
pub mod invariants;

pub use decoder::{Decoded, RequestDecoder};
pub use error::HttpError;
pub use head::{BodyFraming, Head, Limits, Version};
