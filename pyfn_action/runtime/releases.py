"""PyPy releases, from packaged data (``data/pypy-releases.toml``): the ones pyfn
targets, and those it knows of but cannot target yet.

A wheel's ABI tag (``pypy311_pp80``) and an extension module's name
(``_x.pypy311-pp80-x86_64-linux-gnu.so``) say which PyPy release they were built
for. :func:`untargeted` turns that into one explanation, the same wherever a
wheel or an extension module is judged: the build, and the wheels hook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from pyfn_action.toml import tomllib

_FILE = "pypy-releases.toml"
_KEYS = frozenset({"series", "abi_tag", "pythons", "glibc", "released", "bundled"})
# A wheel's ABI tag (pypy311_pp80) or an extension module's (pypy311-pp80).
_PYPY_ABI = re.compile(r"^pypy\d+[_-](?P<tag>pp\d+)$")


@dataclass(frozen=True)
class PyPyRelease:
    """One line of PyPy releases (PyPy 7.3.x, PyPy 8.0), as the data describes it."""

    series: str  # "7.3"
    abi_tag: str  # "pp73": in its wheels' ABI tag and its extension modules' names
    pythons: tuple[str, ...]  # "3.11", …: the Python versions pyfn knows it for, newest first
    glibc: tuple[int, int]  # the oldest glibc its official Linux builds run on
    released: str  # "2019-12": when its first release came out
    bundled: tuple[str, ...]  # "pypy3.11", …: the lines pyfn bundles with it

    @property
    def name(self) -> str:
        return f"PyPy {self.series}"

    @property
    def targeted(self) -> bool:
        """Whether pyfn can build bundles for it."""
        return bool(self.bundled)


@dataclass(frozen=True)
class Untargeted:
    """A PyPy ABI tag pyfn cannot target: a known release's, or one pyfn does not know."""

    abi_tag: str  # "pp80"
    release: PyPyRelease | None  # None: a release pyfn does not know

    def describe(self) -> str:
        """What the tag stands for and why pyfn cannot target it (follows "built for")."""
        release = self.release
        if release is None:
            return (
                f"a PyPy release pyfn does not know (tag {self.abi_tag}): "
                f"pyfn targets {_targeted_names()}"
            )
        glibc = "{}.{}".format(*release.glibc)
        return (
            f"{release.name} (tag {self.abi_tag}), which pyfn cannot target yet: "
            f"{release.name} needs glibc {glibc} and a runtime pyfn does not bundle"
        )

    def wheels_note(self) -> str:
        """What a list of the tags found for a project adds: ``pp80 wheels are for …``."""
        return f"{self.abi_tag} wheels are for {self.describe()}"

    @property
    def wanted(self) -> str:
        """The wheel pyfn can use instead: ``a pp73 wheel (PyPy 7.3)``."""
        targeted = [r for r in pypy_releases() if r.targeted]
        tags = " or ".join(r.abi_tag for r in targeted)
        series = " or ".join(r.series for r in targeted)
        return f"a {tags} wheel (PyPy {series})"

    def fix(self) -> str:
        return f"use {self.wanted} or the sdist"


def _targeted_names() -> str:
    return ", ".join(f"{r.name} ({r.abi_tag})" for r in pypy_releases() if r.targeted)


def untargeted(abis: Iterable[str]) -> Untargeted | None:
    """Which PyPy release pyfn cannot target ``abis`` are built for, if any.

    ``abis`` are wheel ABI tags (``pypy311_pp80``; ``Tag.abi`` of each of a wheel's
    tags) or an extension module's ABI (``pypy311-pp80``). A release pyfn knows comes
    before one it does not; tags of releases pyfn targets, CPython's and ``abi3``
    give ``None``, and so leave their own explanations to the caller.
    """
    known = {r.abi_tag: r for r in pypy_releases()}
    tags = sorted({m["tag"] for abi in abis if (m := _PYPY_ABI.match(abi))})
    found = [Untargeted(t, known.get(t)) for t in tags if t not in known or not known[t].targeted]
    found.sort(key=lambda u: u.release is None)
    return found[0] if found else None


def untargeted_wheel(filename: str) -> Untargeted | None:
    """:func:`untargeted` of a wheel's file name; ``None`` too when it is not one."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    return untargeted(tag.abi for tag in tags)


def targeted_lines() -> dict[str, str]:
    """Every PyPy line (``pypy3.11``) of the releases pyfn targets, newest Python first,
    with the ABI tag's number (``73``) of the newest such release that implements it."""
    lines: dict[str, str] = {}
    for release in pypy_releases():  # newest first: the newest release wins a line
        if release.targeted:
            for python in release.pythons:
                lines.setdefault(f"pypy{python}", release.abi_tag.removeprefix("pp"))
    return dict(sorted(lines.items(), key=lambda kv: _version(kv[0]), reverse=True))


@cache
def pypy_releases() -> tuple[PyPyRelease, ...]:
    """The packaged PyPy releases, newest first, validated."""
    return parse_releases(resources.files("pyfn_action").joinpath(f"data/{_FILE}").read_text())


def parse_releases(text: str) -> tuple[PyPyRelease, ...]:
    """``text`` in the form of ``data/pypy-releases.toml``, checked; RuntimeError if not."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuntimeError(f"{_FILE} is not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"release"})
    tables = data.get("release")
    if extra or not isinstance(tables, list) or not tables:
        raise RuntimeError(
            f"{_FILE} must hold [[release]] tables and nothing else"
            + (f" (unknown: {', '.join(extra)})" if extra else "")
        )
    releases = tuple(_release(n, table) for n, table in enumerate(tables, 1))
    _check_together(releases)
    return releases


def _release(number: int, table: Any) -> PyPyRelease:
    where = f"{_FILE} [[release]] {number}"
    try:
        if not isinstance(table, dict):
            raise ValueError("not a table")
        unknown, missing = sorted(set(table) - _KEYS), sorted(_KEYS - set(table))
        if unknown or missing:
            parts = [("unknown keys: ", unknown), ("missing keys: ", missing)]
            raise ValueError("; ".join(what + ", ".join(keys) for what, keys in parts if keys))
        release = PyPyRelease(
            series=_match(table["series"], r"\d+\.\d+", "series", "7.3"),
            abi_tag=_match(table["abi_tag"], r"pp\d+", "abi_tag", "pp73"),
            pythons=tuple(_match(p, r"3\.\d+", "pythons", "3.11") for p in _list(table, "pythons")),
            glibc=_glibc(table["glibc"]),
            released=_match(table["released"], r"\d{4}-(0[1-9]|1[0-2])", "released", "2019-12"),
            bundled=tuple(
                _match(b, r"pypy3\.\d+", "bundled", "pypy3.11") for b in _list(table, "bundled")
            ),
        )
    except ValueError as exc:
        raise RuntimeError(f"{where} is invalid: {exc}") from exc
    if release.abi_tag != "pp" + release.series.replace(".", ""):
        raise RuntimeError(f"{where}: PyPy {release.series}'s ABI tag is not {release.abi_tag}")
    if not release.pythons or list(release.pythons) != sorted(
        set(release.pythons), key=_version, reverse=True
    ):
        raise RuntimeError(f"{where}: pythons must be distinct Python versions, newest first")
    strays = [b for b in release.bundled if b.removeprefix("pypy") not in release.pythons]
    if strays:
        raise RuntimeError(f"{where}: bundles {', '.join(strays)}, which is not among its pythons")
    return release


def _check_together(releases: tuple[PyPyRelease, ...]) -> None:
    series = [_version(r.series) for r in releases]
    if series != sorted(set(series), reverse=True):
        raise RuntimeError(f"{_FILE}: releases must be distinct and listed newest first")
    if not any(r.targeted for r in releases):
        raise RuntimeError(f"{_FILE}: no release is bundled, so pyfn could target none")


def _list(table: dict[str, Any], key: str) -> list[Any]:
    value = table[key]
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value


def _match(value: object, pattern: str, key: str, example: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ValueError(f"{key} {value!r} is not like {example!r}")
    return value


def _glibc(value: object) -> tuple[int, int]:
    major, minor = _match(value, r"\d+\.\d+", "glibc", "2.17").split(".")
    return int(major), int(minor)


def _version(text: str) -> tuple[int, ...]:
    """(3, 11) from ``3.11`` or ``pypy3.11``."""
    return tuple(int(p) for p in text.removeprefix("pypy").split("."))
