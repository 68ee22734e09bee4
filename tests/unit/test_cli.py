from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from pyfn_action.cli import run


def pyfn(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(args, env or {}, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "fn"
    d.mkdir()
    (d / "main.py").write_text("def fn(request):\n    return 'ok'\n")
    return d


def test_missing_source_dir(tmp_path: Path) -> None:
    code, _, err = pyfn(["build", str(tmp_path / "nope")])
    assert code == 3
    assert err.startswith("pyfn: error: Source directory") and "does not exist" in err
    assert "Traceback" not in err


def test_unknown_key_in_file(src: Path) -> None:
    (src / "pyfn.toml").write_text("runtim = 'pypy3.10'\n")
    code, _, err = pyfn(["build", str(src)])
    assert code == 2
    assert "Unknown configuration key 'runtim'" in err and "Did you mean 'runtime'?" in err


def test_unwritable_out(src: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = pyfn(["build", str(src), "--out", str(blocker / "dist")])
    assert code == 6
    assert "Cannot write to the output directory" in err and "--out" in err


def test_env_reaches_every_key(src: Path) -> None:
    code, _, err = pyfn(["build", str(src)], {"PYFN_GEN": "7"})
    assert code == 2 and "'gen'" in err and "PYFN_" in err


def test_pack_without_pypy_on_path(tmp_path: Path) -> None:
    code, _, err = pyfn(
        ["runtime", "pack", "no-such-pypy", "-o", str(tmp_path / "x.tar.gz")],
        {"PATH": str(tmp_path)},
    )
    assert code == 7 and "apt-get install pypy3" in err


def test_bad_source_date_epoch(src: Path, tmp_path: Path) -> None:
    code, _, err = pyfn(
        [
            "build",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--pypy-archive",
            "x.tgz",
            "--pypy-sha256",
            "0" * 64,
        ],
        {"SOURCE_DATE_EPOCH": "yesterday"},
    )
    assert code == 2 and "SOURCE_DATE_EPOCH" in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_bundle_takes_the_cache_dir_from_the_flag_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from pyfn_action.errors import ServeError
    from pyfn_action.flows import nodeframework, served

    seen: list[Path] = []

    def ensure_framework(cache: Path, env: object, package: object) -> None:
        seen.append(cache)
        raise ServeError("stop here")

    unpacked = SimpleNamespace(function=SimpleNamespace(entry_point="main"))

    @contextlib.contextmanager
    def served_copy(bundle: Path, cache: Path) -> Iterator[SimpleNamespace]:
        seen.append(cache)  # the unpacked copy goes into the same cache
        yield SimpleNamespace(root=tmp_path, manifest=unpacked, cleanup=None)

    monkeypatch.setattr(served, "served_copy", served_copy)
    monkeypatch.setattr(nodeframework, "declared_framework", lambda root: None)
    monkeypatch.setattr(nodeframework, "ensure_framework", ensure_framework)
    wanted = tmp_path / "my-cache"
    args = ["serve", "--bundle", str(tmp_path / "b.zip")]
    env = {}
    if how == "flag":
        args += ["--cache-dir", str(wanted)]
    else:
        env["PYFN_CACHE_DIR"] = str(wanted)
    code, _, err = pyfn(args, env)
    assert code == 8 and "stop here" in err
    assert seen == [wanted, wanted]


def test_upload_judges_its_settings_like_every_command(tmp_path: Path) -> None:
    code, _, err = pyfn(
        ["upload", str(tmp_path / "b.zip"), "--bucket", "my-stage"], {"PYFN_JSON": "maybe"}
    )
    assert code == 2
    assert "Invalid value for 'json' in the environment (PYFN_*)" in err
    assert "Traceback" not in err
    code, _, err = pyfn(["upload", str(tmp_path / "b.zip")])
    assert code == 2 and "No staging bucket given" in err


@pytest.mark.parametrize("name", ["../escape", "a/b", "x" * 64, "fn\n::warning::x"])
def test_upload_checks_the_name_before_anything(tmp_path: Path, name: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["upload", str(tmp_path / "missing.zip"), "--bucket", "pyfn-stage", "--name", name],
        {},
        out,
        err,
    )
    assert code == 2, err.getvalue()
    assert "is not a valid Cloud Functions name" in err.getvalue()
