"""PyPy releases as data: the packaged file, its checks, and what is said of a wheel or
extension module built for a PyPy release pyfn cannot target."""

from __future__ import annotations

from importlib import resources

import pytest

from pyfn_action.config import RUNTIMES
from pyfn_action.runtime.pypy import load_manifest
from pyfn_action.runtime.releases import (
    parse_releases,
    pypy_releases,
    untargeted,
    untargeted_wheel,
)
from pyfn_action.runtime.targets import pypy_lines

TEXT = resources.files("pyfn_action").joinpath("data/pypy-releases.toml").read_text()
PP80 = (
    "PyPy 8.0 (tag pp80), which pyfn cannot target yet: "
    "PyPy 8.0 needs glibc 2.28 and a runtime pyfn does not bundle"
)


def test_pypy_lines_are_read_from_the_data_and_unchanged() -> None:
    assert list(pypy_lines().items()) == [("pypy3.11", "73"), ("pypy3.10", "73"), ("pypy3.9", "73")]


def test_the_packaged_releases() -> None:
    pp80, pp73 = pypy_releases()
    assert (pp80.name, pp80.abi_tag, pp80.pythons, pp80.glibc) == (
        "PyPy 8.0",
        "pp80",
        ("3.11",),
        (2, 28),
    )
    assert (pp80.released, pp80.targeted) == ("2026-09", False)
    assert (pp73.name, pp73.abi_tag, pp73.glibc) == ("PyPy 7.3", "pp73", (2, 17))
    assert pp73.pythons == ("3.11", "3.10", "3.9") and pp73.bundled == ("pypy3.11", "pypy3.10")
    assert "pypy.org" in TEXT and "read 2026-12-07" in TEXT  # where the facts come from, and when


def test_what_is_bundled_is_what_the_configuration_offers_and_has_official_builds() -> None:
    bundled = {line for r in pypy_releases() for line in r.bundled}
    assert bundled == set(RUNTIMES)
    builds = load_manifest()
    for release in pypy_releases():
        own = {(b.python, b.arch) for b in builds if b.pypy.startswith(release.series + ".")}
        expected = {
            (line.removeprefix("pypy"), arch)
            for line in release.bundled
            for arch in ("x86_64", "aarch64")
        }
        assert own == expected, release.name  # a release not targeted has no sums to fetch by


@pytest.mark.parametrize(
    ("abis", "tag", "known"),
    [
        (["pypy311_pp80"], "pp80", True),  # a wheel's ABI tag
        (["pypy311-pp80"], "pp80", True),  # an extension module's
        (["pypy310_pp73", "pypy311_pp80"], "pp80", True),
        (["pypy311_pp81"], "pp81", False),  # a release pyfn does not know
        (["pypy311_pp81", "pypy311_pp80"], "pp80", True),  # the known one is named
        (["pypy311_pp73"], None, None),  # targeted: whatever else is wrong is said elsewhere
        (["pypy38-pp73"], None, None),
        (["cp311"], None, None),
        (["abi3"], None, None),
        (["none"], None, None),
        ([], None, None),
    ],
)
def test_untargeted(abis: list[str], tag: str | None, known: bool | None) -> None:
    found = untargeted(abis)
    if tag is None:
        assert found is None
        return
    assert found is not None and found.abi_tag == tag
    assert (found.release is not None) is known


@pytest.mark.parametrize(
    ("filename", "tag"),
    [
        ("foo-1.0-pp311-pypy311_pp80-manylinux_2_28_x86_64.whl", "pp80"),
        ("foo-1.0-pp310.pp311-pypy310_pp73.pypy311_pp80-manylinux_2_28_x86_64.whl", "pp80"),
        ("foo-1.0-pp311-pypy311_pp73-manylinux_2_17_x86_64.whl", None),
        ("foo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl", None),
        ("foo-1.0-py3-none-any.whl", None),
        ("foo-1.0.tar.gz", None),  # not a wheel's name
    ],
)
def test_untargeted_wheel(filename: str, tag: str | None) -> None:
    found = untargeted_wheel(filename)
    assert (found.abi_tag if found else None) == tag


@pytest.mark.parametrize(
    ("abi", "describe"),
    [
        ("pypy311_pp80", PP80),
        (
            "pypy311_pp81",
            "a PyPy release pyfn does not know (tag pp81): pyfn targets PyPy 7.3 (pp73)",
        ),
    ],
)
def test_what_is_said(abi: str, describe: str) -> None:
    found = untargeted([abi])
    assert found is not None
    assert found.describe() == describe
    assert found.fix() == "use a pp73 wheel (PyPy 7.3) or the sdist"
    assert found.wheels_note() == f"{found.abi_tag} wheels are for {describe}"


FIRST = r" \[\[release\]\] 1"  # where the messages point
SECOND = r" \[\[release\]\] 2"
PY73 = '["3.11", "3.10", "3.9"]'
BUNDLED = 'bundled = ["pypy3.11", "pypy3.10"]'


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('series = "8.0"', 'series = "8.0"\nnote = 1', FIRST + r" is invalid: unknown keys: note$"),
        ('glibc = "2.28"\n', "", FIRST + r" is invalid: missing keys: glibc$"),
        ('abi_tag = "pp80"', 'abi_tag = "pp8"', FIRST + r": PyPy 8.0's ABI tag is not pp8"),
        ('abi_tag = "pp80"', 'abi_tag = "cp80"', FIRST + r" is invalid: abi_tag 'cp80' is not"),
        ('glibc = "2.28"', 'glibc = "2"', FIRST + r" is invalid: glibc '2' is not like '2.17'"),
        ('released = "2026-09"', 'released = "2026-13"', r"released '2026-13' is not like"),
        ('released = "2026-09"', "released = 2026-09-01", r"released datetime.date\(2026, 9, 1\)"),
        (PY73, '["3.9", "3.10", "3.11"]', SECOND + r": pythons must be .* newest first"),
        (PY73, '["3.11", "3.11", "3.9"]', SECOND + r": pythons must be distinct"),
        (PY73, '"3.11"', SECOND + r" is invalid: pythons must be a list"),
        (BUNDLED, 'bundled = ["pypy3.8"]', SECOND + r": bundles pypy3.8, which is not among"),
        (BUNDLED, "bundled = []", r": no release is bundled, so pyfn could target none"),
        ('series = "8.0"', 'series = "7.2"', r"PyPy 7.2's ABI tag is not pp80"),
        ('series = "8.0"\nabi_tag = "pp80"', 'series = "7.2"\nabi_tag = "pp72"', "newest first"),
        ('series = "8.0"\nabi_tag = "pp80"', 'series = "7.3"\nabi_tag = "pp73"', "distinct"),
        ("\n[[release]]\n", "\n[[releases]]\n", r" must hold .* else \(unknown: releases\)"),
        ("\n[[release]]\n", "\nformat = 2\n[[release]]\n", r" must hold .*\(unknown: format\)"),
        ("\n[[release]]\n", "\n[[release]\n", r" is not valid TOML"),
    ],
)
def test_a_broken_copy_is_refused(old: str, new: str, error: str) -> None:
    assert old in TEXT
    with pytest.raises(RuntimeError, match=r"^pypy-releases\.toml.*" + error):
        parse_releases(TEXT.replace(old, new, 1))


def test_an_empty_copy_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"must hold \[\[release\]\] tables"):
        parse_releases("# nothing\n")


def test_the_packaged_copy_parses_as_loaded() -> None:
    assert parse_releases(TEXT) == pypy_releases()
