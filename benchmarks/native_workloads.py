"""The functions ``vs_native.py`` measures, one a workload, and how wrk checks them.

Each workload is a function of its own: ``MAIN_PY`` with that workload's entry point
and one ``[[bench]]`` request, as ``pyfn bench`` opens it. wrk checks every answer
against the one both runtimes gave (:class:`Check`), with its ``WRK_LUA`` script.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httpbench import REPO, WRK_LUA_CHECK, run_wrk

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
MANDELBROT_SOURCE = REPO / "examples" / "cpu" / "main.py"
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
    + WRK_LUA_CHECK
)


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


def function_source(tmp: Path, workload: str) -> Path:
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


def check_wrk(
    wrk: str, script: Path, port: int, clients: int, seconds: int, limit: int, check: Check
) -> dict[str, Any]:
    """One wrk run (:func:`httpbench.run_wrk`) checking ``check``'s answer."""
    return run_wrk(wrk, script, port, clients, seconds, limit, extra_env=check.env())
