"""The shim's JavaScript as bundles carry it: index.js and every module it requires,
shipped in a fixed order, counted under "shim", and never trimmed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.gitignore import compile_pattern
from pyfn_action.bundle.nodepackage import pinned
from pyfn_action.bundle.shimfiles import shim_script_names, shim_scripts
from pyfn_action.bundle.stage import shim_entries
from pyfn_action.bundle.trim import Rule, plan_trim, protected_files
from pyfn_action.errors import TrimError

SHIM = Path(__file__).resolve().parents[2] / "pyfn_action" / "shim"


def test_every_module_in_the_package_ships_sorted_with_its_bytes() -> None:
    scripts = shim_scripts()
    names = [name for name, _ in scripts]
    on_disk = ["index.js", *(f"shim/{p.name}" for p in sorted((SHIM / "shim").glob("*.js")))]
    assert names == sorted(on_disk) and len(names) > 1
    for name, data in scripts:
        assert data == (SHIM / name).read_bytes()
    assert shim_script_names() == names


def test_every_module_index_js_requires_is_shipped() -> None:
    shipped = set(shim_script_names())
    for name in shipped:
        text = (SHIM / name).read_text(encoding="utf-8")
        base = Path(name).parent
        for required in re.findall(r"require\('(\./[^']+)'\)", text):
            target = (base / f"{required}.js").as_posix().removeprefix("./")
            assert target in shipped, f"{name} requires {required}, which bundles lack"


def test_the_shim_entries_are_the_shims_in_order() -> None:
    entries = list(shim_entries(b"{}", pinned()))
    scripts = [e for e in entries if e.arcname.endswith(".js")]
    assert [e.arcname for e in scripts] == shim_script_names()
    assert {(e.kind, e.component) for e in entries} == {("shim", "shim")}


@pytest.mark.parametrize("name", shim_script_names())
def test_a_rule_that_would_remove_a_shim_module_is_refused(name: str) -> None:
    assert name in protected_files("3.11", "main.py")
    matcher, why = compile_pattern("*.js", "")
    assert matcher is not None, why
    rule = Rule(origin="test", line=1, text="*.js", matcher=matcher)
    entry = Entry(name, None, b"x", False, "shim", "shim")
    with pytest.raises(TrimError, match=re.escape(name)):
        plan_trim([entry], [rule], protected_files("3.11", "main.py"))
