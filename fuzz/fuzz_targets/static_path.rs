//! The request-path cleaner on arbitrary targets (see `glasshouse::service::static_files::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::service::static_files::invariants::check_path(data);
});
