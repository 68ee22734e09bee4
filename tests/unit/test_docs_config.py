"""docs/configuration.md documents exactly the configuration keys the code has.

Every key of ``KEYS`` (the build) and ``DEPLOY_KEYS`` (the deploy) has a row in one
of the page's key tables (``| key | default | meaning |``), and every key in those
tables is one the code reads. A key whose environment variable is not ``PYFN_`` +
its name is documented with that variable, and every ``PYFN_*`` variable the page
names is read somewhere in the package.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyfn_action.config import DEPLOY_KEYS, KEYS

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
    both = {**KEYS, **DEPLOY_KEYS}
    assert len(both) == len(KEYS) + len(DEPLOY_KEYS), "a key is both a build and a deploy key"
    return {name: key.env for name, key in both.items()}


def test_the_page_has_key_tables() -> None:
    assert len(key_tables(PAGE.read_text())) >= 2  # the build keys and the deploy keys


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
