"""Measure the Action on a repository of twenty functions against one cold build.

Run by hand, not by CI:

    .venv/bin/python benchmarks/monorepo.py [--functions 20] [--rounds 3]
        [--pypy-archive PATH --pypy-sha256 HEX] [--index-url URL]

It writes a git repository with N copies of examples/hello, each with its own
code, and runs the Action's entrypoint (a push event: build, no comment) twice
per round, each time from an empty cache: once with ``source: functions/fn-00``
(one cold build), once with ``source: functions/*`` (all N in one run, sharing
the cache). The two take turns within each round, so drift on a noisy machine
hits both alike. Without an archive it packs Debian's pypy3 (``pyfn runtime
pack``) first, so it runs where the official PyPy host is out of reach; the
requirements come from the configured package index. Prints one JSON object
whose ``ratio`` is N functions' time over one cold build's (medians).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyfn_action.github.action import run
from pyfn_action.runtime.pack import pack_runtime

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "examples" / "hello"


def _repository(root: Path, count: int) -> None:
    """``count`` copies of examples/hello, each a function of its own with its own code."""
    for n in range(count):
        src = root / "functions" / f"fn-{n:02d}"
        shutil.copytree(HELLO, src)
        main = (src / "main.py").read_text().replace("def hello(", f"def fn_{n:02d}(")
        main += f"\n\nGREETING_{n:02d} = {'Hello from function number ' + str(n)!r}\n"
        (src / "main.py").write_text(main)
        (src / "pyfn.toml").write_text(f'name = "fn-{n:02d}"\nentry_point = "fn_{n:02d}"\n')
    git = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.test",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.test",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "functions"]):
        subprocess.run(["git", *args], cwd=root, env=git, check=True)


def runtime_archive(work: Path, archive: str | None, sha256: str | None) -> tuple[str, str]:
    """The PyPy archive to build with and its SHA-256: the one given, else this
    machine's pypy3 packed into ``work`` (``pyfn runtime pack``)."""
    if archive is not None:
        return archive, str(sha256)
    pypy = shutil.which("pypy3")
    if pypy is None:
        raise SystemExit("no pypy3 to pack: install it, or pass --pypy-archive")
    packed = pack_runtime(Path(pypy), work / "pypy.tar.gz")
    return str(packed.path), packed.sha256


def _action(root: Path, source: str, cache: Path, base_env: dict[str, str]) -> float:
    shutil.rmtree(root / "dist", ignore_errors=True)
    env = {
        **base_env,
        "PYFN_CACHE_DIR": str(cache),
        "INPUT_SOURCE": source,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_WORKSPACE": str(root),
    }
    return timed_action(root, env, root / "step")


def timed_action(root: Path, env: dict[str, str], step: Path) -> float:
    """Seconds the Action's main step takes in ``root`` with ``env`` (its outputs and
    summary in ``step``); a failure ends the benchmark with the step's log."""
    shutil.rmtree(step, ignore_errors=True)
    step.mkdir(parents=True)
    env = {
        **env,
        "GITHUB_OUTPUT": str(step / "output"),
        "GITHUB_STEP_SUMMARY": str(step / "summary"),
    }
    log = io.StringIO()
    start = time.perf_counter()
    code = run([], env, log, cwd=root)
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.stderr.write(log.getvalue())
        raise SystemExit(f"the Action failed with exit code {code}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--index-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfn-monorepo-") as tmp:
        work = Path(tmp)
        archive, sha256 = runtime_archive(work, args.pypy_archive, args.pypy_sha256)
        root = work / "repo"
        root.mkdir()
        _repository(root, args.functions)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "PYFN_"))}
        base_env.update(
            PYFN_PYPY_ARCHIVE=archive, PYFN_PYPY_SHA256=str(sha256), SOURCE_DATE_EPOCH="1700000000"
        )
        if args.index_url:
            base_env["PYFN_INDEX_URL"] = args.index_url
        one: list[float] = []
        many: list[float] = []
        for n in range(args.rounds):
            one.append(_action(root, "functions/fn-00", work / f"cache-one-{n}", base_env))
            many.append(_action(root, "functions/*", work / f"cache-many-{n}", base_env))
            shutil.rmtree(work / f"cache-one-{n}")
            shutil.rmtree(work / f"cache-many-{n}")
            print(
                f"round {n + 1}: one cold build {one[-1]:.1f} s, {args.functions} functions "
                f"{many[-1]:.1f} s",
                file=sys.stderr,
            )
    result: dict[str, Any] = {
        "functions": args.functions,
        "rounds": args.rounds,
        "one_cold_seconds": [round(t, 2) for t in one],
        "all_seconds": [round(t, 2) for t in many],
        "one_cold_median": round(statistics.median(one), 2),
        "all_median": round(statistics.median(many), 2),
        "ratio": round(statistics.median(many) / statistics.median(one), 3),
        "per_extra_function_seconds": round(
            (statistics.median(many) - statistics.median(one)) / max(args.functions - 1, 1), 3
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
