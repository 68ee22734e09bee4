"""pyfn against Cloud Functions' native Python runtime, handler by handler.

Run by hand, not by CI:

    .venv/bin/python benchmarks/vs_native.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--workloads trivial,json,cpu] [--requests 300] [--seconds 10] [--rounds 5]
        [--clients 8] [--warmup 300] [--cold-starts 5] [--settle 10] [--one-thread]
        [--memory-limit 256] [--memory-seconds 60]

Needs ``wrk`` (as benchmarks/shim.py does) and a package index for the native side.
A thin user of ``pyfn bench`` (``pyfn_action/flows/bench.py`` and its session,
``benchsession.py``): each workload is a function of its own (``MAIN_PY`` in
``native_workloads.py``, with that workload's entry point and one ``[[bench]]``
request), opened as ``pyfn bench`` opens it: built, served on both runtimes side by side,

* native: the yardstick, Cloud Functions' own Python runtime as it runs a function:
  CPython with ``functions-framework`` under gunicorn (1 worker, threads = 4 × CPUs),
  in an environment of its own (``pyfn_action/flows/native.py``);
* pyfn: the bundle under the Node.js Functions Framework it declares, with the shim's
  defaults (``--one-thread``: again with ``PYFN_THREADS=1``);

--cold-starts fresh starts of each taking turns (the last kept), --settle idle seconds
(pyfn's workers warm PyPy's JIT while idle), the idle memory of every process of each
server, and both answers compared byte for byte before anything is timed. Then the
same servers are measured twice: with ``wrk`` (p50/p95 of --requests sequential
requests after --warmup ones; requests a second with --clients clients in --rounds
rounds taking turns), and with ``pyfn bench``'s own measure (its ``pyfn_bench``
figures and ratios), so that each run says how far the two agree.

Workloads:

* ``trivial``: ``GET /`` answered ``Hello, World!``: the cost of the path around a
  handler;
* ``json``: a 30 KB JSON body posted, parsed, aggregated and answered as JSON: an
  ordinary web handler;
* ``cpu``: a pure-Python loop (tens of ms on CPython), where PyPy's JIT shines;
* ``mandelbrot``: examples/cpu's function, as it is, rendering one
  ``MANDELBROT_QUERY`` tile: the example's README quotes this workload's figures;
* ``wait``: waits 100 ms (``time.sleep``, as a handler waits on an API): only
  concurrency helps.

Start and idle memory are read on the trivial function, pyfn with its default workers
and with one (``PYFN_WORKERS=1``). With --memory-limit MiB (needs a writable cgroup v1
or v2 memory controller, as root), pyfn's defaults serve the JSON workload to
--clients clients for --memory-seconds inside a cgroup of that size, and the run says
whether anything was killed for memory (``memory_limit.py``). Prints one JSON object
with pyfn ÷ native ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpbench
from httpbench import MAX_RESPONSES, SEQUENTIAL_SECONDS, ratio
from memory_limit import under_memory_limit
from native_workloads import (
    PATHS,
    WORKLOADS,
    WRK_LUA,
    Check,
    check_wrk,
    function_source,
)

from pyfn_action.config import resolve
from pyfn_action.flows import bench, nodeframework
from pyfn_action.flows.benchsession import BenchOptions, Session, session
from pyfn_action.flows.build import build

TEST_CACHE = httpbench.REPO / "tests" / ".cache"  # the tests' installed Node.js framework


def _measure_wrk(
    wrk: str, script: Path, ports: dict[str, int], args: Any, check: Check
) -> dict[str, dict[str, Any]]:
    """The same servers under wrk: p50/p95 of --requests after --warmup, then --clients
    clients in --rounds rounds taking turns."""
    figures: dict[str, dict[str, Any]] = {}
    for name, port in ports.items():
        if args.warmup:
            check_wrk(wrk, script, port, 1, SEQUENTIAL_SECONDS, args.warmup, check)
        run = check_wrk(wrk, script, port, 1, SEQUENTIAL_SECONDS, args.requests, check)
        figures[name] = {
            "p50_ms": round(run["p50_us"] / 1000, 3),
            "p95_ms": round(run["p95_us"] / 1000, 3),
            "sequential_errors": run["bad"] + run["socket_errors"] + run["timeouts"],
        }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
    per_round = max(1, round(args.seconds / args.rounds))
    for _ in range(args.rounds):
        for name, port in ports.items():
            rounds[name].append(
                check_wrk(wrk, script, port, args.clients, per_round, MAX_RESPONSES, check)
            )
    for name in ports:
        figures[name].update(httpbench.throughput(rounds[name]))
    return figures


def _workload(
    workload: str,
    args: Any,
    wrk: str,
    script: Path,
    tmp: Path,
    cache: Path,
    flags: dict[str, Any],
    pyfn_env: Mapping[str, str] | None = None,
    with_wrk: bool = True,
) -> tuple[dict[str, Any], Session | None]:
    """One workload through pyfn bench's session: its start, memory, answers and measures;
    and wrk's measures of the same servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    config = resolve(function_source(tmp, workload), env=env, flags=flags)
    options = BenchOptions(
        duration=max(1.0, args.seconds / 2),
        clients=args.clients,
        cold_starts=args.cold_starts,
        settle=args.settle,
    )

    def build_it(config: Any) -> Path:
        result = build(config, cache_dir=cache, env=env)
        assert result.bundle is not None
        return Path(result.bundle)

    say = lambda text: print(f"{workload}: {text}", file=sys.stderr)  # noqa: E731
    with session(
        config, env, cache_dir=cache, options=options, build=build_it, say=say, pyfn_env=pyfn_env
    ) as run:
        if run.differences:
            raise SystemExit(f"the sides answer {workload} differently: {run.differences}")
        ports = {name: server.port for name, server in run.servers.items()}
        expect = tmp / f"expect-{workload}.bin"
        expect.write_bytes(run.expected[workload].body)
        body = config.source / "bench" / "orders.json"
        check = Check(
            body_file=body if body.is_file() else None,
            expect_file=expect,
            path=PATHS.get(workload, "/"),
        )
        figures = (
            _measure_wrk(wrk, script, ports, args, check) if with_wrk else {n: {} for n in ports}
        )
        [measured] = bench.measure(run, options, say)
        for name, side in (("native", measured.native), ("pyfn", measured.pyfn)):
            figures[name]["pyfn_bench"] = {
                "p50_ms": side.p50_ms,
                "p95_ms": side.p95_ms,
                "rps": side.rps,
                "wrong": side.wrong,
            }
            figures[name]["cold_start_ms"] = run.cold_start_ms[name]
            figures[name]["idle_rss_mb"] = run.idle_rss_mb[name]
        if workload == "json" and args.memory_limit:
            figures["under_memory_limit"] = under_memory_limit(
                run, args, wrk, script, check, tmp, cache
            )
        return figures, None


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    native, ours = figures["native"], figures["pyfn"]
    out: dict[str, float] = {}
    if "p50_ms" in native:
        out["pyfn_p50_speedup"] = ratio(native["p50_ms"], ours["p50_ms"])
        out["pyfn_p50_minus_native_ms"] = round(ours["p50_ms"] - native["p50_ms"], 3)
        out["pyfn_rps_ratio"] = ratio(ours["rps"], native["rps"])
    mine, theirs = ours["pyfn_bench"], native["pyfn_bench"]
    out["pyfn_pyfn_bench_p50_speedup"] = ratio(theirs["p50_ms"], mine["p50_ms"])
    out["pyfn_pyfn_bench_rps_ratio"] = ratio(mine["rps"], theirs["rps"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--workloads", default="trivial,json,cpu")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--one-thread", action="store_true", help="also pyfn with PYFN_THREADS=1")
    parser.add_argument("--memory-limit", type=int, default=0, help="MiB; 0: not measured")
    parser.add_argument("--memory-seconds", type=int, default=60)
    args = parser.parse_args()
    if bool(args.pypy_archive) != bool(args.pypy_sha256):
        parser.error("--pypy-archive and --pypy-sha256 go together")
    if args.requests < 2 or args.rounds < 1 or args.seconds < args.rounds or args.cold_starts < 1:
        parser.error(
            "need --requests >= 2, --rounds >= 1, --seconds >= --rounds, --cold-starts >= 1"
        )
    workloads = [w for w in args.workloads.split(",") if w]
    if not set(workloads) <= set(WORKLOADS):
        parser.error(f"--workloads takes {', '.join(WORKLOADS)}")
    wrk = httpbench.wrk_path()
    began = time.perf_counter()
    results: dict[str, Any] = {
        "cpus": len(os.sched_getaffinity(0)),
        "clients": args.clients,
        "workloads": {},
    }
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-vs-native-") as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "check.lua"
        script.write_text(WRK_LUA)
        archive, sha = httpbench.runtime_archive(args, tmp)
        cache = tmp / "cache"
        cache.mkdir()
        installed = nodeframework.framework_home(TEST_CACHE).parent
        if (nodeframework.framework_home(TEST_CACHE) / ".complete").is_file():
            (cache / installed.name).symlink_to(installed)  # the tests' installed framework
        flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist")}
        for workload in workloads:
            figures, _ = _workload(workload, args, wrk, script, tmp / "a", cache, flags)
            if args.one_thread:
                one, _ = _workload(
                    workload, args, wrk, script, tmp / "b", cache, flags, {"PYFN_THREADS": "1"}
                )
                figures["pyfn_1_thread"] = one["pyfn"]
            figures["ratios"] = _ratios(figures)
            results["workloads"][workload] = figures
        # Start and idle memory on the trivial function, pyfn's defaults and one worker.
        start: dict[str, Any] = {}
        plain, _ = _workload("trivial", args, wrk, script, tmp / "c", cache, flags, with_wrk=False)
        worker, _ = _workload(
            "trivial",
            args,
            wrk,
            script,
            tmp / "d",
            cache,
            flags,
            {"PYFN_WORKERS": "1"},
            with_wrk=False,
        )
        for name, side in (
            ("native", plain["native"]),
            ("pyfn", plain["pyfn"]),
            ("pyfn_1_worker", worker["pyfn"]),
        ):
            start[name] = {
                "cold_start_ms": side["cold_start_ms"],
                "idle_rss_mb": side["idle_rss_mb"],
            }
        start["ratios"] = {
            f"{name}_cold_start_minus_native_ms": round(
                start[name]["cold_start_ms"] - start["native"]["cold_start_ms"], 1
            )
            for name in ("pyfn", "pyfn_1_worker")
        } | {
            f"{name}_idle_rss_ratio": ratio(
                start[name]["idle_rss_mb"], start["native"]["idle_rss_mb"]
            )
            for name in ("pyfn", "pyfn_1_worker")
        }
        results["start_and_idle"] = start
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
