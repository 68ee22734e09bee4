"""The worker process's footing (the shim's pyfn/pyfn_process.py): its pipes out of the
function's reach, its end with Node's, its out-of-memory score, its JSON log lines.
Each runs in a process of its own, under the test's Python and, when it is installed,
a PyPy 3 (the worker's own kind)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.shimpy import SHIM_PY, shim_module

INTERPRETERS = [sys.executable] + [p for p in [shutil.which("pypy3")] if p]
BY_INTERPRETER = pytest.mark.parametrize("python", INTERPRETERS, ids=lambda p: Path(p).name)

_LOAD = """
import importlib.util, json, os, sys
sys.dont_write_bytecode = True
spec = importlib.util.spec_from_file_location("pyfn_process", sys.argv[1])
process = importlib.util.module_from_spec(spec)
spec.loader.exec_module(process)
"""


def _run(python: str, body: str) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [python, "-s", "-c", _LOAD + body, str(SHIM_PY / "pyfn_process.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return ran


@BY_INTERPRETER
def test_the_pipes_move_from_3_and_4_to_high_close_on_exec_descriptors(python: str) -> None:
    ran = _run(
        python,
        """
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(2)]  # 3 and 4: no pipe of ours there
requests, responses = os.pipe(), os.pipe()
os.dup2(requests[0], 3)
os.dup2(responses[1], 4)
request_fd, response_fd = process.move_protocol_fds()
closed = []
for fd in (3, 4):
    try:
        os.fstat(fd)
    except OSError:
        closed.append(fd)
os.write(requests[1], b"request")
os.write(response_fd, b"response")
pid = os.fork()
if pid == 0:  # a forked child finds them closed
    try:
        os.fstat(request_fd)
        os._exit(1)
    except OSError:
        os._exit(0)
_, status = os.waitpid(pid, 0)
print(json.dumps({
    "closed": closed,
    "fds": [request_fd, response_fd],
    "inheritable": [os.get_inheritable(request_fd), os.get_inheritable(response_fd)],
    "read": os.read(request_fd, 100).decode(),
    "written": os.read(responses[0], 100).decode(),
    "child_saw_them_closed": status == 0,
}))
""",
    )
    seen = json.loads(ran.stdout)
    assert seen["closed"] == [3, 4]
    assert all(10 <= fd < 1024 for fd in seen["fds"]), seen["fds"]
    assert seen["inheritable"] == [False, False]
    assert (seen["read"], seen["written"]) == ("request", "response")
    assert seen["child_saw_them_closed"]


@BY_INTERPRETER
def test_it_asks_to_die_with_its_parent(python: str) -> None:
    """PR_SET_PDEATHSIG set to SIGKILL (the quick way where PyPy's _cffi_backend is
    there, through ctypes otherwise), read back with PR_GET_PDEATHSIG."""
    ran = _run(
        python,
        """
import ctypes
done = process.die_with_parent(os.getppid()) or process.die_with_parent(os.getppid(), quick=False)
signal = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)
print(json.dumps([done, signal.value]))
""",
    )
    assert json.loads(ran.stdout) == [True, 9]


@BY_INTERPRETER
def test_an_orphaned_worker_ends_at_once(python: str) -> None:
    """Node already gone (its pid is not the parent's): the worker exits 0 there."""
    ran = _run(python, "process.die_with_parent(os.getppid() + 1)\nprint('still here')\n")
    assert ran.stdout == ""


@BY_INTERPRETER
def test_the_out_of_memory_killer_takes_it_first(python: str) -> None:
    ran = _run(
        python,
        """
process.yield_to_node_when_out_of_memory()
print(open("/proc/self/oom_score_adj").read().strip())
""",
    )
    assert ran.stdout.strip() == "1000"


def test_log_records_are_json_lines_with_a_severity() -> None:
    formatter = shim_module("pyfn_process").JsonLogFormatter()
    record = logging.LogRecord("pyfn.worker", logging.WARNING, __file__, 1, "%d%%", (5,), None)
    assert json.loads(formatter.format(record)) == {
        "severity": "WARNING",
        "message": "5%",
        "logger": "pyfn.worker",
    }
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(failed)
    assert "\n" not in line  # one entry, traceback included
    message = json.loads(line)["message"]
    assert message.startswith("failed\nTraceback") and "ValueError: boom" in message


@BY_INTERPRETER
def test_logging_goes_to_stderr_as_json_from_info_up(python: str) -> None:
    ran = _run(
        python,
        """
import logging
process.configure_logging()
logging.getLogger("x").debug("hidden")
logging.getLogger("x").info("shown")
""",
    )
    assert [json.loads(line) for line in ran.stderr.splitlines()] == [
        {"severity": "INFO", "message": "shown", "logger": "x"}
    ]
