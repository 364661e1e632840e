#!/usr/bin/env python3
"""Adapts deploy/prometheus.yml (the compose stack's Prometheus 3 config) to a
local Prometheus 2.x on 127.0.0.1, keeping everything else as it is:

  - targets glasshouse:8080 -> GLASSHOUSE (127.0.0.1:PORT),
    localhost:9090 -> PROMETHEUS (the local server's own port)
  - the otel-collector job is dropped (no collector runs here)
  - the Prometheus-3-only `otlp:` block is dropped (2.42 rejects it)

Usage: prometheus_local.py IN OUT GLASSHOUSE PROMETHEUS
Prints one line per change.
"""
import sys

import yaml

src, dst, gh, prom = sys.argv[1:5]
cfg = yaml.safe_load(open(src))
changes = []
if "otlp" in cfg:
    del cfg["otlp"]
    changes.append("dropped the Prometheus-3-only otlp: block")
jobs = []
for job in cfg.get("scrape_configs") or []:
    if job["job_name"] == "otel-collector":
        changes.append("dropped job otel-collector (no collector here)")
        continue
    for sc in job.get("static_configs") or []:
        new = []
        for t in sc.get("targets") or []:
            r = {"glasshouse:8080": gh, "localhost:9090": prom}.get(t, t)
            if r != t:
                changes.append(f"job {job['job_name']}: {t} -> {r}")
            new.append(r)
        sc["targets"] = new
    jobs.append(job)
cfg["scrape_configs"] = jobs
if not any(c.startswith("job glasshouse:") for c in changes):
    sys.exit("prometheus_local.py: no glasshouse:8080 target in " + src)
with open(dst, "w") as f:
    f.write(f"# Generated from {src} by tests/bundle/prometheus_local.py\n")
    yaml.safe_dump(cfg, f, sort_keys=False)
for c in changes:
    print(f"      {c}")
