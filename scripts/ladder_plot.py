#!/usr/bin/env python3
"""Draws ladder.tsv (scripts/ladder.py) as req/s, p99 and server CPU per
request against concurrency, one line per model, into ladder.svg and
ladder.png. Usage: ladder_plot.py TSV OUTDIR"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

tsv, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
models = []
for r in rows:
    if r["model"] not in models:
        models.append(r["model"])
fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 5))
for m in models:
    pts = [r for r in rows if r["model"] == m]
    x = [int(r["concurrency"]) for r in pts]
    a.plot(x, [float(r["req_per_s"]) for r in pts], marker="o", label=m)
    b.plot(x, [float(r["p99_ms"]) for r in pts], marker="o", label=m)
    if "cpu_us_per_req" in r:
        c.plot(x, [float(r["cpu_us_per_req"]) for r in pts], marker="o", label=m)
for ax, title in ((a, "requests per second"), (b, "p99 latency (ms)"), (c, "server CPU per request (µs)")):
    ax.set_xscale("log")
    ax.set_xlabel("concurrent connections")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
b.set_yscale("log")
c.set_yscale("log")
# One legend under the three panels, so that no curve hides behind it.
handles, labels = a.get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=len(models), frameon=False)
fig.tight_layout(rect=(0, 0.08, 1, 1))
for ext in ("svg", "png"):
    fig.savefig(os.path.join(out, f"ladder.{ext}"))
print("wrote", os.path.join(out, "ladder.svg"), os.path.join(out, "ladder.png"))
