"""``pyfn bench``: the function on PyPy measured against Cloud Functions' native Python."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pyfn_action.cli.settings import (
    add_config_flags,
    add_source,
    built_config,
    flag_values,
    run_build,
)
from pyfn_action.config import BENCH_KEYS, KEYS, Config, resolve_bench
from pyfn_action.flows.jobs import cache_dir


def add_bench(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure the function on PyPy against Cloud Functions' native Python runtime",
        description="Build (or take --bundle) and serve the function as pyfn serve does, "
        "and serve the same source on CPython with the Python Functions Framework under "
        "gunicorn, as the native runtime does; check both answer each [[bench]] request of "
        "pyfn.toml alike, then, taking turns, time one client (p50, p95) and several "
        "(requests a second), the cold start and the idle memory, and print the ratios.",
    )
    add_source(bench, "the function's directory, with its [[bench]] requests (default: .)")
    bench.add_argument("--bundle", metavar="ZIP", help="measure this bundle instead of building")
    bench.add_argument(
        "--duration",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="seconds a measure (default: 3)",
    )
    bench.add_argument(
        "--clients",
        type=int,
        default=8,
        metavar="N",
        help="clients at once for requests a second (default: 8)",
    )
    bench.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds of requests to each side before it is timed (default: 2)",
    )
    bench.add_argument(
        "--cold-starts",
        type=int,
        default=3,
        metavar="N",
        help="fresh starts of each side, timed to the first answer (default: 3)",
    )
    bench.add_argument(
        "--settle",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="idle seconds after a fresh start before the memory is read (default: 3)",
    )
    bench.add_argument(
        "--cpython",
        metavar="VERSION",
        help="the native side's CPython: a version (3.12) or a path (default: "
        "this Python if it is CPython, else python3)",
    )
    add_config_flags(bench, list(BENCH_KEYS), BENCH_KEYS)
    add_config_flags(bench, [k for k in KEYS if k not in ("dry_run",)])
    bench.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.errors import AnswersDiffer, SlowerThanNative
    from pyfn_action.flows.bench import bench
    from pyfn_action.flows.benchsession import BenchOptions
    from pyfn_action.report.bench import render_text

    config = built_config(args, env)
    settings = resolve_bench(Path(args.source), env=env, flags=flag_values(args, BENCH_KEYS))
    options = BenchOptions(
        duration=args.duration,
        clients=args.clients,
        warmup=args.warmup,
        cold_starts=args.cold_starts,
        settle=args.settle,
        cpython=args.cpython,
    )

    def built(config: Config) -> Path:
        result = run_build(config, env)
        assert result.bundle is not None
        return Path(result.bundle)

    def show(result: Any) -> None:
        stdout.write(result.to_json() if config.json else render_text(result))

    try:
        result = bench(
            config,
            env,
            cache_dir=cache_dir(config.cache_dir),
            options=options,
            bundle=Path(args.bundle) if args.bundle else None,
            min_speedup=settings.get("min_speedup"),
            build=built,
        )
    except (AnswersDiffer, SlowerThanNative) as exc:
        show(exc.result)
        raise
    show(result)
    return 0
