//! Log setup: JSON lines (default) or human text on stderr, with a filter that
//! SIGHUP can reload.

use tracing_subscriber::{filter::EnvFilter, prelude::*, reload};

/// Re-applies a log filter at run time (SIGHUP).
pub struct LogReload {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

impl LogReload {
    pub fn set(&self, filter: &str) -> Result<(), String> {
        let f = EnvFilter::try_new(filter).map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
        self.handle.reload(f).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. `json` selects JSON lines.
pub fn init(json: bool, filter: &str) -> Result<LogReload, String> {
    let f = EnvFilter::try_new(filter).map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
    let (filter_layer, handle) = reload::Layer::new(f);
    let registry = tracing_subscriber::registry().with(filter_layer);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let res = if json {
        registry
            .with(fmt.json().flatten_event(true).with_current_span(false))
            .try_init()
    } else {
        registry.with(fmt).try_init()
    };
    res.map_err(|e| e.to_string())?;
    Ok(LogReload { handle })
}
