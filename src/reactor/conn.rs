//! What the epoll driver keeps per connection: the socket, the connection
//! engine that decides everything about it, and the timer it asked for.

use std::time::Instant;

use crate::engine::Connection;
use crate::sys::socket::Stream;
use crate::telemetry::HttpObserver;

pub struct Conn {
    pub stream: Stream,
    pub engine: Connection<HttpObserver>,
    /// The earliest timer entry this connection has in the heap, so that a
    /// deadline that only moves later costs no new entry.
    pub scheduled: Option<Instant>,
}
