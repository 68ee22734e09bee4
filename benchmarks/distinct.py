"""Measure twenty functions with distinct requirement sets in one Action run, with uv
and with pip, side by side; and the same run again on the warm cache.

Run by hand, not by CI:

    .venv/bin/python benchmarks/distinct.py [--functions 20] [--rounds 2]
        [--pypy-archive PATH --pypy-sha256 HEX] [--index-url URL]

It writes a git repository of N copies of examples/hello, each with one more
requirement of its own (a small pure-Python distribution), so each function has a
requirement set of its own to resolve and install. Each round, for each resolver
(taking turns: uv first in odd rounds, pip first in even ones), from a cache that
holds only the runtime: the Action on ``functions/*`` (cold), again with nothing
changed (warm), and once more for one function alone (one warm rebuild). Prints one
JSON object: the times, ``cold_pip_over_uv`` (pip's cold median over uv's), and
``warm_over_warm_rebuilds`` (the warm run over N one-function warm runs) per resolver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from monorepo import _action, _repository, runtime_archive

# Small pure-Python distributions, one per function, none a dependency of hello's set.
EXTRA = (
    "six",
    "attrs",
    "toml",
    "python-dateutil",
    "pytz",
    "decorator",
    "cachetools",
    "pyasn1",
    "jmespath",
    "pygments",
    "chardet",
    "more-itertools",
    "tabulate",
    "colorama",
    "humanize",
    "appdirs",
    "backoff",
    "tenacity",
    "docutils",
    "requests",
    "ply",
    "pycparser",
    "pyparsing",
    "sortedcontainers",
    "wcwidth",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--index-url")
    args = parser.parse_args()
    if args.functions > len(EXTRA):
        raise SystemExit(f"at most {len(EXTRA)} functions")
    times: dict[str, dict[str, list[float]]] = {
        r: {"cold": [], "warm": [], "one_warm": []} for r in ("uv", "pip")
    }
    with tempfile.TemporaryDirectory(prefix="pyfn-distinct-") as tmp:
        work = Path(tmp)
        archive, sha256 = runtime_archive(work, args.pypy_archive, args.pypy_sha256)
        root = work / "repo"
        root.mkdir()
        _repository(root, args.functions)
        for n in range(args.functions):
            reqs = root / "functions" / f"fn-{n:02d}" / "requirements.txt"
            reqs.write_text(reqs.read_text() + f"{EXTRA[n]}\n")
        _commit(root)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "PYFN_"))}
        base_env.update(
            PYFN_PYPY_ARCHIVE=archive, PYFN_PYPY_SHA256=str(sha256), SOURCE_DATE_EPOCH="1700000000"
        )
        if args.index_url:
            base_env["PYFN_INDEX_URL"] = args.index_url
        # A cache holding the runtime alone: one build, then everything but the runtime
        # (installed sites, pip's and uv's caches, fetched files, built wheels) removed.
        base = work / "base-cache"
        _action(root, "functions/fn-00", base, {**base_env, "PYFN_RESOLVER": "uv"})
        for name in ("site", "uv", "pip", "files", "built"):
            shutil.rmtree(base / name, ignore_errors=True)
        for n in range(args.rounds):
            for resolver in ["uv", "pip"] if n % 2 == 0 else ["pip", "uv"]:
                env = {**base_env, "PYFN_RESOLVER": resolver}
                cache = work / f"cache-{n}-{resolver}"
                shutil.copytree(base, cache, symlinks=True)
                got = times[resolver]
                got["cold"].append(_action(root, "functions/*", cache, env))
                got["warm"].append(_action(root, "functions/*", cache, env))
                got["one_warm"].append(_action(root, "functions/fn-00", cache, env))
                shutil.rmtree(cache)
                print(
                    f"round {n + 1} {resolver}: cold {got['cold'][-1]:.1f} s, warm "
                    f"{got['warm'][-1]:.1f} s, one warm {got['one_warm'][-1]:.2f} s",
                    file=sys.stderr,
                )
    med = {r: {k: statistics.median(v) for k, v in t.items()} for r, t in times.items()}
    result: dict[str, Any] = {
        "functions": args.functions,
        "rounds": args.rounds,
        "seconds": {
            r: {k: [round(x, 2) for x in v] for k, v in t.items()} for r, t in times.items()
        },
        "cold_pip_over_uv": round(med["pip"]["cold"] / med["uv"]["cold"], 2),
        "warm_over_warm_rebuilds": {
            r: round(m["warm"] / (args.functions * m["one_warm"]), 2) for r, m in med.items()
        },
    }
    print(json.dumps(result, indent=2))
    return 0


def _commit(root: Path) -> None:
    import subprocess

    git = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.test",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.test",
    }
    for argv in (["add", "-A"], ["commit", "-q", "-m", "requirements"]):
        subprocess.run(["git", *argv], cwd=root, env=git, check=True)


if __name__ == "__main__":
    raise SystemExit(main())
