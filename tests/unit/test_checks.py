"""bundle.checks: the trimmed bundle inspected, each problem pointed at the function's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfn_action.bundle.checks import Locator, inspect
from pyfn_action.bundle.entry import Entry
from pyfn_action.deps.reqfile import read_requirements
from pyfn_action.errors import CredentialsFound, Finding
from pyfn_action.runtime.targets import Target

TARGET = Target(python_version="3.9", pp_tag="73", arch="x86_64", glibc=(2, 35))
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"


def _entry(arcname: str, source: Path | None, component: str) -> Entry:
    kind = "app" if component == "app" else "package"
    data = None if source is not None else b""
    return Entry(
        arcname=arcname,
        source=source,
        data=data,
        executable=False,
        component=component,
        kind=kind,
    )


@pytest.fixture
def function(tmp_path: Path) -> Path:
    (tmp_path / "requirements.txt").write_text("flask\nnumpy==2.0\n")
    (tmp_path / "fake.so").write_text("not ELF at all")
    (tmp_path / "id_rsa").write_bytes(KEY)
    return tmp_path


def test_an_entry_is_located_in_the_source_or_on_its_requirements_line(function: Path) -> None:
    requirements = read_requirements(function / "requirements.txt", function)
    entries = [
        _entry("app/main.py", None, "app"),
        _entry("site/numpy/core.so", None, "numpy"),
        _entry("site/werkzeug/x.py", None, "werkzeug"),
    ]
    where = Locator(function, requirements, entries)
    assert where("app/main.py") == (function / "main.py", None)
    assert where("site/numpy/core.so") == (function / "requirements.txt", 2)
    # pulled in by another requirement: the file, without a line
    assert where("site/werkzeug/x.py") == (function / "requirements.txt", None)
    assert where("pypy/bin/pypy3.9") == (None, None)
    assert Locator(function, None, entries)("site/numpy/core.so") == (None, None)


def test_native_problems_are_findings_that_do_not_stop_the_build(
    function: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    entries = [_entry("app/fake.so", function / "fake.so", "app")]
    where = Locator(function, None, entries)
    cache = tmp_path_factory.mktemp("cache")
    checked = inspect(entries, where, TARGET, cache, allow_credentials=False)
    assert checked.native.inspected == 1
    [finding] = checked.findings
    assert finding.kind == "native" and finding.file == function / "fake.so"
    assert finding.message.startswith("app/fake.so named like a shared object but")


def test_a_private_key_stops_the_build_unless_allowed(
    function: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    entries = [_entry("app/id_rsa", function / "id_rsa", "app")]
    where = Locator(function, None, entries)
    cache = tmp_path_factory.mktemp("cache")
    with pytest.raises(CredentialsFound) as caught:
        inspect(entries, where, TARGET, cache, allow_credentials=False)
    assert [f.file for f in caught.value.findings] == [function / "id_rsa"]
    checked = inspect(entries, where, TARGET, cache, allow_credentials=True)
    assert [(f.kind, f.file) for f in checked.findings] == [("credentials", function / "id_rsa")]
    assert all(isinstance(f, Finding) for f in checked.findings)
