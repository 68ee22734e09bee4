from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyfn_action.deps.requirements import Distribution, Installed
from pyfn_action.deps.sitecache import cache_key, installed_site
from pyfn_action.deps.sources import Sources
from pyfn_action.runtime.targets import Target

TARGET = Target("3.11", "73", "x86_64", (2, 35))


def _installer(calls: list[Path]):  # type: ignore[no-untyped-def]
    def install(site: Path) -> Installed:
        calls.append(site)
        info = site / "demo-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Name: demo\n")
        files = ("demo-1.0.dist-info/METADATA",)
        return Installed(site, (Distribution("demo", "1.0", "demo-1.0-py3-none-any.whl", files),))

    return install


def test_key_changes_with_every_input(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("demo\n")
    base = cache_key([req], [], TARGET, Sources(), "a" * 64)
    assert base == cache_key([req], [], TARGET, Sources(), "a" * 64)
    variants = [
        cache_key([req], ["functions-framework"], TARGET, Sources(), "a" * 64),
        cache_key([req], [], Target("3.10", "73", "x86_64", (2, 35)), Sources(), "a" * 64),
        cache_key([req], [], TARGET, Sources(index_url="http://127.0.0.1:1/"), "a" * 64),
        cache_key([req], [], TARGET, Sources(), "b" * 64),
    ]
    req.write_text("demo==2\n")
    variants.append(cache_key([req], [], TARGET, Sources(), "a" * 64))
    assert len({base, *variants}) == len(variants) + 1


def test_installs_once_then_reuses(tmp_path: Path) -> None:
    calls: list[Path] = []
    first = installed_site(tmp_path, "k" * 64, _installer(calls))
    second = installed_site(tmp_path, "k" * 64, _installer(calls))
    assert len(calls) == 1
    assert first == second and first.distributions[0].name == "demo"
    assert (first.site / "demo-1.0.dist-info" / "METADATA").is_file()
    installed_site(tmp_path, "k" * 64, _installer(calls), refresh=True)
    assert len(calls) == 2


def test_broken_entries_are_installed_afresh(tmp_path: Path) -> None:
    calls: list[Path] = []
    first = installed_site(tmp_path, "k" * 64, _installer(calls))
    (first.site / "demo-1.0.dist-info" / "METADATA").unlink()
    (first.site / "demo-1.0.dist-info").rmdir()
    installed_site(tmp_path, "k" * 64, _installer(calls))
    record = tmp_path / "site" / ("k" * 64) / "installed.json"
    record.write_text("{not json")
    installed_site(tmp_path, "k" * 64, _installer(calls))
    assert len(calls) == 3
    assert json.loads(record.read_text())["distributions"][0]["name"] == "demo"


def test_a_failed_install_leaves_no_entry(tmp_path: Path) -> None:
    def failing(site: Path) -> Installed:
        site.mkdir(parents=True)
        raise RuntimeError("pip failed")

    with pytest.raises(RuntimeError, match="pip failed"):
        installed_site(tmp_path, "f" * 64, failing)
    assert list((tmp_path / "site").iterdir()) == []


def test_leftovers_of_a_killed_install_are_cleared(tmp_path: Path) -> None:
    half = tmp_path / "site" / f".{'k' * 64}.k1ll3d" / "site"
    half.mkdir(parents=True)
    (half / "half.py").write_text("#")
    installed_site(tmp_path, "k" * 64, _installer([]))
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["k" * 64]


def test_the_key_tells_the_resolvers_apart(tmp_path: Path) -> None:
    """A site installed by pip is never taken for uv's (nor the other way round)."""
    from pyfn_action.deps.sitecache import cache_key
    from pyfn_action.deps.sources import Sources
    from pyfn_action.runtime.targets import Target

    reqs = tmp_path / "requirements.txt"
    reqs.write_text("flask\n")
    target = Target("3.11", "73", "x86_64", (2, 39))
    keys = {
        r: cache_key([reqs], [], target, Sources(), "0" * 64, resolver=r) for r in ("uv", "pip")
    }
    assert keys["uv"] != keys["pip"]
    assert keys["uv"] == cache_key([reqs], [], target, Sources(), "0" * 64)  # uv by default
