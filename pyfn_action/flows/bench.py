"""``pyfn bench``: the function on PyPy behind the shim, against the native Python runtime.

One run, both runtimes on the same machine, the requests the function declares
(``[[bench]]`` in ``pyfn.toml``):

1. the bundle (built, or ``--bundle``) served as ``pyfn serve`` serves it, and the
   same ``app/`` served by the Python Functions Framework on CPython, as Cloud
   Functions' Python runtime serves it (:mod:`pyfn_action.flows.native`);
2. cold starts, taking turns: process start to the first answer;
3. every request sent to both, its status and body compared before anything is
   timed: a request answered differently (or not with its declared status) is a
   finding, and is never timed;
4. each side warmed up, then, taking turns, one client's p50/p95 and several
   clients' requests a second (:mod:`pyfn_action.flows.loadgen`), every answer
   checked;
5. each server's memory (every process of it) once idle.

Every wait is bounded; the servers are stopped however the run ends. Steps 1 to 3
and 5 are the session (:mod:`pyfn_action.flows.benchsession`, its servers in
:mod:`pyfn_action.flows.benchservers`); step 4 and the verdicts are here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyfn_action.config import Config
from pyfn_action.errors import AnswersDiffer, SlowerThanNative
from pyfn_action.flows import loadgen
from pyfn_action.flows.benchsession import BenchOptions, Session, session
from pyfn_action.report.bench import BenchResult, Measured, Side

log = logging.getLogger(__name__)


def bench(
    config: Config,
    env: Mapping[str, str],
    *,
    cache_dir: Path,
    options: BenchOptions,
    bundle: Path | None = None,
    min_speedup: float | None = None,
    build: Callable[[Config], Path] | None = None,
    say: Callable[[str], None] = log.info,
) -> BenchResult:
    """Measure ``config.source``'s declared requests on both runtimes. Raises
    :class:`AnswersDiffer` after the run if any request was answered differently, and
    :class:`SlowerThanNative` if any is below ``min_speedup`` (either carries the
    result)."""
    with session(
        config, env, cache_dir=cache_dir, options=options, bundle=bundle, build=build, say=say
    ) as run:
        measured = measure(run, options, say)
    result = BenchResult(
        function=config.name,
        cpus=len(os.sched_getaffinity(0)),
        clients=options.clients,
        duration=options.duration,
        cpython=run.cpython,
        pypy=run.pypy,
        measured=tuple(measured),
        differences=tuple(run.differences),
        cold_start_ms=run.cold_start_ms,
        idle_rss_mb=run.idle_rss_mb,
        min_speedup=min_speedup,
    )
    _judge(result)
    return result


def _judge(result: BenchResult) -> None:
    if result.differences:
        first = result.differences[0]
        raise AnswersDiffer(
            f"The runtimes answer {len(result.differences)} request(s) differently: "
            + ", ".join(d.name for d in result.differences),
            why=f"{first.name}: {first.why}",
            fix="Make the function answer alike on both (dict order, float formatting and "
            "C extensions are the usual causes); those requests were not timed",
            result=result,
        )
    slow = result.too_slow()
    if slow:
        worst = min(slow, key=lambda m: m.speedup)
        from pyfn_action.report.bench import times

        raise SlowerThanNative(
            f"{len(slow)} request(s) below min_speedup {result.min_speedup:g}: "
            + ", ".join(f"{m.name} ({times(m.speedup)})" for m in slow),
            why=f"{worst.name} answers in {worst.pyfn.p50_ms:g} ms on PyPy against "
            f"{worst.native.p50_ms:g} ms on the native runtime (p50, one client)",
            fix="This function would be better on Cloud Functions' Python runtime, unless "
            "what it does there changes; or lower min_speedup",
            result=result,
        )


def measure(
    run: Session, options: BenchOptions, say: Callable[[str], None] = log.info
) -> list[Measured]:
    """Each request both answered alike: warmed up, then one client's latency and several
    clients' throughput, taking turns."""
    measured = []
    host = options.host
    theirs, ours = run.servers["native"], run.servers["pyfn"]
    for request in run.requests:
        expected = run.expected.get(request.name)
        if expected is None:
            continue  # answered differently: never timed
        sides: dict[str, dict[str, Any]] = {}
        for server in (theirs, ours):  # warmed alike; PyPy's JIT needs it more
            client = loadgen.Client(host, server.port)
            try:
                loadgen.sequential(client, request, expected, duration=options.warmup)
            finally:
                client.close()
        for server in (theirs, ours):  # taking turns
            say(f"{request.name}: one client on {server.name}, {options.duration:g} s")
            client = loadgen.Client(host, server.port)
            try:
                latency = loadgen.sequential(client, request, expected, duration=options.duration)
            finally:
                client.close()
            sides[server.name] = {"latency": latency}
        for server in (theirs, ours):
            say(
                f"{request.name}: {options.clients} clients on {server.name}, "
                f"{options.duration:g} s"
            )
            sides[server.name]["load"] = loadgen.concurrent(
                host,
                server.port,
                request,
                expected,
                clients=options.clients,
                duration=options.duration,
            )
        figures = {}
        for name, got in sides.items():
            latency, load = got["latency"], got["load"]
            figures[name] = Side(
                p50_ms=latency.p50_ms,
                p95_ms=latency.p95_ms,
                rps=load.rps,
                requests=latency.count + load.count + load.wrong,
                wrong=latency.wrong + load.wrong,
            )
        measured.append(
            Measured(
                name=request.name,
                label=request.label,
                native=figures["native"],
                pyfn=figures["pyfn"],
            )
        )
    return measured
