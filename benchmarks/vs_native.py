"""pyfn against Cloud Functions' native Python runtime, handler by handler.

Run by hand, not by CI:

    .venv/bin/python benchmarks/vs_native.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--workloads trivial,json,cpu] [--requests 300] [--seconds 10] [--rounds 5]
        [--clients 8] [--warmup 300] [--cold-starts 5] [--settle 10] [--one-thread]
        [--memory-limit 256] [--memory-seconds 60]

Needs ``wrk`` (as benchmarks/shim.py does) and a package index for the native side.
A thin user of ``pyfn bench`` (``pyfn_action/flows/bench.py``): each workload is a
function of its own (``MAIN_PY`` with that workload's entry point and one ``[[bench]]``
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
whether anything was killed for memory. Prints one JSON object with pyfn ÷ native
ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shim as base

from pyfn_action.config import resolve
from pyfn_action.flows import bench, loadgen, nodeframework, serve
from pyfn_action.flows.benchservers import tree_rss
from pyfn_action.flows.build import build

MAIN_PY = """import json
import time

import flask
import functions_framework


@functions_framework.http
def trivial(request):
    return "Hello, World!\\n"


@functions_framework.http
def json_orders(request):
    orders = request.get_json()["orders"]
    totals = {}
    for order in orders:
        region = totals.setdefault(order["region"], {"orders": 0, "items": 0, "cents": 0})
        region["orders"] += 1
        for item in order["items"]:
            region["items"] += item["quantity"]
            region["cents"] += item["quantity"] * item["unit_cents"]
    body = json.dumps({"regions": totals, "orders": len(orders)}, sort_keys=True)
    return flask.Response(body, mimetype="application/json")


def _spin(n):
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total


@functions_framework.http
def cpu(request):
    _spin(400_000)
    return "Hello, World!\\n"


@functions_framework.http
def wait(request):
    time.sleep(0.1)
    return "Hello, World!\\n"


from mandelbrot_example import mandelbrot  # noqa: E402, F401 (examples/cpu/main.py)
"""
MANDELBROT_SOURCE = base.REPO / "examples" / "cpu" / "main.py"
MANDELBROT_QUERY = "/?size=128&iterations=200"  # about 0.2 s of CPython a request
NATIVE_REQUIREMENTS = ["functions-framework==3.10.2"]  # the version bundles get too
WORKLOADS = ("trivial", "json", "cpu", "mandelbrot", "wait")
TARGETS = {
    "trivial": "trivial",
    "json": "json_orders",
    "cpu": "cpu",
    "mandelbrot": "mandelbrot",
    "wait": "wait",
}
PATHS = {"mandelbrot": MANDELBROT_QUERY}
WRK_LUA = (
    """limit = tonumber(os.getenv("BENCH_LIMIT"))
local function slurp(name)
  local f = assert(io.open(name, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end
expected = slurp(os.getenv("BENCH_EXPECT_FILE"))
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file ~= nil and body_file ~= "" then
  wrk.method = "POST"
  wrk.body = slurp(body_file)
  wrk.headers["Content-Type"] = "application/json"
end
local path = os.getenv("BENCH_PATH")
if path ~= nil and path ~= "" then
  wrk.path = path
end
"""
    + base.WRK_LUA_CHECK
)
TEST_CACHE = base.REPO / "tests" / ".cache"  # the tests' installed Node.js framework
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def orders_body(size: int = 30_000) -> bytes:
    """A JSON document of about ``size`` bytes: orders by region, each with items."""
    rng = random.Random(13)  # noqa: S311 (test data, the same every run)
    orders: list[dict[str, Any]] = []
    regions = ["europe-west1", "us-central1", "asia-east1", "us-east4", "europe-north1"]
    while len(json.dumps({"orders": orders})) < size:
        items = [
            {
                "sku": f"SKU-{rng.randrange(10_000):05d}",
                "quantity": rng.randrange(1, 9),
                "unit_cents": rng.randrange(99, 99_999),
            }
            for _ in range(rng.randrange(1, 5))
        ]
        customer = {"name": f"customer {rng.randrange(5000)}", "vip": rng.random() < 0.1}
        order = {"id": len(orders) + 1, "region": rng.choice(regions), "items": items}
        orders.append({**order, "customer": customer})
    return json.dumps({"orders": orders}).encode()


@dataclass
class Check:
    """A workload's request and the one answer every side gave, for wrk's Lua check."""

    body_file: Path | None
    expect_file: Path
    path: str = "/"

    def env(self) -> dict[str, str]:
        return {
            "BENCH_BODY_FILE": str(self.body_file or ""),
            "BENCH_EXPECT_FILE": str(self.expect_file),
            "BENCH_PATH": self.path,
        }


def _function(tmp: Path, workload: str) -> Path:
    """MAIN_PY as a function whose [[bench]] request is ``workload``'s, for pyfn bench."""
    src = tmp / f"fn-{workload}"
    (src / "bench").mkdir(parents=True)
    (src / "main.py").write_text(MAIN_PY)
    (src / "mandelbrot_example.py").write_bytes(MANDELBROT_SOURCE.read_bytes())
    (src / "requirements.txt").write_text("".join(r + "\n" for r in NATIVE_REQUIREMENTS))
    request = f'[[bench]]\nname = "{workload}"\npath = "{PATHS.get(workload, "/")}"\n'
    if workload == "json":
        (src / "bench" / "orders.json").write_bytes(orders_body())
        request += (
            'method = "POST"\nbody_file = "bench/orders.json"\n'
            'headers = { "Content-Type" = "application/json" }\n'
        )
    (src / "pyfn.toml").write_text(
        f'name = "bench-{workload}"\nentry_point = "{TARGETS[workload]}"\n' + request
    )
    return src


def _wrk(
    wrk: str, script: Path, port: int, clients: int, seconds: int, limit: int, check: Check
) -> dict[str, Any]:
    return base._wrk(wrk, script, port, clients, seconds, limit, extra_env=check.env())


def _measure_wrk(
    wrk: str, script: Path, ports: dict[str, int], args: Any, check: Check
) -> dict[str, dict[str, Any]]:
    """The same servers under wrk: p50/p95 of --requests after --warmup, then --clients
    clients in --rounds rounds taking turns."""
    figures: dict[str, dict[str, Any]] = {}
    for name, port in ports.items():
        if args.warmup:
            _wrk(wrk, script, port, 1, base.SEQUENTIAL_SECONDS, args.warmup, check)
        run = _wrk(wrk, script, port, 1, base.SEQUENTIAL_SECONDS, args.requests, check)
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
                _wrk(wrk, script, port, args.clients, per_round, base.MAX_RESPONSES, check)
            )
    for name in ports:
        figures[name].update(base._throughput(rounds[name]))
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
) -> tuple[dict[str, Any], bench.Session | None]:
    """One workload through pyfn bench's session: its start, memory, answers and measures;
    and wrk's measures of the same servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    config = resolve(_function(tmp, workload), env=env, flags=flags)
    options = bench.BenchOptions(
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
    with bench.session(
        config, env, cache_dir=cache, options=options, build=build_it, say=say, pyfn_env=pyfn_env
    ) as run:
        if run.differences:
            raise SystemExit(f"the sides answer {workload} differently: {run.differences}")
        ports = {name: server.port for name, server in run.servers.items()}
        expect = tmp / f"expect-{workload}.bin"
        expect.write_bytes(run.expected[workload].body)
        body = config.source / "bench" / "orders.json"
        check = Check(body if body.is_file() else None, expect, PATHS.get(workload, "/"))
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
            figures["under_memory_limit"] = _under_memory_limit(
                run, args, wrk, script, check, tmp, cache
            )
        return figures, None


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    native, ours = figures["native"], figures["pyfn"]
    out: dict[str, float] = {}
    if "p50_ms" in native:
        out["pyfn_p50_speedup"] = base._ratio(native["p50_ms"], ours["p50_ms"])
        out["pyfn_p50_minus_native_ms"] = round(ours["p50_ms"] - native["p50_ms"], 3)
        out["pyfn_rps_ratio"] = base._ratio(ours["rps"], native["rps"])
    mine, theirs = ours["pyfn_bench"], native["pyfn_bench"]
    out["pyfn_pyfn_bench_p50_speedup"] = base._ratio(theirs["p50_ms"], mine["p50_ms"])
    out["pyfn_pyfn_bench_rps_ratio"] = base._ratio(mine["rps"], theirs["rps"])
    return out


@contextlib.contextmanager
def _memory_cgroup(limit_mib: int) -> Iterator[tuple[Path, str]]:
    """A fresh memory cgroup of ``limit_mib`` (v2, else v1); yields it and its kind."""
    name = f"pyfn-bench-{os.getpid()}"
    if (CGROUP_V2 / "cgroup.controllers").is_file():
        group, kind = CGROUP_V2 / name, "v2"
        group.mkdir()
        (group / "memory.max").write_text(f"{limit_mib}M")
        (group / "memory.swap.max").write_text("0")
    elif (CGROUP_V1 / "memory.limit_in_bytes").is_file():
        group, kind = CGROUP_V1 / name, "v1"
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(f"{limit_mib}M")
    else:
        raise SystemExit("--memory-limit needs a cgroup memory controller at /sys/fs/cgroup")
    try:
        yield group, kind
    finally:
        for _ in range(50):
            with contextlib.suppress(OSError):
                group.rmdir()
                break
            time.sleep(0.1)


def _under_memory_limit(
    run: bench.Session, args: Any, wrk: str, script: Path, check: Check, tmp: Path, cache: Path
) -> dict[str, Any]:
    """pyfn's defaults inside a memory cgroup, serving the JSON workload."""
    with _memory_cgroup(args.memory_limit) as (group, kind):
        # Everything the server starts is born in the cgroup: this process joins it
        # for the start (the cgroup's limit is what the shim reads), then leaves.
        home = Path("/proc/self/cgroup").read_text()
        procs = group / "cgroup.procs"
        procs.write_text(str(os.getpid()))
        log = tmp / "memory-limit.log"
        try:
            port = base._free_port()
            out = log.open("wb")
            env = {"PYFN_CGROUP_ROOT": ""}  # the real cgroup, found from /proc/self/cgroup
            framework = nodeframework.ensure_framework(cache, dict(os.environ))
            child = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
            process = serve.start(
                framework,
                run.root,
                entry_point=TARGETS["json"],
                host=base.HOST,
                port=port,
                env={**child, **env},
                output=out,
            )
        finally:
            _leave_cgroup(home, kind)
        try:
            loadgen.first_answer(
                base.HOST,
                port,
                run.requests[0],
                limit=base.COLD_START_LIMIT,
                alive=lambda: process.poll() is None,
            )
            run = _wrk(
                wrk, script, port, args.clients, args.memory_seconds, base.MAX_RESPONSES, check
            )
            peak = _cgroup_peak(group, kind)
            rss = tree_rss(process.pid)
        finally:
            serve.stop(process)
            out.close()
        text = log.read_text(errors="replace")
        settings = [json.loads(line) for line in text.splitlines() if "pyfn settings" in line]
        return {
            "limit_mib": args.memory_limit,
            "cgroup": kind,
            "workers": settings[0].get("workers") if settings else None,
            "seconds": args.memory_seconds,
            "clients": args.clients,
            "responses": run["responses"],
            "errors": run["bad"] + run["socket_errors"] + run["timeouts"],
            "workers_died": text.count(" died ("),
            "oom_kills": _oom_kills(group, kind),
            "peak_mb": round(peak / 2**20, 1) if peak else None,
            "rss_at_end_mb": round(sum(rss.values()) / 1024, 1),
        }


def _leave_cgroup(home: str, kind: str) -> None:
    for line in home.splitlines():
        number, controllers, path = line.split(":", 2)
        if (kind == "v2" and number == "0") or (
            kind == "v1" and "memory" in controllers.split(",")
        ):
            root = CGROUP_V2 if kind == "v2" else CGROUP_V1
            (root / path.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
            return


def _cgroup_peak(group: Path, kind: str) -> int:
    name = "memory.peak" if kind == "v2" else "memory.max_usage_in_bytes"
    with contextlib.suppress(OSError, ValueError):
        return int((group / name).read_text())
    return 0


def _oom_kills(group: Path, kind: str) -> int:
    name = "memory.events" if kind == "v2" else "memory.oom_control"
    with contextlib.suppress(OSError):
        for line in (group / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return 0


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
    wrk = base._wrk_path()
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
        archive, sha = base.runtime_archive(args, tmp)
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
            f"{name}_idle_rss_ratio": base._ratio(
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
