"""Measure a pull request's Action run with its base read from the cache against the
same run building the base.

Run by hand, not by CI:

    .venv/bin/python benchmarks/basecache.py [--functions 5] [--rounds 5]
        [--pypy-archive PATH --pypy-sha256 HEX] [--index-url URL]

It writes a git repository of N copies of examples/hello (each its own code), commits
it as ``main``, then a pull request's head that changes one function. The Action's
entrypoint runs once on a push of ``main`` (which keeps every function's report for
pull requests, as ``actions/cache/save`` then would) and once on the pull request to
warm pyfn's cache; then, taking turns each round, on the pull request twice: with the
reports restored (as ``actions/cache/restore`` would: no base build) and without
(the base checked out in a worktree and built, warm, as before). Both runs use the
same warm cache and post no comment (``comment-mode: off``). Prints one JSON object
whose ``ratio`` is the cached run's median over the building run's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from monorepo import _repository, runtime_archive, timed_action

GIT = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.test",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.test",
}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=root,
        env={**os.environ, **GIT},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _events(work: Path, base: str, head: str) -> tuple[Path, Path]:
    push, pull = work / "push.json", work / "pull.json"
    repository = {"full_name": "acme/fns", "default_branch": "main"}
    push.write_text(json.dumps({"ref": "refs/heads/main", "after": base, "repository": repository}))
    side = {"repo": {"full_name": "acme/fns"}}
    pull.write_text(
        json.dumps(
            {
                "number": 1,
                "repository": repository,
                "pull_request": {
                    "number": 1,
                    "base": {"sha": base, "ref": "main", **side},
                    "head": {"sha": head, "ref": "change", **side},
                },
            }
        )
    )
    return push, pull


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--index-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfn-basecache-") as tmp:
        work = Path(tmp)
        archive, sha256 = runtime_archive(work, args.pypy_archive, args.pypy_sha256)
        root = work / "repo"
        root.mkdir()
        _repository(root, args.functions)  # commits the functions
        _git(root, "branch", "-M", "main")
        base = _git(root, "rev-parse", "HEAD")
        changed = root / "functions" / "fn-00" / "main.py"
        changed.write_text(changed.read_text() + "\nMORE = list(range(100))\n")
        _git(root, "commit", "-qam", "change one function")
        head = _git(root, "rev-parse", "HEAD")
        push, pull = _events(work, base, head)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "PYFN_"))}
        env.update(
            PYFN_PYPY_ARCHIVE=archive,
            PYFN_PYPY_SHA256=str(sha256),
            PYFN_CACHE_DIR=str(work / "cache"),
            SOURCE_DATE_EPOCH="1700000000",
            GITHUB_WORKSPACE=str(root),
            GITHUB_REPOSITORY="acme/fns",
            INPUT_SOURCE="functions/*",
            **{"INPUT_COMMENT-MODE": "off"},
        )
        if args.index_url:
            env["PYFN_INDEX_URL"] = args.index_url
        kept = work / "kept"  # RUNNER_TEMP of the push: its reports, as the cache keeps them
        _git(root, "checkout", "-q", base)
        timed_action(
            root,
            {
                **env,
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_EVENT_PATH": str(push),
                "GITHUB_SHA": base,
                "GITHUB_REF": "refs/heads/main",
                "RUNNER_TEMP": str(kept),
            },
            work / "step",
        )
        _git(root, "checkout", "-q", head)
        pr = {**env, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(pull)}
        empty = work / "empty"
        empty.mkdir()
        timed_action(root, {**pr, "RUNNER_TEMP": str(empty)}, work / "step")  # warm the cache
        times: dict[str, list[float]] = {"cached": [], "built": []}
        for n in range(args.rounds):
            order = ["cached", "built"] if n % 2 == 0 else ["built", "cached"]
            for kind in order:
                temp = kept if kind == "cached" else empty
                times[kind].append(
                    round(timed_action(root, {**pr, "RUNNER_TEMP": str(temp)}, work / "step"), 3)
                )
            print(
                f"round {n + 1}: {times['cached'][-1]:.2f} s with the base from the cache, "
                f"{times['built'][-1]:.2f} s building it",
                file=sys.stderr,
            )
    medians = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, Any] = {
        "functions": args.functions,
        "rounds": args.rounds,
        "seconds": times,
        "median_seconds": medians,
        "ratio": round(medians["cached"] / medians["built"], 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
