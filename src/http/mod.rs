//! HTTP/1.1 as a sans-I/O machine: bytes in, requests out; responses in,
//! bytes out. No descriptors, no threads.
