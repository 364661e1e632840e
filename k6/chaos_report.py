#!/usr/bin/env python3
"""Per-window failure report for k6/chaos.sh.

Usage: chaos_report.py K6_JSON WINDOWS_TSV JAEGER_URL GRAFANA_URL T0 T_END

K6_JSON is k6 --out json output; WINDOWS_TSV has one line per window:
name, start, end (epoch s), exit code, seconds until healthy, stop time.

With CHAOS_STRICT=1 the exit status is 1 when a graceful stop (SIGTERM,
SIGINT) did not exit 0, or when Jaeger answered with fewer shutdown traces
than graceful stops.
"""
import collections, json, os, re, sys, urllib.request

points_path, windows_path, jaeger, grafana, t0, t_end = sys.argv[1:7]

def ts(s):
    # 2026-11-25T12:00:00.123456789Z or ...+00:00 -> epoch seconds
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    from datetime import datetime
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float("0." + (m.group(2) or "0"))

windows = []
for line in open(windows_path):
    name, start, end, code, downtime, stopped = line.rstrip("\n").split("\t")
    windows.append(dict(name=name, start=float(start), end=float(end), code=code, downtime=downtime,
                        total=0, failed=0, why=collections.Counter(), traces=[]))

for line in open(points_path):
    try:
        p = json.loads(line)
    except ValueError:
        continue
    if p.get("type") != "Point" or p.get("metric") != "http_req_failed":
        continue
    d = p["data"]
    t = ts(d["time"])
    for w in windows:
        if w["start"] <= t < w["end"]:
            w["total"] += 1
            if d["value"]:
                w["failed"] += 1
                tags = d.get("tags") or {}
                w["why"][f'status={tags.get("status", "?")} error_code={tags.get("error_code", "-")} {tags.get("name", "")}'] += 1
                tid = (d.get("metadata") or {}).get("trace_id")
                if tid and len(w["traces"]) < 3:
                    w["traces"].append(tid)
            break

print()
print(f'{"window":10} {"exit":>7} {"down s":>7} {"requests":>9} {"failed":>7} {"failed %":>9}')
for w in windows:
    pct = 100.0 * w["failed"] / w["total"] if w["total"] else 0.0
    print(f'{w["name"]:10} {w["code"]:>7} {w["downtime"]:>7} {w["total"]:>9} {w["failed"]:>7} {pct:>8.2f}%')
    for why, n in w["why"].most_common(4):
        print(f'{"":12}{n:>6} x {why}')
    for tid in w["traces"]:
        print(f'{"":12}failed request trace: {jaeger}/trace/{tid}')

graceful = [w for w in windows if w["name"] in ("SIGTERM", "SIGINT")]
problems = [f'{w["name"]} exited with {w["code"]}, want 0' for w in graceful if w["code"] != "0"]
start_us, end_us = int(float(t0) * 1e6), int(float(t_end) * 1e6)
search = f"{jaeger}/search?service=glasshouse&operation=shutdown&start={start_us}&end={end_us}&limit=20"
try:
    with urllib.request.urlopen(f"{jaeger}/api/traces?service=glasshouse&operation=shutdown"
                                f"&start={start_us}&end={end_us}&limit=20", timeout=10) as r:
        n = len(json.load(r).get("data") or [])
    print(f"\nshutdown traces in Jaeger for this run: {n} (expected {len(graceful)}: one per SIGTERM/SIGINT; SIGKILL leaves none)")
    if n < len(graceful):
        problems.append(f"{n} shutdown traces in Jaeger, want {len(graceful)}")
except Exception as e:  # the report is still useful without Jaeger
    print(f"\nJaeger not reachable for counting shutdown traces: {e}")
print(f"shutdown traces:   {search}")
print(f"drained requests:  {jaeger}/search?service=glasshouse&tags=%7B%22glasshouse.shutdown.draining%22%3A%22true%22%7D&start={start_us}&end={end_us}")
print(f"dashboard:         {grafana}/d/glasshouse-graceful-failure?from={int(float(t0) * 1000)}&to={int(float(t_end) * 1000)}")
print(f"raw k6 samples:    {points_path}")
for p in problems:
    print(f"problem: {p}")
if problems and os.environ.get("CHAOS_STRICT") == "1":
    sys.exit(1)
