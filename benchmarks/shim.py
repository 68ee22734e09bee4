"""Measure pyfn's shim against spawn-per-request and a native Node.js function.

Run by hand, not by CI:

    .venv/bin/python benchmarks/shim.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--requests 500] [--seconds 10] [--clients 8] [--warmup 50]

One trivial handler ("Hello, World!\\n"), served three ways under the same pinned
Node.js Functions Framework, on loopback, side by side in this one run:

* spawn_per_request: the design pyfn replaces (the field report): ``index.js``
  runs ``spawnSync`` of the bundle's own PyPy on ``handler.py`` for every request;
* ours: a ``pyfn build`` bundle of a Functions Framework function, persistent
  PyPy workers (PYFN_WORKERS default: one per CPU; also once with 1 worker);
* native_node: ``(req, res) => res.send(...)``.

For each: cold start (serve.start to the first 200), p50/p95/mean latency of
sequential keep-alive requests after a warm-up, and requests per second with C
concurrent keep-alive clients for S seconds. Prints one JSON object with ratios.
PyPy's JIT keeps getting faster for thousands of requests: a larger --warmup
shows the steady state. The load generator shares this machine's CPUs.
Without an archive it packs Debian's pypy3 (``pyfn runtime pack``) first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pyfn_action import serve
from pyfn_action.build import build
from pyfn_action.cli import cache_dir as default_cache_dir
from pyfn_action.config import resolve
from pyfn_action.pack import pack_runtime

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BODY = b"Hello, World!\n"
COLD_START_LIMIT = 120.0  # seconds from serve.start to the first 200
REQUEST_TIMEOUT = 30.0
SPAWN_SEQUENTIAL_CAP = 200  # ~100+ ms each: keeps the whole run near 3 minutes
SPAWN_SEQUENTIAL_SECONDS = 60.0
MAX_PER_CLIENT = 1_000_000  # throughput loops are bounded in count as well as time

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
_READY = re.compile(r"pyfn worker (\d+) ready in (\d+) ms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Client:
    """One keep-alive connection; reconnects after a failure."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self) -> bool:
        """GET / once: True for a 200 with the expected body."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.request("GET", "/")
            response = self.conn.getresponse()
            body = response.read()
            return response.status == 200 and body == BODY
        except (OSError, http.client.HTTPException):
            self.close()
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _cold_start(process: subprocess.Popen[bytes], port: int, started: float) -> dict[str, float]:
    """Poll until the first 200: when the port first accepted, when it first answered 200."""
    listening: float | None = None
    deadline = started + COLD_START_LIMIT
    for _ in range(100_000):
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
        time.sleep(0.01)
    raise RuntimeError(f"no 200 within {COLD_START_LIMIT} s (exit code {process.poll()})")


@contextlib.contextmanager
def served(
    framework: serve.Framework, root: Path, env: Mapping[str, str], log: Path
) -> Iterator[tuple[int, dict[str, float]]]:
    """Start the framework on ``root``; yield its port and cold-start figures."""
    port = _free_port()
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


def _sequential(port: int, count: int, warmup: int, seconds: float) -> dict[str, Any]:
    client = Client(port)
    for _ in range(warmup):
        client.get()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        ok = client.get()
        latencies.append((time.perf_counter() - start) * 1000)
        errors += not ok
    client.close()
    return {
        "sequential_requests": len(latencies),
        "warmup_requests": warmup,
        "p50_ms": round(statistics.median(latencies), 3),
        "p95_ms": round(statistics.quantiles(latencies, n=100)[94], 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "sequential_errors": errors,
    }


def _throughput(port: int, clients: int, seconds: float) -> dict[str, Any]:
    counts = [[0, 0] for _ in range(clients)]  # [ok, errors] per client
    deadline = time.perf_counter() + seconds

    def run(slot: list[int]) -> None:
        client = Client(port)
        for _ in range(MAX_PER_CLIENT):
            if time.perf_counter() >= deadline:
                break
            slot[0 if client.get() else 1] += 1
        client.close()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in counts]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 5)
    elapsed = time.perf_counter() - start  # in-flight requests at the deadline count too
    ok, errors = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return {"rps": round(ok / elapsed, 1), "throughput_ok": ok, "throughput_errors": errors}


def _measure(
    framework: serve.Framework, root: Path, env: Mapping[str, str], log: Path, args: Any,
    sequential: tuple[int, int, float],  # count, warm-up, time bound
) -> dict[str, Any]:  # fmt: skip
    with served(framework, root, env, log) as (port, cold):
        figures: dict[str, Any] = dict(cold)
        if sequential[1]:  # persistent servers sit idle first, as after a real cold start
            time.sleep(args.settle)
            figures["idle_seconds_before_measuring"] = args.settle
        figures.update(_sequential(port, *sequential))
        figures.update(_throughput(port, args.clients, args.seconds))
    loads = [int(m[2]) for m in _READY.finditer(log.read_text(errors="replace"))]
    if loads:  # ours: each worker's own report of loading the function, in ms
        figures["worker_load_ms"] = loads
    return figures


def _bundle(args: Any, tmp: Path) -> tuple[Path, float]:
    """Build and unpack the trivial function; returns the unpacked root and seconds taken."""
    start = time.perf_counter()
    archive, sha = args.pypy_archive, args.pypy_sha256
    if not archive:
        pypy = shutil.which("pypy3")
        if pypy is None:
            raise SystemExit("no --pypy-archive and no pypy3 on PATH to pack")
        packed = pack_runtime(Path(pypy), tmp / "pypy3.9-v7.3.11-linux64.tar.gz")
        archive, sha = str(packed.path), packed.sha256
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text(MAIN_PY)
    env = dict(os.environ)
    flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist")}
    config = resolve(app, env=env, flags={**flags, "entry_point": "hello"})
    result = build(config, cache_dir=tmp / "cache", env=env)
    root = tmp / "ours"
    serve.unpack_bundle(result.bundle, root)
    return root, time.perf_counter() - start


def _ratio(a: float, b: float, digits: int = 2) -> float | None:
    return round(a / b, digits) if b else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50, help="for the persistent servers")
    parser.add_argument(
        "--settle", type=float, default=8.0,
        help="idle seconds after a persistent server's first answer, before measuring "
        "(pyfn's workers warm PyPy's JIT while idle)",
    )  # fmt: skip
    args = parser.parse_args()
    if bool(args.pypy_archive) != bool(args.pypy_sha256):
        parser.error("--pypy-archive and --pypy-sha256 go together")
    if args.requests < 2 or args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("need --requests >= 2, --clients >= 1, --seconds > 0, --warmup >= 0")
    began = time.perf_counter()
    cpus = len(os.sched_getaffinity(0))  # what index.js's os.availableParallelism() sees
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    test_cache = REPO / "tests" / ".cache"
    cache = test_cache if (serve.framework_home(test_cache) / ".complete").is_file() else None
    framework = serve.ensure_framework(cache or default_cache_dir(None), env)
    node = subprocess.run([framework.node, "--version"], capture_output=True, text=True, timeout=30)
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-shim-") as tmp_name:
        tmp = Path(tmp_name)
        ours_root, setup_seconds = _bundle(args, tmp)
        manifest = json.loads((ours_root / "pyfn" / "manifest.json").read_text())
        runtime = manifest["runtime"]
        spawn_root, native_root = tmp / "spawn", tmp / "native"
        spawn_root.mkdir()
        native_root.mkdir()
        (native_root / "index.js").write_text(NATIVE_JS)
        (spawn_root / "handler.py").write_text(HANDLER_PY)
        pypy, lib = ours_root / runtime["executable"], ours_root / "pypy" / "lib"
        js = SPAWN_JS % {"pypy": json.dumps(str(pypy)), "lib": json.dumps(str(lib))}
        (spawn_root / "index.js").write_text(js)

        n = args.requests
        persistent = (n, args.warmup, float("inf"))
        capped = (min(n, SPAWN_SEQUENTIAL_CAP), 0, SPAWN_SEQUENTIAL_SECONDS)
        native = _measure(framework, native_root, env, tmp / "native.log", args, persistent)
        spawn = _measure(framework, spawn_root, env, tmp / "spawn.log", args, capped)
        ours = _measure(framework, ours_root, env, tmp / "ours.log", args, persistent)
        one_env = {**env, "PYFN_WORKERS": "1"}
        ours_one = _measure(framework, ours_root, one_env, tmp / "ours1.log", args, persistent)
    cap = f"min(--requests, {SPAWN_SEQUENTIAL_CAP}) within {SPAWN_SEQUENTIAL_SECONDS:g} s"
    spawn["sequential_cap"] = f"{cap}, no warm-up (every request is a fresh process)"
    ours["workers"] = cpus
    ours_one["workers"] = 1
    report = {
        "python": sys.version.split()[0],
        "node": node.stdout.strip(),
        "pypy": f"{runtime['pypy_version']} (Python {runtime['python_version']})",
        "cpus": cpus,
        "requests": n,
        "clients": args.clients,
        "seconds": args.seconds,
        "setup_seconds": round(setup_seconds, 1),
        "spawn_per_request": spawn,
        "ours": ours,
        "ours_one_worker": ours_one,
        "native_node": native,
        "ratios": {
            "p50_spawn_over_ours": _ratio(spawn["p50_ms"], ours["p50_ms"], 1),
            "rps_ours_over_spawn": _ratio(ours["rps"], spawn["rps"], 1),
            "rps_ours_one_worker_over_spawn": _ratio(ours_one["rps"], spawn["rps"], 1),
            "p50_ours_minus_native_ms": round(ours["p50_ms"] - native["p50_ms"], 3),
            "rps_ours_over_native": _ratio(ours["rps"], native["rps"], 3),
            "cold_start_ours_minus_native_ms": round(
                ours["cold_start_ms"] - native["cold_start_ms"], 1
            ),
        },
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
