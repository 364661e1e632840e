//! The application: router, static files and the JSON API, built on the
//! [`crate::app`] contract only.
pub mod static_files;
