"""The environment of every process that may run a function's or its requirements' code.

pip, the build scripts of the sdists and local projects it builds, the bytecode
compiler and a PyPy asked to describe itself run with the variables that the
packaged allow-list ``data/build-env.txt`` names, and nothing else: never the job's
token, the OIDC request variables, Google or other cloud credentials, nor the
Action's inputs. A variable that is not listed is dropped, so a credential under a
name nobody thought of is dropped too. pyfn adds what it sets itself (``PYTHONPATH``
for its copy of pip, and so on) after this filter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:_\*)?")


@dataclass(frozen=True)
class AllowList:
    """The names a build's processes see, and the prefixes (``LC_``) of more."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def keeps(self, name: str) -> bool:
        return name in self.names or name.startswith(self.prefixes)


def parse_allow_list(text: str) -> AllowList:
    """One name (or ``NAME_*``) a line; ``#`` comments and blank lines are skipped."""
    names: set[str] = set()
    prefixes: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _LINE.fullmatch(line):
            raise RuntimeError(f"build-env.txt line {lineno} is not a name or NAME_*: {line!r}")
        if line.endswith("*"):
            prefixes.append(line[:-1])
        else:
            names.add(line)
    if "PATH" not in names:
        raise RuntimeError("build-env.txt does not keep PATH")
    return AllowList(frozenset(names), tuple(prefixes))


@functools.cache
def allow_list() -> AllowList:
    """The packaged allow-list, ``data/build-env.txt``, read and checked once."""
    text = resources.files("pyfn_action").joinpath("data/build-env.txt").read_text()
    return parse_allow_list(text)


def build_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that a build's processes see: the allow-list's, only."""
    kept = allow_list()
    return {name: value for name, value in env.items() if kept.keeps(name)}
