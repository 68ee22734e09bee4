"""pyfn against Cloud Functions' native Python runtime, handler by handler.

Run by hand, not by CI:

    .venv/bin/python benchmarks/vs_native.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--workloads trivial,json,cpu] [--requests 300] [--seconds 10] [--rounds 5]
        [--clients 8] [--warmup 300] [--cold-starts 5] [--settle 10] [--one-thread]
        [--memory-limit 256] [--memory-seconds 60]

Needs ``wrk`` (as benchmarks/shim.py does) and a package index for the native side.
One ``main.py``, served side by side in this one run:

* native: the yardstick, Cloud Functions' own Python runtime as it runs a function:
  CPython with ``functions-framework`` under gunicorn (1 worker, threads = 4 × CPUs),
  in an environment of its own, made and started by ``pyfn bench``'s own code
  (``pyfn_action/flows/native.py``);
* pyfn: a ``pyfn build`` bundle under the pinned Node.js Functions Framework, with
  the shim's defaults;
* pyfn_1_thread (``--one-thread``): the same bundle with ``PYFN_THREADS=1``.

Workloads (every response is checked: status 200 and the exact body, which both
sides must agree on before anything is timed):

* ``trivial``: ``GET /`` answered ``Hello, World!``: the cost of the path around a
  handler;
* ``json``: a 30 KB JSON body posted, parsed, aggregated and answered as JSON: an
  ordinary web handler;
* ``cpu``: a pure-Python loop (tens of ms on CPython), where PyPy's JIT shines;
* ``mandelbrot``: examples/cpu's function, as it is, rendering one
  ``MANDELBROT_QUERY`` tile: the example's README quotes this workload's figures;
* ``wait``: waits 100 ms (``time.sleep``, as a handler waits on an API): only
  concurrency helps.

For each workload, all sides up and idle for --settle seconds (pyfn's workers warm
PyPy's JIT while idle; what requests right after a cold start cost is measured
apart, below): p50/p95 of --requests sequential requests after --warmup ones,
and requests per second with --clients concurrent clients in --rounds rounds that
take turns over the servers. Then, on the trivial function: cold start (process
start to the first 200, the median of --cold-starts fresh starts taken in turns),
the latency of the first requests after it (the JIT warm-up must not delay them),
and the resident memory of each idle server (every process of it, summed) after
--settle idle seconds, pyfn with its default workers and with one. With
--memory-limit MiB (needs a writable cgroup v1 or v2 memory controller, as root),
pyfn's defaults serve the JSON workload to --clients clients for --memory-seconds
inside a cgroup of that size, and the run says whether anything was killed for
memory. Prints one JSON object with pyfn ÷ native ratios.

Latency and throughput are measured twice on the same servers: with ``wrk`` (above),
and with ``pyfn bench``'s own load (``pyfn_action/flows/loadgen.py``: one client for
p50/p95, --clients clients for requests a second; the ``pyfn_bench`` figures and
ratios), so that each run says how far ``pyfn bench``'s figures agree with wrk's.
Requests, answers, the native side and the memory readings are ``pyfn bench``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import statistics
import subprocess
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
from pyfn_action.config.bench import BenchRequest
from pyfn_action.flows import loadgen, native, nodeframework, serve, served
from pyfn_action.flows.bench import tree_rss
from pyfn_action.flows.build import build
from pyfn_action.flows.jobs import cache_dir as default_cache_dir

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
TARGETS = {"trivial": "trivial", "json": "json_orders", "cpu": "cpu", "mandelbrot": "mandelbrot",
           "wait": "wait"}  # fmt: skip
PATHS = {"mandelbrot": MANDELBROT_QUERY}
PROBED = ("json", "mandelbrot")  # answers taken from the native side, then required of all
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
FIRST_REQUESTS = 10  # timed one by one right after a cold start
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def orders_body(size: int = 30_000) -> bytes:
    """A JSON document of about ``size`` bytes: orders by region, each with items."""
    rng = random.Random(13)  # noqa: S311 (test data, the same every run)
    orders: list[dict[str, Any]] = []
    regions = ["europe-west1", "us-central1", "asia-east1", "us-east4", "europe-north1"]
    while len(json.dumps({"orders": orders})) < size:
        items = [
            {"sku": f"SKU-{rng.randrange(10_000):05d}", "quantity": rng.randrange(1, 9),
             "unit_cents": rng.randrange(99, 99_999)}
            for _ in range(rng.randrange(1, 5))
        ]  # fmt: skip
        customer = {"name": f"customer {rng.randrange(5000)}", "vip": rng.random() < 0.1}
        order = {"id": len(orders) + 1, "region": rng.choice(regions), "items": items}
        orders.append({**order, "customer": customer})
    return json.dumps({"orders": orders}).encode()


@dataclass
class Request:
    """What a workload's requests are, and the one answer every response must be."""

    body_file: Path | None
    expect_file: Path
    path: str = "/"

    def env(self) -> dict[str, str]:
        return {
            "BENCH_BODY_FILE": str(self.body_file or ""),
            "BENCH_EXPECT_FILE": str(self.expect_file),
            "BENCH_PATH": self.path,
        }

    def bench_request(self) -> BenchRequest:
        """The request as ``pyfn bench`` sends it."""
        if self.body_file is None:
            return BenchRequest("check", "GET", self.path)
        return BenchRequest("check", "POST", "/", (("Content-Type", "application/json"),),
                            self.body_file.read_bytes())  # fmt: skip

    def fetch(self, port: int) -> tuple[int, bytes]:
        client = loadgen.Client(base.HOST, port)
        try:
            answer = client.send(self.bench_request())
        finally:
            client.close()
        return answer.status, answer.body


def _native_venv(tmp: Path) -> native.NativeEnv:
    """The native runtime's environment, made as ``pyfn bench`` makes it."""
    requirements = tmp / "native-requirements.txt"
    requirements.write_text("".join(line + "\n" for line in NATIVE_REQUIREMENTS))
    return native.ensure_env(tmp / "native-cache", requirements, dict(os.environ),
                             cpython=None, index_args=[])  # fmt: skip


def _start_native(
    venv: native.NativeEnv, app: Path, target: str, port: int, out: Any
) -> subprocess.Popen[bytes]:
    """The native runtime: functions-framework's own server (gunicorn, gthread), started
    as ``pyfn bench`` starts it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    return native.start(venv, app, entry_point=target, signature="http", host=base.HOST,
                        port=port, env=env, output=out)  # fmt: skip


def _start_ours(
    framework: nodeframework.Framework,
    root: Path,
    target: str,
    port: int,
    out: Any,
    env: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    manifest = root / "pyfn" / "manifest.json"
    data = json.loads(manifest.read_text())
    if data["function"]["entry_point"] != target:
        data["function"]["entry_point"] = target
        manifest.write_text(json.dumps(data))
    child = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child.update(env)
    return serve.start(framework, root, entry_point=target, host=base.HOST, port=port,
                       env=child, output=out)  # fmt: skip


@dataclass
class Side:
    """One way of serving: native, or a copy of the bundle with its own settings."""

    name: str
    native: bool
    root: Path  # the app (native) or an unpacked bundle of its own (pyfn)
    env: Mapping[str, str]

    @contextlib.contextmanager
    def up(
        self,
        framework: nodeframework.Framework,
        venv: native.NativeEnv,
        workload: str,
        log: Path,
        check: Request,
    ) -> Iterator[tuple[int, subprocess.Popen[bytes], dict[str, Any]]]:
        port = base._free_port()
        target = TARGETS[workload]
        with log.open("wb") as out:
            started = time.perf_counter()
            if self.native:
                process = _start_native(venv, self.root, target, port, out)
            else:
                process = _start_ours(framework, self.root, target, port, out, self.env)
            try:
                cold = _first_answer(process, port, started, check)
                yield port, process, cold
            finally:
                serve.stop(process)


def _first_answer(
    process: subprocess.Popen[bytes], port: int, started: float, check: Request
) -> dict[str, Any]:
    """Poll until the first right answer; then time the next few, one by one."""
    deadline = started + base.COLD_START_LIMIT
    expected = check.expect_file.read_bytes()
    for _ in range(1_000_000):
        if time.perf_counter() > deadline or process.poll() is not None:
            raise RuntimeError(f"no answer within {base.COLD_START_LIMIT} s ({process.poll()})")
        try:
            status, body = check.fetch(port)
        except (OSError, http.client.HTTPException):
            time.sleep(base.COLD_START_POLL)
            continue
        if status == 200 and body == expected:
            break
        raise RuntimeError(f"a wrong first answer: {status} {body[:200]!r}")
    first = time.perf_counter()
    after = []
    for _ in range(FIRST_REQUESTS):
        t0 = time.perf_counter()
        status, body = check.fetch(port)
        after.append(round((time.perf_counter() - t0) * 1000, 2))
        if status != 200 or body != expected:
            raise RuntimeError(f"a wrong answer after the first: {status} {body[:200]!r}")
    return {"cold_start_ms": round((first - started) * 1000, 1), "next_requests_ms": after}


def _tree_rss(pid: int) -> dict[str, int]:
    """Resident memory (kB) of ``pid`` and every process below it, as ``pyfn bench`` reads it."""
    return tree_rss(pid)


def _wrk(
    wrk: str, script: Path, port: int, clients: int, seconds: int, limit: int, check: Request
) -> dict[str, Any]:
    return base._wrk(wrk, script, port, clients, seconds, limit, extra_env=check.env())


def _measure(
    wrk: str, script: Path, ports: dict[str, int], args: Any, check: Request
) -> dict[str, dict[str, Any]]:
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
    # The same servers measured by pyfn bench's own load (flows/loadgen.py), taking turns:
    # its figures against wrk's say how far pyfn bench's can be trusted.
    expected = loadgen.Answer(200, check.expect_file.read_bytes())
    request = check.bench_request()
    for name, port in ports.items():
        client = loadgen.Client(base.HOST, port)
        try:
            one = loadgen.sequential(client, request, expected, duration=args.seconds / 2)
        finally:
            client.close()
        many = loadgen.concurrent(
            base.HOST, port, request, expected, clients=args.clients, duration=args.seconds / 2
        )
        figures[name]["pyfn_bench"] = {
            "p50_ms": one.p50_ms,
            "p95_ms": one.p95_ms,
            "rps": many.rps,
            "wrong": one.wrong + many.wrong,
        }
    return figures


def _build(args: Any, tmp: Path) -> tuple[Path, Path]:
    """The bundle of MAIN_PY, unpacked; and the source directory the native side serves."""
    archive, sha = base.runtime_archive(args, tmp)
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text(MAIN_PY)
    (app / "mandelbrot_example.py").write_bytes(MANDELBROT_SOURCE.read_bytes())
    flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist"),
             "entry_point": "trivial"}  # fmt: skip
    config = resolve(app, env=dict(os.environ), flags=flags)
    result = build(config, cache_dir=tmp / "cache", env=dict(os.environ))
    assert result.bundle is not None  # not a dry run
    root = tmp / "ours"
    served.unpack_bundle(result.bundle, root)
    return root, app


def _copy(root: Path, dest: Path) -> Path:
    """A bundle of its own per side: each manifest names one entry point."""
    subprocess.run(["cp", "-a", str(root), str(dest)], check=True)
    return dest


def _checks(
    tmp: Path, sides: list[Side], framework: nodeframework.Framework, venv: native.NativeEnv
) -> dict[str, Request]:
    """Each workload's request and its one right answer, which every side must give."""
    body = tmp / "orders.json"
    body.write_bytes(orders_body())
    checks: dict[str, Request] = {}
    for workload in WORKLOADS:
        expect = tmp / f"expect-{workload}.txt"
        expect.write_bytes(b"Hello, World!\n")
        checks[workload] = Request(
            body if workload == "json" else None, expect, PATHS.get(workload, "/")
        )
    # The JSON and PNG answers: the native runtime's, which pyfn's must equal byte for byte.
    for workload in PROBED:
        answers = {}
        for side in sides[:2]:
            port = base._free_port()
            with (tmp / f"probe-{side.name}-{workload}.log").open("wb") as out:
                target = TARGETS[workload]
                process = (
                    _start_native(venv, side.root, target, port, out)
                    if side.native
                    else _start_ours(framework, side.root, target, port, out, side.env)
                )
                try:
                    deadline = time.perf_counter() + base.COLD_START_LIMIT
                    while True:
                        with contextlib.suppress(OSError, http.client.HTTPException):
                            status, answer = checks[workload].fetch(port)
                            if status == 200:
                                answers[side.name] = answer
                                break
                        if time.perf_counter() > deadline or process.poll() is not None:
                            raise RuntimeError(f"{side.name} never answered {workload}")
                        time.sleep(0.05)
                finally:
                    serve.stop(process)
        if len(set(answers.values())) != 1:
            raise RuntimeError(f"the sides answer {workload} differently")
        checks[workload].expect_file.write_bytes(answers[sides[0].name])
    return checks


def _cold_and_idle(
    framework: nodeframework.Framework,
    venv: native.NativeEnv,
    sides: list[Side],
    args: Any,
    tmp: Path,
    check: Request,
) -> dict[str, dict[str, Any]]:
    """Cold starts in turns; then every side idle for --settle seconds, its memory read."""
    out: dict[str, dict[str, Any]] = {s.name: {"cold": [], "rss_kb": []} for s in sides}
    for n in range(args.cold_starts):
        for side in sides:
            log = tmp / f"cold-{side.name}-{n}.log"
            with side.up(framework, venv, "trivial", log, check) as (_, process, cold):
                out[side.name]["cold"].append(cold)
                if n == args.cold_starts - 1:
                    time.sleep(args.settle)
                    out[side.name]["rss_by_process_kb"] = _tree_rss(process.pid)
    figures: dict[str, dict[str, Any]] = {}
    for side in sides:
        colds = out[side.name]["cold"]
        rss = out[side.name]["rss_by_process_kb"]
        firsts = [c["next_requests_ms"] for c in colds]
        figures[side.name] = {
            "cold_start_ms": round(statistics.median(c["cold_start_ms"] for c in colds), 1),
            "cold_start_samples_ms": [c["cold_start_ms"] for c in colds],
            "next_requests_max_ms": round(max(max(f) for f in firsts), 2),
            "next_requests_median_ms": round(statistics.median(v for f in firsts for v in f), 2),
            "idle_rss_mb": round(sum(rss.values()) / 1024, 1),
            "idle_rss_by_process_mb": {k: round(v / 1024, 1) for k, v in rss.items()},
        }
    return figures


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
    framework: nodeframework.Framework,
    root: Path,
    args: Any,
    wrk: str,
    script: Path,
    check: Request,
    tmp: Path,
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
            process = _start_ours(framework, root, TARGETS["json"], port, out, env)
        finally:
            _leave_cgroup(home, kind)
        try:
            _first_answer(process, port, time.perf_counter(), check)
            run = _wrk(wrk, script, port, args.clients, args.memory_seconds, base.MAX_RESPONSES,
                       check)  # fmt: skip
            peak = _cgroup_peak(group, kind)
            rss = _tree_rss(process.pid)
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
    cpus = len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    test_cache = base.REPO / "tests" / ".cache"
    cache = (
        test_cache if (nodeframework.framework_home(test_cache) / ".complete").is_file() else None
    )
    framework = nodeframework.ensure_framework(cache or default_cache_dir(None), env)
    results: dict[str, Any] = {"cpus": cpus, "clients": args.clients, "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-vs-native-") as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "check.lua"
        script.write_text(WRK_LUA)
        root, app = _build(args, tmp)
        venv = _native_venv(tmp)
        sides = [Side("native", True, app, {}), Side("pyfn", False, _copy(root, tmp / "pyfn"), {})]
        if args.one_thread:
            sides.append(
                Side("pyfn_1_thread", False, _copy(root, tmp / "one"), {"PYFN_THREADS": "1"})
            )
        checks = _checks(tmp, sides, framework, venv)
        for workload in workloads:
            with contextlib.ExitStack() as stack:
                ports = {}
                for side in sides:
                    log = tmp / f"{side.name}-{workload}.log"
                    port, _, _ = stack.enter_context(
                        side.up(framework, venv, workload, log, checks[workload])
                    )
                    ports[side.name] = port
                # Every side idle alike first, as an instance between its cold start and
                # its traffic: pyfn's workers warm PyPy's JIT while idle.
                time.sleep(args.settle)
                figures = _measure(wrk, script, ports, args, checks[workload])
            native = figures["native"]
            names = [s.name for s in sides[1:]]
            figures["ratios"] = (
                {
                    f"{name}_p50_speedup": base._ratio(native["p50_ms"], figures[name]["p50_ms"])
                    for name in names
                }
                | {
                    f"{name}_p50_minus_native_ms": round(
                        figures[name]["p50_ms"] - native["p50_ms"], 3
                    )
                    for name in names
                }
                | {
                    f"{name}_rps_ratio": base._ratio(figures[name]["rps"], native["rps"])
                    for name in names
                }
                | {
                    f"{name}_pyfn_bench_p50_speedup": base._ratio(
                        native["pyfn_bench"]["p50_ms"], figures[name]["pyfn_bench"]["p50_ms"]
                    )
                    for name in names
                }
                | {
                    f"{name}_pyfn_bench_rps_ratio": base._ratio(
                        figures[name]["pyfn_bench"]["rps"], native["pyfn_bench"]["rps"]
                    )
                    for name in names
                }
            )
            results["workloads"][workload] = figures
        one_worker = Side("pyfn_1_worker", False, _copy(root, tmp / "one-worker"),
                          {"PYFN_WORKERS": "1"})  # fmt: skip
        start_sides = [sides[0], sides[1], one_worker]
        start = _cold_and_idle(framework, venv, start_sides, args, tmp, checks["trivial"])
        native = start["native"]
        start["ratios"] = {
            f"{name}_cold_start_minus_native_ms": round(
                start[name]["cold_start_ms"] - native["cold_start_ms"], 1
            )
            for name in ("pyfn", "pyfn_1_worker")
        } | {
            f"{name}_idle_rss_ratio": base._ratio(start[name]["idle_rss_mb"], native["idle_rss_mb"])
            for name in ("pyfn", "pyfn_1_worker")
        }
        results["start_and_idle"] = start
        if args.memory_limit:
            results["under_memory_limit"] = _under_memory_limit(
                framework, sides[1].root, args, wrk, script, checks["json"], tmp
            )
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
