//! What the epoll driver keeps per connection: the socket, the session
//! (the connection engine that decides everything about it, behind TLS or
//! not: the driver cannot tell, except that a kTLS session is read with
//! `recv_record`) and the timer it asked for.

use crate::admission::Admission;
use std::time::Instant;

use crate::sys::socket::Stream;
use crate::telemetry::HttpObserver;
use crate::tls::Session;

pub struct Conn {
    pub stream: Stream,
    pub engine: Session<HttpObserver>,
    /// The earliest timer entry this connection has in the heap, so that a
    /// deadline that only moves later costs no new entry.
    pub scheduled: Option<Instant>,
    /// The kernel TLS hand-off was tried (it is tried once, when the
    /// handshake is done and its output sent).
    pub handoff_tried: bool,
    /// Its place under the connection caps, given back when the
    /// connection is dropped (however it ends).
    pub _admission: Admission,
}
