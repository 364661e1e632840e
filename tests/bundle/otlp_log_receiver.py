#!/usr/bin/env python3
"""Stand-in for Loki in tests/bundle/real.sh: an OTLP/HTTP logs receiver.

Loki is AGPL-licensed, so the bundle neither builds nor vendors it; this takes
the collector's log export (`otlp_http/loki`, endpoint http://loki:3100/otlp)
in its place, at the same address and path (POST /otlp/v1/logs), and answers
GET /ready like Loki. Each log record received is decoded from OTLP protobuf
(or OTLP JSON), gzip/deflate-compressed or not, and appended as one JSON line
to OUT:

  {"service": "glasshouse", "resource": {...}, "time_unix_nano": ..,
   "severity": "INFO", "body": "...", "attributes": {...},
   "trace_id": "<32 hex or empty>", "span_id": "<16 hex or empty>"}

Usage: otlp_log_receiver.py --listen 0.0.0.0:3100 --out FILE
Standard library only: a protobuf wire-format reader for the OTLP messages.
"""
import argparse
import gzip
import json
import signal
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# ----------------------------------------------------------- protobuf wire --

def fields(buf):
    """Yields (field number, wire type, value) of one protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def any_value(buf):
    for num, wt, v in fields(buf):
        if num == 1:
            return v.decode("utf-8", "replace")
        if num == 2:
            return bool(v)
        if num == 3:
            return v - (1 << 64) if v >= 1 << 63 else v
        if num == 4:
            return struct.unpack("<d", v)[0]
        if num == 5:
            return [any_value(x) for n, _, x in fields(v) if n == 1]
        if num == 6:
            return key_values(x for n, _, x in fields(v) if n == 1)
        if num == 7:
            return v.hex()
    return None


def key_values(items):
    out = {}
    for kv in items:
        key, val = "", None
        for num, _, v in fields(kv):
            if num == 1:
                key = v.decode("utf-8", "replace")
            elif num == 2:
                val = any_value(v)
        out[key] = val
    return out


def decode_protobuf(body):
    """ExportLogsServiceRequest -> list of record dicts."""
    records = []
    for num, _, rl in fields(body):
        if num != 1:
            continue
        resource, scopes = {}, []
        for n, _, v in fields(rl):
            if n == 1:
                resource = key_values(x for m, _, x in fields(v) if m == 1)
            elif n == 2:
                scopes.append(v)
        for sl in scopes:
            for n, _, lr in fields(sl):
                if n != 2:
                    continue
                rec = {"resource": resource, "time_unix_nano": 0, "severity": "", "body": None,
                       "attributes": {}, "trace_id": "", "span_id": ""}
                attrs = []
                for m, _, v in fields(lr):
                    if m == 1:
                        rec["time_unix_nano"] = struct.unpack("<Q", v)[0]
                    elif m == 3:
                        rec["severity"] = v.decode("utf-8", "replace")
                    elif m == 5:
                        rec["body"] = any_value(v)
                    elif m == 6:
                        attrs.append(v)
                    elif m == 9:
                        rec["trace_id"] = v.hex()
                    elif m == 10:
                        rec["span_id"] = v.hex()
                rec["attributes"] = key_values(attrs)
                records.append(rec)
    return records


def json_any(v):
    if not isinstance(v, dict):
        return None
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [json_any(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: json_any(kv.get("value")) for kv in v["kvlistValue"].get("values", [])}
    return None


def decode_json(body):
    """OTLP JSON encoding (trace ids are hex strings there)."""
    records = []
    for rl in json.loads(body).get("resourceLogs", []):
        resource = {kv["key"]: json_any(kv.get("value")) for kv in rl.get("resource", {}).get("attributes", [])}
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                records.append({
                    "resource": resource, "time_unix_nano": int(lr.get("timeUnixNano", 0)),
                    "severity": lr.get("severityText", ""), "body": json_any(lr.get("body")),
                    "attributes": {kv["key"]: json_any(kv.get("value")) for kv in lr.get("attributes", [])},
                    "trace_id": lr.get("traceId", ""), "span_id": lr.get("spanId", "")})
    return records


# ------------------------------------------------------------------ server --

class State:
    lock = threading.Lock()
    out = None
    requests = 0
    records = 0
    errors = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ready":
            self.reply(200, b"ready\n")
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/otlp/v1/logs":
            self.reply(404, b"not found\n")
            return
        enc = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if enc == "gzip":
                body = gzip.decompress(body)
            elif enc == "deflate":
                body = zlib.decompress(body)
            elif enc not in ("", "identity"):
                raise ValueError(f"unsupported Content-Encoding {enc}")
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            records = decode_json(body) if ctype == "application/json" else decode_protobuf(body)
        except Exception as e:  # a bad request is an answer, not a crash
            with State.lock:
                State.errors += 1
            print(f"otlp_log_receiver: undecodable request: {e}", file=sys.stderr)
            self.reply(400, str(e).encode())
            return
        with State.lock:
            State.requests += 1
            State.records += len(records)
            for r in records:
                r["service"] = r["resource"].get("service.name", "")
                State.out.write(json.dumps(r, sort_keys=True) + "\n")
            State.out.flush()
        if ctype == "application/json":
            self.reply(200, b"{}", "application/json")
        else:
            self.reply(200, b"", "application/x-protobuf")

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="0.0.0.0:3100")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    State.out = open(a.out, "a")
    server = ThreadingHTTPServer((host, int(port)), Handler)

    def stop(*_):
        print(f"otlp_log_receiver: {State.requests} requests, {State.records} records, "
              f"{State.errors} undecodable", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"otlp_log_receiver: listening on http://{a.listen}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
