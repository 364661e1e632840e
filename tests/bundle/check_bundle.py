#!/usr/bin/env python3
"""Static checks of glasshouse's deployment bundle (no Docker engine needed).

Run through tests/bundle/check.sh, which installs the tools (check-jsonschema,
kubernetes-validate, k6, promtool, shellcheck). Each check prints `ok` or
`FAIL` with its reasons; the last line is `N passed, N failed`.

What is checked against what:
  - docker-compose.yml   compose-spec JSON schema; our rules (pinned images in
                         one place, health checks, depends_on conditions,
                         stop_grace_period > drain timeout, volumes, ports
                         documented, mounted files exist)
  - Dockerfile           stages, cached dependency layer, non-root, STOPSIGNAL,
                         exec-form HEALTHCHECK/ENTRYPOINT, OCI labels;
                         .dockerignore keeps what the Dockerfile copies
  - otel-collector.yaml  every pipeline reference is defined (and everything
                         defined is used), current component names only,
                         memory_limiter first, exporters aimed at the stack
  - deploy/prometheus.yml promtool check config (Prometheus-3-only blocks
                         stripped), scrape targets, exemplars, OTLP receiver
  - deploy/loki.yaml     OTLP-ready settings
  - deploy/k8s/          kubernetes-validate --strict (1.30 and 1.37 schemas);
                         probes/ports/grace period/selectors vs the contract
  - docker-compose.tls.yml, deploy/k8s-tls/
                         the HTTPS stack: merged over docker-compose.yml (as
                         compose merges) and schema-checked; rendered with
                         kustomize and validated; ports, probes, secrets and
                         the CA agree with each other and with Prometheus
  - grafana/             datasource correlations; dashboards: JSON, datasource
                         uids, metric names from the contract, coverage
  - k6/                  k6 inspect --execution-requirements; traceparent,
                         BASE_URL; chaos report on a fixture
  - shell scripts        bash -n and shellcheck
  - workflows            GitHub workflow JSON schema; what the smoke asserts
  - docs/deployment.md   lists every published port
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

import yaml

ROOT = None

# The contract's metric names (shared/contract.md and the issue text).
CONTRACT_METRICS = {
    "http_server_request_duration_seconds",
    "http_server_active_requests",
    "glasshouse_connections_open",
    "glasshouse_connections_accepted_total",
    "glasshouse_connections_rejected_total",
    "glasshouse_bytes_sent_total",
    "glasshouse_websocket_messages_total",
    "glasshouse_shutdown_drained_total",
    "glasshouse_shutdown_forced_total",
    "glasshouse_worker_requests_total",
    "glasshouse_websockets_open",
    "glasshouse_ready",
    "glasshouse_telemetry_dropped_total",
}
HISTOGRAMS = {"http_server_request_duration_seconds"}
# Series from elsewhere in the stack that dashboards may use.
EXTRA_METRIC_PREFIXES = ("traces_span_metrics_", "k6_", "otelcol_")
EXTRA_METRICS = {"up"}

# Pinned images: .env, key -> pattern (docs/deployment.md).
EXPECTED_IMAGES = {
    "COLLECTOR_IMAGE": r"^otel/opentelemetry-collector-contrib:0\.1[5-9]\d\.\d+$",
    "JAEGER_IMAGE": r"^jaegertracing/jaeger:2\.\d+\.\d+$",
    "PROMETHEUS_IMAGE": r"^prom/prometheus:v3\.\d+\.\d+$",
    "LOKI_IMAGE": r"^grafana/loki:3\.\d+\.\d+$",
    "GRAFANA_IMAGE": r"^grafana/grafana:1[2-9]\.\d+\.\d+$",
    "K6_IMAGE": r"^grafana/k6:[12]\.\d+\.\d+$",
    "PROBE_IMAGE": r"^busybox:1\.\d+\.\d+$",
}

# What each pinned image contains that a healthcheck can run, and the VOLUMEs
# it declares (each needs a named volume, or every container leaves an
# anonymous one behind). Read from the images' upstream Dockerfiles and docs
# (no Docker engine here to look inside): keep it current when a pin moves.
#   has       executables (basename; full path where the image has one place)
#   volumes   VOLUME paths in the image config
#   flags     executable flag -> first image version that has it
IMAGE_CONTENTS = {
    # Built FROM scratch: the collector binary and CA certificates only.
    "otel/opentelemetry-collector-contrib": {"base": "scratch", "has": set(), "volumes": []},
    # Alpine: busybox sh and wget.
    "jaegertracing/jaeger": {"base": "alpine", "has": {"sh", "wget"}, "volumes": []},
    # busybox base (quay.io/prometheus/busybox): sh, wget; VOLUME /prometheus.
    "prom/prometheus": {"base": "busybox", "has": {"sh", "wget"}, "volumes": ["/prometheus"]},
    # distroless static since 3.6: no shell, no wget; `loki -health` from 3.7.0.
    "grafana/loki": {"base": "distroless static", "has": {"/usr/bin/loki"}, "volumes": [],
                     "flags": {"-health": (3, 7, 0)}},
    # Alpine: busybox sh and wget (curl is not promised).
    "grafana/grafana": {"base": "alpine", "has": {"sh", "wget"}, "volumes": []},
    "grafana/k6": {"base": "alpine", "has": {"sh", "k6"}, "volumes": []},
    "busybox": {"base": "busybox", "has": {"sh", "wget"}, "volumes": []},
    # Ours (Dockerfile): distroless cc, the binary probes itself.
    "glasshouse": {"base": "distroless cc", "has": {"/usr/local/bin/glasshouse"}, "volumes": []},
}
GO_BACKENDS = ("otel-collector", "jaeger", "prometheus", "loki", "grafana")
BACKENDS = GO_BACKENDS + ("otel-collector-health",)
# Oldest major of each GitHub Action that runs on a current Node runtime.
ACTION_MAJORS = {"actions/checkout": 6, "actions/setup-python": 6, "actions/upload-artifact": 7,
                 "docker/setup-buildx-action": 4}
# Collector component type -> the builder manifest module that provides it.
COMPONENT_MODULES = {
    ("extensions", "health_check"): "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension",
    ("receivers", "otlp"): "go.opentelemetry.io/collector/receiver/otlpreceiver",
    ("processors", "memory_limiter"): "go.opentelemetry.io/collector/processor/memorylimiterprocessor",
    ("processors", "batch"): "go.opentelemetry.io/collector/processor/batchprocessor",
    ("connectors", "span_metrics"): "github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector",
    ("exporters", "otlp_grpc"): "go.opentelemetry.io/collector/exporter/otlpexporter",
    ("exporters", "otlp_http"): "go.opentelemetry.io/collector/exporter/otlphttpexporter",
    ("exporters", "debug"): "go.opentelemetry.io/collector/exporter/debugexporter",
}

# Collector component types: current names, and names that are deprecated or gone.
DEPRECATED_COMPONENTS = {
    "exporters": {"otlp": "otlp_grpc", "otlphttp": "otlp_http", "loki": "otlp_http to Loki's /otlp",
                  "logging": "debug", "jaeger": "otlp_grpc", "jaeger_thrift": "otlp_grpc",
                  "spanmetrics": "span_metrics", "prometheusremotewrite/legacy": "-"},
    "connectors": {"spanmetrics": "span_metrics"},
    "processors": {"spanmetrics": "span_metrics connector",
                   "batch": "the exporter's sending_queue.batch (the batch processor is legacy)"},
    "extensions": {"memory_ballast": "GOMEMLIMIT"},
    "receivers": {"jaeger_legacy": "-"},
}

results = []


def check(name):
    """Decorator: a check function returns a list of problems (empty = ok)."""
    def wrap(fn):
        fn.check_name = name
        CHECKS.append(fn)
        return fn
    return wrap


CHECKS = []


def path(*parts):
    return os.path.join(ROOT, *parts)


def read(*parts):
    with open(path(*parts)) as f:
        return f.read()


def load_yaml(*parts):
    return yaml.safe_load(read(*parts))


def load_yaml_all(*parts):
    return [d for d in yaml.safe_load_all(read(*parts)) if d is not None]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def duration_seconds(v):
    """'20s', '1m30s', '500ms', 20 -> seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(v)):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def compose():
    return load_yaml("docker-compose.yml")


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return env


# --------------------------------------------------------------- compose --

@check("compose: compose-spec JSON schema (check-jsonschema vendor.compose-spec)")
def compose_schema():
    r = run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", path("docker-compose.yml")])
    return [] if r.returncode == 0 else [r.stdout + r.stderr]


def dotenv():
    out = {}
    for line in read(".env").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def expand(value, env=None):
    """${VAR:-default} -> the value from .env (or the default), as compose does."""
    env = dotenv() if env is None else env
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), str(value))


def version_tuple(tag):
    return tuple(int(x) for x in re.findall(r"\d+", tag)[:3])


@check("compose: every image pinned once in .env, used as ${VAR:-default} with the same default")
def compose_images():
    problems = []
    env = dotenv()
    for key, rx in EXPECTED_IMAGES.items():
        if key not in env:
            problems.append(f".env: {key} missing")
        elif not re.match(rx, env[key]):
            problems.append(f".env: {key}={env[key]} does not match {rx}")
    used = set()
    for name, svc in compose()["services"].items():
        img = str(svc.get("image", ""))
        m = re.fullmatch(r"\$\{(\w+):-([^}]+)\}", img)
        if name == "glasshouse":
            if img != "glasshouse:${GLASSHOUSE_VERSION:-0.1.0}":
                problems.append(f"glasshouse image {img!r}: want glasshouse:${{GLASSHOUSE_VERSION:-0.1.0}} (the tag k8s deploys)")
            continue
        if not m:
            problems.append(f"{name}: image {img!r} is not ${{VAR:-default}} from .env")
            continue
        used.add(m.group(1))
        if env.get(m.group(1)) != m.group(2):
            problems.append(f"{name}: default {m.group(2)} != .env {m.group(1)}={env.get(m.group(1))}")
    for key in set(EXPECTED_IMAGES) - used:
        problems.append(f".env {key} is used by no service")
    cargo = re.search(r'^version\s*=\s*"([^"]+)"', read("Cargo.toml"), re.M).group(1)
    if "0.1.0" != cargo:
        problems.append(f"GLASSHOUSE_VERSION default 0.1.0 != Cargo.toml version {cargo}")
    return problems


def image_entry(ref):
    repo = ref.rsplit(":", 1)[0] if ":" in ref.split("/")[-1] else ref
    return repo, IMAGE_CONTENTS.get(repo)


def healthcheck_problems(services):
    """Each healthcheck runs something its image contains (IMAGE_CONTENTS);
    each VOLUME an image declares is a named volume."""
    problems = []
    for name, svc in services.items():
        ref = expand(svc.get("image", ""))
        repo, info = image_entry(ref)
        if info is None:
            problems.append(f"{name}: image {ref} is not in IMAGE_CONTENTS (what can it run?)")
            continue
        test = (svc.get("healthcheck") or {}).get("test")
        if test:
            if test[0] == "CMD":
                exe = test[1]
                if exe not in info["has"] and os.path.basename(exe) not in info["has"]:
                    problems.append(f"{name}: healthcheck runs {exe}, which {repo} ({info['base']}) does not contain; it has {sorted(info['has']) or 'nothing'}")
                for flag, since in (info.get("flags") or {}).items():
                    if flag in test[2:] and version_tuple(ref.rsplit(":", 1)[1]) < since:
                        problems.append(f"{name}: {exe} {flag} needs {repo} >= {'.'.join(map(str, since))}")
            elif test[0] == "CMD-SHELL":
                if "sh" not in info["has"]:
                    problems.append(f"{name}: CMD-SHELL needs a shell, {repo} ({info['base']}) has none")
                alts = [a.strip().split()[0] for a in re.split(r"\|\||&&", test[1]) if a.strip()]
                if not any(a in info["has"] for a in alts):
                    problems.append(f"{name}: none of {alts} is in {repo}")
            else:
                problems.append(f"{name}: healthcheck must be CMD or CMD-SHELL, is {test[0]}")
        targets = {str(v).split(":")[1] for v in svc.get("volumes") or [] if not str(v).startswith((".", "/"))}
        for vol in info["volumes"]:
            if vol not in targets:
                problems.append(f"{name}: {repo} declares VOLUME {vol}; without a named volume there every container leaves an anonymous one")
    return problems


@check("compose: each healthcheck runs a binary its pinned image contains; image VOLUMEs are named (table IMAGE_CONTENTS)")
def compose_probe_table():
    problems = healthcheck_problems(compose()["services"])
    # Self-test: the two mistakes found against upstream are caught.
    s = json.loads(json.dumps(compose()["services"]))
    s["loki"]["healthcheck"]["test"] = ["CMD", "wget", "-q", "--spider", "http://localhost:3100/ready"]
    s["otel-collector-health"]["image"] = "prom/prometheus:v3.13.1"
    bad = healthcheck_problems({k: s[k] for k in ("loki", "otel-collector-health")})
    if len(bad) != 2:
        problems.append(f"self-test: want the wget-in-loki and prometheus-probe-volume problems, got {bad}")
    old = {"loki": dict(s["loki"], image="grafana/loki:3.6.0",
                        healthcheck={"test": ["CMD", "/usr/bin/loki", "-health"]})}
    if not healthcheck_problems(old):
        problems.append("self-test: loki -health accepted on Loki 3.6")
    if not problems:
        print("      " + "; ".join(f"{k}: {v['base']}, {', '.join(sorted(v['has'])) or 'nothing to run'}"
                                  for k, v in IMAGE_CONTENTS.items()))
    return problems


def mem_bytes(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgKMG])?(i?[bB])?", str(v).strip())
    if not m:
        raise ValueError(f"memory size {v!r}")
    mult = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[(m.group(2) or "").lower()]
    return float(m.group(1)) * mult


@check("compose: backends have mem_limit, GOMEMLIMIT ~80 % of it, restart policies; glasshouse has neither")
def compose_limits():
    problems = []
    s = compose()["services"]
    for name in BACKENDS:
        svc = s.get(name, {})
        if not svc.get("mem_limit"):
            problems.append(f"{name}: no mem_limit")
        if svc.get("restart") not in ("unless-stopped", "always", "on-failure"):
            problems.append(f"{name}: restart policy {svc.get('restart')!r}")
    for name in GO_BACKENDS:
        svc = s.get(name, {})
        gml = env_of(svc).get("GOMEMLIMIT")
        if not gml:
            problems.append(f"{name}: a Go program under mem_limit without GOMEMLIMIT")
        elif svc.get("mem_limit"):
            ratio = mem_bytes(gml) / mem_bytes(svc["mem_limit"])
            if not 0.75 <= ratio <= 0.85:
                problems.append(f"{name}: GOMEMLIMIT {gml} is {ratio:.0%} of mem_limit {svc['mem_limit']} (want ~80 %)")
    g = s["glasshouse"]
    for key in ("restart", "mem_limit", "deploy"):
        if key in g:
            problems.append(f"glasshouse sets {key}: chaos runs must see the server's own exits and memory")
    return problems


@check("compose: services, k6 under profiles load/chaos, the stack starts without profiles")
def compose_services():
    problems = []
    s = compose()["services"]
    core = ["glasshouse", "otel-collector", "jaeger", "prometheus", "loki", "grafana"]
    for name in core:
        if name not in s:
            problems.append(f"service {name} missing")
        elif s[name].get("profiles"):
            problems.append(f"{name} has profiles: `docker compose up` would not start it")
    want = {"k6-load": "load", "k6-ws": "load", "k6-chaos": "chaos"}
    for name, prof in want.items():
        if name not in s:
            problems.append(f"service {name} missing")
        elif prof not in (s[name].get("profiles") or []):
            problems.append(f"{name} not under profile {prof}")
    for name, svc in s.items():
        if svc.get("image", "").startswith("grafana/k6") and not svc.get("profiles"):
            problems.append(f"{name}: k6 service without a profile")
    g = s.get("glasshouse", {})
    if "build" not in g:
        problems.append("glasshouse is not built from the Dockerfile")
    e = env_of(g)
    if e.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector:4318":
        problems.append("glasshouse OTEL_EXPORTER_OTLP_ENDPOINT must be http://otel-collector:4318 (OTLP/HTTP only)")
    if e.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
        problems.append("OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf")
    if str(e.get("GLASSHOUSE_ACCESS_LOG", "")).lower() not in ("true", "1"):
        problems.append("GLASSHOUSE_ACCESS_LOG must be on: only request logs carry trace_id for the Loki correlations")
    if e.get("OTEL_SERVICE_NAME") != "glasshouse":
        problems.append("OTEL_SERVICE_NAME must be glasshouse")
    return problems


@check("compose: health checks, depends_on conditions, collector probed via its health_check extension")
def compose_health():
    problems = []
    s = compose()["services"]
    need_hc = ["glasshouse", "jaeger", "prometheus", "loki", "grafana", "otel-collector-health"]
    for name in need_hc:
        if not (s.get(name, {}).get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no healthcheck")
    hc = (s["glasshouse"].get("healthcheck") or {}).get("test")
    if not (isinstance(hc, list) and hc[0] == "CMD" and hc[-1] == "healthcheck" and "glasshouse" in hc[1]):
        problems.append(f"glasshouse healthcheck must be exec form [CMD, .../glasshouse, healthcheck], is {hc}")
    if s["otel-collector"].get("healthcheck"):
        problems.append("otel-collector image has no shell or wget: a healthcheck there cannot work")
    probe = " ".join(map(str, (s.get("otel-collector-health", {}).get("healthcheck") or {}).get("test", [])))
    if "otel-collector:13133" not in probe:
        problems.append("otel-collector-health does not probe otel-collector:13133")
    has_hc = {n for n, v in s.items() if (v.get("healthcheck") or {}).get("test")}
    for name, svc in s.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on without conditions")
            continue
        for dep, spec in deps.items():
            if dep not in s:
                problems.append(f"{name}: depends_on unknown service {dep}")
                continue
            cond = (spec or {}).get("condition", "service_started")
            if dep in has_hc and cond != "service_healthy":
                problems.append(f"{name} -> {dep}: {dep} has a healthcheck, use service_healthy")
            if dep not in has_hc and cond == "service_healthy":
                problems.append(f"{name} -> {dep}: service_healthy on a service without healthcheck never starts")
    if "otel-collector-health" not in (s["glasshouse"].get("depends_on") or {}):
        problems.append("glasshouse does not wait for the collector's health")
    return problems


@check("compose: stop_grace_period longer than the drain timeout, SIGTERM")
def compose_stop():
    problems = []
    g = compose()["services"]["glasshouse"]
    drain = float(env_of(g).get("GLASSHOUSE_DRAIN_TIMEOUT", 10))
    grace = duration_seconds(g.get("stop_grace_period", "10s"))
    if grace <= drain + 2:
        problems.append(f"stop_grace_period {grace}s must exceed drain timeout {drain}s plus flush time")
    if g.get("stop_signal", "SIGTERM") != "SIGTERM":
        problems.append("stop_signal must be SIGTERM")
    if not g.get("read_only") or "ALL" not in (g.get("cap_drop") or []):
        problems.append("glasshouse should run read_only with cap_drop: [ALL]")
    return problems


@check("compose: named volumes declared and used, mounted files exist")
def compose_volumes():
    problems = []
    c = compose()
    declared = set((c.get("volumes") or {}).keys())
    used = set()
    for name, svc in c["services"].items():
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith((".", "/")):
                if not os.path.exists(path(src)):
                    problems.append(f"{name}: bind source {src} does not exist")
            else:
                used.add(src)
                if src not in declared:
                    problems.append(f"{name}: volume {src} not declared")
    for v in declared - used:
        problems.append(f"volume {v} declared but unused")
    for need in ("prometheus", "loki", "grafana"):
        if not any(need in v for v in used):
            problems.append(f"{need} keeps no data in a named volume")
    return problems


def published_ports():
    out = {}
    for name, svc in compose()["services"].items():
        for p in svc.get("ports") or []:
            host = str(p).split(":")[-2] if str(p).count(":") >= 1 else str(p)
            out[int(host)] = name
    return out


@check("compose: only user-facing ports published, each listed in docs/deployment.md")
def compose_ports():
    problems = []
    ports = published_ports()
    allowed = {8080: "glasshouse", 3000: "grafana", 16686: "jaeger", 9090: "prometheus", 4318: "otel-collector"}
    for port, svc in ports.items():
        if allowed.get(port) != svc:
            problems.append(f"{svc} publishes {port}: not a user-facing port")
    try:
        doc = read("docs", "deployment.md")
    except FileNotFoundError:
        return problems + ["docs/deployment.md missing"]
    table = "\n".join(line for line in doc.splitlines() if line.startswith("|"))
    for port in ports:
        if not re.search(rf"\b{port}\b", table):
            problems.append(f"published port {port} not in a docs/deployment.md table")
    return problems


# ----------------------------------------------------------- compose TLS --

TLS_FILES = ("docker-compose.yml", "docker-compose.tls.yml")


def tls_compose():
    sys.path.insert(0, os.path.join(ROOT, "tests", "bundle"))
    import compose_files
    return compose_files.load(ROOT, TLS_FILES)


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


@check("compose TLS: docker-compose.tls.yml over docker-compose.yml is a valid compose file")
def compose_tls_schema():
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(tls_compose(), f)
    try:
        r = run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", f.name])
    finally:
        os.unlink(f.name)
    return [] if r.returncode == 0 else [r.stdout + r.stderr]


@check("compose TLS: HTTPS published, metrics listener where Prometheus and the healthcheck look, secrets and CA wired")
def compose_tls_rules():
    problems = []
    c = tls_compose()
    g = c["services"]["glasshouse"]
    env = env_of(g)
    listen, metrics = env.get("GLASSHOUSE_LISTEN"), env.get("GLASSHOUSE_METRICS_LISTEN")
    if not listen or not metrics:
        return ["glasshouse needs GLASSHOUSE_LISTEN and GLASSHOUSE_METRICS_LISTEN under TLS"]
    https, plain = port_of(listen), port_of(metrics)
    if f"{https}:{https}" not in [str(p) for p in g.get("ports") or []]:
        problems.append(f"HTTPS port {https} not published")
    # Prometheus scrapes the plain listener, unchanged from the plain stack.
    prom = load_yaml("deploy", "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs") or []}
    targets = [t for sc in jobs["glasshouse"].get("static_configs", []) for t in sc.get("targets", [])]
    if f"glasshouse:{plain}" not in targets:
        problems.append(f"Prometheus scrapes {targets}, not the metrics listener glasshouse:{plain}")
    if g.get("healthcheck", {}).get("test") != ["CMD", "/usr/local/bin/glasshouse", "healthcheck"]:
        problems.append("the healthcheck should be `glasshouse healthcheck` (it probes --metrics-listen)")
    secrets = c.get("secrets") or {}
    listed = set(g.get("secrets") or [])
    for var in ("GLASSHOUSE_TLS_CERT", "GLASSHOUSE_TLS_KEY"):
        v = env.get(var, "")
        name = v.removeprefix("/run/secrets/")
        if not v.startswith("/run/secrets/") or name not in listed or name not in secrets:
            problems.append(f"{var}={v!r} is not a secret glasshouse lists")
        elif not secrets[name].get("file", "").startswith("./deploy/tls/"):
            problems.append(f"secret {name} should be a file under ./deploy/tls/ (scripts/dev-cert.sh)")
    made = set(re.findall(r'"\$out/(\w+\.pem)"', read("scripts", "dev-cert.sh")))
    for name, sec in secrets.items():
        if os.path.basename(sec.get("file", "")) not in made:
            problems.append(f"secret {name}: {sec.get('file')} is not a file scripts/dev-cert.sh makes ({sorted(made)})")
    for name, svc in c["services"].items():
        if not name.startswith("k6-"):
            continue
        e = env_of(svc)
        if e.get("BASE_URL") != f"https://glasshouse:{https}":
            problems.append(f"{name}: BASE_URL {e.get('BASE_URL')!r}, want https://glasshouse:{https}")
        ca = e.get("SSL_CERT_FILE", "").removeprefix("/run/secrets/")
        if ca not in (svc.get("secrets") or []) or os.path.basename(secrets.get(ca, {}).get("file", "")) != "ca.pem":
            problems.append(f"{name}: SSL_CERT_FILE must name the CA secret it lists")
    if "/deploy/tls/*.pem" not in read(".gitignore"):
        problems.append(".gitignore must keep deploy/tls/*.pem (private keys) out of git")
    return problems


# ------------------------------------------------------------ Dockerfile --

def dockerfile_instructions():
    text = read("Dockerfile")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@check("Dockerfile: multi-stage, cached deps, non-root, STOPSIGNAL, exec-form HEALTHCHECK, OCI labels")
def dockerfile():
    problems = []
    ins = dockerfile_instructions()
    stages = [rest for word, rest in ins if word == "FROM"]
    names = [re.search(r"\bAS\s+(\S+)", s, re.I) for s in stages]
    if len(stages) < 3 or not all(names):
        problems.append(f"want >= 3 named stages, got {stages}")
    if not any(re.search(r"^node:", s) for s in stages):
        problems.append("no Node stage for the frontend")
    if not any(re.search(r"^rust:", s) for s in stages):
        problems.append("no Rust stage for the server")
    final = stages[-1] if stages else ""
    if not re.search(r"distroless/cc|debian:\S*-slim", final):
        problems.append(f"runtime base should be distroless cc or Debian slim: {final}")
    # The binary links the build stage's glibc: the runtime must be the same Debian.
    suites = {"bookworm": "12", "trixie": "13", "bullseye": "11"}
    rust = [s for s in stages if s.startswith("rust:")]
    built_on = [v for k, v in suites.items() if rust and k in rust[0]]
    runs_on = re.search(r"debian(\d+)|debian:(\w+)", final)
    runtime_v = runs_on and (runs_on.group(1) or suites.get(runs_on.group(2).split("-")[0]))
    if not built_on or built_on[0] != runtime_v:
        problems.append(f"build stage {rust} and runtime {final} are different Debian releases (glibc)")
    runs = [rest for word, rest in ins if word == "RUN"]
    if not any("npm ci" in r for r in runs) or not any("npm run build" in r for r in runs):
        problems.append("frontend: npm ci and npm run build expected")
    builds = [i for i, (w, r) in enumerate(ins) if w == "RUN" and "cargo build --release --locked" in r]
    copy_src = [i for i, (w, r) in enumerate(ins) if w == "COPY" and re.match(r"src\b", r)]
    copy_manifest = [i for i, (w, r) in enumerate(ins) if w == "COPY" and "Cargo.lock" in r]
    if len(builds) < 2 or not copy_src or not copy_manifest or not (copy_manifest[0] < builds[0] < copy_src[0] < builds[-1]):
        problems.append("dependency layer: COPY Cargo.toml Cargo.lock, cargo build --release --locked, then COPY src and build again")
    # Final-stage instructions.
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    final_ins = ins[last_from:]
    users = [r for w, r in final_ins if w == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("runtime stage must set a non-root USER")
    if ("STOPSIGNAL", "SIGTERM") not in final_ins:
        problems.append("STOPSIGNAL SIGTERM missing")
    hcs = [r for w, r in final_ins if w == "HEALTHCHECK"]
    if not hcs or not re.search(r'CMD\s+\[\s*"[^"]*glasshouse"\s*,\s*"healthcheck"', hcs[-1]):
        problems.append(f"HEALTHCHECK must be exec form running `glasshouse healthcheck`: {hcs}")
    eps = [r for w, r in final_ins if w == "ENTRYPOINT"]
    if not eps or not eps[-1].startswith("["):
        problems.append("ENTRYPOINT must be exec form so signals reach glasshouse")
    labels = " ".join(r for w, r in final_ins if w == "LABEL")
    for key in ("title", "description", "source", "version", "revision", "licenses", "created"):
        if f"org.opencontainers.image.{key}=" not in labels:
            problems.append(f"OCI label org.opencontainers.image.{key} missing")
    envs = " ".join(r for w, r in final_ins if w == "ENV")
    root = re.search(r"GLASSHOUSE_ROOT=(\S+)", envs)
    copies = [r for w, r in final_ins if w == "COPY" and "dist" in r]
    if not root or not any(c.rstrip().endswith(root.group(1)) for c in copies):
        problems.append("frontend dist is not copied to GLASSHOUSE_ROOT")
    listen = re.search(r"GLASSHOUSE_LISTEN=\S+:(\d+)", envs)
    exposed = [r for w, r in final_ins if w == "EXPOSE"]
    if not listen or listen.group(1) not in " ".join(exposed):
        problems.append("EXPOSE does not match GLASSHOUSE_LISTEN")
    return problems


def dependency_stage_script():
    """The Dockerfile's dependency-layer RUN as /bin/sh would see it, with the
    cargo build swapped for a manifest parse (cargo fetch --offline)."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    runs = [l[4:].strip() for l in text.splitlines() if l.startswith("RUN ") and "fn main() {}" in l]
    if not runs:
        return None
    cmd = re.sub(r"^(--mount=\S+\s+)+", "", runs[0])
    return cmd.replace("cargo build --release --locked", "cargo fetch --locked --offline")


@check("Dockerfile: dependency-layer stubs satisfy the manifest (declared benches/tests/examples)")
def dockerfile_stubs():
    problems = []
    script = dependency_stage_script()
    if not script or "cargo fetch" not in script:
        return ["no dependency-layer RUN with stub sources and cargo build --release --locked"]
    if not shutil.which("cargo"):
        print("      (cargo not found: skipped)")
        return []
    manifest = read("Cargo.toml")
    cases = [("repository Cargo.toml", manifest),
             ("self-test: extra [[bench]] and [[test]] with path",
              manifest + '\n[[bench]]\nname = "zz_stub_bench"\nharness = false\n'
                         '\n[[test]]\nname = "zz_stub_test"\npath = "tests/zz/stub.rs"\n')]
    for what, text in cases:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "Cargo.toml"), "w") as f:
                f.write(text)
            shutil.copy(path("Cargo.lock"), d)
            r = run(["sh", "-ec", script], cwd=d)
            if r.returncode != 0 and "failed to parse manifest" in r.stderr:
                problems.append(f"{what}: {r.stderr.strip()[-400:]}")
            elif r.returncode != 0 and "offline" not in r.stderr and "--offline" not in r.stderr:
                problems.append(f"{what}: {r.stderr.strip()[-400:]}")
    return problems


@check(".dockerignore: allow-list keeps what the Dockerfile copies, drops build output")
def dockerignore():
    problems = []
    lines = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
    if not lines or lines[0] != "*":
        problems.append("expected an allow-list starting with `*`")
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    for w, r in dockerfile_instructions():
        if w != "COPY" or "--from" in r:
            continue
        srcs = r.split()[:-1]
        for src in srcs:
            top = src.split("/")[0]
            if top not in allowed:
                problems.append(f"COPY {src} is excluded by .dockerignore")
    copied = " ".join(r for w, r in dockerfile_instructions() if w == "COPY")
    if os.path.exists(path("build.rs")) and "build.rs" not in copied:
        problems.append("the crate has a build.rs that the Dockerfile does not copy")
    for must in ("frontend/node_modules", "frontend/dist"):
        if must not in lines:
            problems.append(f"{must} should be ignored")
    return problems


# ------------------------------------------------------------- collector --

def collector_problems(cfg):
    """Structural rules for a collector config (a dict)."""
    problems = []
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    defined = {k: set((cfg.get(k) or {}).keys()) for k in kinds}
    svc = cfg.get("service") or {}
    pipelines = svc.get("pipelines") or {}
    if not pipelines:
        return ["no pipelines"]
    used = {k: set() for k in kinds}
    conn_as_exporter, conn_as_receiver = set(), set()
    for pname, p in pipelines.items():
        ptype = pname.split("/")[0]
        if ptype not in ("traces", "metrics", "logs", "profiles"):
            problems.append(f"pipeline {pname}: unknown signal")
        for field in ("receivers", "processors", "exporters"):
            for comp in p.get(field) or []:
                if field in ("receivers", "exporters") and comp in defined["connectors"]:
                    used["connectors"].add(comp)
                    (conn_as_receiver if field == "receivers" else conn_as_exporter).add(comp)
                elif comp not in defined[field]:
                    problems.append(f"pipeline {pname}: {field[:-1]} {comp} is not defined")
                else:
                    used[field].add(comp)
        if not p.get("receivers") or not p.get("exporters"):
            problems.append(f"pipeline {pname}: needs receivers and exporters")
        procs = p.get("processors") or []
        if procs and procs[0].split("/")[0] != "memory_limiter":
            problems.append(f"pipeline {pname}: memory_limiter must be the first processor")
        if not any(x.split("/")[0] == "memory_limiter" for x in procs):
            problems.append(f"pipeline {pname}: no memory_limiter")
    for c in defined["connectors"]:
        if c not in conn_as_exporter or c not in conn_as_receiver:
            problems.append(f"connector {c} must be an exporter in one pipeline and a receiver in another")
    for ext in svc.get("extensions") or []:
        if ext not in defined["extensions"]:
            problems.append(f"service.extensions: {ext} is not defined")
        used["extensions"].add(ext)
    for k in kinds:
        for comp in defined[k] - used[k]:
            problems.append(f"{k[:-1]} {comp} defined but unused")
    for k, bad in DEPRECATED_COMPONENTS.items():
        for comp in defined.get(k, ()):
            ctype = comp.split("/")[0]
            if ctype in bad:
                problems.append(f"{k[:-1]} {comp}: deprecated/removed type {ctype}, use {bad[ctype]}")
    for comp in defined["exporters"]:
        if comp.split("/")[0] not in ("otlp_grpc", "otlp_http", "debug", "prometheus", "prometheusremotewrite", "file"):
            problems.append(f"exporter {comp}: unexpected type")
    ml = [v for k, v in (cfg.get("processors") or {}).items() if k.split("/")[0] == "memory_limiter"]
    for v in ml:
        if "ballast_size_mib" in (v or {}):
            problems.append("memory_limiter.ballast_size_mib is gone")
        if not (v or {}).get("check_interval"):
            problems.append("memory_limiter needs check_interval")
    tel = svc.get("telemetry") or {}
    if "address" in (tel.get("metrics") or {}):
        problems.append("service.telemetry.metrics.address is deprecated: use readers")
    for name, ex in (cfg.get("exporters") or {}).items():
        q = (ex or {}).get("sending_queue") or {}
        if name.split("/")[0] in ("otlp_grpc", "otlp_http") and (not q.get("enabled", True) or "batch" not in q):
            problems.append(f"exporter {name}: batch in its sending_queue (sending_queue.batch)")
    otlp = (cfg.get("receivers") or {}).get("otlp") or {}
    protos = (otlp.get("protocols") or {})
    if set(protos) != {"grpc", "http"}:
        problems.append("otlp receiver must enable grpc and http")
    if "health_check" not in defined["extensions"]:
        problems.append("health_check extension missing")
    return problems


@check("collector: pipelines reference defined components, current names, memory_limiter first")
def collector_structure():
    return collector_problems(load_yaml("otel-collector.yaml"))


@check("collector: routes traces->Jaeger, metrics->Prometheus OTLP, logs->Loki OTLP; span_metrics with exemplars")
def collector_routes():
    problems = []
    cfg = load_yaml("otel-collector.yaml")
    ex = cfg["exporters"]
    pipes = cfg["service"]["pipelines"]

    def exporters_of(sig):
        return [ex.get(e, {}).get("endpoint", "") + "|" + e for e in pipes[sig]["exporters"]]
    if not any(e.startswith("jaeger:4317|otlp_grpc") for e in exporters_of("traces")):
        problems.append("traces must go to jaeger:4317 over otlp_grpc")
    if "span_metrics" not in pipes["traces"]["exporters"] or "span_metrics" not in pipes["metrics"]["receivers"]:
        problems.append("span_metrics must connect traces -> metrics")
    if not any(e.startswith("http://prometheus:9090/api/v1/otlp|otlp_http") for e in exporters_of("metrics")):
        problems.append("metrics must go to http://prometheus:9090/api/v1/otlp over otlp_http")
    if not any(e.startswith("http://loki:3100/otlp|otlp_http") for e in exporters_of("logs")):
        problems.append("logs must go to http://loki:3100/otlp over otlp_http")
    sm = cfg["connectors"]["span_metrics"]
    if not (sm.get("exemplars") or {}).get("enabled"):
        problems.append("span_metrics exemplars not enabled")
    if (sm.get("histogram") or {}).get("unit") != "s":
        problems.append("span_metrics histogram unit should be s (traces_span_metrics_duration_seconds)")
    dims = {d["name"] for d in sm.get("dimensions") or []}
    if "http.route" not in dims:
        problems.append("span_metrics should keep http.route")
    # Ports agree with compose and Prometheus.
    if not str(cfg["extensions"]["health_check"].get("endpoint", "")).endswith(":13133"):
        problems.append("health_check must listen on 13133 (probed by otel-collector-health)")
    readers = cfg["service"]["telemetry"]["metrics"].get("readers") or []
    ports = [r["pull"]["exporter"]["prometheus"].get("port") for r in readers if "pull" in r]
    if 8888 not in ports:
        problems.append("collector's own metrics must be served on :8888 (scraped by Prometheus)")
    return problems


@check("collector: the checker rejects broken configs (self-test)")
def collector_selftest():
    problems = []
    good = load_yaml("otel-collector.yaml")
    cases = []
    c = json.loads(json.dumps(good))
    c["service"]["pipelines"]["logs"]["exporters"] = ["otlp_http/nowhere"]
    cases.append(("undefined exporter", c))
    c = json.loads(json.dumps(good))
    c["exporters"]["otlp/jaeger"] = c["exporters"].pop("otlp_grpc/jaeger")
    c["service"]["pipelines"]["traces"]["exporters"] = ["otlp/jaeger", "span_metrics"]
    cases.append(("deprecated otlp exporter", c))
    c = json.loads(json.dumps(good))
    c["connectors"]["spanmetrics"] = c["connectors"].pop("span_metrics")
    c["service"]["pipelines"]["traces"]["exporters"] = ["otlp_grpc/jaeger", "spanmetrics"]
    c["service"]["pipelines"]["metrics"]["receivers"] = ["otlp", "spanmetrics"]
    cases.append(("old spanmetrics name", c))
    c = json.loads(json.dumps(good))
    c["service"]["pipelines"]["metrics"]["processors"] = ["batch", "memory_limiter"]
    cases.append(("memory_limiter not first", c))
    for what, cfg in cases:
        if not collector_problems(cfg):
            problems.append(f"checker accepted a config with {what}")
    return problems


def k8s_collector_configs():
    """(name, config dict, container) of the collector ConfigMaps in deploy/k8s."""
    out = []
    docs = k8s_docs()
    for f, d in docs:
        if d.get("kind") in ("DaemonSet", "Deployment") and "otel" in d["metadata"]["name"]:
            name = d["metadata"]["name"]
            cms = [c for _, c in docs if c.get("kind") == "ConfigMap" and c["metadata"]["name"] == name]
            if cms:
                out.append((name, yaml.safe_load(cms[0]["data"]["config.yaml"]),
                            d["spec"]["template"]["spec"]["containers"][0]))
    return out


def used_components(cfg):
    out = set()
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for comp in cfg.get(kind) or {}:
            out.add((kind, comp.split("/")[0]))
    return out


@check("collector: the builder manifest lists exactly the components the configs use, at the pinned release")
def collector_manifest():
    problems = []
    m = load_yaml("deploy", "native", "otelcol-builder.yaml")
    tag = dotenv()["COLLECTOR_IMAGE"].rsplit(":", 1)[1]
    if str(m["dist"].get("version")) != tag:
        problems.append(f"manifest dist.version {m['dist'].get('version')} != COLLECTOR_IMAGE tag {tag}")
    listed = {}
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for entry in m.get(kind) or []:
            mod, _, ver = entry["gomod"].partition(" ")
            listed[(kind, mod)] = ver
            if ver != f"v{tag}":
                problems.append(f"{mod} at {ver}, want v{tag} (one release for all)")
    need = used_components(load_yaml("otel-collector.yaml"))
    for _, cfg, _ in k8s_collector_configs():
        need |= used_components(cfg)
    want = set()
    for kind, ctype in need:
        mod = COMPONENT_MODULES.get((kind, ctype))
        if not mod:
            problems.append(f"{kind[:-1]} {ctype}: no module known in COMPONENT_MODULES")
        else:
            want.add((kind, mod))
    for k in sorted(want - set(listed)):
        problems.append(f"manifest lacks {k[0]} {k[1]}")
    for k in sorted(set(listed) - want):
        problems.append(f"manifest lists {k[0]} {k[1]}, which no config uses")
    return problems


@check("collector: k8s agent forwards to the gateway the bundle ships; gateway runs otel-collector.yaml's pipelines")
def collector_k8s_gateway():
    problems = []
    cfgs = {n: (c, ct) for n, c, ct in k8s_collector_configs()}
    if "otel-agent" not in cfgs or "otel-gateway" not in cfgs:
        return [f"want otel-agent and otel-gateway collectors in deploy/k8s, have {sorted(cfgs)}"]
    agent, agent_ct = cfgs["otel-agent"]
    env = {e["name"]: e.get("value") for e in agent_ct.get("env", [])}
    dest = env.get("OTEL_GATEWAY_ENDPOINT", "")
    services = {d["metadata"]["name"]: d for _, d in k8s_docs() if d.get("kind") == "Service"}
    host, _, port = dest.partition(":")
    svc = services.get(host.split(".")[0])
    if not svc or not any(str(p["port"]) == port for p in svc["spec"]["ports"]):
        problems.append(f"agent sends to {dest}, which is no Service:port in deploy/k8s ({sorted(services)})")
    gw, gw_ct = cfgs["otel-gateway"]
    compose_cfg = load_yaml("otel-collector.yaml")
    if gw["service"]["pipelines"] != compose_cfg["service"]["pipelines"]:
        problems.append("gateway pipelines differ from otel-collector.yaml's")
    for kind in ("processors", "connectors"):
        if gw.get(kind) != compose_cfg.get(kind):
            problems.append(f"gateway {kind} differ from otel-collector.yaml's")
    gw_env = {e["name"] for e in gw_ct.get("env", [])}
    for name, ex in gw["exporters"].items():
        ref = re.fullmatch(r"\$\{env:(\w+)\}", str(ex.get("endpoint", "")))
        if not ref or ref.group(1) not in gw_env:
            problems.append(f"gateway exporter {name}: endpoint should be ${{env:VAR}} set in the Deployment")
    for n, (_, ct) in cfgs.items():
        e = {x["name"]: x.get("value") for x in ct.get("env", [])}
        lim = ((ct.get("resources") or {}).get("limits") or {}).get("memory")
        if not e.get("GOMEMLIMIT") or not lim:
            problems.append(f"{n}: GOMEMLIMIT and a memory limit expected")
        else:
            ratio = mem_bytes(e["GOMEMLIMIT"]) / mem_bytes(lim.replace("Mi", "m").replace("Gi", "g"))
            if not 0.75 <= ratio <= 0.85:
                problems.append(f"{n}: GOMEMLIMIT {e['GOMEMLIMIT']} is {ratio:.0%} of {lim}")
    return problems


@check("native builds: Jaeger and Prometheus wrapper modules at the versions .env pins; Jaeger caps its memory")
def native_wrappers():
    problems = []
    env = dotenv()
    jtag = env["JAEGER_IMAGE"].rsplit(":", 1)[1]
    maj, mnr, pat = version_tuple(jtag)
    jmod = read("deploy", "native", "jaeger", "go.mod")
    want = f"require github.com/jaegertracing/jaeger v1.{mnr + 63}.{pat}"
    if want not in jmod:
        problems.append(f"deploy/native/jaeger/go.mod: want `{want}` for Jaeger {jtag}")
    ptag = env["PROMETHEUS_IMAGE"].rsplit(":", 1)[1].lstrip("v")
    maj, mnr, pat = version_tuple(ptag)
    want = f"require github.com/prometheus/prometheus v0.{maj}{mnr:02d}.{pat}"
    if want not in read("deploy", "native", "prometheus", "go.mod"):
        problems.append(f"deploy/native/prometheus/go.mod: want `{want}` for Prometheus {ptag}")
    if not re.fullmatch(r"\d+\.\d+\.\d+", env.get("K6_NATIVE_VERSION", "")) or \
            version_tuple(env["K6_NATIVE_VERSION"]) < (1, 6, 0):
        problems.append("K6_NATIVE_VERSION must be a k6 >= 1.6.0 (k6/websockets)")
    j = compose()["services"]["jaeger"]
    if "./deploy/jaeger.yaml:/etc/jaeger/config.yaml:ro" not in (j.get("volumes") or []) or \
            j.get("command") != ["--config", "/etc/jaeger/config.yaml"]:
        problems.append("compose jaeger must mount deploy/jaeger.yaml and run --config /etc/jaeger/config.yaml")
    cfg = load_yaml("deploy", "jaeger.yaml")
    backends = (cfg.get("extensions") or {}).get("jaeger_storage", {}).get("backends") or {}
    caps = [(b.get("memory") or {}).get("max_traces") for b in backends.values()]
    if not caps or not all(isinstance(c, int) and 0 < c <= 200000 for c in caps):
        problems.append(f"every Jaeger memory backend needs max_traces (<= 200000): {caps}")
    hc = ((cfg.get("extensions") or {}).get("healthcheckv2") or {}).get("http") or {}
    if not str(hc.get("endpoint", "")).endswith(":13133"):
        problems.append("Jaeger healthcheckv2 must answer on :13133 (the compose healthcheck)")
    return problems


# ------------------------------------------------------------ Prometheus --

PROM3_ONLY_KEYS = ("otlp",)


@check("prometheus: promtool check config (Prometheus-3-only blocks stripped)")
def prometheus_promtool():
    if not shutil.which("promtool"):
        return ["promtool not found"]
    cfg = load_yaml("deploy", "prometheus.yml")
    stripped = [k for k in PROM3_ONLY_KEYS if k in cfg]
    for k in stripped:
        del cfg[k]
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "prometheus.yml")
        with open(f, "w") as fh:
            yaml.safe_dump(cfg, fh)
        r = run(["promtool", "check", "config", f])
    if r.returncode != 0:
        return [r.stdout + r.stderr]
    print(f"      promtool: SUCCESS (stripped: {', '.join(stripped) or 'nothing'})")
    return []


@check("prometheus: scrapes glasshouse /metrics and the collector; OTLP receiver and exemplars on")
def prometheus_rules():
    problems = []
    cfg = load_yaml("deploy", "prometheus.yml")
    jobs = {j["job_name"]: j for j in cfg.get("scrape_configs") or []}
    targets = lambda j: [t for sc in jobs.get(j, {}).get("static_configs", []) for t in sc.get("targets", [])]
    if "glasshouse:8080" not in targets("glasshouse") or jobs.get("glasshouse", {}).get("metrics_path", "/metrics") != "/metrics":
        problems.append("job glasshouse must scrape glasshouse:8080/metrics")
    if "otel-collector:8888" not in targets("otel-collector"):
        problems.append("job otel-collector must scrape otel-collector:8888")
    if not (cfg.get("storage") or {}).get("exemplars"):
        problems.append("storage.exemplars not set")
    attrs = (cfg.get("otlp") or {}).get("promote_resource_attributes") or []
    if "service.name" not in attrs:
        problems.append("otlp.promote_resource_attributes should include service.name")
    cmd = " ".join(compose()["services"]["prometheus"].get("command") or [])
    for flag in ("--web.enable-otlp-receiver", "--enable-feature=exemplar-storage", "--web.enable-remote-write-receiver"):
        if flag not in cmd:
            problems.append(f"prometheus command lacks {flag}")
    if "/etc/prometheus/prometheus.yml" not in cmd:
        problems.append("prometheus does not load the mounted config")
    return problems


@check("loki: OTLP-ready config (tsdb v13, structured metadata, port 3100)")
def loki_config():
    problems = []
    cfg = load_yaml("deploy", "loki.yaml")
    if cfg.get("auth_enabled") is not False:
        problems.append("auth_enabled must be false for the single-tenant stack")
    if (cfg.get("server") or {}).get("http_listen_port") != 3100:
        problems.append("http_listen_port must be 3100")
    schemas = (cfg.get("schema_config") or {}).get("configs") or []
    if not schemas or schemas[-1].get("schema") != "v13" or schemas[-1].get("store") != "tsdb":
        problems.append("latest schema must be tsdb v13 (needed for structured metadata)")
    if not (cfg.get("limits_config") or {}).get("allow_structured_metadata"):
        problems.append("allow_structured_metadata must be true for OTLP logs")
    cmd = " ".join(compose()["services"]["loki"].get("command") or [])
    if "-config.file=/etc/loki/config.yaml" not in cmd:
        problems.append("loki does not load the mounted config")
    return problems


# ------------------------------------------------------------ Kubernetes --

def k8s_docs():
    out = []
    d = path("deploy", "k8s")
    for f in sorted(os.listdir(d)):
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml":
            out.extend((f, doc) for doc in load_yaml_all("deploy", "k8s", f))
    return out


@check("k8s: kubernetes-validate --strict against 1.30 and 1.37 schemas")
def k8s_schema():
    problems = []
    d = path("deploy", "k8s")
    files = [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".yaml") and f != "kustomization.yaml"]
    for version in ("1.30.0", "1.37.0"):
        r = run(["kubernetes-validate", "--strict", "--quiet", "-k", version] + files)
        if r.returncode != 0:
            problems.append(f"k8s {version}: {r.stdout}{r.stderr}")
    kz = load_yaml("deploy", "k8s", "kustomization.yaml")
    for res in kz.get("resources") or []:
        if not os.path.exists(os.path.join(d, res)):
            problems.append(f"kustomization lists missing {res}")
    listed = set(kz.get("resources") or [])
    for f in files:
        if os.path.basename(f) not in listed:
            problems.append(f"{os.path.basename(f)} not in kustomization.yaml")
    return problems


@check("k8s: validator rejects a misspelt field (self-test)")
def k8s_selftest():
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
               "metadata": {"labels": {"a": "b"}},
               "spec": {"containers": [{"name": "x", "image": "x", "readinesProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}]}}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(bad, f)
    try:
        r = run(["kubernetes-validate", "--strict", "--quiet", f.name])
    finally:
        os.unlink(f.name)
    return [] if r.returncode != 0 else ["kubernetes-validate accepted readinesProbe"]


@check("k8s: probes /healthz and /readyz on the listen port, preStop + drain < grace period, selectors")
def k8s_rules():
    problems = []
    docs = k8s_docs()
    by_kind = {}
    for f, d in docs:
        if not d.get("apiVersion") or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
            problems.append(f"{f}: document without apiVersion/kind/metadata.name")
            continue
        by_kind.setdefault(d["kind"], []).append(d)
    deps = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "glasshouse"]
    if not deps:
        return problems + ["no Deployment glasshouse"]
    dep = deps[0]
    tpl = dep["spec"]["template"]
    labels = tpl["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in dep["spec"]["selector"]["matchLabels"].items()):
        problems.append("Deployment selector does not match its template labels")
    pod = tpl["spec"]
    c = [x for x in pod["containers"] if x["name"] == "glasshouse"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    listen_port = int(env.get("GLASSHOUSE_LISTEN", "0.0.0.0:8080").rsplit(":", 1)[1])
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}

    def port_of(probe):
        p = probe["httpGet"]["port"]
        return ports.get(p) if isinstance(p, str) else p
    for kind, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        probe = c.get(kind)
        if not probe:
            if kind != "startupProbe":
                problems.append(f"{kind} missing")
            continue
        if probe.get("httpGet", {}).get("path") != want:
            problems.append(f"{kind} path must be {want}")
        if port_of(probe) != listen_port:
            problems.append(f"{kind} port {port_of(probe)} != listen port {listen_port}")
    drain = float(env.get("GLASSHOUSE_DRAIN_TIMEOUT") or 10)
    pre = (c.get("lifecycle") or {}).get("preStop") or {}
    pre_s = (pre.get("sleep") or {}).get("seconds", 0)
    if "exec" in pre:
        problems.append("preStop exec needs a shell the image does not have: use the sleep action")
    if not pre_s:
        problems.append("preStop sleep missing (endpoint removal must propagate before SIGTERM)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_s + drain + 2:
        problems.append(f"terminationGracePeriodSeconds {grace} <= preStop {pre_s} + drain {drain} + flush 2")
    if "$(NODE_IP):4318" not in (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""):
        problems.append("pods should send OTLP/HTTP to the node agent at $(NODE_IP):4318")
    sc = pod.get("securityContext") or {}
    if not sc.get("runAsNonRoot") or sc.get("runAsUser") != 65532:
        problems.append("pod must run as the image's non-root user 65532")
    svc = [d for d in by_kind.get("Service", []) if d["metadata"]["name"] == "glasshouse"]
    if not svc:
        problems.append("Service glasshouse missing")
    else:
        s = svc[0]["spec"]
        if any(labels.get(k) != v for k, v in s["selector"].items()):
            problems.append("Service selector does not match the pods")
        for p in s["ports"]:
            tp = p["targetPort"]
            if (ports.get(tp) if isinstance(tp, str) else tp) != listen_port:
                problems.append(f"Service targetPort {tp} does not reach {listen_port}")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if not hpas or hpas[0]["apiVersion"] != "autoscaling/v2":
        problems.append("autoscaling/v2 HorizontalPodAutoscaler missing")
    else:
        ref = hpas[0]["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] != "glasshouse":
            problems.append("HPA does not target Deployment glasshouse")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if not pdbs:
        problems.append("PodDisruptionBudget missing")
    else:
        sel = pdbs[0]["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            problems.append("PDB selector does not match the pods")
        if hpas and pdbs[0]["spec"].get("minAvailable", 0) >= hpas[0]["spec"].get("minReplicas", 1):
            problems.append("PDB minAvailable >= HPA minReplicas blocks every voluntary eviction")
    # The collector agent: a DaemonSet with hostPort 4318 and a valid config.
    ds = [d for d in by_kind.get("DaemonSet", []) if "otel" in d["metadata"]["name"]]
    if not ds:
        problems.append("collector agent DaemonSet missing")
    else:
        cc = ds[0]["spec"]["template"]["spec"]["containers"][0]
        if not any(p.get("hostPort") == 4318 for p in cc.get("ports", [])):
            problems.append("agent must expose hostPort 4318")
        for kind in ("livenessProbe", "readinessProbe"):
            if not cc.get(kind):
                problems.append(f"agent {kind} missing")
        cms = [d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"] == ds[0]["metadata"]["name"]]
        if not cms:
            problems.append("agent ConfigMap missing")
        else:
            agent_cfg = yaml.safe_load(cms[0]["data"]["config.yaml"])
            problems += [f"agent config: {p}" for p in collector_problems(agent_cfg)]
    return problems


def kustomize_build(directory):
    """Renders a kustomization with the kustomize check.sh builds (on PATH),
    else kubectl's; None when neither is here."""
    for cmd in (["kustomize", "build"], ["kubectl", "kustomize"]):
        if shutil.which(cmd[0]):
            r = run(cmd + [directory])
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} {directory}: {r.stderr.strip()}")
            return [d for d in yaml.safe_load_all(r.stdout) if d]
    return None


@check("k8s TLS: deploy/k8s-tls renders (kustomize) and validates; HTTPS Service, key from the Secret, probes on the metrics listener")
def k8s_tls():
    problems = []
    try:
        docs = kustomize_build(path("deploy", "k8s-tls"))
    except RuntimeError as e:
        return [str(e)]
    if docs is None:
        return ["neither kubectl nor kustomize is here to render deploy/k8s-tls (check.sh builds kustomize)"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(docs, f)
    try:
        r = run(["kubernetes-validate", "--strict", "--quiet", "-k", "1.37.0", f.name])
        if r.returncode != 0:
            problems.append(f"rendered overlay: {r.stdout}{r.stderr}")
    finally:
        os.unlink(f.name)
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "glasshouse")
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "glasshouse")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    names = [e["name"] for e in c.get("env", [])]
    if len(names) != len(set(names)):
        problems.append("an env variable is set twice")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    https, plain = port_of(env.get("GLASSHOUSE_LISTEN", ":0")), port_of(env.get("GLASSHOUSE_METRICS_LISTEN", ":0"))
    if ports.get("https") != https:
        problems.append(f"container port https {ports.get('https')} != GLASSHOUSE_LISTEN port {https}")
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        p = (c.get(kind) or {}).get("httpGet") or {}
        port = ports.get(p.get("port")) if isinstance(p.get("port"), str) else p.get("port")
        if port != plain or p.get("scheme", "HTTP") != "HTTP":
            problems.append(f"{kind} probes port {port} {p.get('scheme', 'HTTP')}, want the metrics listener {plain} over HTTP")
    ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
    if str(ann.get("prometheus.io/port")) != str(plain):
        problems.append(f"prometheus.io/port {ann.get('prometheus.io/port')} is not the metrics listener {plain}")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    tls_vol = next((n for n, v in vols.items() if (v.get("secret") or {}).get("secretName") == "glasshouse-tls"), None)
    if not tls_vol or tls_vol not in mounts:
        problems.append("the Secret glasshouse-tls is not mounted")
    else:
        base = mounts[tls_vol].rstrip("/")
        for var, key in (("GLASSHOUSE_TLS_CERT", "tls.crt"), ("GLASSHOUSE_TLS_KEY", "tls.key")):
            if env.get(var) != f"{base}/{key}":
                problems.append(f"{var}={env.get(var)!r}, want {base}/{key} (a kubernetes.io/tls Secret)")
        mode = vols[tls_vol]["secret"].get("defaultMode", 0o644)
        if mode & 0o007:
            problems.append(f"the key is readable by others (defaultMode {oct(mode)})")
        if mode & 0o040 and pod.get("securityContext", {}).get("fsGroup") != 65532:
            problems.append("a group-readable key needs fsGroup 65532 (the image's user)")
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "glasshouse")
    sp = svc["spec"]["ports"]
    if [(p["port"], ports.get(p["targetPort"], p["targetPort"])) for p in sp] != [(443, https)]:
        problems.append(f"the Service should carry only 443 -> {https}: {sp}")
    return problems


# --------------------------------------------------------------- Grafana --

def datasources():
    return load_yaml("grafana", "provisioning", "datasources", "datasources.yaml")["datasources"]


@check("grafana: datasource correlations (exemplars->Jaeger, traces->Loki, Loki trace_id->Jaeger)")
def grafana_datasources():
    problems = []
    ds = {d["uid"]: d for d in datasources()}
    for uid, typ in (("prometheus", "prometheus"), ("jaeger", "jaeger"), ("loki", "loki")):
        if ds.get(uid, {}).get("type") != typ:
            problems.append(f"datasource uid {uid} of type {typ} missing")
    if problems:
        return problems
    ex = ds["prometheus"]["jsonData"].get("exemplarTraceIdDestinations") or []
    if not any(e.get("name") == "trace_id" and e.get("datasourceUid") == "jaeger" for e in ex):
        problems.append("Prometheus exemplarTraceIdDestinations: name trace_id -> jaeger")
    t2l = ds["jaeger"]["jsonData"].get("tracesToLogsV2") or {}
    if t2l.get("datasourceUid") != "loki":
        problems.append("Jaeger tracesToLogsV2 must point at loki")
    q = t2l.get("query", "")
    if "{trace_id" in q.replace(" ", "") or not re.search(r'\|\s*trace_id\s*=\s*"\$\$\{__trace\.traceId\}"', q):
        problems.append(f"tracesToLogsV2 query must filter structured metadata: | trace_id=\"$${{__trace.traceId}}\", is {q!r}")
    if not t2l.get("customQuery"):
        problems.append("tracesToLogsV2.customQuery must be true")
    df = ds["loki"]["jsonData"].get("derivedFields") or []
    if not any(d.get("matcherType") == "label" and d.get("matcherRegex") == "trace_id"
               and d.get("datasourceUid") == "jaeger" for d in df):
        problems.append("Loki derivedFields: matcherType label, matcherRegex trace_id -> jaeger")
    raw = read("grafana", "provisioning", "datasources", "datasources.yaml")
    for m in re.finditer(r"(?<!\$)\$\{?__", raw):
        problems.append(f"unescaped ${m.group(0)[1:]} in provisioning (use $$)")
    for uid, d in ds.items():
        host = re.match(r"https?://([^:/]+)", d.get("url", ""))
        if not host or host.group(1) not in compose()["services"]:
            problems.append(f"datasource {uid} url {d.get('url')} is not a compose service")
    prov = load_yaml("grafana", "provisioning", "dashboards", "dashboards.yaml")
    dpath = prov["providers"][0]["options"]["path"]
    mounts = compose()["services"]["grafana"]["volumes"]
    if f"./grafana/dashboards:{dpath}:ro" not in mounts:
        problems.append(f"dashboard provider path {dpath} is not where compose mounts grafana/dashboards")
    return problems


def dashboards():
    d = path("grafana", "dashboards")
    return {f: read("grafana", "dashboards", f) for f in sorted(os.listdir(d)) if f.endswith(".json")}


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels") or [])


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan", "le"}


def promql_metrics(expr):
    """Metric names used in a PromQL expression (best effort, no parser)."""
    lv = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", expr, re.S)
    if lv:  # Grafana variable query: label_values(selector, label)
        expr = lv.group(1)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\{[^}]*\}", "{}", e)                       # label matchers
    e = re.sub(r"\[[^\]]*\]", "[]", e)                      # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\w+", " ", e)                            # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def metric_known(name):
    if name in CONTRACT_METRICS or name in EXTRA_METRICS or name.startswith(EXTRA_METRIC_PREFIXES):
        return True
    for h in HISTOGRAMS:
        if name in (h + "_bucket", h + "_count", h + "_sum"):
            return True
    return False


def dashboard_queries(dash):
    """(where, datasource uid, query text) for panels, targets, annotations, variables."""
    out = []
    for p in walk_panels(dash.get("panels") or []):
        pds = (p.get("datasource") or {}).get("uid")
        if p.get("type") != "row":
            out.append((f'panel "{p.get("title")}"', pds, None))
        for t in p.get("targets") or []:
            out.append((f'panel "{p.get("title")}" {t.get("refId")}', (t.get("datasource") or {}).get("uid") or pds,
                        t.get("expr")))
    for a in (dash.get("annotations") or {}).get("list") or []:
        out.append((f'annotation "{a.get("name")}"', (a.get("datasource") or {}).get("uid"),
                    a.get("expr") or (a.get("target") or {}).get("expr")))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            q = v.get("query")
            out.append((f'variable {v["name"]}', (v.get("datasource") or {}).get("uid"),
                        q.get("query") if isinstance(q, dict) else q))
    return out


@check("grafana: dashboards are valid JSON, generated from grafana/generate_dashboards.py, layout sane")
def grafana_dashboard_json():
    problems = []
    for f, text in dashboards().items():
        try:
            d = json.loads(text)
        except ValueError as e:
            problems.append(f"{f}: {e}")
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in d:
                problems.append(f"{f}: {key} missing")
        ids = [p.get("id") for p in walk_panels(d.get("panels") or [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{f}: duplicate panel ids")
        for p in walk_panels(d.get("panels") or []):
            g = p.get("gridPos") or {}
            if not all(k in g for k in "xywh") or g["x"] + g["w"] > 24:
                problems.append(f'{f}: panel "{p.get("title")}" has a bad gridPos {g}')
    r = run([sys.executable, path("grafana", "generate_dashboards.py"), "--check"])
    if r.returncode != 0:
        problems.append(r.stdout + r.stderr)
    return problems


@check("grafana: every panel/target/annotation datasource uid is provisioned")
def grafana_dashboard_uids():
    problems = []
    uids = {d["uid"] for d in datasources()} | {"-- Grafana --"}
    for f, text in dashboards().items():
        for where, uid, _ in dashboard_queries(json.loads(text)):
            if uid not in uids:
                problems.append(f"{f}: {where}: datasource uid {uid!r} not provisioned")
    return problems


@check("grafana: PromQL uses the contract's metric names; LogQL filters trace_id as metadata")
def grafana_dashboard_metrics():
    problems = []
    types = {d["uid"]: d["type"] for d in datasources()}
    for f, text in dashboards().items():
        for where, uid, q in dashboard_queries(json.loads(text)):
            if not q:
                continue
            if types.get(uid) == "prometheus":
                if q.count("(") != q.count(")") or q.count("{") != q.count("}"):
                    problems.append(f"{f}: {where}: unbalanced brackets: {q}")
                for m in promql_metrics(q):
                    if not metric_known(m):
                        problems.append(f"{f}: {where}: unknown metric {m}")
            elif types.get(uid) == "loki":
                if '{service_name="glasshouse"}' not in q:
                    problems.append(f"{f}: {where}: LogQL should select {{service_name=\"glasshouse\"}}")
                if re.search(r"\{[^}]*trace_id", q):
                    problems.append(f"{f}: {where}: trace_id is structured metadata, not a stream label")
    # The checker itself notices an unknown name.
    if not promql_metrics('sum(rate(http_requests_total{job="x"}[5m]))') == {"http_requests_total"}:
        problems.append("promql_metrics self-test failed")
    if metric_known("http_requests_total"):
        problems.append("metric_known accepts a name outside the contract")
    return problems


@check("grafana: overview and graceful-failure dashboards cover what the issue asks")
def grafana_dashboard_coverage():
    problems = []
    ds = dashboards()
    need = {
        "glasshouse-overview.json": [
            "http_server_request_duration_seconds_count", "http_response_status_code=~\"5..\"",
            "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
            "http_server_active_requests", "glasshouse_connections_open", "glasshouse_worker_requests_total",
            "glasshouse_bytes_sent_total", "glasshouse_websocket_messages_total",
            "glasshouse_telemetry_dropped_total", "traces_span_metrics_duration_seconds_bucket"],
        "glasshouse-graceful-failure.json": [
            "glasshouse_shutdown_drained_total", "glasshouse_shutdown_forced_total", "glasshouse_ready",
            "resets(", "drain (started|finished)", "\"operation\": \"shutdown\"",
            "glasshouse.shutdown.draining=true"],
    }
    for f, words in need.items():
        if f not in ds:
            problems.append(f"{f} missing")
            continue
        d = json.loads(ds[f])
        text = ds[f] + "\n" + "\n".join(q or "" for _, _, q in dashboard_queries(d))
        for w in words:
            if w not in text:
                problems.append(f"{f}: nothing uses {w}")
        types = [p.get("type") for p in walk_panels(d["panels"])]
        if "logs" not in types:
            problems.append(f"{f}: no logs panel")
        if f == "glasshouse-overview.json":
            if not any(t.get("exemplar") for p in walk_panels(d["panels"]) for t in p.get("targets") or []):
                problems.append(f"{f}: no query shows exemplars")
        if f == "glasshouse-graceful-failure.json":
            annos = [a for a in d["annotations"]["list"] if (a.get("datasource") or {}).get("uid") == "loki"]
            if not annos:
                problems.append(f"{f}: drain annotations must come from the logs (Loki)")
    return problems


# -------------------------------------------------------------------- k6 --

K6_SCRIPTS = ("load.js", "ws.js", "chaos.js")


@check("k6: k6 inspect --execution-requirements (k6 built from its Go module, knows k6/websockets) on every script")
def k6_inspect():
    problems = []
    if not shutil.which("k6"):
        return ["k6 not found"]
    env = dict(os.environ, BASE_URL="http://127.0.0.1:8080")
    for s in K6_SCRIPTS:
        r = run(["k6", "inspect", "--execution-requirements", path("k6", s)], env=env)
        if r.returncode != 0:
            problems.append(f"{s}: {r.stdout[-500:]}{r.stderr[-500:]}")
            continue
        info = json.loads(r.stdout)
        if not info.get("scenarios"):
            problems.append(f"{s}: no scenarios")
        if s in ("load.js", "ws.js") and not info.get("thresholds"):
            problems.append(f"{s}: no thresholds")
        if s == "load.js":
            sc = info["scenarios"]
            if not all(v["executor"] == "ramping-arrival-rate" for v in sc.values()):
                problems.append("load.js: scenarios must be ramping-arrival-rate")
            for want in ("static_files", "json_api", "slow"):
                if want not in sc:
                    problems.append(f"load.js: scenario {want} missing")
            th = info["thresholds"]
            if "http_req_failed" not in th or not any(k.startswith("http_req_duration") for k in th):
                problems.append("load.js: thresholds on http_req_failed and http_req_duration expected")
    r = run(["k6", "version"])
    print(f"      {r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr[-200:]}")
    m = re.search(r"k6 v(\d+)\.(\d+)", r.stdout)
    if not m or (int(m.group(1)), int(m.group(2))) < (1, 6):
        problems.append("the k6 running these checks must know k6/websockets (>= 1.6): scripts/native_build.sh k6")
    return problems


@check("k6: scripts send traceparent on every request and take BASE_URL from the env")
def k6_traceparent():
    problems = []
    ws = read("k6", "ws.js")
    if not re.search(r"^import \{ WebSocket \} from 'k6/websockets';$", ws, re.M) or "require(" in ws:
        problems.append("ws.js must `import { WebSocket } from 'k6/websockets'` (no require/try fallback hiding errors)")
    common = read("k6", "lib", "common.js")
    if "__ENV.BASE_URL" not in common or "traceparent" not in common:
        problems.append("lib/common.js must read BASE_URL and build traceparent")
    if not re.search(r"`00-\$\{traceId\}-\$\{spanId\}-01`", common):
        problems.append("traceparent format 00-<trace>-<span>-01 not found")
    for s in K6_SCRIPTS:
        text = read("k6", s)
        calls = re.findall(r"http\.(?:get|post|put|del|request|head)\(([^;]*?)\);", text, re.S)
        for c in calls:
            if "params(" not in c and "p)" not in c and not re.search(r",\s*p\s*$", c):
                problems.append(f"{s}: request without traceparent params: http.*({c[:60]}...)")
        if "new WebSocket(" in text and "traceparent" not in text:
            problems.append(f"{s}: WebSocket handshake without traceparent")
        if "BASE_URL" not in text and "WS_URL" not in text:
            problems.append(f"{s}: target not taken from BASE_URL")
        if re.search(r"https?://(?!127\.0\.0\.1|\$\{)", text):
            problems.append(f"{s}: hard-coded target URL")
    return problems


@check("k6: chaos driver kills with SIGTERM/SIGINT/SIGKILL via compose and restarts; report works")
def k6_chaos():
    problems = []
    sh = read("k6", "chaos.sh")
    for sig in ("SIGTERM", "SIGINT", "SIGKILL"):
        if sig not in sh:
            problems.append(f"chaos.sh does not send {sig}")
    if '$COMPOSE kill -s "$sig"' not in sh or "up -d --wait" not in sh:
        problems.append("chaos.sh must use docker compose kill -s and restart with up -d --wait")
    # Report on a fixture in k6's JSON output format.
    with tempfile.TemporaryDirectory() as d:
        pts = os.path.join(d, "k6.json")
        win = os.path.join(d, "windows.tsv")
        with open(pts, "w") as f:
            for i, (t, failed) in enumerate([("2026-11-25T12:00:01.123456789Z", 0), ("2026-11-25T12:00:02Z", 0),
                                             ("2026-11-25T12:00:11.5+00:00", 1), ("2026-11-25T12:00:12Z", 0)]):
                f.write(json.dumps({"metric": "http_req_failed", "type": "Point", "data": {
                    "time": t, "value": failed, "tags": {"name": "/api/slow", "status": "0", "error_code": "1211"},
                    "metadata": {"trace_id": f"{i:032x}"}}}) + "\n")
            f.write(json.dumps({"metric": "http_reqs", "type": "Metric", "data": {}}) + "\n")
        base = 1795608000  # 2026-11-25T12:00:00Z
        with open(win, "w") as f:
            f.write(f"baseline\t{base}\t{base + 10}\t-\t-\t-\n")
            f.write(f"SIGTERM\t{base + 10}\t{base + 20}\t0\t3.5\t{base + 11}\n")
        r = run([sys.executable, path("k6", "chaos_report.py"), pts, win, "http://127.0.0.1:9", "http://g",
                 str(base), str(base + 20)])
        out = r.stdout
        if r.returncode != 0:
            problems.append(f"chaos_report.py failed: {r.stderr[-400:]}")
        elif not re.search(r"baseline\s+-\s+-\s+2\s+0\s+0\.00%", out) or \
                not re.search(r"SIGTERM\s+0\s+3\.5\s+2\s+1\s+50\.00%", out) or \
                f"trace/{2:032x}" not in out or "operation=shutdown" not in out:
            problems.append("chaos_report.py output unexpected:\n" + out)
    return problems


@check("k6: chaos_local_report.py fails a failed request started before SIGTERM, not a refused one after it; under SIGKILL only lost connections are allowed")
def k6_chaos_local():
    problems = []
    base = 1795608000  # 2026-11-25T12:00:00Z; SIGTERM at base+10, restarted server ready at base+12

    def run_case(samples, exit_code="0", forced=0, signal="TERM"):
        with tempfile.TemporaryDirectory() as d:
            pts, ev, lg = (os.path.join(d, n) for n in ("k6.json", "events", "server.log"))
            with open(pts, "w") as f:
                for started, ended, failed, status, code in samples:
                    tags = {"name": "/api/slow", "status": status}
                    if code:
                        tags["error_code"] = code
                    f.write(json.dumps({"metric": "http_req_failed", "type": "Point", "data": {
                        "time": f"2026-11-25T12:00:{ended:09.6f}Z", "value": failed, "tags": tags,
                        "metadata": {"trace_id": "ab" * 16, "started_ms": str(int((base + started) * 1000))}}}) + "\n")
            with open(ev, "w") as f:
                f.write(f"signal {base + 10}\nstopped {base + 11}\nexit {exit_code}\nready {base + 12}\n")
            with open(lg, "w") as f:
                f.write(json.dumps({"message": "drain finished", "drained": 1, "forced": forced}) + "\n")
            return run([sys.executable, path("k6", "chaos_local_report.py"), pts, ev, lg, signal])

    good = [(1, 2, 0, "200", ""), (9.5, 10.5, 0, "200", ""),      # before; in flight at the signal
            (10.5, 10.6, 1, "0", "1212"), (11, 11.1, 1, "503", ""),  # gap: refused, draining
            (13, 13.1, 0, "200", "")]                               # after the restart
    cases = [("good run", good, "0", 0, 0),
             ("failed request in flight at SIGTERM", good + [(9.8, 10.9, 1, "0", "1000")], "0", 0, 1),
             ("failed request started after the restart", good + [(14, 14.1, 1, "500", "")], "0", 0, 1),
             ("500 in the gap", good + [(11, 11.1, 1, "500", "")], "0", 0, 1),
             ("exit 1", good, "1", 0, 1),
             ("forced drain", good, "0", 1, 1)]
    killed = [(1, 2, 0, "200", ""), (9.5, 10.5, 1, "0", "1000"),   # ended before; lost at the kill
              (10.5, 10.6, 1, "0", "1212"),                          # gap: refused
              (13, 13.1, 0, "200", "")]                              # after the restart
    cases += [("KILL: good run", killed, "137", 0, 0, "KILL"),
              ("KILL: a 500 in flight", killed + [(9.6, 10.2, 1, "500", "")], "137", 0, 1, "KILL"),
              ("KILL: a failure that ended before the kill", killed + [(3, 4, 1, "0", "1000")], "137", 0, 1, "KILL"),
              ("KILL: exit 0", killed, "0", 0, 1, "KILL")]
    for name, samples, code, forced, want, *sig in cases:
        r = run_case(samples, code, forced, *sig)
        if (r.returncode != 0) != bool(want):
            problems.append(f"{name}: exit {r.returncode}, want {'non-zero' if want else 0}:\n{r.stdout}{r.stderr[-400:]}")
    return problems


# ----------------------------------------------------------------- shell --

def shell_scripts():
    out = []
    for base, _, files in os.walk(ROOT):
        if any(part in base for part in ("/.git", "/.venv", "/node_modules", "/target")):
            continue
        out += [os.path.join(base, f) for f in files if f.endswith(".sh")]
    return sorted(out)


@check("shell: bash -n and shellcheck on every script")
def shell_lint():
    problems = []
    scripts = shell_scripts()
    if not scripts:
        return ["no shell scripts found"]
    for s in scripts:
        r = run(["bash", "-n", s])
        if r.returncode != 0:
            problems.append(f"{s}: {r.stderr}")
    if shutil.which("shellcheck"):
        r = run(["shellcheck", "-S", "warning"] + scripts)
        if r.returncode != 0:
            problems.append(r.stdout[-3000:])
    else:
        problems.append("shellcheck not found")
    return problems


# ------------------------------------------------------------- workflows --

@check("workflow: GitHub workflow schema; smoke builds, waits, loads, asserts Jaeger/Prometheus/Loki, SIGTERM")
def workflow():
    problems = []
    wf = path(".github", "workflows", "bundle.yml")
    r = run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", wf])
    if r.returncode != 0:
        problems.append(r.stdout + r.stderr)
    w = read(".github", "workflows", "bundle.yml")
    for want in ("tests/bundle/check.sh", "deploy/ci/smoke.sh"):
        if want not in w:
            problems.append(f"workflow does not run {want}")
    smoke = read("deploy", "ci", "smoke.sh")
    for want in ("compose build", "up -d --wait", "k6-load", "k6-ws", "/api/traces", "/api/v1/series",
                 "query_exemplars", "loki/api/v1/query_range", "kill -s SIGTERM", "operation=shutdown",
                 'printf \'\\n%d passed, %d failed\\n\''):
        if want.replace("compose build", "build ") not in smoke and want not in smoke:
            problems.append(f"smoke.sh lacks {want}")
    return problems


@check("workflow: actions on current majors (Node 24); a push cancels neither the nightly chaos run nor a dispatch")
def workflow_actions():
    problems = []
    w = load_yaml(".github", "workflows", "bundle.yml")
    for job, spec in w["jobs"].items():
        for step in spec.get("steps") or []:
            uses = step.get("uses")
            if not uses:
                continue
            name, _, ref = uses.partition("@")
            m = re.fullmatch(r"v(\d+)(?:\.\d+)*", ref)
            if name in ACTION_MAJORS and (not m or int(m.group(1)) < ACTION_MAJORS[name]):
                problems.append(f"{job}: {uses}, want {name}@v{ACTION_MAJORS[name]} or newer")
            elif name not in ACTION_MAJORS:
                problems.append(f"{job}: {uses} has no known current major (add it to ACTION_MAJORS)")
    conc = w.get("concurrency") or {}
    group, cancel = str(conc.get("group", "")), conc.get("cancel-in-progress")
    if cancel is True or (isinstance(cancel, str) and "pull_request" not in cancel):
        if "event_name" not in group:
            problems.append(f"concurrency {conc}: a push to main cancels the nightly chaos run of the same ref")
    return problems


@check("k8s: the Deployment's image is set by kustomize images:, at the tag compose builds; collector tag = .env")
def k8s_images():
    problems = []
    kz = load_yaml("deploy", "k8s", "kustomization.yaml")
    images = {i["name"]: i for i in kz.get("images") or []}
    env = dotenv()
    gv = re.search(r"GLASSHOUSE_VERSION:-([^}]+)", str(compose()["services"]["glasshouse"]["image"]))
    for f, d in k8s_docs():
        if d.get("kind") not in ("Deployment", "DaemonSet"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            repo = c["image"].split(":")[0]
            if repo not in images:
                problems.append(f"{f}: image {c['image']} is not set by kustomization images:")
            elif repo == "glasshouse":
                if ":" in c["image"]:
                    problems.append(f"{f}: glasshouse image {c['image']}: leave the tag to kustomize")
                if not gv or str(images[repo].get("newTag")) != gv.group(1):
                    problems.append(f"kustomization glasshouse newTag {images[repo].get('newTag')} != compose's {gv and gv.group(1)}")
            elif repo == "otel/opentelemetry-collector-contrib":
                tag = env["COLLECTOR_IMAGE"].rsplit(":", 1)[1]
                if str(images[repo].get("newTag")) != tag or c["image"] != f"{repo}:{tag}":
                    problems.append(f"{f}: collector {c['image']} / kustomization {images[repo].get('newTag')} != .env {tag}")
    doc = read("docs", "deployment.md")
    for want in ("kind load docker-image", "kustomize edit set image"):
        if want not in doc:
            problems.append(f"docs/deployment.md does not say how to get the image to a cluster ({want})")
    return problems


# ------------------------------------------------------------------ docs --

@check("docs: deployment.md covers ports, running, chaos and the metrics-path choice")
def docs():
    problems = []
    try:
        d = read("docs", "deployment.md")
    except FileNotFoundError:
        return ["docs/deployment.md missing"]
    for want in ("docker compose up", "k6/chaos.sh", "tests/bundle/check.sh", "tests/bundle/real.sh", "OTLP receiver",
                 "stop_grace_period", "terminationGracePeriodSeconds", "docker-compose.tls.yml",
                 "deploy/k8s-tls", "scripts/dev-cert.sh", "REAL_TLS=1"):
        if want not in d:
            problems.append(f"deployment.md does not mention {want}")
    return problems


@check("contract: metric names known here match shared/contract.md (when present)")
def contract_drift():
    for cand in (os.path.join(ROOT, "..", "shared", "contract.md"), "/work/shared/contract.md"):
        if os.path.exists(cand):
            text = open(cand).read()
            names = set(re.findall(r"`((?:glasshouse|http_server)_[a-z_]+)(?:\{[^`]*\})?`", text))
            missing = sorted(n for n in names if n not in CONTRACT_METRICS)
            print(f"      {len(names)} metric names in {os.path.normpath(cand)}")
            if len(names) < 5:
                return [f"found only {sorted(names)} in {cand}: parser out of date?"]
            return [f"contract metric {n} unknown to the bundle checks" for n in missing]
    print("      (shared/contract.md not found: skipped)")
    return []


def main():
    global ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("-k", default="", help="run only checks whose name contains this")
    args = ap.parse_args()
    ROOT = os.path.abspath(args.repo)
    passed = failed = 0
    for fn in CHECKS:
        if args.k and args.k not in fn.check_name:
            continue
        try:
            problems = fn()
        except Exception:
            problems = ["exception:\n" + traceback.format_exc()]
        if problems:
            failed += 1
            print(f"FAIL {fn.check_name}")
            for p in problems:
                print("      " + str(p).rstrip().replace("\n", "\n      "))
        else:
            passed += 1
            print(f"ok   {fn.check_name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
