"""``pyfn serve`` as README and docs/runtime-contract.md describe it: the address it
listens on by default, how Node starts (``NODE_OPTIONS``), and a bundle of an older pyfn.

Each test serves examples/hello's bundle with the real Node.js Functions Framework on
loopback; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from conftest import Built, call
from support.servers import free_port, stop_process, wait_listening

from pyfn_action.bundle.nodepackage import pinned

pytestmark = pytest.mark.e2e

START_SECONDS = 180.0


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The parent is the 2nd field after the command's closing parenthesis.
                stat = (proc / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def _exe(pid: int) -> str:
    return Path(os.readlink(f"/proc/{pid}/exe")).name


def _until(found: Callable[[], list[int]], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.1) + 1):
        pids = found()
        if pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)
    return []


@contextlib.contextmanager
def _pyfn_serve(
    argv: list[str], cache: Path, log: Path, port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``pyfn serve ARGV…`` as a user starts it, until the block ends; waits until it
    answers on the loopback ``port``."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child_env.update(PYFN_CACHE_DIR=str(cache), **(env or {}))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pyfn_action", "serve", *argv],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_listening(port, process, START_SECONDS, lambda: log.read_text(errors="replace"))
            yield process
        finally:
            stop_process(process, grace=30)


def _listening_on(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    if width == 8:
                        found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                    else:
                        found.add(address)
    return found


def test_serve_listens_on_loopback_port_8080_by_default(
    build_example: Callable[[str], Built], serve_cache: Path, tmp_path: Path
) -> None:
    """README: ``--port`` defaults to 8080 and ``--host`` to 127.0.0.1, so a function
    served on a laptop is not reachable from the network."""
    bundle = build_example("hello").bundle
    assert _listening_on(8080) == set(), "something else listens on port 8080 here"
    log = tmp_path / "serve.log"
    with _pyfn_serve(["--bundle", str(bundle)], serve_cache, log, 8080):
        assert "http://127.0.0.1:8080/" in log.read_text()
        assert call("http://127.0.0.1:8080/?name=PyPy").text == "Hello, PyPy!\n"
        assert _listening_on(8080) == {"127.0.0.1"}
    assert _listening_on(8080) == set()


def test_node_preloads_index_js_and_what_it_starts_does_not(
    build_example: Callable[[str], Built], serve_cache: Path, tmp_path: Path
) -> None:
    """Node starts with ``NODE_OPTIONS=--require ./index.js`` before the user's options, as
    deployed; the PyPy workers it starts (and what they run) get the user's options alone."""
    bundle = build_example("hello").bundle
    port = free_port()
    log = tmp_path / "serve.log"
    argv = ["--bundle", str(bundle), "--port", str(port)]
    with _pyfn_serve(argv, serve_cache, log, port, {"NODE_OPTIONS": "--trace-warnings"}) as p:
        assert call(f"http://127.0.0.1:{port}/?name=x").status == 200
        nodes = _until(lambda: [c for c in _children(p.pid) if _exe(c).startswith("node")], 30)
        assert len(nodes) == 1, log.read_text()
        node = nodes[0]
        assert _environ(node)["NODE_OPTIONS"] == "--require ./index.js --trace-warnings"
        workers = _until(lambda: [c for c in _children(node) if "pypy" in _exe(c)], 30)
        assert workers, f"no PyPy worker under Node:\n{log.read_text()}"
        for worker in workers:
            assert _environ(worker)["NODE_OPTIONS"] == "--trace-warnings"


def test_a_bundle_of_an_older_pyfn_is_served_with_the_pinned_framework(
    build_example: Callable[[str], Built], serve_cache: Path, tmp_path: Path
) -> None:
    """A bundle that declares no Node.js Functions Framework (no package.json: an older
    pyfn built it) is served with pyfn's pinned one, and a warning says so."""
    older = tmp_path / "older.zip"
    with zipfile.ZipFile(build_example("hello").bundle) as src, zipfile.ZipFile(older, "w") as dst:
        for info in src.infolist():
            if info.filename not in ("package.json", "package-lock.json"):
                dst.writestr(info, src.read(info), compress_type=info.compress_type)
    port = free_port()
    log = tmp_path / "serve.log"
    with _pyfn_serve(["--bundle", str(older), "--port", str(port)], serve_cache, log, port):
        assert call(f"http://127.0.0.1:{port}/?name=old").text == "Hello, old!\n"
        output = log.read_text()
    assert "the bundle declares no Node.js Functions Framework" in output
    assert f"serving it with {pinned().spec}" in output
