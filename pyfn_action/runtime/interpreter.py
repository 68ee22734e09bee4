"""An installed PyPy, asked to describe itself: its versions, its real executable,
where its standard library and headers are, and which extension suffixes it loads.

It is run with ``-S`` (no site packages), a timeout and what a build may see of the
environment (:mod:`pyfn_action.buildenv`); an answer that is not a PyPy 3 is refused
with what it is instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.buildenv import build_environment
from pyfn_action.errors import PackError

QUERY_TIMEOUT_SECONDS = 60
FIX_INTERPRETER = "Pass the path of an installed PyPy 3, e.g. /usr/bin/pypy3"
_QUERY = """\
import importlib.machinery, json, os, sys, sysconfig
v = getattr(sys, "pypy_version_info", None)
p = sysconfig.get_paths()
print(json.dumps({
    "implementation": sys.implementation.name,
    "python": "%d.%d" % sys.version_info[:2],
    "pypy": None if v is None else "%d.%d.%d" % tuple(v[:3]),
    "executable": os.path.realpath(sys.executable),
    "stdlib": p["stdlib"],
    "include": p.get("include"),
    "ext_suffixes": importlib.machinery.EXTENSION_SUFFIXES,
}))
"""


@dataclass(frozen=True)
class Interpreter:
    python: str
    pypy: str
    executable: Path
    stdlib: Path
    include: Path | None
    ext_suffixes: tuple[str, ...]


def describe(interpreter: Path, env: Mapping[str, str]) -> Interpreter:
    """What ``interpreter``, run in what a build may see of ``env``, says of itself,
    checked to be a PyPy 3."""
    if not interpreter.exists():
        raise PackError(f"PyPy interpreter {interpreter} does not exist", fix=FIX_INTERPRETER)
    try:
        proc = subprocess.run(
            [str(interpreter), "-S", "-c", _QUERY],
            env=build_environment(env),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=QUERY_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PackError(
            f"{interpreter} did not answer within {QUERY_TIMEOUT_SECONDS} s",
            fix=FIX_INTERPRETER,
        ) from exc
    except OSError as exc:
        raise PackError(
            f"Cannot run {interpreter}", why=exc.strerror or str(exc), fix=FIX_INTERPRETER
        ) from exc
    lines = proc.stdout.strip().splitlines()
    try:
        if proc.returncode != 0 or not lines:
            raise ValueError(proc.stderr.strip()[-500:] or f"exit status {proc.returncode}")
        data = json.loads(lines[-1])
        implementation, pypy = str(data["implementation"]), str(data["pypy"] or "")
        include = data.get("include")
        found = Interpreter(
            python=str(data["python"]),
            pypy=pypy,
            executable=Path(data["executable"]),
            stdlib=Path(data["stdlib"]),
            include=Path(include) if include else None,
            ext_suffixes=tuple(str(s) for s in data["ext_suffixes"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PackError(
            f"{interpreter} could not describe itself",
            why=str(exc),
            fix=FIX_INTERPRETER,
        ) from exc
    if implementation != "pypy" or not re.fullmatch(r"\d+\.\d+\.\d+", pypy):
        raise PackError(
            f"{interpreter} is not PyPy",
            why=f"it is {implementation} {found.python}",
            fix=FIX_INTERPRETER,
        )
    if not re.fullmatch(r"3\.\d+", found.python):
        raise PackError(
            f"{interpreter} is PyPy for Python {found.python}",
            why="pyfn runs PyPy 3 only",
            fix=FIX_INTERPRETER,
        )
    return found
