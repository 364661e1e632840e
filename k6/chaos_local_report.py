#!/usr/bin/env python3
"""Report and verdict for k6/chaos-local.sh (a SIGTERM or SIGKILL + restart
on 127.0.0.1).

Usage: chaos_local_report.py K6_JSON EVENTS SERVER_LOG [TERM|KILL]

K6_JSON is `k6 run --out json` of k6/chaos.js; every http_req_failed sample
carries metadata started_ms (set by k6/lib/common.js) and its own time is when
the request ended. EVENTS has lines `name epoch_seconds` (signal, stopped,
ready) and `exit CODE`. SERVER_LOG is the first server's JSON log.

Requests are grouped by when they started:
  before   started before SIGTERM, so the old server had them (accepted);
           those still running at the signal are "in flight at the signal".
           Any failure here is a FAIL: a graceful stop must finish them.
  gap      started between SIGTERM and the restarted server's `listening`
           line: refused connections (k6 status 0) and 503 while draining
           are expected and reported by kind; any other status is a FAIL.
  after    started once the restarted server listened: all must succeed.
Also FAIL unless the server exited 0 and its `drain finished` line has
forced=0. Under KILL there is no drain: requests in flight at the kill may
fail, but only as connection errors (status 0), never with a wrong status;
the rest of "before" must succeed, and the server must have died of the
signal (137). Prints `ok   ...`/`FAIL ...` lines; exit 1 on any FAIL.
"""
import collections
import json
import re
import sys
from datetime import datetime

points_path, events_path, log_path = sys.argv[1:4]
SIGNAL = sys.argv[4] if len(sys.argv) > 4 else "TERM"
KILL = SIGNAL == "KILL"

events = {}
for line in open(events_path):
    k, _, v = line.strip().partition(" ")
    events[k] = v
t_sig = float(events["signal"])
t_stopped = float(events.get("stopped") or "inf")
t_ready = float(events.get("ready") or "inf")
exit_code = events.get("exit", "?")


def ts(s):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


groups = {g: dict(total=0, failed=0, why=collections.Counter(), traces=[]) for g in
          ("before", "in_flight", "ended_before", "gap", "after")}
no_start = 0
for line in open(points_path):
    try:
        p = json.loads(line)
    except ValueError:
        continue
    if p.get("type") != "Point" or p.get("metric") != "http_req_failed":
        continue
    d = p["data"]
    started = (d.get("metadata") or {}).get("started_ms")
    if started is None:
        no_start += 1
        continue
    start, end = float(started) / 1000.0, ts(d["time"])
    if start < t_sig:
        names = ["before"] + (["in_flight"] if end >= t_sig else ["ended_before"])
    elif start < t_ready:
        names = ["gap"]
    else:
        names = ["after"]
    tags = d.get("tags") or {}
    why = f'status={tags.get("status", "?")} error_code={tags.get("error_code", "-")} {tags.get("name", "")}'
    for n in names:
        g = groups[n]
        g["total"] += 1
        if d["value"]:
            g["failed"] += 1
        g["why"][why] += 1
        tid = (d.get("metadata") or {}).get("trace_id")
        if d["value"] and tid and len(g["traces"]) < 3:
            g["traces"].append(tid)

drain = {}
for line in open(log_path):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("message") == "drain finished":
        drain = rec

print(f"      SIG{SIGNAL} at {t_sig:.3f}; old server exited {exit_code} after {t_stopped - t_sig:.2f} s; "
      f"restarted server listening {t_ready - t_sig:.2f} s after the signal")
labels = {"before": f"started before SIG{SIGNAL}", "in_flight": f"  of which in flight at SIG{SIGNAL}",
          "ended_before": f"  of which ended before SIG{SIGNAL}",
          "gap": "started during the restart gap", "after": "started after the restart"}
for n, g in groups.items():
    print(f"      {labels[n]:36} {g['total']:5} requests, {g['failed']:4} failed")
    if n in ("gap", "after", "in_flight") or g["failed"]:
        for why, c in g["why"].most_common(5):
            print(f"      {'':38}{c:5} x {why}")
    for tid in g["traces"]:
        print(f"      {'':38}failed request trace id {tid}")
if no_start:
    print(f"      {no_start} samples without started_ms metadata (ignored)")
if drain:
    print(f"      server log: drain finished drained={drain.get('drained')} forced={drain.get('forced')} "
          f"idle_closed={drain.get('idle_closed')} in_flight={drain.get('in_flight')} "
          f"(k6 saw {groups['in_flight']['total']} in flight at the signal)")

failed = 0


def verdict(good, msg):
    global failed
    print(("ok   " if good else "FAIL ") + msg)
    failed += 0 if good else 1


b, f, e = groups["before"], groups["in_flight"], groups["ended_before"]
if KILL:
    verdict(e["total"] > 0 and e["failed"] == 0,
            f"chaos: no failure among the {e['total']} requests that ended before SIGKILL")
    verdict(f["total"] > 0, f"chaos: requests were in flight when SIGKILL landed ({f['total']})")
    wrong = {w: c for w, c in f["why"].items() if not re.match(r"status=(0|200) ", w)}
    verdict(not wrong, f"chaos: the {f['failed']} requests lost to SIGKILL failed as connection errors, "
            "never with a wrong answer" + (f" (also: {dict(wrong)})" if wrong else ""))
    verdict(exit_code == "137", f"chaos: glasshouse died of SIGKILL (exit {exit_code}, want 137)")
else:
    verdict(b["total"] > 0 and b["failed"] == 0,
            f"chaos: no failure among the {b['total']} requests started before SIGTERM "
            f"({f['total']} in flight at the signal, {f['failed']} failed; {b['failed']} failed in all)")
    verdict(f["total"] > 0, f"chaos: requests were in flight when SIGTERM landed ({f['total']})")
    verdict(exit_code == "0", f"chaos: glasshouse exited {exit_code} on SIGTERM (want 0)")
    verdict(bool(drain) and drain.get("forced") == 0,
            f"chaos: drain finished with forced={drain.get('forced', 'no drain finished line')} (want 0)")
g = groups["gap"]
odd = {w: c for w, c in g["why"].items() if not re.match(r"status=(0|200|503) ", w)}
verdict(not odd, f"chaos: the {g['failed']} failures in the restart gap are connection errors or 503 only"
        + (f" (also: {dict(odd)})" if odd else ""))
a = groups["after"]
verdict(a["total"] > 0 and a["failed"] == 0,
        f"chaos: the restarted server on the same port answered all {a['total']} requests started after it "
        f"listened ({a['failed']} failed)")
sys.exit(1 if failed else 0)
