"""The Node shim's own checks, run as scripts/test.sh runs them before pytest: its types
(``tsc`` reads the JSDoc of every module, ``tsconfig.json``), its lint (ESLint,
``eslint.config.js``) and its unit tests (``node --test tests/shim/*.test.js``), so that
a failure shows in the suite too. The tools are tests/node's development dependencies;
a missing one fails the test, it is never a skip."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.linters import node, node_tool

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "pyfn_action" / "shim"
TESTS = sorted((REPO / "tests" / "shim").glob("*.test.js"))


def _run(*command: str) -> None:
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_every_shim_module_is_checked_by_tsc() -> None:
    modules = [SHIM / "index.js", *sorted((SHIM / "shim").glob("*.js"))]
    assert len(modules) > 1
    for module in modules:
        assert module.read_text(encoding="utf-8").startswith("// @ts-check\n"), module
        assert len(module.read_text(encoding="utf-8").splitlines()) <= 300, (
            f"{module}: over 300 lines"
        )


def test_the_shim_type_checks() -> None:
    _run(node(), str(node_tool("typescript/bin/tsc")), "--project", "tsconfig.json")


def test_the_shim_lints_clean() -> None:
    _run(
        node(),
        str(node_tool("eslint/bin/eslint.js")),
        "--max-warnings",
        "0",
        "pyfn_action/shim",
        "tests/shim",
        "eslint.config.js",
    )


def test_the_shim_unit_tests_pass() -> None:
    assert TESTS, "no tests/shim/*.test.js"
    _run(node(), "--test", *(str(path.relative_to(REPO)) for path in TESTS))
