"""The yardstick: a function served as Cloud Functions' own Python runtime serves it.

CPython with the Python Functions Framework, whose server on Linux is gunicorn (one
worker, 4 threads a CPU, as the framework sets it), the function's requirements
installed into a private environment made by uv, with its bytecode compiled as the
runtime's build leaves it. The environment is kept in pyfn's
cache, keyed by the CPython, the requirements file and where packages come from;
it counts only once complete (a marker written last), so an interrupted install is
made again, never used. Its processes see what a build sees of the environment
(``buildenv``): never the job's token or a cloud credential.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pyfn_action.buildenv import build_environment
from pyfn_action.deps.sources import mask_text, url_secrets
from pyfn_action.errors import ConfigError, RequirementsError

log = logging.getLogger(__name__)

FRAMEWORK = "functions-framework"  # the runtime adds it when the requirements do not
LAYOUT = 2  # of the kept environment: 2 holds bytecode, as the runtime's build leaves it
INSTALL_TIMEOUT = 900
SIGNATURE_TYPES = {"http": "http", "cloudevent": "cloudevent", "event": "event"}


@dataclass(frozen=True)
class NativeEnv:
    """A private CPython environment with the framework and the function's requirements."""

    root: Path
    python_version: str

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"


def ensure_env(
    cache_dir: Path,
    requirements: Path | None,
    env: Mapping[str, str],
    *,
    cpython: str | None,
    index_args: list[str],
) -> NativeEnv:
    """The environment for ``requirements`` on ``cpython`` (a version such as ``3.12``
    or a path; default: this Python if it is CPython, else ``python3``)."""
    from pyfn_action.deps.uvlock import uv_binary

    wanted = cpython or (sys.executable if sys.implementation.name == "cpython" else "python3")
    text = requirements.read_bytes() if requirements is not None else b""
    key = hashlib.sha256(
        json.dumps([LAYOUT, wanted, text.decode("utf-8", "replace"), index_args]).encode()
    ).hexdigest()[:20]
    root = cache_dir / "native" / key
    root.parent.mkdir(parents=True, exist_ok=True)
    child = {**build_environment(env), "UV_NO_CONFIG": "1"}
    with open(root.parent / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time; the next one reuses it
        done = root / ".complete"
        if done.is_file():
            return NativeEnv(root, done.read_text().strip())
        shutil.rmtree(root, ignore_errors=True)
        uv = uv_binary()
        _run(
            [
                uv,
                "venv",
                "--quiet",
                "--no-config",
                "--python",
                wanted,
                "--python-preference",
                "only-system",
                str(root),
            ],
            child,
            f"making a CPython {wanted} environment",
            "Install that CPython, or pass --cpython with one that is installed",
        )
        version = _version(root / "bin" / "python")
        install = [
            uv,
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",  # as the runtime's build does: no compiling at each start
            "--no-config",
            "--no-sources",
            "--python",
            str(root / "bin" / "python"),
            *index_args,
            FRAMEWORK,
        ]
        if requirements is not None:
            install += ["-r", str(requirements)]
        _run(
            install,
            child,
            "installing the function's requirements on CPython",
            "Check requirements.txt installs on CPython (the native runtime installs it "
            "the same way)",
        )
        done.write_text(version + "\n")
        return NativeEnv(root, version)


def start(
    native: NativeEnv,
    app: Path,
    *,
    entry_point: str,
    signature: str,
    host: str,
    port: int,
    env: Mapping[str, str],
    output: IO[bytes] | int | None = None,
) -> subprocess.Popen[bytes]:
    """The framework's own server on ``app/main.py``, in a new process group."""
    if signature not in SIGNATURE_TYPES:
        raise ConfigError(
            f"A {signature} function has no native counterpart to measure against",
            why="script mode is pyfn's own: Cloud Functions' Python runtime has none",
            fix="Measure a framework-mode function (http or cloudevent)",
        )
    child = {
        **build_environment(env),
        "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into the app's directory
        "PORT": str(port),
        "FUNCTION_TARGET": entry_point,
        "FUNCTION_SIGNATURE_TYPE": SIGNATURE_TYPES[signature],
    }
    argv = [
        str(native.python),
        "-m",
        "functions_framework",
        "--target",
        entry_point,
        "--source",
        str(app / "main.py"),
        "--signature-type",
        SIGNATURE_TYPES[signature],
        "--host",
        host,
        "--port",
        str(port),
    ]
    return subprocess.Popen(
        argv,
        cwd=app,
        env=child,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _version(python: Path) -> str:
    result = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip() or "?"


def _run(argv: list[str], env: Mapping[str, str], doing: str, fix: str) -> None:
    try:
        result = subprocess.run(
            argv,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RequirementsError(f"Failed {doing}", why=str(exc), fix=fix) from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        why = mask_text("; ".join(lines[-3:]), url_secrets(argv)) or "uv failed"
        raise RequirementsError(f"Failed {doing}", why=why, fix=fix)
    log.debug("%s", mask_text(result.stderr, url_secrets(argv)))
