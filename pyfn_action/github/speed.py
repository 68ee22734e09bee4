"""The Action's ``bench: true``: each function that declares ``[[bench]]`` requests,
measured against the native Python runtime as ``pyfn bench`` measures it, at the pull
request and, where the base is built, at the base; the comment's speed section.

A request the runtimes answer differently fails the job (exit 18), as a request below
``min-speedup`` does (exit 19); a measurement that cannot be made (no CPython, a
requirement that does not install on it) is a warning, and the rest goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pyfn_action.config import Config, resolve_bench
from pyfn_action.config.bench import read_requests
from pyfn_action.errors import AnswersDiffer, PyfnError, SlowerThanNative
from pyfn_action.flows.bench import bench
from pyfn_action.flows.benchsession import BenchOptions
from pyfn_action.flows.jobs import cache_dir
from pyfn_action.github.functions import Function
from pyfn_action.github.inputs import Inputs
from pyfn_action.github.workflow import Runner
from pyfn_action.report.bench import BenchResult, comment_lines, machine_note, markdown
from pyfn_action.report.speed import SpeedLines

log = logging.getLogger(__name__)


def declares(function: Function) -> bool:
    """Whether the function declares requests to measure (a malformed table fails it)."""
    try:
        return bool(read_requests(function.source))
    except PyfnError as exc:
        function.error = function.error or exc
        return False


def measure_all(
    inputs: Inputs, functions: Sequence[Function], env: Mapping[str, str], runner: Runner
) -> None:
    """Measure each built function that declares requests; its verdict fails it."""
    for function in functions:
        if function.bundle is None or function.error is not None or not declares(function):
            continue
        with runner.group(f"pyfn: bench {function.name} against the native Python runtime"):
            settings = resolve_bench(function.source, env=env, flags={})
            floor = inputs.min_speedup or settings.get("min_speedup")
            try:
                function.speed = _bench(
                    function.config, function.bundle, env, floor, inputs.bench_duration
                )
            except (AnswersDiffer, SlowerThanNative) as exc:
                function.speed = exc.result if isinstance(exc.result, BenchResult) else None
                function.error = exc
            except PyfnError as exc:
                runner.warning(
                    f"{function.name}: not measured against the native runtime: {exc.message}",
                    title="pyfn: bench",
                )


def base_hook(
    inputs: Inputs, functions: Sequence[Function], env: Mapping[str, str]
) -> Callable[[str, Config, Path], None] | None:
    """What measures each function as the base builds it (``None``: nothing to measure)."""
    wanted = {f.name: f for f in functions if f.speed is not None}
    if not inputs.bench or not wanted:
        return None

    def measure(name: str, config: Config, bundle: Path) -> None:
        function = wanted.get(name)
        if function is None:
            return
        try:
            if read_requests(config.source):
                function.base_speed = _bench(config, bundle, env, None, inputs.bench_duration)
        except AnswersDiffer as exc:
            function.base_speed = exc.result if isinstance(exc.result, BenchResult) else None
        except PyfnError as exc:
            log.warning("%s: not measured at the base: %s", name, exc.message)

    return measure


def _bench(
    config: Config, bundle: Path, env: Mapping[str, str], floor: float | None, duration: float
) -> BenchResult:
    return bench(
        config,
        env,
        cache_dir=cache_dir(config.cache_dir),
        options=BenchOptions.lasting(duration),
        bundle=bundle,
        min_speedup=floor,
    )


def section(functions: Sequence[Function]) -> tuple[tuple[SpeedLines, ...], str, str]:
    """The comment's speed lines, the machine they were measured on, and the job
    summary's section."""
    measured = [f for f in functions if f.speed is not None]
    if not measured:
        return (), "", ""
    lines = tuple(
        SpeedLines(f.name, comment_lines(f.speed, f.base_speed))
        for f in measured
        if f.speed is not None
    )
    results = [f.speed for f in measured if f.speed is not None]
    bases = {f.name: f.base_speed for f in measured if f.base_speed is not None}
    return lines, machine_note(results[0]), markdown(results, bases)
