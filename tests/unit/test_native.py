from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.native import inspect_entries, judge
from pyfn_action.runtime.elf import ElfInfo
from pyfn_action.runtime.targets import Target

TARGET = Target("3.9", "73", "x86_64", (2, 35))
PROVIDED = frozenset({"libc.so.6", "libm.so.6", "libffi.so.8"})


def _info(**changes: object) -> ElfInfo:
    base: dict[str, object] = {
        "path": Path("x.so"),
        "machine": "x86_64",
        "elfclass": 64,
        "soname": None,
        "needed": ("libc.so.6",),
        "runpath": (),
        "glibc_required": (2, 17),
    }
    base.update(changes)
    return ElfInfo(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "changes", "expected"),
    [
        ("_ok.pypy39-pp73-x86_64-linux-gnu.so", {}, []),
        ("libplain.so.1", {}, []),
        (
            "_new.pypy39-pp73-x86_64-linux-gnu.so",
            {"glibc_required": (2, 38)},
            ["needs glibc 2.38, the target image has 2.35"],
        ),
        ("_arm.so", {"machine": "aarch64"}, ["built for aarch64, the target is x86_64"]),
        (
            "_dep.so",
            {"needed": ("libc.so.6", "libweird.so.3")},
            ["needs libweird.so.3, which neither the bundle nor the image provides"],
        ),
        (
            "_speedups.cpython-311-x86_64-linux-gnu.so",
            {},
            ["a CPython extension (cpython-311): PyPy cannot load it"],
        ),
        ("_rust.abi3.so", {}, ["a CPython extension (abi3): PyPy cannot load it"]),
        (
            "_old.pypy38-pp73-x86_64-linux-gnu.so",
            {},
            ["built for pypy38-pp73, the runtime is pypy39-pp73"],
        ),
        (
            "_next.pypy311-pp80-x86_64-linux-gnu.so",
            {},
            [
                "built for PyPy 8.0 (tag pp80), which pyfn cannot target yet: PyPy 8.0 needs glibc "
                "2.28 and a runtime pyfn does not bundle; use a pp73 wheel (PyPy 7.3) or the sdist"
            ],
        ),
        (
            "_later.pypy311-pp81-x86_64-linux-gnu.so",
            {},
            [
                "built for a PyPy release pyfn does not know (tag pp81): pyfn targets PyPy 7.3 "
                "(pp73); use a pp73 wheel (PyPy 7.3) or the sdist"
            ],
        ),
    ],
)
def test_judge(name: str, changes: dict[str, object], expected: list[str]) -> None:
    assert judge(name, _info(**changes), TARGET, PROVIDED) == expected


def test_an_extension_of_the_runtimes_own_release_is_judged_by_the_runtime() -> None:
    """A runtime given as an archive may be of a release pyfn does not bundle: its own
    extension modules load, and the others are named against it."""
    pp80 = Target("3.11", "80", "x86_64", (2, 35))
    assert judge("_x.pypy311-pp80-x86_64-linux-gnu.so", _info(), pp80, PROVIDED) == []
    assert judge("_x.pypy311-pp73-x86_64-linux-gnu.so", _info(), pp80, PROVIDED) == [
        "built for pypy311-pp73, the runtime is pypy311-pp80"
    ]


def test_inspect_real_shared_objects(tmp_path: Path) -> None:
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    renamed = tmp_path / "_sqlite3.cpython-39-x86_64-linux-gnu.so"
    shutil.copyfile(source, renamed)
    fake = tmp_path / "fake.so"
    fake.write_text("not ELF at all")
    entries = [
        Entry("pypy/lib/pypy3.9/" + source.name, source, None, True, "stdlib", "stdlib"),
        Entry("site/pkg/" + renamed.name, renamed, None, True, "pkg", "package"),
        Entry("app/fake.so", fake, None, False, "app", "app"),
        Entry("app/main.py", None, b"", False, "app", "app"),
    ]
    report = inspect_entries(entries, TARGET, tmp_path / "cache")
    assert report.inspected == 3
    by_path = {p.path: p.problem for p in report.problems}
    assert set(by_path) == {"site/pkg/" + renamed.name, "app/fake.so"}  # the real one is fine
    assert by_path["site/pkg/" + renamed.name] == (
        "a CPython extension (cpython-39): PyPy cannot load it"
    )
    assert by_path["app/fake.so"].startswith("named like a shared object but")
    again = inspect_entries(entries, TARGET, tmp_path / "cache")  # from the ELF facts cache
    assert again == report
