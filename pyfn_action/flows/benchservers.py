"""The servers ``pyfn bench`` compares: each runtime started on a free loopback port,
timed to its first answer, stopped with its whole process group; and their memory.

The native side is CPython with the Python Functions Framework
(:mod:`pyfn_action.flows.native`), pyfn's the bundle as ``pyfn serve`` serves it
(:mod:`pyfn_action.flows.serve`). Each writes its log beside the bench's cache, and a
server that gives no answer in time is an error that quotes the end of its log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pyfn_action.config.bench import BenchRequest
from pyfn_action.errors import ServeError
from pyfn_action.flows import loadgen

COLD_START_LIMIT = 60.0  # seconds a server has to give its first answer


@dataclass
class Server:
    """A runtime's server, up and answering."""

    name: str  # native | pyfn
    process: Any
    port: int


class Starts:
    """Starting and stopping each runtime's server on a free loopback port."""

    def __init__(
        self,
        *,
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
    def up(self, name: str, request: BenchRequest) -> Iterator[Server]:
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
                yield Server(name=name, process=process, port=port)
            finally:
                serve.stop(process)

    @contextlib.contextmanager
    def timed(
        self, name: str, request: BenchRequest, into: dict[str, list[float]]
    ) -> Iterator[Server]:
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


def tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and every process below it, in all."""
    return sum(tree_rss(pid).values())
