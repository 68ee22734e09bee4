"""docs/configuration.md documents exactly the configuration keys the code has.

Every key of ``KEYS`` (the build) and ``DEPLOY_KEYS`` (the deploy) has a row in one
of the page's key tables (``| key | default | meaning |``), and every key in those
tables is one the code reads. A key whose environment variable is not ``PYFN_`` +
its name is documented with that variable, and every ``PYFN_*`` variable the page
names is read somewhere in the package. The defaults it gives ``out``, ``arch`` and
``requirements`` are the ones ``pyfn build`` and the Action build with.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from pyfn_action import cli
from pyfn_action.config import BENCH_KEYS, DEPLOY_KEYS, KEYS, Config
from pyfn_action.errors import PyfnError
from pyfn_action.github import action

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "configuration.md"
PACKAGE = REPO / "pyfn_action"
HEADER = "| key | default | meaning |"


def key_tables(text: str) -> list[list[str]]:
    """The rows of each table whose header is HEADER, separator excluded."""
    tables: list[list[str]] = []
    rows: list[str] | None = None
    for line in text.splitlines():
        if line.strip() == HEADER:
            rows = []
            tables.append(rows)
        elif rows is not None and line.startswith("|"):
            if not re.match(r"^\|[-|: ]+\|$", line):
                rows.append(line)
        else:
            rows = None
    return tables


def documented_keys(text: str) -> list[str]:
    """The keys named in the first cell of every key table's rows, in order."""
    keys = []
    for rows in key_tables(text):
        for row in rows:
            first = row.split("|")[1]
            names = re.findall(r"`([^`]+)`", first)
            assert names, f"a key table row names no key: {row}"
            keys.extend(names)
    return keys


def code_keys() -> dict[str, str]:
    """Every configuration key, with its environment variable."""
    both = {**KEYS, **DEPLOY_KEYS, **BENCH_KEYS}
    assert len(both) == len(KEYS) + len(DEPLOY_KEYS) + len(BENCH_KEYS), "a key is in two sets"
    return {name: key.env for name, key in both.items()}


def test_the_page_has_key_tables() -> None:
    assert len(key_tables(PAGE.read_text())) >= 3  # the build, deploy and bench keys


def test_every_key_in_the_code_is_documented() -> None:
    documented = set(documented_keys(PAGE.read_text()))
    missing = sorted(set(code_keys()) - documented)
    assert missing == [], f"keys missing from {PAGE.name}'s key tables: {missing}"


def test_every_documented_key_exists_in_the_code() -> None:
    unknown = sorted(set(documented_keys(PAGE.read_text())) - set(code_keys()))
    assert unknown == [], f"keys in {PAGE.name} that the code does not have: {unknown}"


def test_no_key_is_documented_twice() -> None:
    keys = documented_keys(PAGE.read_text())
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_environment_variables_that_differ_from_the_key_are_documented() -> None:
    text = PAGE.read_text()
    renamed = {n: e for n, e in code_keys().items() if e != "PYFN_" + n.upper()}
    missing = sorted(f"{n}: {e}" for n, e in renamed.items() if f"`{e}`" not in text)
    assert missing == [], f"keys read from another variable, not named in {PAGE.name}"


def test_every_pyfn_variable_named_on_the_page_is_read_by_the_package() -> None:
    named = set(re.findall(r"\bPYFN_[A-Z0-9_]*[A-Z0-9]\b", PAGE.read_text()))
    keys = set(code_keys().values())
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in {".py", ".js"} and "node_modules" not in path.parts
    )
    unknown = sorted(v for v in named - keys if not re.search(rf"\b{v}\b", source))
    assert unknown == [], f"{PAGE.name} names variables pyfn does not read: {unknown}"


# --- the documented defaults are the ones the commands use ------------------------------


def documented_default(key: str) -> str:
    """The value in backticks that starts the default cell of ``key``'s row."""
    for rows in key_tables(PAGE.read_text()):
        for row in rows:
            cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
            if f"`{key}`" in re.findall(r"`[^`]+`", cells[0]):
                value = re.match(r"`([^`]+)`", cells[1])
                assert value, f"{key}'s documented default is not a value: {cells[1]!r}"
                return value.group(1)
    raise AssertionError(f"{key} is not in {PAGE.name}'s key tables")


@pytest.fixture
def function(tmp_path: Path) -> Path:
    """A function in work/sub/fn whose config file sets none of out, arch, requirements."""
    src = tmp_path / "work" / "sub" / "fn"
    src.mkdir(parents=True)
    (src / "main.py").write_text("def handler(request):\n    return 'ok'\n")
    (src / "requirements.txt").write_text("")
    (src / "pyfn.toml").write_text('name = "fn"\nentry_point = "handler"\n')
    return src


def test_pyfn_build_uses_the_documented_defaults(
    function: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Config] = []

    def build(config: Config, env: object) -> None:
        seen.append(config)
        raise PyfnError("stopped before building")

    monkeypatch.setattr(cli.build, "run_build", build)
    assert cli.run(["build", str(function)], {}, io.StringIO(), io.StringIO()) == 1
    [config] = seen
    assert config.out == Path(documented_default("out"))  # relative: to where pyfn runs
    assert config.arch == documented_default("arch")
    assert config.requirements == documented_default("requirements")


def test_the_action_uses_the_documented_defaults(
    function: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no input 'config' and a config file that sets none of them; ``out`` inside the
    working directory (README: "built into dist/ … in the working directory")."""
    workspace, workdir = function.parents[1], function.parent
    seen: list[list[action.Function]] = []

    def run(inputs: object, event: object, functions: list[action.Function], *rest: object) -> int:
        seen.append(functions)
        return 0

    monkeypatch.setattr(action, "_run", run)
    env = {
        "INPUT_SOURCE": "fn",
        "INPUT_WORKING-DIRECTORY": "sub",
        "GITHUB_WORKSPACE": str(workspace),
    }
    out = io.StringIO()
    assert action.run([], env, out, cwd=workspace) == 0, out.getvalue()
    [[built]] = seen
    assert built.config.out == workdir / documented_default("out")
    assert built.config.arch == documented_default("arch")
    assert built.config.requirements == documented_default("requirements")
