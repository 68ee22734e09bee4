"""`pyfn bench`'s servers without a runtime: one started and timed to its first answer,
stopped with its group; one that ends before answering is an error quoting its log;
the memory of a process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from pyfn_action.config.bench import BenchRequest
from pyfn_action.errors import ServeError
from pyfn_action.flows import benchservers
from pyfn_action.flows.benchservers import Starts, _tail, tree_rss, tree_rss_kb

REQUEST = BenchRequest(name="root", method="GET", path="/")


def _starts(tmp_path: Path, command: list[str]) -> Starts:
    """Starts whose servers are ``command`` (``{port}`` filled in) in a group of their own."""

    class Local(Starts):
        def _start(self, name: str, port: int, output: IO[bytes]) -> Any:
            argv = [part.replace("{port}", str(port)) for part in command]
            return subprocess.Popen(
                argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    return Local(
        root=tmp_path,
        entry_point="f",
        signature="http",
        framework=None,
        venv=None,
        env={},
        host="127.0.0.1",
        cache_dir=tmp_path,
        pyfn_env={},
    )


def test_a_server_is_timed_to_its_first_answer_and_stopped(tmp_path: Path) -> None:
    server = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    starts = _starts(tmp_path, server)
    cold: dict[str, list[float]] = {"pyfn": []}
    with starts.timed("pyfn", REQUEST, cold) as up:
        assert up.name == "pyfn" and up.process.poll() is None
        assert tree_rss_kb(up.process.pid) > 0
    assert up.process.poll() is not None  # stopped as the block ended
    assert len(cold["pyfn"]) == 1 and cold["pyfn"][0] > 0
    assert (tmp_path / "bench" / "logs" / "pyfn.log").is_file()


def test_a_server_that_ends_before_answering_quotes_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(benchservers, "COLD_START_LIMIT", 20.0)
    starts = _starts(tmp_path, [sys.executable, "-c", "print('no module named app'); exit(3)"])
    with pytest.raises(ServeError, match="exited with status 3") as caught:
        with starts.up("native", REQUEST):
            pass
    assert "no module named app" in caught.value.why


def test_the_tail_of_a_log_is_its_last_lines_on_one_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {n}\n" for n in range(8)))
    assert _tail(log, lines=2) == "line 6 / line 7"
    assert _tail(tmp_path / "missing.log") == ""


def test_the_memory_of_a_tree_counts_every_process_below_it() -> None:
    process = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True)
    try:
        for _ in range(100):  # until both children are there
            sizes = tree_rss(process.pid)
            if sum(1 for name in sizes if name.startswith("sleep:")) == 2:
                break
            time.sleep(0.05)
        assert sum(1 for name in sizes if name.startswith("sleep:")) == 2
        assert f"sh:{process.pid}" in sizes
        assert tree_rss_kb(process.pid) >= sizes[f"sh:{process.pid}"] > 0
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the shell's group: its sleeps too
        process.wait()
