"""Exit codes: one per kind of failure, and docs/configuration.md's table says which.

Every class that sets its own ``exit_code`` lives in ``errors.py`` and has a code no
other such class has (a subclass that sets none inherits its parent's, and so its
meaning). The page's table (``| code | error | meaning |``) lists exactly those codes,
each with the class that has it, and 0 for success, as tests/unit/test_docs_config.py
holds the page to the configuration keys.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pyfn_action import errors
from pyfn_action.errors import PyfnError

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "configuration.md"
PACKAGE = REPO / "pyfn_action"
HEADER = "| code | error | meaning |"


def error_classes() -> list[type[PyfnError]]:
    """PyfnError and every subclass of it that ``errors.py`` defines."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, PyfnError)
    ]


def own_codes() -> dict[str, int]:
    """The classes that set their own ``exit_code``, by name, with that code."""
    return {c.__name__: c.__dict__["exit_code"] for c in error_classes() if "exit_code" in vars(c)}


def table_rows() -> list[tuple[int, str, str]]:
    """(code, the class named in backticks or "", meaning) for each row of the table."""
    rows: list[tuple[int, str, str]] = []
    inside = False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.strip() == HEADER:
            inside = True
        elif inside and line.startswith("|"):
            if re.match(r"^\|[-|: ]+\|$", line):
                continue
            code, error, meaning = (cell.strip() for cell in line.strip().strip("|").split("|"))
            named = re.fullmatch(r"`(\w+)`", error)
            assert named or not error, f"an error cell names no class: {line}"
            rows.append((int(code), named.group(1) if named else "", meaning))
        elif inside:
            break
    return rows


def test_the_page_has_the_table() -> None:
    assert len(table_rows()) >= 10


def test_only_errors_py_sets_exit_codes() -> None:
    """A class elsewhere with its own code would be out of sight of the checks below."""
    setting = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    targets = (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                        if isinstance(statement, ast.AnnAssign)
                        else []
                    )
                    if any(isinstance(t, ast.Name) and t.id == "exit_code" for t in targets):
                        setting.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert setting, "the scan found no exit_code at all"
    assert all(s.startswith("errors.py: ") for s in setting), setting


def test_exit_codes_are_unique() -> None:
    codes = list(own_codes().values())
    shared = sorted({code for code in codes if codes.count(code) > 1})
    assert shared == [], f"exit codes set by more than one class: {shared}"


def test_a_subclass_without_a_code_has_its_parents() -> None:
    for cls in error_classes():
        if "exit_code" not in vars(cls):
            assert cls is not PyfnError
            assert cls.exit_code == cls.__mro__[1].exit_code  # type: ignore[attr-defined]


def test_every_code_in_the_table_is_a_classs() -> None:
    codes = own_codes()
    wrong = [
        (code, error)
        for code, error, _ in table_rows()
        if (code, error) != (0, "") and codes.get(error) != code
    ]
    assert wrong == [], f"rows of {PAGE.name}'s table that no class has: {wrong}"


def test_every_classs_code_is_in_the_table() -> None:
    documented = {(code, error) for code, error, _ in table_rows()}
    missing = sorted((code, name) for name, code in own_codes().items())
    missing = [item for item in missing if item not in documented]
    assert missing == [], f"exit codes missing from {PAGE.name}'s table: {missing}"


def test_each_code_is_documented_once_and_success_is_zero() -> None:
    codes = [code for code, _, _ in table_rows()]
    assert sorted(code for code in set(codes) if codes.count(code) > 1) == []
    assert (0, "", "success") in table_rows()
