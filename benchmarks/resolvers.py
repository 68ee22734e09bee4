"""Measure a cold build of examples/hello with each resolver, side by side.

Run by hand, not by CI:

    .venv/bin/python benchmarks/resolvers.py [--rounds 3] [--index-url URL]
        [--pypy-archive PATH --pypy-sha256 HEX]

"Cold" is what a user meets first, and again on each pull request that changes the
requirements: the runtime is cached (fetched and unpacked once, before timing), and
nothing else is: no installed site, no pip or uv cache, no fetched or built wheel.
Each round copies that cache once per resolver and runs ``pyfn build`` in a process
of its own; the two take turns (uv first in odd rounds, pip first in even ones) so
drift on a noisy machine hits both alike. Without an archive it packs Debian's pypy3
(``pyfn runtime pack``) first. The requirements come from the configured package
index (or ``--index-url``). After each cold build, the same build runs again with
``--refresh`` on its cache (the requirements resolved and installed again, with the
files fetched and wheels built the first time at hand), as a pull request that
changes requirements.txt meets it. Prints one JSON object: each run's seconds, the
medians, ``pip_over_uv`` (pip's cold median over uv's) and ``again_pip_over_uv``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from monorepo import runtime_archive

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "examples" / "hello"


def _build(src: Path, out: Path, cache: Path, args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    env["PYFN_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pyfn_action", "build", str(src), "--out", str(out), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index-url")
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-") as tmp_name:
        tmp = Path(tmp_name)
        archive, sha256 = runtime_archive(tmp, ns.pypy_archive, ns.pypy_sha256)
        common = ["--pypy-archive", archive, "--pypy-sha256", sha256]
        if ns.index_url:
            common += ["--index-url", ns.index_url]
        # The runtime, cached once: a script function with no requirements.
        script = tmp / "script"
        script.mkdir()
        (script / "main.py").write_text("print('hi')\n")
        base = tmp / "base-cache"
        _build(
            script,
            tmp / "script-out",
            base,
            [*common, "--signature", "script", "--script", "main.py"],
        )
        times: dict[str, list[float]] = {"uv": [], "pip": [], "uv-again": [], "pip-again": []}
        for n in range(ns.rounds):
            order = ["uv", "pip"] if n % 2 == 0 else ["pip", "uv"]
            for resolver in order:
                cache = tmp / f"cache-{n}-{resolver}"
                shutil.copytree(base, cache, symlinks=True)
                seconds = _build(
                    HELLO, tmp / f"out-{n}-{resolver}", cache, [*common, "--resolver", resolver]
                )
                times[resolver].append(round(seconds, 2))
                # The same requirements resolved and installed again on that cache
                # (--refresh): as a pull request that changes requirements.txt meets it,
                # with the cache the Action restored (fetched files, built wheels).
                again = _build(
                    HELLO,
                    tmp / f"out-{n}-{resolver}",
                    cache,
                    [*common, "--resolver", resolver, "--refresh"],
                )
                times[f"{resolver}-again"].append(round(again, 2))
                shutil.rmtree(cache)
    medians = {r: statistics.median(t) for r, t in times.items()}
    print(
        json.dumps(
            {
                "cold_build_seconds": times,
                "median_seconds": medians,
                "pip_over_uv": round(medians["pip"] / medians["uv"], 2),
                "again_pip_over_uv": round(medians["pip-again"] / medians["uv-again"], 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
