"""What the HTTP benchmarks share (``shim.py``, ``vs_native.py``): wrk, and the runtime.

wrk is a C HTTP load generator (on Debian: ``apt-get install -y wrk``); a Python
client would cost more CPU than the servers under test and cap everyone's figures.
Each run is bounded in time and in count: :data:`WRK_LUA_CHECK` counts and checks
every response against ``expected``, stops after ``limit`` of them and says so, and
the run is then interrupted (wrk reports at once) or killed after a grace period.
Not a module of the package: run by hand, never by CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyfn_action.runtime.pack import pack_runtime

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BODY = b"Hello, World!\n"
COLD_START_LIMIT = 120.0  # seconds from serve.start to the first 200
REQUEST_TIMEOUT = 30  # seconds, wrk's --timeout
SEQUENTIAL_SECONDS = 60  # time bound of a sequential run (wrk -d); the count ends it sooner
MAX_RESPONSES = 10_000_000  # throughput runs are bounded in count as well as time
WRK_GRACE = 30.0  # seconds wrk may take beyond its -d before it is killed

# Counts and checks every response against ``expected``; stops its thread after
# ``limit`` of them and says so on stdout (the benchmark then interrupts wrk, which
# reports at once); prints one JSON line of figures at the end. Every wrk script of the
# benchmarks ends with it, after setting ``limit`` and ``expected``.
WRK_LUA_CHECK = """local threads = {}
function setup(thread) table.insert(threads, thread) end
count, bad = 0, 0
function response(status, headers, body)
  count = count + 1
  if status ~= 200 or body ~= expected then bad = bad + 1 end
  if count == limit then
    io.write("bench-limit-reached\\n")
    io.flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local n, b = 0, 0
  for _, t in ipairs(threads) do n = n + t:get("count"); b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format('bench-result {"responses": %d, "bad": %d, "duration_us": %d, ' ..
    '"socket_errors": %d, "timeouts": %d, "p50_us": %d, "p95_us": %d, "mean_us": %.1f}\\n',
    n, b, summary.duration, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wrk_path() -> str:
    """wrk on PATH; without it the benchmark stops, saying how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "benchmarks/shim.py and benchmarks/vs_native.py need wrk, a C HTTP load "
            "generator: install it (Debian/Ubuntu: apt-get install -y wrk) and run again"
        )
    return wrk


def run_wrk(
    wrk: str,
    script: Path,
    port: int,
    connections: int,
    seconds: int,
    limit: int,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One wrk run: ``connections`` keep-alive clients for at most ``seconds`` / ``limit``."""
    env = {
        **os.environ,
        "BENCH_LIMIT": str(limit),
        "BENCH_BODY": BODY.decode(),
        **(extra_env or {}),
    }
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT}s",
        "-s",
        str(script),
        f"http://{HOST}:{port}/",
    ]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        timer = threading.Timer(seconds + WRK_GRACE, process.kill)
        timer.start()
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("bench-limit-reached"):
                    process.send_signal(signal.SIGINT)  # wrk stops and reports
            process.wait()
        finally:
            timer.cancel()
    result = [line.split(" ", 1)[1] for line in lines if line.startswith("bench-result ")]
    if process.returncode != 0 or not result:
        raise RuntimeError(f"wrk failed ({process.returncode}): {''.join(lines)[-800:]}")
    figures: dict[str, Any] = json.loads(result[0])
    return figures


def throughput(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests a second answered right over wrk's ``rounds``, and each round's."""
    ok = sum(r["responses"] - r["bad"] for r in rounds)
    errors = sum(r["bad"] + r["socket_errors"] + r["timeouts"] for r in rounds)
    seconds = sum(r["duration_us"] for r in rounds) / 1e6
    return {
        "rps": round(ok / seconds, 1),
        "rps_per_round": [
            round((r["responses"] - r["bad"]) * 1e6 / r["duration_us"]) for r in rounds
        ],
        "throughput_ok": ok,
        "throughput_errors": errors,
        "throughput_seconds": round(seconds, 2),
    }


def runtime_archive(args: Any, tmp: Path) -> tuple[str, str]:
    """--pypy-archive and its SHA-256, or Debian's pypy3 packed with ``pyfn runtime pack``."""
    archive, sha = args.pypy_archive, args.pypy_sha256
    if not archive:
        pypy = shutil.which("pypy3")
        if pypy is None:
            raise SystemExit("no --pypy-archive and no pypy3 on PATH to pack")
        packed = pack_runtime(Path(pypy), tmp / "pypy3.9-v7.3.11-linux64.tar.gz")
        archive, sha = str(packed.path), packed.sha256
    return archive, sha


def ratio(a: float, b: float, digits: int = 2) -> float | None:
    return round(a / b, digits) if b else None
