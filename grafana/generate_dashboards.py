#!/usr/bin/env python3
"""Generates grafana/dashboards/*.json (committed). Run after editing:

    python3 grafana/generate_dashboards.py

tests/bundle/check.sh fails when the committed JSON differs from this output.
Metric names are the contract's (shared/contract.md); span metrics come from
the collector's span_metrics connector (traces_span_metrics_*).
"""
import json
import os
import sys

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
GRAFANA = {"type": "grafana", "uid": "-- Grafana --"}

JOB = 'job="$job"'
# OTLP-pushed series of glasshouse: job="<service.namespace>/glasshouse".
JOB_ANY = 'job=~"$job|.+/$job"'
RI = "$__rate_interval"
DUR = "http_server_request_duration_seconds"
SPAN_DUR = "traces_span_metrics_duration_seconds"
LOG_SELECTOR = '{service_name="glasshouse"}'


class Grid:
    """Lays panels left to right, wrapping at 24 columns."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        pid = self.next_id
        self.next_id += 1
        return pid, pos


def prom(expr, legend="", ref="A", exemplar=False, instant=False):
    t = {"refId": ref, "datasource": PROM, "expr": expr, "legendFormat": legend or "__auto",
         "exemplar": exemplar}
    if instant:
        t["instant"] = True
        t["range"] = False
    else:
        t["range"] = True
    return t


def loki_metric(expr, legend):
    return {"refId": "A", "datasource": LOKI, "expr": expr, "legendFormat": legend, "queryType": "range"}


def refs(targets):
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    return targets


def timeseries(g, title, targets, w=12, h=8, unit="short", stack=None, desc="", draw="line",
               min0=True):
    pid, pos = g.place(w, h)
    custom = {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10 if draw == "line" else 80,
              "showPoints": "never", "spanNulls": False}
    if stack:
        custom["stacking"] = {"mode": stack, "group": "A"}
    defaults = {"unit": unit, "custom": custom}
    if min0:
        defaults["min"] = 0
    return {"id": pid, "type": "timeseries", "title": title, "description": desc,
            "datasource": targets[0]["datasource"], "gridPos": pos, "targets": refs(targets),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(g, title, targets, w=4, h=4, unit="short", desc="", thresholds=None, mappings=None):
    pid, pos = g.place(w, h)
    steps = thresholds or [{"color": "green", "value": None}]
    return {"id": pid, "type": "stat", "title": title, "description": desc,
            "datasource": targets[0]["datasource"], "gridPos": pos, "targets": refs(targets),
            "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                         "thresholds": {"mode": "absolute", "steps": steps}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}}


def state_timeline(g, title, targets, w=12, h=6, desc=""):
    pid, pos = g.place(w, h)
    return {"id": pid, "type": "state-timeline", "title": title, "description": desc,
            "datasource": targets[0]["datasource"], "gridPos": pos, "targets": refs(targets),
            "fieldConfig": {"defaults": {
                "mappings": [{"type": "value", "options": {
                    "0": {"text": "draining / down", "color": "red"},
                    "1": {"text": "ready", "color": "green"}}}],
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": "red", "value": None}, {"color": "green", "value": 1}]}},
                "overrides": []},
            "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8}}


def logs(g, title, expr, w=24, h=10, desc=""):
    pid, pos = g.place(w, h)
    return {"id": pid, "type": "logs", "title": title, "description": desc, "datasource": LOKI,
            "gridPos": pos,
            "targets": [{"refId": "A", "datasource": LOKI, "expr": expr, "queryType": "range"}],
            "options": {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True,
                        "prettifyLogMessage": False, "sortOrder": "Descending", "dedupStrategy": "none"}}


def traces_table(g, title, operation=None, tags=None, w=12, h=8, desc=""):
    pid, pos = g.place(w, h)
    t = {"refId": "A", "datasource": JAEGER, "queryType": "search", "service": "glasshouse",
         "limit": 20}
    if operation:
        t["operation"] = operation
    if tags:
        t["tags"] = tags
    return {"id": pid, "type": "table", "title": title, "description": desc, "datasource": JAEGER,
            "gridPos": pos, "targets": [t], "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"showHeader": True}}


def variables():
    return {"list": [
        {"name": "job", "label": "scrape job", "type": "custom", "query": "glasshouse",
         "current": {"text": "glasshouse", "value": "glasshouse"},
         "options": [{"text": "glasshouse", "value": "glasshouse", "selected": True}],
         "hide": 0, "description": "Prometheus job of glasshouse's scraped /metrics"},
        {"name": "route", "label": "route", "type": "query", "datasource": PROM,
         "query": {"query": f'label_values({DUR}_count{{{JOB}}}, http_route)', "refId": "route"},
         "definition": f'label_values({DUR}_count{{{JOB}}}, http_route)',
         "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
         "current": {"text": "All", "value": "$__all"}, "hide": 0},
    ]}


def dashboard(uid, title, panels, annotations, desc, tags):
    return {"uid": uid, "title": title, "description": desc, "tags": tags, "editable": False,
            "schemaVersion": 41, "version": 1, "refresh": "10s", "timezone": "browser",
            "graphTooltip": 1, "time": {"from": "now-30m", "to": "now"},
            "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "templating": variables(), "annotations": {"list": annotations},
            "links": [{"title": "glasshouse dashboards", "type": "dashboards", "tags": ["glasshouse"],
                       "asDropdown": False, "includeVars": True, "keepTime": True}],
            "panels": panels}


BUILTIN_ANNOTATION = {"builtIn": 1, "name": "Annotations & Alerts", "type": "dashboard",
                      "datasource": GRAFANA, "enable": True, "hide": True,
                      "iconColor": "rgba(0, 211, 255, 1)"}

ROUTE = 'http_route=~"$route"'


def overview():
    g = Grid()
    p = []
    p.append(stat(g, "Requests / s", [prom(f"sum(rate({DUR}_count{{{JOB}}}[{RI}]))", "req/s")],
                  unit="reqps"))
    p.append(stat(g, "5xx ratio", [prom(
        # `or vector(0)`: no 5xx at all is 0 %, not "No data".
        f'(sum(rate({DUR}_count{{{JOB},http_response_status_code=~"5.."}}[{RI}])) or vector(0)) / '
        f"sum(rate({DUR}_count{{{JOB}}}[{RI}]))", "5xx")], unit="percentunit",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.01},
                    {"color": "red", "value": 0.05}]))
    p.append(stat(g, "p99 duration", [prom(
        f"histogram_quantile(0.99, sum by (le) (rate({DUR}_bucket{{{JOB}}}[{RI}])))", "p99")], unit="s"))
    p.append(stat(g, "Active requests", [prom(f"sum(http_server_active_requests{{{JOB}}})", "active")]))
    p.append(stat(g, "Open connections", [prom(f"sum(glasshouse_connections_open{{{JOB}}})", "open")]))
    p.append(stat(g, "Ready instances", [prom(f"sum(glasshouse_ready{{{JOB}}})", "ready")],
                  desc="glasshouse_ready: 1 serving, 0 draining",
                  thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]))

    p.append(timeseries(g, "Request rate by route", [prom(
        f"sum by (http_route) (rate({DUR}_count{{{JOB},{ROUTE}}}[{RI}]))", "{{http_route}}")],
        unit="reqps"))
    p.append(timeseries(g, "Errors by status code", [prom(
        f'sum by (http_response_status_code) (rate({DUR}_count{{{JOB},{ROUTE},http_response_status_code=~"[45].."}}[{RI}]))',
        "{{http_response_status_code}}")], unit="reqps", desc="4xx and 5xx answers per second"))

    p.append(timeseries(g, "Duration p50 / p95 / p99 by route", [
        prom(f"histogram_quantile({q}, sum by (le, http_route) (rate({DUR}_bucket{{{JOB},{ROUTE}}}[{RI}])))",
             f"p{int(q * 100)} {{{{http_route}}}}") for q in (0.5, 0.95, 0.99)], unit="s"))
    p.append(timeseries(g, "p95 duration from spans (exemplars -> traces)", [prom(
        f'histogram_quantile(0.95, sum by (le, http_route) (rate({SPAN_DUR}_bucket{{service_name="glasshouse",span_kind="SPAN_KIND_SERVER",{ROUTE}}}[{RI}])))',
        "p95 {{http_route}}", exemplar=True)], unit="s",
        desc="From the collector's span_metrics connector. Dots are exemplars: click one to open its trace in Jaeger."))

    p.append(timeseries(g, "Active requests and open connections", [
        prom(f"sum(http_server_active_requests{{{JOB}}})", "active requests"),
        prom(f"sum(glasshouse_connections_open{{{JOB}}})", "open connections"),
        prom(f"sum(glasshouse_websockets_open{{{JOB}}})", "open WebSockets")], w=8))
    p.append(timeseries(g, "Connections accepted / rejected", [
        prom(f"sum(rate(glasshouse_connections_accepted_total{{{JOB}}}[{RI}]))", "accepted"),
        prom(f"sum(rate(glasshouse_connections_rejected_total{{{JOB}}}[{RI}]))", "rejected")],
        w=8, unit="cps"))
    p.append(timeseries(g, "Per-worker share of requests", [prom(
        f"sum by (worker) (rate(glasshouse_worker_requests_total{{{JOB}}}[{RI}]))", "worker {{worker}}")],
        w=8, unit="reqps", stack="percent", desc="Stacked to 100 %: an even split means the workers share the load"))

    p.append(timeseries(g, "Bytes sent", [prom(
        f"sum(rate(glasshouse_bytes_sent_total{{{JOB}}}[{RI}]))", "sent")], w=8, unit="Bps"))
    p.append(timeseries(g, "WebSocket messages", [prom(
        f"sum by (direction) (rate(glasshouse_websocket_messages_total{{{JOB}}}[{RI}]))", "{{direction}}")],
        w=8, unit="short"))
    p.append(timeseries(g, "Telemetry dropped", [prom(
        f"sum by (signal) (increase(glasshouse_telemetry_dropped_total{{{JOB}}}[{RI}]))", "{{signal}}")],
        w=8, draw="bars", desc="Spans, logs or metric points the server could not export"))

    p.append(logs(g, "Logs (click trace_id to open the trace)", LOG_SELECTOR,
                  desc="OTLP logs in Loki; trace_id is structured metadata linked to Jaeger"))
    p.append(traces_table(g, "Recent traces", w=24))
    return dashboard("glasshouse-overview", "glasshouse / overview", p, [BUILTIN_ANNOTATION],
                     "Traffic, errors, duration, connections, workers and telemetry health",
                     ["glasshouse"])


def graceful():
    g = Grid()
    p = []
    p.append(state_timeline(g, "Readiness (glasshouse_ready, scrape up)", [
        prom(f"glasshouse_ready{{{JOB}}}", "ready {{instance}}"),
        prom(f"up{{{JOB}}}", "scraped {{instance}}")], w=16,
        desc="ready flips to 0 when draining starts; up goes 0 when the process is gone"))
    p.append(stat(g, "Restarts in range", [prom(
        f"sum(resets(glasshouse_connections_accepted_total{{{JOB}}}[$__range]))", "restarts",
        instant=True)], w=4, h=6, desc="Counter resets of the scraped series: one per process start after the first"))
    p.append(stat(g, "Forced closes (last drain)", [prom(
        f"max(glasshouse_shutdown_forced_total{{{JOB_ANY}}})", "forced")], w=4, h=6,
        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]))

    p.append(timeseries(g, "In flight vs drained vs forced", [
        prom(f"sum(http_server_active_requests{{{JOB}}})", "in flight (scraped)"),
        prom(f"sum by (job, instance) (glasshouse_shutdown_drained_total{{{JOB_ANY}}})", "drained {{job}} {{instance}}"),
        prom(f"sum by (job, instance) (glasshouse_shutdown_forced_total{{{JOB_ANY}}})", "forced {{job}} {{instance}}")],
        desc="Drain counts arrive mostly over OTLP (job=.../glasshouse): the final flush happens after the last scrape."))
    p.append(timeseries(g, "Client view: k6 failed requests", [
        prom(f"sum by (testid) (max_over_time(k6_http_reqs_total{{expected_response=\"false\"}}[{RI}]))",
             "failed so far {{testid}}"),
        prom(f"sum by (testid) (rate(k6_http_reqs_total[{RI}]))", "requests/s {{testid}}")],
        desc="From k6 --out experimental-prometheus-rw (compose profiles load/chaos). Failures are shown as "
             "k6's running count, not a rate: k6 pushes a series only in the intervals it changed, so a "
             "burst of failures shorter than the push interval is one sample, and rate() of one sample is empty."))

    p.append(timeseries(g, "Drain results from the logs", [
        loki_metric(f'sum(max_over_time({LOG_SELECTOR} |= "drain finished" | unwrap {field} [1m]))', field)
        for field in ("in_flight", "drained", "forced")], w=24, h=6, draw="bars",
        desc="From the `drain finished` log record's in_flight/drained/forced attributes (OTLP logs in Loki); "
             "independent of scrape timing"))
    p.append(timeseries(g, "503 answers (draining / over capacity)", [prom(
        f'sum(rate({DUR}_count{{{JOB},http_response_status_code="503"}}[{RI}])) or vector(0)', "503")], unit="reqps",
        desc="0 when nothing was refused. glasshouse closes its listeners at SIGTERM, so new clients of a draining "
             "server see refused connections (k6 error_code 1212), not 503: these are mostly over --max-connections."))
    p.append(timeseries(g, "Connections and WebSockets during restarts", [
        prom(f"sum(glasshouse_connections_open{{{JOB}}})", "connections"),
        prom(f"sum(glasshouse_websockets_open{{{JOB}}})", "WebSockets"),
        prom(f"sum(rate(glasshouse_connections_rejected_total{{{JOB}}}[{RI}]))", "rejected / s")]))

    p.append(traces_table(g, "shutdown spans", operation="shutdown",
                          desc="One per graceful stop: in_flight, drained, forced attributes and drain events"))
    p.append(traces_table(g, "Requests caught by a drain", tags="glasshouse.shutdown.draining=true",
                          desc="Requests in flight when draining began"))

    p.append(logs(g, "Drain and signal logs", LOG_SELECTOR + ' |~ "(?i)drain|signal|shutdown|listening on"'))
    p.append(timeseries(g, "Telemetry dropped", [prom(
        f"sum by (signal) (increase(glasshouse_telemetry_dropped_total{{{JOB_ANY}}}[{RI}]))", "{{signal}}")],
        w=24, h=6, draw="bars"))

    annotations = [
        BUILTIN_ANNOTATION,
        {"name": "Drain (logs)", "datasource": LOKI, "enable": True, "hide": False,
         "iconColor": "orange", "expr": LOG_SELECTOR + ' |~ "drain (started|finished)|drain deadline"',
         "target": {"refId": "Anno", "datasource": LOKI,
                    "expr": LOG_SELECTOR + ' |~ "drain (started|finished)|drain deadline"'},
         "titleFormat": "{{service_name}}", "textFormat": "", "tagKeys": "level"},
        {"name": "Restart (counter reset)", "datasource": PROM, "enable": True, "hide": False,
         "iconColor": "red", "expr": f"resets(glasshouse_connections_accepted_total{{{JOB}}}[1m]) > 0",
         "target": {"refId": "Anno", "datasource": PROM,
                    "expr": f"resets(glasshouse_connections_accepted_total{{{JOB}}}[1m]) > 0"},
         "step": "15s", "titleFormat": "restart {{instance}}", "useValueForTime": False},
        {"name": "Not ready", "datasource": PROM, "enable": True, "hide": False, "iconColor": "yellow",
         # JOB_ANY: a scrape never sees 0 (the listeners close when draining
        # starts); the final OTLP push (job=.../glasshouse) does.
         "expr": f"glasshouse_ready{{{JOB_ANY}}} == 0",
         "target": {"refId": "Anno", "datasource": PROM, "expr": f"glasshouse_ready{{{JOB_ANY}}} == 0"},
         "step": "5s", "titleFormat": "draining {{instance}}"},
    ]
    return dashboard("glasshouse-graceful-failure", "glasshouse / graceful failure", p, annotations,
                     "Drains, readiness flips, restarts and what clients saw meanwhile",
                     ["glasshouse", "chaos"])


def render():
    return {"glasshouse-overview.json": overview(),
            "glasshouse-graceful-failure.json": graceful()}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
    check = "--check" in sys.argv
    stale = []
    for name, dash in render().items():
        text = json.dumps(dash, indent=2, sort_keys=False) + "\n"
        path = os.path.join(out, name)
        if check:
            try:
                with open(path) as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("stale dashboards (run grafana/generate_dashboards.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
