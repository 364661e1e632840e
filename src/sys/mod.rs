//! Thin, typed wrappers over the Linux syscalls the server is built on. This is
//! the only module allowed `unsafe`; every block says why it is sound.
pub mod fs;
