#!/usr/bin/env python3
"""Turns docker-compose.yml's services into native command lines for
tests/bundle/real.sh, so the real programs run with the project's own files
as they are.

The only substitution is the one Docker would do: a path inside a container
becomes the host path that compose mounts there.
  - a bind mount `./FILE:/container/path[:ro]` -> REPO/FILE (the file itself,
    never a copy);
  - a named volume `NAME:/container/path` -> WORK/volumes/NAME (empty dir),
    and a writable directory bind (k6's ./k6/results:/results) ->
    WORK/mounts/<dir>, so a run writes nothing into the work tree;
  - GLASSHOUSE_ROOT (/srv/www in the image, where the Dockerfile copies the
    frontend) -> REPO/frontend/dist when built, else a small generated root;
  - the collector image's implicit `--config /etc/otelcol-contrib/config.yaml`
    (its CMD) is passed explicitly, mapped like any other mount;
  - a secret the service lists -> /run/secrets/NAME is its `file:` (or, with
    --secrets-dir DIR, the file of that name in DIR: the HTTPS run's
    certificates are made for the run, not into the work tree).
With several --compose files they are merged as compose merges them
(tests/bundle/compose_files.py): docker-compose.tls.yml over
docker-compose.yml is the HTTPS stack.
Service names (otel-collector, jaeger, prometheus, loki, glasshouse) are not
rewritten anywhere: real.sh resolves them with a hosts file per network
namespace (`ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts).

  real_plan.py --repo REPO --work WORK [--compose FILE ...] [--secrets-dir DIR]
                                         writes WORK/plan/<service>.args
                                         (one argument per line) and
                                         <service>.env (KEY=VALUE lines)
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compose_files  # noqa: E402

# The collector contrib image: ENTRYPOINT otelcol-contrib, CMD --config <this>.
COLLECTOR_IMAGE_CONFIG = "/etc/otelcol-contrib/config.yaml"
# Service -> the native program that stands for its image.
PROGRAMS = {
    "otel-collector": "otelcol",
    "jaeger": "jaeger",
    "prometheus": "prometheus",
    "glasshouse": "glasshouse",
    "k6-load": "k6",
    "k6-ws": "k6",
    "k6-chaos": "k6",
}


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(svc, repo, work, secrets=None, secrets_dir=None):
    """container path -> host path, from the service's volumes and secrets."""
    out = {}
    for name in svc.get("secrets") or []:
        name = name["source"] if isinstance(name, dict) else name
        src = (secrets or {}).get(name, {}).get("file")
        if not src:
            sys.exit(f"real_plan: secret {name} has no file:")
        host = (os.path.join(os.path.abspath(secrets_dir), os.path.basename(src)) if secrets_dir
                else os.path.normpath(os.path.join(repo, src)))
        if not os.path.exists(host):
            sys.exit(f"real_plan: secret {name} ({host}) does not exist")
        out[f"/run/secrets/{name}"] = host
    for v in svc.get("volumes") or []:
        parts = v.split(":")
        src, dst = parts[0], parts[1]
        if src.startswith((".", "/")):
            host = os.path.normpath(os.path.join(repo, src))
            if not os.path.exists(host):
                sys.exit(f"real_plan: {src} (mounted at {dst}) does not exist")
            if os.path.isdir(host) and "ro" not in parts[2:]:
                # A writable directory is where the container writes its
                # output (k6's /results): kept under WORK, out of the tree.
                host = os.path.join(work, "mounts", os.path.basename(dst))
                os.makedirs(host, exist_ok=True)
        else:
            host = os.path.join(work, "volumes", src)
            os.makedirs(host, exist_ok=True)
        out[dst] = host
    return out


def substitute(arg, table):
    """Replaces a container path (or a prefix of one) in ARG with its host path."""
    for dst in sorted(table, key=len, reverse=True):
        m = re.search(rf"(^|=|\s){re.escape(dst)}(/|$|\s)", arg)
        if m:
            return arg.replace(dst, table[dst], 1)
    return arg


def expand(value):
    """${VAR:-default} as compose expands it (from the environment)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--compose", action="append", help="compose file(s), merged in order")
    ap.add_argument("--secrets-dir", help="where the secrets' files are, by name")
    a = ap.parse_args()
    repo, work = os.path.abspath(a.repo), os.path.abspath(a.work)
    compose = compose_files.load(repo, a.compose or ["docker-compose.yml"])
    plan = os.path.join(work, "plan")
    os.makedirs(plan, exist_ok=True)
    for name, program in PROGRAMS.items():
        svc = compose["services"][name]
        table = mounts(svc, repo, work, compose.get("secrets"), a.secrets_dir)
        args = [expand(str(x)) for x in svc.get("command") or []]
        env = {k: expand(v) for k, v in env_of(svc).items()}
        if name == "otel-collector" and not args:
            args = ["--config", COLLECTOR_IMAGE_CONFIG]
        if name == "glasshouse":
            dist = os.path.join(repo, "frontend", "dist")
            if os.path.exists(os.path.join(dist, "index.html")):
                env["GLASSHOUSE_ROOT"] = dist
            else:
                env["GLASSHOUSE_ROOT"] = make_root(work)
        args = [substitute(x, table) for x in args]
        for k, v in env.items():
            env[k] = substitute(v, table)
        left = [x for x in args + list(env.values())
                if re.search(r"(^|=)/(etc|prometheus|scripts|results|srv|loki|run/secrets)\b", x)]
        if left:
            sys.exit(f"real_plan: {name}: container paths left unmapped: {left}")
        with open(os.path.join(plan, f"{name}.args"), "w") as f:
            f.write("".join(x + "\n" for x in args))
        with open(os.path.join(plan, f"{name}.env"), "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        print(f"real_plan: {name} ({program}): {' '.join(args)}")
    return 0


def make_root(work):
    """The small static root k6/local.sh uses, when frontend/dist is not built."""
    root = os.path.join(work, "www")
    os.makedirs(os.path.join(root, "assets"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write('<!doctype html><html><head><script type="module" src="/assets/app.js"></script>'
                '<link rel="stylesheet" href="/assets/app.css"></head><body>glasshouse</body></html>\n')
    with open(os.path.join(root, "assets", "app.js"), "w") as f:
        f.write('console.log("glasshouse");\n')
    with open(os.path.join(root, "assets", "app.css"), "w") as f:
        f.write("body { color: #222; }\n")
    return root


if __name__ == "__main__":
    sys.exit(main())
