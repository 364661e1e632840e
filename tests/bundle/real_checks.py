#!/usr/bin/env python3
"""Assertions of tests/bundle/real.sh, made through the real programs' APIs
after the load, the SIGTERM and the restart (run in the checks' network
namespace, where jaeger, prometheus, ... resolve as in compose).

  Jaeger      /api/services, /api/traces: request spans named `METHOD route`
              with the contract's attributes; k6's trace ids (traceparent) are
              there; one `shutdown` span with signal, in_flight, drained and
              forced, and the requests in flight at its start inside it,
              tagged glasshouse.shutdown.draining=true
  Prometheus  scraped series (job glasshouse, otel-collector), OTLP-pushed
              ones (job glasshouse/glasshouse), span metrics, the collector's
              own metrics, k6's remote-written ones; exemplars
              (/api/v1/query_exemplars) whose trace ids Jaeger holds
  Grafana     every PromQL expression of every dashboard panel, annotation
              and variable, variables substituted as Grafana would, returns
              data over the run (query_range); every Jaeger panel search
              returns traces; Loki panels are emulated on the stand-in's
              records (line filters and unwrap only)
  logs        the stand-in Loki received glasshouse's records, with trace ids
              that Jaeger holds, and the `drain finished` record with the
              shutdown span's counts
  k6          k6/chaos_local_report.py's verdicts on the chaos run (no failed
              request among those started before the SIGTERM, ...)

Prints `ok   ...`/`FAIL ...` per check and `N passed, N failed`; exit 1 on any
failure. Nothing here is a fixed pass: each check compares what the programs
answer, and a few negative controls (a metric and a trace id that do not
exist) make sure "returns data" can be false.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

A = None
RESULTS = []
FOUND = {}   # figures for the summary
CONTRACT_SPAN_ATTRS = ("http.request.method", "url.path", "http.route", "http.response.status_code",
                       "network.peer.address", "network.peer.port", "server.address", "server.port",
                       "user_agent.original", "network.protocol.version")


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if detail:
        print("      " + str(detail).replace("\n", "\n      "))
    return ok


def get(base, path, params=None, timeout=20):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body.decode("utf-8", "replace")


def events():
    out = {}
    for line in open(os.path.join(A.work, "events")):
        k, _, v = line.strip().partition(" ")
        out[k] = v
    return out


# ----------------------------------------------------------------- Jaeger --

def tags(span):
    return {t["key"]: t["value"] for t in span.get("tags") or []}


def jaeger_traces(**params):
    ev = events()
    params.setdefault("service", "glasshouse")
    params.setdefault("start", int((float(ev["glasshouse1-started"]) - 60) * 1e6))
    params.setdefault("end", int((time.time() + 5) * 1e6))
    params.setdefault("limit", 5000)
    code, body = get(A.jaeger, "/api/traces", params, timeout=60)
    if code != 200 or not isinstance(body, dict):
        return None
    return body.get("data") or []


def jaeger_has_trace(trace_id):
    code, body = get(A.jaeger, f"/api/traces/{trace_id}")
    return code == 200 and isinstance(body, dict) and bool(body.get("data"))


def check_jaeger(ev):
    code, body = get(A.jaeger, "/api/services")
    check("Jaeger /api/services lists glasshouse", code == 200 and "glasshouse" in (body.get("data") or []),
          f"{code} {body}")
    traces = jaeger_traces() or []
    spans = [s for t in traces for s in t["spans"]]
    requests = [s for s in spans if tags(s).get("span.kind") == "server"]
    FOUND["traces"] = len(traces)
    FOUND["request_spans"] = len(requests)
    by_op = {}
    for s in requests:
        by_op.setdefault(s["operationName"], []).append(s)
    capped = " (the query's limit)" if len(traces) >= 5000 else ""
    check(f"Jaeger holds request spans: {len(requests)} server spans in {len(traces)} traces{capped}, "
          f"{len(by_op)} operations", len(requests) >= 100 and len(by_op) >= 4,
          ", ".join(f"{k} {len(v)}" for k, v in sorted(by_op.items())))
    missing, misnamed = {}, []
    for s in requests:
        t = tags(s)
        for a in CONTRACT_SPAN_ATTRS:
            if a not in t:
                missing.setdefault(a, 0)
                missing[a] += 1
        if s["operationName"] != f"{t.get('http.request.method')} {t.get('http.route')}":
            misnamed.append(s["operationName"])
    check(f"every request span has the contract's {len(CONTRACT_SPAN_ATTRS)} attributes and is named `METHOD route`",
          requests and not missing and not misnamed,
          f"missing: {missing}; misnamed: {sorted(set(misnamed))[:5]}")
    # k6's traceparent: trace ids k6 recorded are traces in Jaeger.
    k6_ids = []
    for line in open(chaos_json()):
        try:
            p = json.loads(line)
        except ValueError:
            continue
        if p.get("type") == "Point" and p.get("metric") == "http_req_failed" and p["data"]["value"] == 0:
            tid = (p["data"].get("metadata") or {}).get("trace_id")
            if tid:
                k6_ids.append(tid)
    sample = random.Random(1).sample(k6_ids, min(20, len(k6_ids)))
    found = [t for t in sample if jaeger_has_trace(t)]
    check(f"trace ids k6 sent in traceparent are traces in Jaeger ({len(found)} of {len(sample)} sampled)",
          sample and len(found) == len(sample), f"not found: {sorted(set(sample) - set(found))[:5]}")
    check("negative control: a trace id nobody sent is not in Jaeger", not jaeger_has_trace("%032x" % random.getrandbits(128)))

    # The shutdown span of the SIGTERM, and the requests it drained.
    sd = [s for t in jaeger_traces(operation="shutdown") or [] for s in t["spans"] if s["operationName"] == "shutdown"]
    if not check(f"exactly one `shutdown` span (one SIGTERM so far): {len(sd)}", len(sd) == 1):
        return None
    s = sd[0]
    t = tags(s)
    counts = {k: t.get(f"glasshouse.shutdown.{k}") for k in ("in_flight", "drained", "forced")}
    FOUND["shutdown"] = dict(counts, signal=t.get("glasshouse.shutdown.signal"),
                             duration_ms=round(s["duration"] / 1000, 1),
                             events=[(l.get("fields") or [{}])[0].get("value") for l in s.get("logs") or []])
    t_sig = float(ev["sigterm"])
    start, end = s["startTime"] / 1e6, (s["startTime"] + s["duration"]) / 1e6
    check(f"shutdown span: signal SIGTERM, in_flight={counts['in_flight']} drained={counts['drained']} "
          f"forced={counts['forced']}, {s['duration'] / 1000:.0f} ms, starting at the SIGTERM",
          t.get("glasshouse.shutdown.signal") == "SIGTERM" and all(isinstance(v, int) for v in counts.values())
          and counts["forced"] == 0 and counts["in_flight"] >= 1 and abs(start - t_sig) < 2,
          f"tags {t}; start {start - t_sig:+.3f} s from the SIGTERM")
    draining = [x for tr in jaeger_traces(tags=json.dumps({"glasshouse.shutdown.draining": "true"})) or []
                for x in tr["spans"]]
    inside = [x for x in draining if x["startTime"] / 1e6 < start
              and start <= (x["startTime"] + x["duration"]) / 1e6 <= end + 0.05]
    ok200 = [x for x in inside if tags(x).get("http.response.status_code") == 200]
    FOUND["drained_spans"] = len(inside)
    check(f"the requests in flight at the drain's start are inside the shutdown span: {len(inside)} request "
          f"spans tagged draining, begun before it and ended within it ({len(ok200)} answered 200); "
          f"the span says in_flight={counts['in_flight']}",
          inside and len(ok200) == len(inside) and len(inside) == counts["in_flight"],
          "; ".join(f"{x['operationName']} {tags(x).get('http.response.status_code')} "
                    f"{(x['startTime'] / 1e6) - start:+.3f}..{(x['startTime'] + x['duration']) / 1e6 - start:+.3f} s"
                    for x in inside[:8]))
    return counts


# ------------------------------------------------------------- Prometheus --

def prom(path, **params):
    code, body = get(A.prometheus, path, params, timeout=30)
    if code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        return None, body
    return body["data"], body


def instant(q):
    data, _ = prom("/api/v1/query", query=q)
    return (data or {}).get("result") or []


def check_prometheus():
    want = [
        ("scraped: up{job=\"glasshouse\"} == 1", 'up{job="glasshouse"} == 1'),
        ("scraped: up{job=\"otel-collector\"} == 1", 'up{job="otel-collector"} == 1'),
        ("scraped: glasshouse's /metrics (http_server_request_duration_seconds_count{job=\"glasshouse\"})",
         'http_server_request_duration_seconds_count{job="glasshouse"}'),
        ("OTLP-pushed: the same histogram from the collector (job=\"glasshouse/glasshouse\")",
         'http_server_request_duration_seconds_count{job="glasshouse/glasshouse"}'),
        ("OTLP-pushed: glasshouse_connections_accepted_total{job=\"glasshouse/glasshouse\"}",
         'glasshouse_connections_accepted_total{job="glasshouse/glasshouse"}'),
        ("span metrics: traces_span_metrics_calls_total{service_name=\"glasshouse\"}",
         'traces_span_metrics_calls_total{service_name="glasshouse"}'),
        ("span metrics: traces_span_metrics_duration_seconds_bucket with http_route",
         'traces_span_metrics_duration_seconds_bucket{service_name="glasshouse",http_route!=""}'),
        ("the collector's own metrics (job otel-collector): spans it exported to Jaeger",
         '{__name__=~"otelcol_exporter_sent_spans.*",job="otel-collector",exporter="otlp_grpc/jaeger"} > 0'),
        ("the collector's own metrics (job otel-collector): log records it exported to the stand-in Loki",
         '{__name__=~"otelcol_exporter_sent_log_records.*",job="otel-collector",exporter="otlp_http/loki"} > 0'),
        ("k6's remote write: k6_http_reqs_total for testid load and chaos",
         'count by (testid) (k6_http_reqs_total{testid=~"load|chaos"})'),
    ]
    for name, q in want:
        r = instant(q)
        detail = ""
        if "testid" in q:
            ids = sorted(x["metric"].get("testid") for x in r)
            ok = ids == ["chaos", "load"]
            detail = f"testids {ids}"
        else:
            ok = bool(r)
            if r:
                detail = f"{len(r)} series, e.g. {r[0]['metric']}"
        check(f"Prometheus {name}", ok, detail or f"no result for {q}")
    check("negative control: a metric nobody writes has no data", not instant("glasshouse_no_such_metric_total"))
    names = sorted({x["metric"]["__name__"] for x in instant('{__name__=~"otelcol_exporter.*",job="otel-collector"}')})
    print(f"      the collector's exporter metrics: {', '.join(names) or 'none'}")
    d = instant('max by (job) (glasshouse_shutdown_drained_total)')
    FOUND["shutdown_metrics"] = {x["metric"].get("job"): x["value"][1] for x in d}


def check_exemplars(ev):
    start = float(ev["glasshouse1-started"]) - 60
    data, body = prom("/api/v1/query_exemplars", query='traces_span_metrics_duration_seconds_bucket{service_name="glasshouse"}',
                      start=f"{start:.3f}", end=f"{time.time():.3f}")
    ids = []
    for series in data or []:
        for e in series.get("exemplars") or []:
            tid = (e.get("labels") or {}).get("trace_id")
            if tid:
                ids.append(tid)
    ids = sorted(set(ids))
    sample = random.Random(2).sample(ids, min(25, len(ids)))
    found = [t for t in sample if jaeger_has_trace(t)]
    FOUND["exemplars"] = (len(ids), len(found), len(sample))
    check(f"exemplars: {len(ids)} distinct trace ids on span-metric buckets; {len(found)} of {len(sample)} "
          f"sampled are traces in Jaeger", sample and len(found) == len(sample),
          f"not found: {sorted(set(sample) - set(found))[:5]}" if sample else str(body)[:300])


# ---------------------------------------------------------------- Grafana --

def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels") or [])


def dashboards():
    d = os.path.join(A.repo, "grafana", "dashboards")
    return {f: json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d)) if f.endswith(".json")}


def time_interval():
    """The Prometheus datasource's scrape interval (Grafana's timeInterval), seconds."""
    import yaml
    ds = yaml.safe_load(open(os.path.join(A.repo, "grafana", "provisioning", "datasources", "datasources.yaml")))
    for d in ds["datasources"]:
        if d["uid"] == "prometheus":
            v = (d.get("jsonData") or {}).get("timeInterval", "15s")
            return int(re.match(r"(\d+)s$", v).group(1))
    return 15


def substitute(expr, variables, step, rng):
    """Grafana's variables: dashboard ones from their current value (All ->
    allValue), $__rate_interval = max($__interval + scrape, 4 * scrape)."""
    scrape = time_interval()
    out = expr.replace("$__rate_interval", f"{max(step + scrape, 4 * scrape)}s")
    out = out.replace("$__interval", f"{step}s").replace("$__range", f"{rng}s")
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        out = out.replace("${" + name + "}", value).replace("$" + name, value)
    return out


def variable_values(d):
    vals = {}
    for v in (d.get("templating") or {}).get("list") or []:
        cur = (v.get("current") or {}).get("value")
        if isinstance(cur, list):
            cur = cur[0] if cur else ""
        if cur == "$__all":
            cur = v.get("allValue") or ".*"
        vals[v["name"]] = cur or v.get("query") or ""
    return vals


def loki_emulated(q, records):
    """Line filters (|= "x", |~ "re") and `| unwrap ATTR` over the stand-in's records."""
    sel = re.match(r'\s*(?:\w+\(\s*)*\{service_name="([^"]+)"\}', q)
    rs = [r for r in records if not sel or r.get("service") == sel.group(1)]
    for op, arg in re.findall(r'(\|=|\|~|!=)\s*"((?:[^"\\]|\\.)*)"', q):
        arg = arg.encode().decode("unicode_escape")
        if op == "|=":
            rs = [r for r in rs if arg in str(r.get("body"))]
        elif op == "!=":
            rs = [r for r in rs if arg not in str(r.get("body"))]
        else:
            rx = re.compile(arg)
            rs = [r for r in rs if rx.search(str(r.get("body")))]
    for attr in re.findall(r"\|\s*unwrap\s+(\w+)", q):
        rs = [r for r in rs if isinstance((r.get("attributes") or {}).get(attr), (int, float))]
    return rs


def check_panels(ev, records):
    t0 = float(ev["glasshouse1-started"])
    end = time.time()
    step = 5
    rng = int(end - t0) + 1
    n_prom = ok_prom = n_jaeger = ok_jaeger = n_loki = ok_loki = 0
    empty = []
    for f, d in dashboards().items():
        variables = variable_values(d)
        items = []
        for p in walk_panels(d.get("panels") or []):
            pds = (p.get("datasource") or {}).get("uid")
            for t in p.get("targets") or []:
                items.append((f'{f} panel "{p.get("title")}" {t.get("refId")}', (t.get("datasource") or {}).get("uid") or pds, t))
        for a in (d.get("annotations") or {}).get("list") or []:
            uid = (a.get("datasource") or {}).get("uid")
            if uid in ("prometheus", "loki"):
                items.append((f'{f} annotation "{a.get("name")}"', uid, {"expr": a.get("expr")}))
        for v in (d.get("templating") or {}).get("list") or []:
            if v.get("type") == "query":
                q = v.get("query")
                items.append((f"{f} variable {v['name']}", (v.get("datasource") or {}).get("uid"),
                              {"expr": q.get("query") if isinstance(q, dict) else q}))
        for where, uid, t in items:
            if uid == "prometheus" and t.get("expr"):
                n_prom += 1
                q = substitute(t["expr"], variables, step, rng)
                lv = re.match(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*$", q, re.S)
                if lv:
                    data, _ = prom(f"/api/v1/label/{lv.group(2)}/values", **{"match[]": lv.group(1),
                                   "start": f"{t0:.3f}", "end": f"{end:.3f}"})
                    got = bool(data)
                else:
                    data, body = prom("/api/v1/query_range", query=q, start=f"{t0:.3f}", end=f"{end:.3f}", step=step)
                    got = bool(data) and any(s.get("values") for s in data.get("result") or [])
                ok_prom += got
                if not got:
                    empty.append(f"{where}: {q}")
            elif uid == "jaeger" and t.get("queryType") == "search":
                n_jaeger += 1
                params = {"service": t.get("service"), "limit": t.get("limit", 20)}
                if t.get("operation"):
                    params["operation"] = t["operation"]
                if t.get("tags"):
                    k, _, v = t["tags"].partition("=")
                    params["tags"] = json.dumps({k: v})
                got = bool(jaeger_traces(**params))
                ok_jaeger += got
                if not got:
                    empty.append(f"{where}: Jaeger search {params}")
            elif uid == "loki" and t.get("expr"):
                n_loki += 1
                got = bool(loki_emulated(t["expr"], records))
                ok_loki += got
                if not got:
                    empty.append(f"{where}: (emulated) {t['expr']}")
    FOUND["panels"] = dict(promql=(ok_prom, n_prom), jaeger=(ok_jaeger, n_jaeger), loki_emulated=(ok_loki, n_loki))
    check(f"Grafana: {ok_prom} of {n_prom} PromQL expressions (panels, annotations, variables; variables "
          f"substituted) return data over the run", n_prom and ok_prom == n_prom, "\n".join(empty))
    check(f"Grafana: {ok_jaeger} of {n_jaeger} Jaeger panel searches return traces", n_jaeger and ok_jaeger == n_jaeger)
    check(f"Grafana: {ok_loki} of {n_loki} Loki queries match the stand-in's records (emulated: line filters, unwrap)",
          n_loki and ok_loki == n_loki)
    # The check can fail: an expression over a metric nobody writes is empty.
    data, _ = prom("/api/v1/query_range", query='sum(rate(glasshouse_no_such_metric_total[20s]))',
                   start=f"{t0:.3f}", end=f"{end:.3f}", step=step)
    check("negative control: a panel expression over an unknown metric returns no data",
          data is not None and not any(s.get("values") for s in data.get("result") or []))


# ------------------------------------------------------------------- logs --

def check_logs(records, counts):
    mine = [r for r in records if r.get("service") == "glasshouse"]
    with_trace = [r for r in mine if re.fullmatch(r"[0-9a-f]{32}", r.get("trace_id") or "") and set(r["trace_id"]) != {"0"}]
    FOUND["log_records"] = (len(mine), len(with_trace))
    check(f"stand-in Loki: {len(mine)} glasshouse log records over OTLP, {len(with_trace)} with a trace id",
          mine and with_trace, f"{len(records)} records in all")
    sample = random.Random(3).sample(sorted({r["trace_id"] for r in with_trace}), min(15, len(with_trace)))
    found = [t for t in sample if jaeger_has_trace(t)]
    FOUND["log_traces"] = (len(found), len(sample))
    check(f"log records' trace ids are traces in Jaeger ({len(found)} of {len(sample)} sampled)",
          sample and len(found) == len(sample))
    drain = [r for r in mine if "drain finished" in str(r.get("body"))]
    if check(f"stand-in Loki: one `drain finished` record ({len(drain)})", len(drain) == 1) and counts:
        a = drain[0].get("attributes") or {}
        got = {k: a.get(k) for k in ("in_flight", "drained", "forced")}
        check(f"the `drain finished` record's counts {got} equal the shutdown span's", got == counts)


# --------------------------------------------------------------------- k6 --

def chaos_json():
    return os.path.join(A.work, "mounts", "results", "chaos.json")


def check_chaos(ev):
    """k6/chaos_local_report.py's verdicts, given this run's events."""
    path = os.path.join(A.work, "chaos-events")
    with open(path, "w") as f:
        f.write(f"signal {ev['sigterm']}\nstopped {ev['exited']}\nexit {ev['exit']}\nready {ev['glasshouse2-ready']}\n")
    r = subprocess.run([sys.executable, os.path.join(A.repo, "k6", "chaos_local_report.py"), chaos_json(), path,
                        os.path.join(A.work, "logs", "glasshouse.log")], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        m = re.match(r"^(ok  |FAIL) (.*)", line)
        if m:
            check("k6 chaos: " + m.group(2), m.group(1) == "ok  ")
        else:
            print("      " + line)
    if r.returncode != 0 and "FAIL" not in r.stdout:
        check("k6 chaos report ran", False, r.stderr[-500:])
    # The readiness poller: ready, then not ready during the drain, ready again.
    states = []
    for line in open(os.path.join(A.work, "readyz.log")):
        parts = line.split()
        if len(parts) == 2:
            states.append((float(parts[0]), parts[1]))
    t_sig = float(ev["sigterm"])
    before = {c for t, c in states if t < t_sig - 0.3}
    during = {c for t, c in states if t_sig + 0.05 < t < float(ev["glasshouse2-started"])}
    after = {c for t, c in states if t > float(ev["glasshouse2-ready"]) + 0.3}
    FOUND["readyz"] = dict(before=sorted(before), during=sorted(during), after=sorted(after))
    check(f"/readyz: {sorted(before)} before the SIGTERM, {sorted(during)} while draining/down, {sorted(after)} after the restart",
          before == {"200"} and during and "200" not in during and after == {"200"})


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--jaeger", required=True)
    ap.add_argument("--prometheus", required=True)
    A = ap.parse_args()
    ev = events()
    records = []
    p = os.path.join(A.work, "loki-records.jsonl")
    if os.path.exists(p):
        records = [json.loads(l) for l in open(p) if l.strip()]
    counts = None
    for name, fn in [("jaeger", lambda: check_jaeger(ev)), ("prometheus", check_prometheus),
                     ("exemplars", lambda: check_exemplars(ev)), ("panels", lambda: check_panels(ev, records)),
                     ("logs", lambda: check_logs(records, counts)), ("chaos", lambda: check_chaos(ev))]:
        try:
            r = fn()
            if name == "jaeger":
                counts = r
        except Exception as e:  # a crash in a check is a failed check, the others still run
            import traceback
            check(f"{name} checks ran", False, traceback.format_exc()[-1500:])
    print("real_checks: found " + json.dumps(FOUND, sort_keys=True))
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
