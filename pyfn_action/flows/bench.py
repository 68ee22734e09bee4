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

Every wait is bounded; the servers are stopped however the run ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pyfn_action.config import Config
from pyfn_action.config.bench import BenchRequest, read_requests
from pyfn_action.errors import AnswersDiffer, ConfigError, ServeError, SlowerThanNative
from pyfn_action.flows import loadgen
from pyfn_action.report.bench import BenchResult, Difference, Measured, Side

log = logging.getLogger(__name__)

COLD_START_LIMIT = 60.0  # seconds a server has to give its first answer
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
class _Server:
    name: str  # native | pyfn
    process: Any
    port: int


@dataclass
class Session:
    """Both runtimes up, their answers compared: what a measure starts from."""

    requests: tuple[BenchRequest, ...]
    servers: dict[str, _Server]  # native, pyfn: each the last of its cold starts
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
        starts = _Starts(
            copy.root,
            function.entry_point,
            function.signature,
            framework,
            venv,
            env,
            options.host,
            cache_dir,
            dict(pyfn_env or {}),
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
            rss = {s.name: round(_tree_rss_kb(s.process.pid) / 1024, 1) for s in (theirs, ours)}
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


def _compare_all(
    requests: tuple[BenchRequest, ...],
    theirs: _Server,
    ours: _Server,
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
                    request.name, _excerpt(answers["native"]), _excerpt(answers["pyfn"]), why
                )
            )
            say(f"{request.name}: the runtimes answer differently ({why}): not timed")
        else:
            expected[request.name] = answers["native"]
    return expected, differences


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
                latency.p50_ms,
                latency.p95_ms,
                load.rps,
                latency.count + load.count + load.wrong,
                latency.wrong + load.wrong,
            )
        measured.append(Measured(request.name, request.label, figures["native"], figures["pyfn"]))
    return measured


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


class _Starts:
    """Starting and stopping each runtime's server on a free loopback port."""

    def __init__(
        self,
        root: Path,
        entry_point: str,
        signature: str,
        framework: Any,
        venv: Any,
        env: Mapping[str, str],
        host: str,
        cache_dir: Path,
        pyfn_env: Mapping[str, str],
    ) -> None:
        self.root, self.entry_point, self.signature = root, entry_point, signature
        self.framework, self.venv, self.env, self.host = framework, venv, env, host
        self.pyfn_env = pyfn_env
        self.logs = cache_dir / "bench" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _start(self, name: str, port: int, output: IO[bytes]) -> Any:
        from pyfn_action.buildenv import build_environment
        from pyfn_action.flows import native, serve

        if name == "native":
            return native.start(
                self.venv,
                self.root / "app",
                entry_point=self.entry_point,
                signature=self.signature,
                host=self.host,
                port=port,
                env=self.env,
                output=output,
            )
        return serve.start(
            self.framework,
            self.root,
            entry_point=self.entry_point,
            host=self.host,
            port=port,
            env={**build_environment(self.env), **self.pyfn_env},
            output=output,
        )

    @contextlib.contextmanager
    def up(self, name: str, request: BenchRequest) -> Iterator[_Server]:
        """A server of ``name`` that answered ``request`` (any status) on a free port,
        until the block ends."""
        from pyfn_action.flows import serve

        port = loadgen.free_port(self.host)
        log_path = self.logs / f"{name}.log"
        with log_path.open("wb") as output:
            process = self._start(name, port, output)
            try:
                try:
                    loadgen.first_answer(
                        self.host,
                        port,
                        request,
                        limit=COLD_START_LIMIT,
                        alive=lambda: process.poll() is None,
                    )
                except TimeoutError:
                    raise ServeError(
                        f"The {name} server gave no answer within {COLD_START_LIMIT:g} s"
                        + (
                            f" (it exited with status {process.poll()})"
                            if process.poll() is not None
                            else ""
                        ),
                        why=_tail(log_path),
                        fix="Serve it alone (pyfn serve, or functions-framework) to see why",
                    ) from None
                yield _Server(name, process, port)
            finally:
                serve.stop(process)

    @contextlib.contextmanager
    def timed(
        self, name: str, request: BenchRequest, into: dict[str, list[float]]
    ) -> Iterator[_Server]:
        """A server of ``name`` started afresh, its time to the first answer (ms) added to
        ``into[name]``; up until the block ends."""
        started = time.perf_counter()
        with self.up(name, request) as server:
            into[name].append((time.perf_counter() - started) * 1000)
            yield server


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])


def tree_rss(pid: int) -> dict[str, int]:
    """Resident memory (kB) of ``pid`` and every process below it, by ``name:pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    sizes: dict[str, int] = {}
    todo, seen = [pid], set()
    for _ in range(100_000):
        if not todo:
            break
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(children.get(current, []))
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = dict(
                line.split(":", 1)
                for line in Path(f"/proc/{current}/status").read_text().splitlines()
                if ":" in line
            )
            sizes[f"{fields.get('Name', '?').strip()}:{current}"] = int(
                fields.get("VmRSS", "0 kB").split()[0]
            )
    return sizes


def _tree_rss_kb(pid: int) -> int:
    return sum(tree_rss(pid).values())
