"""``vs_native.py --memory-limit``: pyfn's defaults in a memory cgroup, under load.

The server is born in a fresh cgroup of the limit (v2, else v1; needs a writable
memory controller, as root), so the shim reads that limit as an instance's, and
serves the JSON workload to --clients clients for --memory-seconds; the run says
whether anything was killed for memory, and the cgroup's peak.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from httpbench import COLD_START_LIMIT, HOST, MAX_RESPONSES, free_port
from native_workloads import TARGETS, Check, check_wrk

from pyfn_action.flows import loadgen, nodeframework, serve
from pyfn_action.flows.benchservers import tree_rss
from pyfn_action.flows.benchsession import Session

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


@contextlib.contextmanager
def memory_cgroup(limit_mib: int) -> Iterator[tuple[Path, str]]:
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


def under_memory_limit(
    run: Session, args: Any, wrk: str, script: Path, check: Check, tmp: Path, cache: Path
) -> dict[str, Any]:
    """pyfn's defaults inside a memory cgroup, serving the JSON workload."""
    with memory_cgroup(args.memory_limit) as (group, kind):
        # Everything the server starts is born in the cgroup: this process joins it
        # for the start (the cgroup's limit is what the shim reads), then leaves.
        home = Path("/proc/self/cgroup").read_text()
        procs = group / "cgroup.procs"
        procs.write_text(str(os.getpid()))
        log = tmp / "memory-limit.log"
        try:
            port = free_port()
            out = log.open("wb")
            env = {"PYFN_CGROUP_ROOT": ""}  # the real cgroup, found from /proc/self/cgroup
            framework = nodeframework.ensure_framework(cache, dict(os.environ))
            child = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
            process = serve.start(
                framework,
                run.root,
                entry_point=TARGETS["json"],
                host=HOST,
                port=port,
                env={**child, **env},
                output=out,
            )
        finally:
            _leave_cgroup(home, kind)
        try:
            loadgen.first_answer(
                HOST,
                port,
                run.requests[0],
                limit=COLD_START_LIMIT,
                alive=lambda: process.poll() is None,
            )
            run = check_wrk(
                wrk, script, port, args.clients, args.memory_seconds, MAX_RESPONSES, check
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
