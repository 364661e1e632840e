"""Reads docker-compose.yml with override files over it, merged as
`docker compose -f A -f B` merges them (the rules the bundle's files use):
mappings merge key by key (`environment` in either form, as a mapping);
`ports`, `volumes`, `secrets`, `configs` and `expose` of a service are
concatenated without repeats; any other value of a later file replaces the
earlier one (`command`, `entrypoint`, a healthcheck's `test`).

Used by tests/bundle/real_plan.py (the native run of the HTTPS bundle) and
tests/bundle/check_bundle.py (its static checks), so both read the stack
that compose would run.
"""
import os

import yaml

APPENDED = {"ports", "volumes", "secrets", "configs", "expose"}


def _env_map(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return dict(env or {})


def _merge(base, over, key=None, depth=0):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if k == "environment" and depth == 2:
                out[k] = {**_env_map(base.get(k)), **_env_map(v)}
            elif k in out:
                out[k] = _merge(out[k], v, k, depth + 1)
            else:
                out[k] = v
        return out
    if isinstance(base, list) and isinstance(over, list) and key in APPENDED and depth == 3:
        return base + [x for x in over if x not in base]
    return over


def load(repo, files=("docker-compose.yml",)):
    """The merged compose model of FILES (paths relative to REPO)."""
    merged = {}
    for f in files:
        with open(os.path.join(repo, f)) as fh:
            merged = _merge(merged, yaml.safe_load(fh) or {})
    return merged
