#!/usr/bin/env python3
"""A minimal OTLP/HTTP sink for benchmarks: accepts every POST, counts the
bytes per signal path, answers 200 with an empty protobuf body. Prints the
counts on SIGTERM. Usage: otlp_sink.py PORT"""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        path = self.path
        c = counts.setdefault(path, [0, 0])
        c[0] += 1
        c[1] += n
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)

    def stop(*_):
        for path, (reqs, size) in sorted(counts.items()):
            print(f"otlp_sink: {path}: {reqs} requests, {size} bytes", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
