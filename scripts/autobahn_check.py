#!/usr/bin/env python3
"""Reads an Autobahn TestSuite (or kosoku) index.json and fails unless every
case passed.

A case passes when its `behavior` is OK, NON-STRICT or INFORMATIONAL and its
`behaviorClose` is not FAILED (Autobahn reports the close handshake apart
from the case's own verdict). Prints counts per behaviour, the failing cases
with their close codes, the slowest cases, and a last line
`N passed, N failed`. Exit status 0 when nothing failed, 1 otherwise
(2 when the index is missing or empty).

    python3 scripts/autobahn_check.py target/autobahn/reports/index.json
"""

import argparse
import collections
import json
import re
import sys

PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"\.", case_id))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="path to the runner's index.json")
    ap.add_argument("--seconds", type=int, help="wall time of the run, for the summary")
    args = ap.parse_args()
    try:
        with open(args.index) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print(f"autobahn_check: cannot read {args.index}: {e}")
        print("0 passed, 1 failed")
        return 2
    cases = {}
    for agent, results in index.items():
        for case_id, r in results.items():
            cases[(agent, case_id)] = r
    if not cases:
        print(f"autobahn_check: {args.index} lists no case")
        print("0 passed, 1 failed")
        return 2

    by_behavior = collections.Counter(r.get("behavior", "?") for r in cases.values())
    by_close = collections.Counter(r.get("behaviorClose", "?") for r in cases.values())
    by_group = collections.defaultdict(collections.Counter)
    failed = []
    for (agent, case_id), r in sorted(cases.items(), key=lambda kv: (kv[0][0], case_key(kv[0][1]))):
        ok = r.get("behavior") in PASS and r.get("behaviorClose") != "FAILED"
        by_group[case_id.split(".")[0]]["passed" if ok else "failed"] += 1
        if not ok:
            failed.append((agent, case_id, r))

    agents = sorted({a for a, _ in cases})
    print(f"Autobahn TestSuite: {len(cases)} cases against {', '.join(agents)}")
    print("  behavior:      " + ", ".join(f"{k} {v}" for k, v in sorted(by_behavior.items())))
    print("  behaviorClose: " + ", ".join(f"{k} {v}" for k, v in sorted(by_close.items())))
    print("  per group:     " + ", ".join(
        f"{g}: {c['passed']}/{c['passed'] + c['failed']}"
        for g, c in sorted(by_group.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)))
    durations = [(r.get("duration") or 0, cid) for (_, cid), r in cases.items()]
    total_ms = sum(d for d, _ in durations)
    slowest = sorted(durations, reverse=True)[:5]
    print(f"  case time:     {total_ms / 1000:.1f} s summed"
          + (f", {args.seconds} s wall" if args.seconds is not None else ""))
    print("  slowest:       " + ", ".join(f"{cid} {d / 1000:.2f} s" for d, cid in slowest))
    for agent, case_id, r in failed:
        print(f"  FAILED {case_id}: behavior={r.get('behavior')} "
              f"behaviorClose={r.get('behaviorClose')} "
              f"remoteCloseCode={r.get('remoteCloseCode')} report={r.get('reportfile')}")
    passed = len(cases) - len(failed)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
