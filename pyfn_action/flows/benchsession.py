"""What a ``pyfn bench`` measure starts from: both runtimes up, their answers compared.

:func:`session` takes the function's declared requests (``[[bench]]`` in
``pyfn.toml``), serves the bundle (built, or ``--bundle``) as ``pyfn serve`` serves
it and the same ``app/`` on CPython as Cloud Functions' Python runtime serves it
(:mod:`pyfn_action.flows.native`), takes the cold starts taking turns (the last
start of each kept), reads each server's idle memory, and sends every request to
both: a request answered differently (or not with its declared status) is a
:class:`~pyfn_action.report.bench.Difference`, and is never timed. The servers are
stopped when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.config import Config
from pyfn_action.config.bench import BenchRequest, read_requests
from pyfn_action.errors import ConfigError
from pyfn_action.flows import loadgen
from pyfn_action.flows.benchservers import Server, Starts, tree_rss_kb
from pyfn_action.report.bench import Difference

log = logging.getLogger(__name__)

EXCERPT = 120  # characters of a body shown in a difference


@dataclass(frozen=True)
class BenchOptions:
    """How long and how hard to measure."""

    duration: float = 3.0  # seconds a measure (one client; several clients)
    clients: int = 8
    warmup: float = 2.0  # seconds of requests to each side before it is timed
    cold_starts: int = 3
    settle: float = 3.0  # idle seconds before the memory is read
    cpython: str | None = None
    host: str = "127.0.0.1"

    @classmethod
    def lasting(cls, duration: float) -> BenchOptions:
        """Options scaled to ``duration`` seconds a measure (the Action's bench-duration)."""
        quick = duration < 1  # a quick look: one cold start of each
        return cls(
            duration=duration,
            warmup=duration * 2 / 3,
            settle=duration,
            cold_starts=1 if quick else 3,
        )

    def __post_init__(self) -> None:
        bounds = [
            ("duration", self.duration, 0.1, 600),
            ("clients", self.clients, 1, 256),
            ("warmup", self.warmup, 0, 600),
            ("cold starts", self.cold_starts, 1, 20),
            ("settle", self.settle, 0, 600),
        ]
        for what, value, low, high in bounds:
            if not low <= value <= high:
                raise ConfigError(
                    f"pyfn bench: {what} {value} is out of bounds",
                    fix=f"Give a value from {low} to {high}",
                )


@dataclass
class Session:
    """Both runtimes up, their answers compared: what a measure starts from."""

    requests: tuple[BenchRequest, ...]
    servers: dict[str, Server]  # native, pyfn: each the last of its cold starts
    expected: dict[str, loadgen.Answer]  # by request name: the answer both gave
    differences: list[Difference]
    cold_start_ms: dict[str, float]  # the median, by runtime
    idle_rss_mb: dict[str, float]
    cpython: str
    pypy: str
    root: Path  # the unpacked bundle served


@contextlib.contextmanager
def session(
    config: Config,
    env: Mapping[str, str],
    *,
    cache_dir: Path,
    options: BenchOptions,
    bundle: Path | None = None,
    build: Callable[[Config], Path] | None = None,
    say: Callable[[str], None] = log.info,
    pyfn_env: Mapping[str, str] | None = None,
) -> Iterator[Session]:
    """Both runtimes started (cold starts taken, the last of each kept), idle memory read
    and every declared request answered by both and compared; stopped when the block
    ends. ``pyfn_env`` is more environment for pyfn's side (``PYFN_WORKERS=1``)."""
    from pyfn_action.deps.reqfile import read_requirements
    from pyfn_action.deps.sources import Sources
    from pyfn_action.flows import native, nodeframework, served

    requests = read_requests(config.source)
    if not requests:
        raise ConfigError(
            f"{config.source} declares no requests to measure",
            fix='Add a [[bench]] table to its pyfn.toml: method = "GET", path = "/"',
        )
    if config.signature == "script":
        raise ConfigError(
            "A script-mode function has no native counterpart to measure against",
            fix="Measure a framework-mode function (http or cloudevent)",
        )
    if bundle is None:
        if build is None:
            raise AssertionError("bench needs a bundle or a way to build one")
        say("building the bundle")
        bundle = build(config)
    index_args = Sources(config.index_url, config.extra_index_urls, config.find_links).pip_args()
    requirements = config.source / config.requirements
    if requirements.is_file():
        # Judged as the build judges it (no include, path or editable out of the source
        # tree) before uv reads it for CPython: it may be a pull request's.
        read_requirements(requirements, config.source)
    with served.served_copy(bundle, cache_dir) as copy:
        function = copy.manifest.function
        framework = nodeframework.ensure_framework(
            cache_dir, env, nodeframework.declared_framework(copy.root)
        )
        say(
            "making the native runtime's environment (CPython, the Functions Framework, the "
            "function's requirements)"
        )
        venv = native.ensure_env(
            cache_dir / "bench",
            requirements if requirements.is_file() else None,
            env,
            cpython=options.cpython,
            index_args=index_args,
        )
        starts = Starts(
            root=copy.root,
            entry_point=function.entry_point,
            signature=function.signature,
            framework=framework,
            venv=venv,
            env=env,
            host=options.host,
            cache_dir=cache_dir,
            pyfn_env=dict(pyfn_env or {}),
        )
        first = requests[0]
        say(f"cold starts: {options.cold_starts} of each, taking turns")
        cold: dict[str, list[float]] = {"native": [], "pyfn": []}
        for _ in range(options.cold_starts - 1):
            for name in ("native", "pyfn"):
                with starts.timed(name, first, cold):
                    pass  # started, answered once, stopped: one cold start
        # The last start of each is kept: idle, its memory read, then measured.
        with (
            starts.timed("native", first, cold) as theirs,
            starts.timed("pyfn", first, cold) as ours,
        ):
            say(f"idle memory: each idle for {options.settle:g} s after its first answer")
            time.sleep(options.settle)
            rss = {s.name: round(tree_rss_kb(s.process.pid) / 1024, 1) for s in (theirs, ours)}
            expected, differences = _compare_all(requests, theirs, ours, options.host, say)
            yield Session(
                requests=requests,
                servers={"native": theirs, "pyfn": ours},
                expected=expected,
                differences=differences,
                cold_start_ms={k: round(sorted(v)[len(v) // 2], 1) for k, v in cold.items()},
                idle_rss_mb=rss,
                cpython=venv.python_version,
                pypy=str(copy.manifest.runtime.get("pypy_version") or "?"),
                root=copy.root,
            )


def _compare_all(
    requests: tuple[BenchRequest, ...],
    theirs: Server,
    ours: Server,
    host: str,
    say: Callable[[str], None],
) -> tuple[dict[str, loadgen.Answer], list[Difference]]:
    """Each request sent to both: the answer both gave, by name, or why they differ."""
    expected: dict[str, loadgen.Answer] = {}
    differences = []
    for request in requests:
        answers = {}
        for server in (theirs, ours):
            client = loadgen.Client(host, server.port)
            try:
                answers[server.name] = client.send(request)
            except OSError as exc:
                answers[server.name] = loadgen.Answer(0, f"no answer: {exc}".encode())
            finally:
                client.close()
        why = _compare(request, answers["native"], answers["pyfn"])
        if why:
            differences.append(
                Difference(
                    name=request.name,
                    native=_excerpt(answers["native"]),
                    pyfn=_excerpt(answers["pyfn"]),
                    why=why,
                )
            )
            say(f"{request.name}: the runtimes answer differently ({why}): not timed")
        else:
            expected[request.name] = answers["native"]
    return expected, differences


def _compare(request: BenchRequest, native: loadgen.Answer, ours: loadgen.Answer) -> str:
    """Why the two answers are not one (``""``: they are)."""
    if native.status != ours.status:
        return f"status {native.status} on the native runtime, {ours.status} on pyfn"
    if native.status != request.status:
        return f"both answer {native.status}, not the declared status {request.status}"
    if native.body != ours.body:
        at = next(
            (i for i, (a, b) in enumerate(zip(native.body, ours.body)) if a != b),
            min(len(native.body), len(ours.body)),
        )
        return (
            f"the bodies differ from byte {at} ({len(native.body)} bytes native, "
            f"{len(ours.body)} pyfn)"
        )
    return ""


def _excerpt(answer: loadgen.Answer) -> str:
    text = answer.body[:EXCERPT].decode("utf-8", "replace")
    more = "…" if len(answer.body) > EXCERPT else ""
    return f"{answer.status}: {text!r}{more}"
