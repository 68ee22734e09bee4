"""Promises the README and docs/runtime-contract.md make that no other test checks.

- Every ``.py`` in the bundle ships with an unchecked-hash ``.pyc`` (PEP 552) that
  the bundle's PyPy loads without reading the source.
- Environment markers in requirements.txt are judged by the target PyPy, not by
  the (CPython) build host.
- ``PYFN_JIT`` reaches PyPy's JIT once a worker serves.
- Python ``logging`` records become log lines with the level's own severity.

One bundle is built from tests/e2e/functions/promises; the markers build has an
index of wheels made on the spot. Everything is on loopback; every wait is bounded.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Running, Served, build_args, call, hermetic_env, pyfn, serving
from support.servers import index_routes, serve
from support.shimpy import SHIM_PY
from support.wheels import make_wheel

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "functions" / "promises"
RUN_TIMEOUT = 300  # seconds for one run of the bundle's PyPy over the whole bundle
LOG_WAIT = 30.0  # seconds a log line may take to reach the serve log


@pytest.fixture(scope="module")
def bundle(
    tmp_path_factory: pytest.TempPathFactory,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
) -> Path:
    """tests/e2e/functions/promises built with ``pyfn build``, entry point ``promises``."""
    out = tmp_path_factory.mktemp("promises-dist")
    args = build_args(APP, out, served_pypy, index_url, "--entry-point", "promises")
    result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 0, result.stderr
    return out / "bundle.zip"


def _unzip(bundle: Path, dest: Path) -> Path:
    """Extract as Cloud Functions does: with Info-ZIP's unzip, modes from the zip."""
    subprocess.run(["unzip", "-q", str(bundle), "-d", str(dest)], check=True, timeout=300)
    return dest


def _bundle_pypy(root: Path) -> Path:
    found = [p for p in (root / "pypy" / "bin").glob("pypy3.*") if not p.name.endswith(".so")]
    assert len(found) == 1, found
    return found[0]


def _run_pypy(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The bundle's own PyPy, in the unpacked bundle, with nothing of this machine's Python."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LD_LIBRARY_PATH": str(root / "pypy" / "lib"),
        "PYTHONDONTWRITEBYTECODE": "1",  # as on a read-only bundle: nothing compiled is kept
    }
    return subprocess.run(
        [str(_bundle_pypy(root)), "-s", *args],
        cwd=root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


# --- every .py has an unchecked-hash .pyc that PyPy loads ------------------------------

# Run by the bundle's PyPy over every source in the bundle: its .pyc, named for this
# PyPy's own cache tag, must exist, be of this PyPy's magic number, flagged
# hash-based and unchecked (PEP 552 flags = 0b01), and hash this very source. A
# source without one is allowed only if this PyPy cannot compile it either.
_CHECK_BYTECODE = r"""
import importlib.util, json, sys
out = {"tag": sys.implementation.cache_tag, "checked": [], "missing": [], "bad": [],
       "uncompilable": []}
for source in json.load(sys.stdin):
    with open(source, "rb") as f:
        data = f.read()
    pyc = importlib.util.cache_from_source(source)
    try:
        with open(pyc, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        try:
            compile(data, source, "exec", dont_inherit=True)
        except Exception:
            out["uncompilable"].append(source)
        else:
            out["missing"].append(source)
        continue
    if (head[:4] != importlib.util.MAGIC_NUMBER or head[4:8] != b"\x01\x00\x00\x00"
            or head[8:16] != importlib.util.source_hash(data)):
        out["bad"].append([source, head.hex()])
    else:
        out["checked"].append(source)
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unzip(bundle, tmp_path_factory.mktemp("promises-unzipped") / "bundle")


def test_every_py_in_the_bundle_has_an_unchecked_hash_pyc_of_its_source(
    bundle: Path, unpacked: Path
) -> None:
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
    sources = [n for n in names if n.endswith(".py")]
    ran = _run_pypy(unpacked, "-c", _CHECK_BYTECODE, stdin=json.dumps(sources))
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["missing"] == [], f"compilable sources without {seen['tag']} bytecode"
    assert seen["bad"] == [], "bytecode that is not an unchecked-hash pyc of its source"
    checked = seen["checked"]
    # the function, its requirements, the stdlib and the shim's worker all have it
    assert "app/main.py" in checked
    assert "pyfn/worker.py" in checked
    assert {f"pyfn/{p.name}" for p in SHIM_PY.glob("*.py")} <= set(checked)  # and its modules
    assert any(s.startswith("site/functions_framework/") for s in checked)
    assert any(s.startswith("site/flask/") for s in checked)
    stdlib = [s for s in checked if s.startswith("pypy/lib/")]
    assert any(s.endswith("/json/__init__.py") for s in stdlib)
    assert len(stdlib) > 100
    # what has none is what this PyPy cannot compile at all: a few odd files at most
    assert len(seen["uncompilable"]) < len(checked) // 20, seen["uncompilable"]


def test_pypy_loads_the_bytecode_and_never_reads_the_source(bundle: Path, tmp_path: Path) -> None:
    root = _unzip(bundle, tmp_path / "bundle")
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
    stdlib = [n for n in names if n.startswith("pypy/lib/")]
    stdlib_json = next(n for n in stdlib if n.endswith("/json/__init__.py"))
    # One module of the function, of a requirement and of the stdlib. Their sources now
    # raise: an import that read them (a stale, checked or missing .pyc) would fail.
    replaced = {
        "main": "app/main.py",
        "functions_framework": "site/functions_framework/__init__.py",
        "json": stdlib_json,
    }
    for module, source in replaced.items():
        (root / source).write_text(f"raise RuntimeError('the source of {module} was read')\n")
    probe = (
        "import os, sys; sys.path[:0] = [os.path.abspath('app'), os.path.abspath('site')]\n"
        "import json, functions_framework, main\n"
        "print(json.dumps({'loads': json.loads('[1]'), 'entry': callable(main.promises),"
        " 'http': callable(functions_framework.http), 'tag': sys.implementation.cache_tag}))\n"
    )
    ran = _run_pypy(root, "-v", "-c", probe)
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    tag = seen.pop("tag")
    assert seen == {"loads": [1], "entry": True, "http": True}
    # -v names where each code object came from: the .pyc, never the source
    verbose = [line for line in ran.stderr.splitlines() if line.startswith("# code object from")]
    for source in replaced.values():
        directory, name = source.rsplit("/", 1)
        pyc = f"/{directory}/__pycache__/{name[:-3]}.{tag}.pyc"
        assert any(pyc in line for line in verbose), (source, verbose[-20:])
        assert not any(line.endswith(f"/{source}") for line in verbose), source


# --- environment markers are judged by the target PyPy ---------------------------------


def test_environment_markers_are_judged_by_the_target_pypy(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    # The build host's own Python would judge the other way round.
    assert platform.python_implementation() == "CPython"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("forpypy", "forcpython", "forpypyname", "forcpythonname"):
        make_wheel(wheels, name, "1.0", "py3-none-any")
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    (src / "requirements.txt").write_text(
        'forpypy ; platform_python_implementation == "PyPy"\n'
        'forcpython ; platform_python_implementation == "CPython"\n'
        'forpypyname ; implementation_name == "pypy"\n'
        'forcpythonname ; implementation_name == "cpython"\n'
    )
    out = tmp_path / "out"
    with serve(index_routes(wheels)) as base:
        args = build_args(
            src, out, served_pypy, f"{base}/simple/", "--signature", "script", "--script", "main.py"
        )
        result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 0, result.stderr
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("pyfn/manifest.json"))
    installed = {p["name"] for p in manifest["packages"]}
    assert installed == {"forpypy", "forpypyname"}
    assert "site/forpypy/__init__.py" in names and "site/forpypyname/__init__.py" in names
    assert not any(n.startswith(("site/forcpython/", "site/forcpythonname/")) for n in names)


# --- served: PYFN_JIT and logging severities -------------------------------------------


@contextmanager
def served(bundle: Path, serve_cache: Path, tmp_path: Path, **env: str) -> Iterator[Running]:
    """The bundle under ``pyfn serve --bundle`` with one worker on one thread, no warm-up:
    every request reaches the same worker, one after another, and the JIT comes on
    right after that worker's first answer."""
    settings = {"PYFN_WORKERS": "1", "PYFN_THREADS": "1", "PYFN_WARMUP": "0", **env}
    with serving(
        bundle, serve_cache, tmp_path / f"serve-{uuid.uuid4().hex[:8]}.log", settings
    ) as running:
        first = call(f"{running.base}/")
        assert (first.status, first.body) == (200, b"ok\n"), running.output()[-3000:]
        yield running


def _jit_compiles(running: Running, n: int) -> bool:
    answer = call(f"{running.base}/jit?n={n}")
    assert answer.status == 200, running.output()[-3000:]
    compiled = answer.json()["compiled"]
    assert compiled is not None, "the worker is not PyPy"
    return bool(compiled)


# The JIT parameters given, and for loops of n iterations in fresh code, whether PyPy's
# JIT compiles them. PyPy starts compiling a loop after `threshold` iterations: 1039
# by default, 200 with pyfn's default PYFN_JIT. Each n is at least twice its threshold
# or half of it.
JIT_CASES = {
    "pyfn-default": (None, {400: True, 5000: True}),
    "pypy-defaults": ("default", {400: False, 5000: True}),
    "high-threshold": ("threshold=100000,function_threshold=100000", {5000: False}),
    "off": ("off", {20000: False}),
}


@pytest.mark.parametrize("case", list(JIT_CASES))
def test_pyfn_jit_reaches_pypys_jit(
    case: str, bundle: Path, serve_cache: Path, tmp_path: Path
) -> None:
    value, expected = JIT_CASES[case]
    env = {} if value is None else {"PYFN_JIT": value}
    with served(bundle, serve_cache, tmp_path, **env) as running:
        compiled = {n: _jit_compiles(running, n) for n in expected}
        assert compiled == expected
        warned = [e for e in _entries(running) if "PYFN_JIT" in str(e.get("message"))]
        assert warned == []  # every value here is valid


def _entries(running: Running) -> list[dict[str, Any]]:
    """The JSON log lines of the serve log."""
    entries = []
    for line in running.output().splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def _wait_for_message(running: Running, message: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + LOG_WAIT
    while True:
        entries = _entries(running)
        if any(e.get("message") == message for e in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_logging_levels_become_their_severities(
    bundle: Path, serve_cache: Path, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    with served(bundle, serve_cache, tmp_path) as running:
        answer = call(f"{running.base}/log?token={token}")
        assert (answer.status, answer.body) == (200, b"logged\n")
        entries = _wait_for_message(running, f"{token} done")
    mine = {
        str(e["message"]).split("\n", 1)[0]: e
        for e in entries
        if str(e.get("message", "")).startswith(token)
    }
    severities = {first[len(token) + 1 :]: e.get("severity") for first, e in mine.items()}
    assert severities == {
        "debug": "DEBUG",
        "info": "INFO",
        "warning": "WARNING",
        "error": "ERROR",
        "critical": "CRITICAL",
        "root warning": "WARNING",
        "exception": "ERROR",
        "critical with traceback": "CRITICAL",
        "done": "INFO",
    }, entries[-30:]
    # an exception's traceback stays in its own entry, whole
    for first in (f"{token} exception", f"{token} critical with traceback"):
        message = str(mine[first]["message"])
        assert "Traceback (most recent call last)" in message
        assert message.rstrip().endswith(f"ValueError: {token} boom")
