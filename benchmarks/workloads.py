"""pyfn against Cloud Functions' native Python runtime, handler by handler.

Run by hand, not by CI:

    .venv/bin/python benchmarks/workloads.py [--pypy-archive PATH --pypy-sha256 HEX]
        [--workloads cpu,wait] [--requests 200] [--seconds 10] [--rounds 5]
        [--clients 8] [--warmup 300]

Needs ``wrk`` (as benchmarks/shim.py does) and a package index for the native side.
One ``main.py``, served side by side in this one run:

* native: the yardstick, Cloud Functions' own Python runtime as it runs a function:
  CPython with ``functions-framework`` under gunicorn (1 worker, threads = 4 × CPUs),
  installed into a venv of its own;
* pyfn: a ``pyfn build`` bundle under the pinned Node.js Functions Framework, with
  the shim's defaults (one worker per CPU, ``PYFN_THREADS`` threads each);
* pyfn_1_thread: the same bundle with ``PYFN_THREADS=1`` (one request at a time per
  worker, as before threads): what the threads change.

Workloads (each answers ``Hello, World!``, so every response is checked):

* ``cpu``: a pure-Python loop (about 37 ms on CPython), where PyPy's JIT shines and
  threads cannot help: the threads must not slow it down;
* ``wait``: waits 100 ms (``time.sleep``, as a handler waits on an API): only
  concurrency helps, and the native runtime has threads.

For each: p50/p95 of --requests sequential requests after --warmup ones, and
requests per second with --clients concurrent clients in --rounds rounds that take
turns over the servers. Prints one JSON object, with pyfn ÷ native ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shim as base

from pyfn_action.flows import serve
from pyfn_action.flows.jobs import cache_dir as default_cache_dir

MAIN_PY = """import time

import functions_framework


def _spin(n):
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total


@functions_framework.http
def cpu(request):
    _spin(1_500_000)
    return "Hello, World!\\n"


@functions_framework.http
def wait(request):
    time.sleep(0.1)
    return "Hello, World!\\n"
"""
NATIVE_REQUIREMENTS = ["functions-framework==3.10.2"]  # the version bundles get too
START_LIMIT = 120.0


def _native_venv(tmp: Path) -> Path:
    venv = tmp / "native-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    *NATIVE_REQUIREMENTS], check=True)  # fmt: skip
    return venv


@contextlib.contextmanager
def _native(venv: Path, app: Path, target: str, log: Path) -> Iterator[int]:
    """The native runtime: functions-framework's own server (gunicorn, gthread)."""
    port = base._free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    argv = [str(venv / "bin" / "functions-framework"), "--target", target,
            "--source", str(app / "main.py"), "--host", base.HOST, "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            base._cold_start(process, port, time.perf_counter())
            yield port
        finally:
            serve.stop(process)


@contextlib.contextmanager
def _ours(
    framework: serve.Framework, root: Path, target: str, log: Path, **env: str
) -> Iterator[int]:
    manifest = root / "pyfn" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["function"]["entry_point"] = target
    manifest.write_text(json.dumps(data))
    child = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child.update(env)
    port = base._free_port()
    with log.open("wb") as out:
        process = serve.start(framework, root, entry_point=target, host=base.HOST, port=port,
                              env=child, output=out)  # fmt: skip
        try:
            base._cold_start(process, port, time.perf_counter())
            yield port
        finally:
            serve.stop(process)


def _build(args: Any, tmp: Path) -> tuple[Path, Path]:
    """The bundle of MAIN_PY, unpacked; and the source directory the native side serves."""
    archive, sha = args.pypy_archive, args.pypy_sha256
    if not archive:
        pypy = base.shutil.which("pypy3")
        if pypy is None:
            raise SystemExit("no --pypy-archive and no pypy3 on PATH to pack")
        packed = base.pack_runtime(Path(pypy), tmp / "pypy3.9-v7.3.11-linux64.tar.gz")
        archive, sha = str(packed.path), packed.sha256
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text(MAIN_PY)
    flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist"),
             "entry_point": "cpu"}  # fmt: skip
    config = base.resolve(app, env=dict(os.environ), flags=flags)
    result = base.build(config, cache_dir=tmp / "cache", env=dict(os.environ))
    assert result.bundle is not None  # not a dry run
    root = tmp / "ours"
    serve.unpack_bundle(result.bundle, root)
    return root, app


def _measure(wrk: str, script: Path, ports: dict[str, int], args: Any) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for name, port in ports.items():
        if args.warmup:
            base._wrk(wrk, script, port, 1, base.SEQUENTIAL_SECONDS, args.warmup)
        run = base._wrk(wrk, script, port, 1, base.SEQUENTIAL_SECONDS, args.requests)
        figures[name] = {
            "p50_ms": round(run["p50_us"] / 1000, 2),
            "p95_ms": round(run["p95_us"] / 1000, 2),
            "sequential_errors": run["bad"] + run["socket_errors"] + run["timeouts"],
        }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
    per_round = max(1, round(args.seconds / args.rounds))
    for _ in range(args.rounds):
        for name, port in ports.items():
            rounds[name].append(
                base._wrk(wrk, script, port, args.clients, per_round, base.MAX_RESPONSES)
            )
    for name in ports:
        figures[name].update(base._throughput(rounds[name]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--workloads", default="cpu,wait")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    if bool(args.pypy_archive) != bool(args.pypy_sha256):
        parser.error("--pypy-archive and --pypy-sha256 go together")
    if args.requests < 2 or args.rounds < 1 or args.seconds < args.rounds:
        parser.error("need --requests >= 2, --rounds >= 1 and --seconds >= --rounds")
    workloads = [w for w in args.workloads.split(",") if w]
    if not set(workloads) <= {"cpu", "wait"}:
        parser.error("--workloads takes cpu and wait")
    wrk = base._wrk_path()
    cpus = len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    test_cache = base.REPO / "tests" / ".cache"
    cache = test_cache if (serve.framework_home(test_cache) / ".complete").is_file() else None
    framework = serve.ensure_framework(cache or default_cache_dir(None), env)
    results: dict[str, Any] = {"cpus": cpus, "clients": args.clients, "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-workloads-") as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "check.lua"
        script.write_text(base.WRK_LUA)
        root, app = _build(args, tmp)
        venv = _native_venv(tmp)
        for workload in workloads:
            with contextlib.ExitStack() as stack:
                ports = {
                    "native": stack.enter_context(
                        _native(venv, app, workload, tmp / f"native-{workload}.log")
                    ),
                    "pyfn": stack.enter_context(
                        _ours(framework, root, workload, tmp / f"pyfn-{workload}.log")
                    ),
                }
                # A second copy of the bundle: the manifest names one entry point each.
                single = tmp / f"single-{workload}"
                subprocess.run(["cp", "-a", str(root), str(single)], check=True)
                ports["pyfn_1_thread"] = stack.enter_context(
                    _ours(
                        framework, single, workload, tmp / f"one-{workload}.log", PYFN_THREADS="1"
                    )
                )
                figures = _measure(wrk, script, ports, args)
            native = figures["native"]
            figures["ratios"] = {
                f"{name}_p50_speedup": base._ratio(native["p50_ms"], figures[name]["p50_ms"])
                for name in ("pyfn", "pyfn_1_thread")
            } | {
                f"{name}_rps_ratio": base._ratio(figures[name]["rps"], native["rps"])
                for name in ("pyfn", "pyfn_1_thread")
            }
            results["workloads"][workload] = figures
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
