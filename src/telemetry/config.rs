//! Telemetry configuration from the standard `OTEL_*` environment
//! variables: endpoints per signal, protocol, sampler, resource attributes
//! and batching. Parsing is pure (a lookup function in, a config or one
//! clear error sentence out) so that it is tested without touching the
//! process environment.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;

use super::metrics::Metrics;

/// Which sampler decides whether a new span is recorded
/// (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Clone, Debug, PartialEq)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl SamplerConfig {
    /// Parses the two variables; parent-based always-on when unset.
    pub fn parse(name: Option<&str>, arg: Option<&str>) -> Result<SamplerConfig, String> {
        let ratio = || -> Result<f64, String> {
            match arg {
                None => Ok(1.0),
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("OTEL_TRACES_SAMPLER_ARG={a:?} is not a ratio between 0 and 1")
                    }),
            }
        };
        Ok(match name.map(str::trim) {
            None | Some("") | Some("parentbased_always_on") => SamplerConfig::ParentBasedAlwaysOn,
            Some("always_on") => SamplerConfig::AlwaysOn,
            Some("always_off") => SamplerConfig::AlwaysOff,
            Some("traceidratio") => SamplerConfig::TraceIdRatio(ratio()?),
            Some("parentbased_always_off") => SamplerConfig::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER={other:?} is not supported (always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio)"
                ))
            }
        })
    }

    /// The SDK sampler.
    pub fn sampler(&self) -> Sampler {
        match *self {
            SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
            SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
            SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            SamplerConfig::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// Everything `Telemetry::init` needs. Build it with
/// [`TelemetryConfig::from_env`], then set `metrics` (and tweak fields in
/// tests).
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// `service.name` (`OTEL_SERVICE_NAME`, default `glasshouse`).
    pub service_name: String,
    /// `service.version`.
    pub service_version: String,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<(String, String)>,
    /// Full URL of each signal's OTLP/HTTP endpoint; `None`: not exported.
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Vec<(String, String)>,
    pub sampler: SamplerConfig,
    /// Bound on one export request (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms; 10 s).
    pub export_timeout: Duration,
    /// Delay between span/log batches (`OTEL_BSP_SCHEDULE_DELAY`, ms; 5 s).
    pub batch_delay: Duration,
    /// Items waiting for export per signal before new ones are dropped
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`; 2048).
    pub max_queue: usize,
    /// Metric export interval (`OTEL_METRIC_EXPORT_INTERVAL`, ms; 60 s).
    pub metrics_interval: Duration,
    /// The shards whose figures are exported as metrics; no metric export
    /// without them.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            service_name: "glasshouse".into(),
            service_version: env!("CARGO_PKG_VERSION").into(),
            resource_attributes: Vec::new(),
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            headers: Vec::new(),
            sampler: SamplerConfig::ParentBasedAlwaysOn,
            export_timeout: Duration::from_secs(10),
            batch_delay: Duration::from_secs(5),
            max_queue: 2048,
            metrics_interval: Duration::from_secs(60),
            metrics: None,
        }
    }
}

/// Parses `k1=v1,k2=v2` with percent-decoded values (the W3C Baggage
/// octet rules used by `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_*_HEADERS`).
pub fn parse_key_values(var: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{var}: {item:?} is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("{var}: empty key in {item:?}"));
        }
        let v = percent_encoding::percent_decode_str(v.trim())
            .decode_utf8()
            .map_err(|_| format!("{var}: value of {k} is not UTF-8"))?;
        out.push((k.to_string(), v.into_owned()));
    }
    Ok(out)
}

fn millis(var: &str, v: Option<String>, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{var}={v:?} is not a number of milliseconds")),
    }
}

/// The endpoint of one signal: its own variable as is, else the base
/// endpoint plus `/v1/<signal>`.
fn endpoint(
    base: Option<&str>,
    own: Option<String>,
    signal: &str,
    exporter: Option<String>,
) -> Result<Option<String>, String> {
    if matches!(exporter.as_deref().map(str::trim), Some("none")) {
        return Ok(None);
    }
    let url = match (own.filter(|s| !s.trim().is_empty()), base) {
        (Some(own), _) => own.trim().to_string(),
        (None, Some(base)) => format!("{}/v1/{signal}", base.trim().trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("OTLP endpoint {url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!(
            "OTLP endpoint {url:?}: only http://host:port is supported (no TLS; use a local collector)"
        ));
    }
    Ok(Some(url))
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<TelemetryConfig, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<TelemetryConfig, String> {
        let d = TelemetryConfig::default();
        if let Some(p) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if p.trim() != "http/protobuf" {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={p:?} is not supported: glasshouse exports http/protobuf only"
                ));
            }
        }
        let disabled =
            get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|s| !s.trim().is_empty());
        let base = base.as_deref();
        let mut resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(t) => parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &t)?,
            None => Vec::new(),
        };
        let service_name = match get("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()) {
            Some(n) => n.trim().to_string(),
            None => resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
                .unwrap_or(d.service_name),
        };
        resource_attributes.retain(|(k, _)| k != "service.name");
        let exporter = |var: &str| {
            if disabled {
                Some("none".to_string())
            } else {
                get(var)
            }
        };
        Ok(TelemetryConfig {
            service_name,
            resource_attributes,
            traces_endpoint: endpoint(
                base,
                get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                "traces",
                exporter("OTEL_TRACES_EXPORTER"),
            )?,
            metrics_endpoint: endpoint(
                base,
                get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
                "metrics",
                exporter("OTEL_METRICS_EXPORTER"),
            )?,
            logs_endpoint: endpoint(
                base,
                get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
                "logs",
                exporter("OTEL_LOGS_EXPORTER"),
            )?,
            headers: match get("OTEL_EXPORTER_OTLP_HEADERS") {
                Some(t) => parse_key_values("OTEL_EXPORTER_OTLP_HEADERS", &t)?,
                None => Vec::new(),
            },
            sampler: SamplerConfig::parse(
                get("OTEL_TRACES_SAMPLER").as_deref(),
                get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
            )?,
            export_timeout: millis(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                get("OTEL_EXPORTER_OTLP_TIMEOUT"),
                d.export_timeout,
            )?,
            batch_delay: millis(
                "OTEL_BSP_SCHEDULE_DELAY",
                get("OTEL_BSP_SCHEDULE_DELAY"),
                d.batch_delay,
            )?,
            max_queue: match get("OTEL_BSP_MAX_QUEUE_SIZE") {
                None => d.max_queue,
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("OTEL_BSP_MAX_QUEUE_SIZE={v:?} is not a positive number")
                    })?,
            },
            metrics_interval: millis(
                "OTEL_METRIC_EXPORT_INTERVAL",
                get("OTEL_METRIC_EXPORT_INTERVAL"),
                d.metrics_interval,
            )?,
            ..d
        })
    }

    /// Whether any signal is exported.
    pub fn exports_anything(&self) -> bool {
        self.traces_endpoint.is_some()
            || self.logs_endpoint.is_some()
            || (self.metrics_endpoint.is_some() && self.metrics.is_some())
    }
}

/// A per-process id for `service.instance.id`: the kernel's random UUID.
fn instance_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}-{t:x}", std::process::id())
        })
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The resource attributes: service, host, process and SDK, then
/// `OTEL_RESOURCE_ATTRIBUTES` (which overrides all but `service.name`).
pub fn resource_attributes(cfg: &TelemetryConfig) -> Vec<KeyValue> {
    let mut attrs: Vec<KeyValue> = vec![
        KeyValue::new("service.name", cfg.service_name.clone()),
        KeyValue::new("service.version", cfg.service_version.clone()),
        KeyValue::new("service.instance.id", instance_id()),
        KeyValue::new("host.arch", std::env::consts::ARCH),
        KeyValue::new("os.type", std::env::consts::OS),
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("process.runtime.name", "rust"),
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", "0.33"),
    ];
    if let Some(h) = host_name() {
        attrs.push(KeyValue::new("host.name", h));
    }
    if let Some(exe) = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
    {
        attrs.push(KeyValue::new("process.executable.name", exe));
    }
    for (k, v) in &cfg.resource_attributes {
        attrs.retain(|a| a.key.as_str() != k);
        attrs.push(KeyValue::new(k.clone(), v.clone()));
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<TelemetryConfig, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_exports_nothing() {
        let c = cfg(&[]).expect("config");
        assert_eq!(c.service_name, "glasshouse");
        assert!(c.traces_endpoint.is_none() && c.logs_endpoint.is_none());
        assert!(!c.exports_anything());
        assert_eq!(c.sampler, SamplerConfig::ParentBasedAlwaysOn);
    }

    #[test]
    fn endpoints_follow_the_specification() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://loki:3100/otlp/v1/logs",
            ),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .expect("config");
        assert_eq!(
            c.traces_endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            c.logs_endpoint.as_deref(),
            Some("http://loki:3100/otlp/v1/logs")
        );
        assert_eq!(c.metrics_endpoint, None);
    }

    #[test]
    fn the_sdk_can_be_disabled() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .expect("config");
        assert!(c.traces_endpoint.is_none() && c.metrics_endpoint.is_none());
        assert!(c.logs_endpoint.is_none());
    }

    #[test]
    fn unsupported_settings_are_one_clear_error() {
        let e = cfg(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).expect_err("grpc");
        assert!(e.contains("http/protobuf"), "{e}");
        let e = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://x:4318")]).expect_err("tls");
        assert!(e.contains("http://"), "{e}");
        assert!(cfg(&[("OTEL_TRACES_SAMPLER", "sometimes")]).is_err());
        assert!(cfg(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2")
        ])
        .is_err());
        assert!(cfg(&[("OTEL_BSP_SCHEDULE_DELAY", "soon")]).is_err());
    }

    #[test]
    fn samplers_parse() {
        assert_eq!(
            SamplerConfig::parse(Some("parentbased_traceidratio"), Some("0.25")),
            Ok(SamplerConfig::ParentBasedTraceIdRatio(0.25))
        );
        assert_eq!(
            SamplerConfig::parse(Some("traceidratio"), None),
            Ok(SamplerConfig::TraceIdRatio(1.0))
        );
        assert_eq!(
            SamplerConfig::parse(Some("always_off"), None),
            Ok(SamplerConfig::AlwaysOff)
        );
    }

    #[test]
    fn resource_attributes_merge_in_order() {
        let c = cfg(&[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=dev, service.name=ignored,team=a%2Cb,host.name=h1",
            ),
            ("OTEL_SERVICE_NAME", "gh"),
        ])
        .expect("config");
        let attrs = resource_attributes(&c);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a.key.as_str() == k)
                .map(|a| a.value.as_str().into_owned())
        };
        assert_eq!(get("service.name").as_deref(), Some("gh"));
        assert_eq!(
            get("service.version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(get("deployment.environment.name").as_deref(), Some("dev"));
        assert_eq!(get("team").as_deref(), Some("a,b"));
        assert_eq!(get("host.name").as_deref(), Some("h1"));
        assert_eq!(
            attrs
                .iter()
                .filter(|a| a.key.as_str() == "host.name")
                .count(),
            1
        );
        assert!(get("service.instance.id").is_some_and(|id| id.len() >= 16));
        assert!(get("process.pid").is_some());
        // OTEL_SERVICE_NAME unset: service.name from the attributes.
        let c = cfg(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs")]).expect("cfg");
        assert_eq!(c.service_name, "from-attrs");
        assert!(parse_key_values("X", "novalue").is_err());
    }
}
