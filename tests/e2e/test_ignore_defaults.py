"""With no .gcloudignore, a build leaves out what `gcloud functions deploy` would."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import pytest
from conftest import Served, build_args, hermetic_env, pyfn


def _function(tmp_path: Path) -> Path:
    src = tmp_path / "fn"
    (src / "secrets").mkdir(parents=True)
    (src / "main.py").write_text("print('hi')\n")
    (src / ".gitignore").write_text(".env\nsecrets/\n")
    (src / ".env").write_text("GREETING=hello\n")
    (src / "secrets" / "motd.txt").write_text("not a credential\n")
    return src


def _args(src: Path, out: Path, served: Served, index_url: str, *more: str) -> list[str]:
    return build_args(
        src, out, served, index_url, "--signature", "script", "--script", "main.py", *more
    )


def _names(bundle: Path) -> set[str]:
    with zipfile.ZipFile(bundle) as zf:
        return {n for n in zf.namelist() if n.startswith("app/") and "__pycache__" not in n}


def test_git_ignored_files_are_not_bundled_without_a_gcloudignore(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = _function(tmp_path)
    env = hermetic_env(session_cache)
    with caplog.at_level(logging.INFO):
        dry = pyfn(_args(src, tmp_path / "dry", served_pypy, index_url, "--dry-run", "--json"), env)
    assert dry.code == 0, dry.stderr
    assert "no .gcloudignore: using gcloud's default for a directory with .gitignore" in (
        caplog.text
    )
    effects = {(r["source"], r["rule"]): r["files"] for r in json.loads(dry.stdout)["rules"]}
    assert effects[("gcloud's default", ".gitignore")] == 1
    assert effects[(".gitignore", ".env")] == effects[(".gitignore", "secrets/")] == 1

    built = pyfn(_args(src, tmp_path / "out", served_pypy, index_url), env)
    assert built.code == 0, built.stderr
    assert _names(tmp_path / "out" / "bundle.zip") == {"app/main.py"}

    # No .git, .gitignore or node_modules: gcloud uploads every file, and so does pyfn.
    (src / ".gitignore").unlink()
    built = pyfn(_args(src, tmp_path / "plain", served_pypy, index_url), env)
    assert built.code == 0, built.stderr
    assert _names(tmp_path / "plain" / "bundle.zip") == {
        "app/main.py",
        "app/.env",
        "app/secrets/motd.txt",
    }
