//! The config file (`--config FILE`, `GLASSHOUSE_CONFIG`): TOML whose
//! top-level keys are the command-line flags in `snake_case` (every flag
//! has one, by construction: the key set is clap's argument list) and whose
//! sections (`[[rules]]`, `[compression]`) are the application's policy.
//!
//! Owns: reading the file, refusing unknown keys by name, merging it under
//! the command line and the environment (a flag or variable that is set
//! wins; the file fills in what they left at its default), and turning the
//! whole into a validated [`Config`]. Used at start, by `glasshouse check`
//! and by SIGHUP: the same function, so a reload validates exactly what a
//! start would. An empty file is valid.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::{Cli, Config};
use crate::service::rules::{Policy, PolicyFile};

/// Sections of the file that are not flags.
const SECTIONS: &[&str] = &["rules", "compression"];

/// Why loading failed.
#[derive(Debug)]
pub enum LoadError {
    /// The command line itself (clap's error: help, version, a bad flag).
    Args(clap::Error),
    /// The file, or the merged whole: one line naming the problem.
    Invalid(String),
}

/// Parses `argv` (program name first) and the file it names, if any.
pub fn load(argv: &[OsString]) -> Result<(Cli, Config), LoadError> {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(argv)
        .map_err(LoadError::Args)?;
    let Some(path) = matches.get_one::<std::path::PathBuf>("config").cloned() else {
        let cli = Cli::from_arg_matches(&matches).map_err(LoadError::Args)?;
        let config = cli.validate().map_err(LoadError::Invalid)?;
        return Ok((cli, config));
    };
    let bad = |msg: String| LoadError::Invalid(format!("config {}: {msg}", path.display()));
    let table = read(&path).map_err(bad)?;
    let mut extra: Vec<OsString> = Vec::new();
    let mut sections = toml::Table::new();
    for (key, value) in table {
        if SECTIONS.contains(&key.as_str()) {
            sections.insert(key, value);
            continue;
        }
        let arg = command
            .get_arguments()
            .find(|a| {
                a.get_id().as_str() == key
                    && !matches!(key.as_str(), "config" | "help" | "version")
                    && a.get_long().is_some()
            })
            .ok_or_else(|| bad(format!("unknown key `{key}`")))?;
        if matches!(
            matches.value_source(&key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let long = arg.get_long().unwrap_or_default();
        let values = match value {
            toml::Value::Array(items) => items,
            other => vec![other],
        };
        for v in values {
            let text = match v {
                toml::Value::Boolean(true) => {
                    extra.push(format!("--{long}").into());
                    continue;
                }
                toml::Value::Boolean(false) => continue,
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                _ => {
                    return Err(bad(format!(
                        "key `{key}`: expected a string, number or boolean"
                    )))
                }
            };
            extra.push(format!("--{long}={text}").into());
        }
    }
    let mut merged: Vec<OsString> = Vec::with_capacity(argv.len() + extra.len());
    merged.extend(argv.first().cloned());
    merged.extend(extra);
    merged.extend(argv.iter().skip(1).cloned());
    let cli = Cli::try_parse_from(&merged).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid value");
        bad(first.trim_start_matches("error: ").to_string())
    })?;
    let mut config = cli.validate().map_err(bad)?;
    let policy: PolicyFile = toml::Value::Table(sections)
        .try_into()
        .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
    config.policy = Policy::from_file(policy).map_err(bad)?;
    config.config_file = Some(path);
    Ok((cli, config))
}

fn read(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.parse::<toml::Table>().map_err(|e| {
        let msg = e.message().to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start].matches('\n').count() + 1;
                format!("line {line}: {msg}")
            }
            None => msg,
        }
    })
}

/// Settings a running server cannot take without a restart: the names of
/// those that differ between `old` and `new`. Every field is named here,
/// so a setting added later cannot reload silently: it must be sorted into
/// one kind or the other before this compiles.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let Config {
        listen,
        root,
        root_policy,
        model,
        workers,
        accept_mode,
        prethreaded_accept,
        drain_timeout,
        log_json,
        grafana_url,
        jaeger_url,
        prometheus_url,
        ws_max_message,
        ws_ping_interval,
        ws_allowed_origins,
        follow_symlinks,
        tls,
        https_redirect,
        metrics_listen,
        ktls,
        tls_session_cache,
        user_link,
        stack_driver,
        tcp_keepalive,
        tcp_rto_min,
        stack_offload,
        // Applied live by a reload (see `main`'s reload hook).
        max_connections: _,
        max_connections_per_client: _,
        header_timeout: _,
        idle_timeout: _,
        send_timeout: _,
        max_body: _,
        log_level: _,
        access_log: _,
        trusted_proxies: _,
        config_file: _,
        policy: _,
    } = new;
    let mut v = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            v.push(name);
        }
    };
    check("listen", old.listen != *listen);
    check("workers", old.workers != *workers);
    check("model", old.model != *model);
    check("accept_mode", old.accept_mode != *accept_mode);
    check(
        "prethreaded_accept",
        old.prethreaded_accept != *prethreaded_accept,
    );
    check("root", old.root != *root || old.root_policy != *root_policy);
    check("no_symlinks", old.follow_symlinks != *follow_symlinks);
    check("drain_timeout", old.drain_timeout != *drain_timeout);
    check("log_format", old.log_json != *log_json);
    check("ws_max_message", old.ws_max_message != *ws_max_message);
    check(
        "ws_ping_interval",
        old.ws_ping_interval != *ws_ping_interval,
    );
    check(
        "ws_allowed_origins",
        old.ws_allowed_origins != *ws_allowed_origins,
    );
    check(
        "links",
        old.grafana_url != *grafana_url
            || old.jaeger_url != *jaeger_url
            || old.prometheus_url != *prometheus_url,
    );
    // A reload re-reads the certificate files already named; naming other
    // files (or adding HTTPS) takes a restart.
    check("tls_cert/tls_key", old.tls != *tls);
    check("https_redirect", old.https_redirect != *https_redirect);
    check("metrics_listen", old.metrics_listen != *metrics_listen);
    check("ktls", old.ktls != *ktls);
    check(
        "tls_session_cache",
        old.tls_session_cache != *tls_session_cache,
    );
    check("link", old.user_link != *user_link);
    check("tcp_keepalive", old.tcp_keepalive != *tcp_keepalive);
    check("tcp_rto_min", old.tcp_rto_min != *tcp_rto_min);
    check("stack_offload", old.stack_offload != *stack_offload);
    check("stack_driver", old.stack_driver != *stack_driver);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn with_file(text: &str, args: &[&str]) -> Result<Config, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut argv: Vec<OsString> = vec!["glasshouse".into(), "--config".into()];
        argv.push(f.path().into());
        argv.extend(args.iter().map(OsString::from));
        load(&argv).map(|(_, c)| c).map_err(|e| match e {
            LoadError::Args(e) => e.to_string(),
            LoadError::Invalid(s) => s,
        })
    }

    #[test]
    fn an_empty_file_is_valid() {
        let c = with_file("", &[]).unwrap();
        assert_eq!(c.max_body, 1_048_576);
    }

    #[test]
    fn keys_are_the_flags_and_flags_win() {
        let c = with_file(
            "max_body = 2048\nidle_timeout = 5.5\naccess_log = true\ntrusted_proxy = [\"10.0.0.0/8\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.max_body, 2048);
        assert!(c.access_log);
        assert_eq!(c.trusted_proxies.len(), 1);
        assert_eq!(c.idle_timeout.as_millis(), 5500);
        let c = with_file("max_body = 2048\n", &["--max-body", "4096"]).unwrap();
        assert_eq!(c.max_body, 4096);
    }

    #[test]
    fn problems_are_named() {
        let e = with_file("help = true\n", &[]).unwrap_err();
        assert!(e.contains("unknown key `help`"), "{e}");
        let e = with_file("max_bdy = 1\n", &[]).unwrap_err();
        assert!(e.contains("unknown key `max_bdy`"), "{e}");
        let e = with_file("max_body = \"lots\"\n", &[]).unwrap_err();
        assert!(e.contains("max-body"), "{e}");
        let e = with_file("max_body = \n", &[]).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = with_file("[[rules]]\npath = \"/x\"\nnope = 1\n", &[]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn ktls_is_a_key_and_a_change_of_it_needs_a_restart() {
        use crate::config::KtlsMode;
        let auto = with_file("", &[]).unwrap();
        assert_eq!(auto.ktls, KtlsMode::Auto);
        let off = with_file("ktls = \"off\"\n", &[]).unwrap();
        assert_eq!(off.ktls, KtlsMode::Off);
        assert_eq!(needs_restart(&auto, &off), vec!["ktls"]);
        let e = with_file("ktls = \"always\"\n", &[]).unwrap_err();
        assert!(e.contains("always"), "{e}");
    }

    #[test]
    fn the_tls_session_cache_is_a_key_and_a_change_of_it_needs_a_restart() {
        let default = with_file("", &[]).unwrap();
        assert_eq!(default.tls_session_cache, 256);
        let none = with_file("tls_session_cache = 0\n", &[]).unwrap();
        assert_eq!(none.tls_session_cache, 0);
        assert_eq!(needs_restart(&default, &none), vec!["tls_session_cache"]);
    }
}
