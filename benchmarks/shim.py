"""Measure pyfn's shim against spawn-per-request and a native Node.js function.

Run by hand, not by CI:

    .venv/bin/python benchmarks/shim.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--requests 500] [--seconds 10] [--clients 8] [--warmup 50] [--rounds 5]
        [--cold-starts 5]

Needs ``wrk`` (a C HTTP load generator; on Debian: ``apt-get install -y wrk``):
the benchmark stops with a message if it is missing. The load generator shares
this machine's CPUs with the servers under test; a Python client would cost
more CPU than the servers themselves and cap everyone's figures.

One trivial handler ("Hello, World!\\n"), served three ways under the same pinned
Node.js Functions Framework, on loopback, side by side in this one run:

* spawn_per_request: the design pyfn replaces (the field report): ``index.js``
  runs ``spawnSync`` of the bundle's own PyPy on ``handler.py`` for every request;
* ours: a ``pyfn build`` bundle of a Functions Framework function, persistent
  PyPy workers (PYFN_WORKERS default: one per CPU; also once with 1 worker);
* native_node: ``(req, res) => res.send(...)``.

For each:

* cold start: process start to the first 200 (a fresh server each time, polled
  every 5 ms), the median of --cold-starts starts taken in rounds over the
  variants, every sample listed;
* latency: p50/p95/mean of --requests sequential keep-alive requests
  (``wrk -t1 -c1``, stopped after that many responses) after --warmup ones;
* throughput: requests per second with --clients concurrent keep-alive clients
  (``wrk -t1 -cC``) for --seconds in all, split into --rounds that take turns
  over the variants, so that a change in the machine's load hits all alike.

Every response is checked (status 200 and the exact body); anything else counts
as an error. All servers stay up together while they are measured; persistent
ones first sit idle for --settle seconds, as after a real cold start. PyPy's JIT
keeps getting faster for thousands of requests: a larger --warmup shows the
steady state. Prints one JSON object with ratios. Without an archive it packs
Debian's pypy3 (``pyfn runtime pack``) first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpbench
from httpbench import (
    BODY,
    COLD_START_LIMIT,
    HOST,
    MAX_RESPONSES,
    REPO,
    SEQUENTIAL_SECONDS,
    ratio,
    run_wrk,
)

from pyfn_action.config import resolve
from pyfn_action.flows import nodeframework, serve
from pyfn_action.flows.build import build
from pyfn_action.flows.jobs import cache_dir as default_cache_dir
from pyfn_action.flows.served import unpack_bundle
from pyfn_action.report.manifest import read_tree

COLD_START_POLL = 0.005  # seconds between attempts
SPAWN_SEQUENTIAL_CAP = 200  # ~30+ ms each

MAIN_PY = """import functions_framework


@functions_framework.http
def hello(request):
    return "Hello, World!\\n"
"""
NATIVE_JS = """'use strict';
exports.hello = (req, res) => res.send('Hello, World!\\n');
"""
HANDLER_PY = """import sys

sys.stdin.read()
sys.stdout.write("Hello, World!\\n")
"""
SPAWN_JS = """'use strict';
// The design pyfn replaces (the field report): one PyPy process per request.
const {spawnSync} = require('child_process');
const PYPY = %(pypy)s;
const env = Object.assign({}, process.env, {LD_LIBRARY_PATH: %(lib)s});
exports.hello = (req, res) => {
  const input = JSON.stringify({method: req.method, path: req.path, query: req.query,
    headers: req.headers});
  const out = spawnSync(PYPY, ['-s', 'handler.py'], {cwd: __dirname, input, env});
  if (out.status === 0) res.status(200).type('text/plain').send(out.stdout);
  else res.status(500).send('Internal Server Error\\n');
};
"""
WRK_LUA = (
    """limit = tonumber(os.getenv("BENCH_LIMIT"))
expected = os.getenv("BENCH_BODY")
"""
    + httpbench.WRK_LUA_CHECK
)
_READY = re.compile(r"pyfn worker (\d+) ready in (\d+) ms")


def _cold_start(process: subprocess.Popen[bytes], port: int, started: float) -> dict[str, float]:
    """Poll until the first 200: when the port first accepted, when it first answered 200."""
    listening: float | None = None
    deadline = started + COLD_START_LIMIT
    for _ in range(1_000_000):
        now = time.perf_counter()
        if now > deadline or process.poll() is not None:
            break
        conn = http.client.HTTPConnection(HOST, port, timeout=min(5.0, deadline - now))
        try:
            conn.connect()
            listening = listening or time.perf_counter()
            conn.request("GET", "/")
            response = conn.getresponse()
            if response.status == 200 and response.read() == BODY:
                done = time.perf_counter()
                return {
                    "cold_start_ms": round((done - started) * 1000, 1),
                    "cold_start_listen_ms": round((listening - started) * 1000, 1),
                }
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(COLD_START_POLL)
    raise RuntimeError(f"no 200 within {COLD_START_LIMIT} s (exit code {process.poll()})")


@contextlib.contextmanager
def served(
    framework: nodeframework.Framework, root: Path, env: Mapping[str, str], log: Path
) -> Iterator[tuple[int, dict[str, float]]]:
    """Start the framework on ``root``; yield its port and cold-start figures."""
    port = httpbench.free_port()
    with log.open("wb") as out:
        started = time.perf_counter()
        process = serve.start(
            framework, root, entry_point="hello", host=HOST, port=port, env=env, output=out
        )
        try:
            try:
                cold = _cold_start(process, port, started)
            except RuntimeError as exc:
                raise RuntimeError(f"{root}: {exc}\n{log.read_text(errors='replace')}") from exc
            yield port, cold
        finally:
            serve.stop(process)


@dataclass
class Variant:
    name: str
    root: Path
    env: Mapping[str, str]
    persistent: bool  # warmed up before measuring; spawn-per-request is not
    log: Path
    port: int = 0
    cold: list[dict[str, float]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)


def _sequential(wrk: str, script: Path, variant: Variant, args: Any) -> dict[str, Any]:
    if variant.persistent and args.warmup:
        run_wrk(wrk, script, variant.port, 1, SEQUENTIAL_SECONDS, args.warmup)
    count = args.requests if variant.persistent else min(args.requests, SPAWN_SEQUENTIAL_CAP)
    run = run_wrk(wrk, script, variant.port, 1, SEQUENTIAL_SECONDS, count)
    return {
        "sequential_requests": run["responses"],
        "warmup_requests": args.warmup if variant.persistent else 0,
        "p50_ms": round(run["p50_us"] / 1000, 3),
        "p95_ms": round(run["p95_us"] / 1000, 3),
        "mean_ms": round(run["mean_us"] / 1000, 3),
        "sequential_errors": run["bad"] + run["socket_errors"] + run["timeouts"],
    }


def _measure_all(
    framework: nodeframework.Framework, variants: list[Variant], args: Any, wrk: str, script: Path
) -> None:
    """Cold starts in rounds, then every server up at once for latency and throughput."""
    for n in range(args.cold_starts - 1):
        for v in variants:
            with served(framework, v.root, v.env, v.log.with_suffix(f".cold{n}.log")) as (_, c):
                v.cold.append(c)
    with contextlib.ExitStack() as stack:
        for v in variants:
            v.port, cold = stack.enter_context(served(framework, v.root, v.env, v.log))
            v.cold.append(cold)
        time.sleep(args.settle)  # persistent servers sit idle first, as after a cold start
        for v in variants:
            v.figures = _sequential(wrk, script, v, args)
        per_round = max(1, round(args.seconds / args.rounds))
        for _ in range(args.rounds):
            for v in variants:
                v.rounds.append(
                    run_wrk(wrk, script, v.port, args.clients, per_round, MAX_RESPONSES)
                )
    for v in variants:
        samples = [c["cold_start_ms"] for c in v.cold]
        v.figures = {
            "cold_start_ms": round(statistics.median(samples), 1),
            "cold_start_samples_ms": samples,
            "cold_start_listen_ms": round(
                statistics.median(c["cold_start_listen_ms"] for c in v.cold), 1
            ),
            **({"idle_seconds_before_measuring": args.settle} if v.persistent else {}),
            **v.figures,
            **httpbench.throughput(v.rounds),
        }
        loads = [int(m[2]) for m in _READY.finditer(v.log.read_text(errors="replace"))]
        if loads:  # ours: each worker's own report of loading the function, in ms
            v.figures["worker_load_ms"] = loads


def _bundle(args: Any, tmp: Path) -> tuple[Path, float]:
    """Build and unpack the trivial function; returns the unpacked root and seconds taken."""
    start = time.perf_counter()
    archive, sha = httpbench.runtime_archive(args, tmp)
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text(MAIN_PY)
    env = dict(os.environ)
    flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist")}
    config = resolve(app, env=env, flags={**flags, "entry_point": "hello"})
    result = build(config, cache_dir=tmp / "cache", env=env)
    root = tmp / "ours"
    assert result.bundle is not None  # not a dry run
    unpack_bundle(result.bundle, root)
    return root, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10, help="of throughput, in all")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds per variant")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50, help="for the persistent servers")
    parser.add_argument("--cold-starts", type=int, default=5, help="per variant")
    parser.add_argument(
        "--settle",
        type=float,
        default=8.0,
        help="idle seconds after the servers' first answer, before measuring "
        "(pyfn's workers warm PyPy's JIT while idle)",
    )
    args = parser.parse_args()
    if bool(args.pypy_archive) != bool(args.pypy_sha256):
        parser.error("--pypy-archive and --pypy-sha256 go together")
    if args.requests < 2 or args.clients < 1 or args.warmup < 0 or args.cold_starts < 1:
        parser.error("need --requests >= 2, --clients >= 1, --warmup >= 0, --cold-starts >= 1")
    if args.rounds < 1 or args.seconds < args.rounds:
        parser.error("need --rounds >= 1 and --seconds >= --rounds (wrk runs whole seconds)")
    wrk = httpbench.wrk_path()
    began = time.perf_counter()
    cpus = len(os.sched_getaffinity(0))  # what index.js's os.availableParallelism() sees
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    test_cache = REPO / "tests" / ".cache"
    cache = (
        test_cache if (nodeframework.framework_home(test_cache) / ".complete").is_file() else None
    )
    framework = nodeframework.ensure_framework(cache or default_cache_dir(None), env)
    node = subprocess.run([framework.node, "--version"], capture_output=True, text=True, timeout=30)
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=30)
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-shim-") as tmp_name:
        tmp = Path(tmp_name)
        ours_root, setup_seconds = _bundle(args, tmp)
        runtime = read_tree(ours_root).runtime
        spawn_root, native_root = tmp / "spawn", tmp / "native"
        spawn_root.mkdir()
        native_root.mkdir()
        (native_root / "index.js").write_text(NATIVE_JS)
        (spawn_root / "handler.py").write_text(HANDLER_PY)
        pypy, lib = ours_root / str(runtime["executable"]), ours_root / "pypy" / "lib"
        js = SPAWN_JS % {"pypy": json.dumps(str(pypy)), "lib": json.dumps(str(lib))}
        (spawn_root / "index.js").write_text(js)
        script = tmp / "bench.lua"
        script.write_text(WRK_LUA)
        one_env = {**env, "PYFN_WORKERS": "1"}
        variants = [
            Variant(
                name="native_node",
                root=native_root,
                env=env,
                persistent=True,
                log=tmp / "native.log",
            ),
            Variant(
                name="spawn_per_request",
                root=spawn_root,
                env=env,
                persistent=False,
                log=tmp / "spawn.log",
            ),
            Variant(name="ours", root=ours_root, env=env, persistent=True, log=tmp / "ours.log"),
            Variant(
                name="ours_one_worker",
                root=ours_root,
                env=one_env,
                persistent=True,
                log=tmp / "ours1.log",
            ),
        ]
        _measure_all(framework, variants, args, wrk, script)
    native, spawn, ours, ours_one = (v.figures for v in variants)
    cap = f"min(--requests, {SPAWN_SEQUENTIAL_CAP}) within {SEQUENTIAL_SECONDS} s"
    spawn["sequential_cap"] = f"{cap}, no warm-up (every request is a fresh process)"
    ours["workers"] = cpus
    ours_one["workers"] = 1
    report = {
        "python": sys.version.split()[0],
        "node": node.stdout.strip(),
        "pypy": f"{runtime['pypy_version']} (Python {runtime['python_version']})",
        "load_generator": (wrk_version.stdout or wrk_version.stderr).split(" Copyright")[0],
        "cpus": cpus,
        "requests": args.requests,
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "cold_starts": args.cold_starts,
        "setup_seconds": round(setup_seconds, 1),
        "spawn_per_request": spawn,
        "ours": ours,
        "ours_one_worker": ours_one,
        "native_node": native,
        "ratios": {
            "p50_spawn_over_ours": ratio(spawn["p50_ms"], ours["p50_ms"], 1),
            "p50_spawn_over_ours_one_worker": ratio(spawn["p50_ms"], ours_one["p50_ms"], 1),
            "rps_ours_over_spawn": ratio(ours["rps"], spawn["rps"], 1),
            "rps_ours_one_worker_over_spawn": ratio(ours_one["rps"], spawn["rps"], 1),
            "p50_ours_minus_native_ms": round(ours["p50_ms"] - native["p50_ms"], 3),
            "p50_ours_one_worker_minus_native_ms": round(ours_one["p50_ms"] - native["p50_ms"], 3),
            "rps_ours_over_native": ratio(ours["rps"], native["rps"], 3),
            "rps_ours_one_worker_over_native": ratio(ours_one["rps"], native["rps"], 3),
            "cold_start_ours_minus_native_ms": round(
                ours["cold_start_ms"] - native["cold_start_ms"], 1
            ),
            "cold_start_ours_one_worker_minus_native_ms": round(
                ours_one["cold_start_ms"] - native["cold_start_ms"], 1
            ),
        },
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
