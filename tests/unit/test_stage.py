"""Staging the user's source: only regular files whose names a zip can hold, nothing from
outside the tree, nothing the default rules exclude, never the credentials file."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from pyfn_action.bundle.stage import (
    APP_DEFAULT_IGNORES,
    app_entries,
    runtime_entries,
    site_entries,
)
from pyfn_action.deps.requirements import Installed
from pyfn_action.errors import BundleError
from pyfn_action.runtime.pypy import Runtime
from pyfn_action.secrets.envfiles import CREDENTIAL_VARIABLES, credential_files

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    return src


def _names(entries: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(e.arcname for e in entries)


# --- files that are not regular -------------------------------------------------------


def test_fifo_is_skipped_with_a_line(tmp_path: Path) -> None:
    src = _src(tmp_path)
    os.mkfifo(src / "events")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/main.py"]
    assert "events is a FIFO (named pipe), not a regular file: not bundled" in warnings


def test_socket_is_skipped_with_a_line(tmp_path: Path) -> None:
    src = _src(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "dev.sock"))
        entries, warnings = app_entries(src)
    finally:
        sock.close()
    assert _names(entries) == ["app/main.py"]
    assert "dev.sock is a socket, not a regular file: not bundled" in warnings


def test_link_to_a_device_or_fifo_is_skipped(tmp_path: Path) -> None:
    src = _src(tmp_path)
    os.mkfifo(src / "pipe")
    os.symlink("pipe", src / "to-pipe")
    os.symlink("/dev/zero", src / "zero")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/main.py"]
    assert any(w.startswith("to-pipe is a symlink to a FIFO") for w in warnings), warnings
    assert any(w.startswith("zero is a symlink to /dev/zero") for w in warnings), warnings


# --- names a zip cannot hold -----------------------------------------------------------


def test_undecodable_name_is_refused_with_the_path(tmp_path: Path) -> None:
    src = _src(tmp_path)
    (Path(os.fsdecode(bytes(src) + b"/data")) / "").mkdir()
    Path(os.fsdecode(bytes(src) + b"/data/caf\xe9.txt")).write_text("x")
    with pytest.raises(BundleError) as info:
        app_entries(src)
    assert "data/caf\\xe9.txt" in info.value.message
    assert "UTF-8" in info.value.message


def test_undecodable_directory_name_is_refused(tmp_path: Path) -> None:
    src = _src(tmp_path)
    odd = Path(os.fsdecode(bytes(src) + b"/\xff\xfe"))
    odd.mkdir()
    (odd / "a.py").write_text("x")
    with pytest.raises(BundleError) as info:
        app_entries(src)
    assert "\\xff\\xfe" in info.value.message


def test_undecodable_name_in_an_ignored_directory_is_fine(tmp_path: Path) -> None:
    src = _src(tmp_path)
    (src / "node_modules").mkdir()
    Path(os.fsdecode(bytes(src) + b"/node_modules/caf\xe9.js")).write_text("x")
    entries, _ = app_entries(src)
    assert _names(entries) == ["app/main.py"]


# --- links ---------------------------------------------------------------------------------


def test_symlink_loop_is_reported_not_a_crash(tmp_path: Path) -> None:
    src = _src(tmp_path)
    os.symlink("b", src / "a")
    os.symlink("a", src / "b")
    os.symlink("self", src / "self")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/main.py"]
    assert any(w.startswith("a is a symlink that cannot be resolved") for w in warnings)
    assert any(w.startswith("self is a symlink that cannot be resolved") for w in warnings)


def test_links_never_bring_outside_files(tmp_path: Path) -> None:
    src = _src(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship")
    os.symlink("../secret.txt", src / "rel")  # relative, leaving the tree
    os.symlink("rel", src / "chain")  # a link to a link that leaves
    (src / "pkg").mkdir()
    os.symlink("../../secret.txt", src / "pkg" / "deep")
    os.symlink(tmp_path, src / "up")  # a directory outside
    os.symlink("/etc/passwd", src / "abs")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/main.py"]
    assert sum("outside the source tree" in w for w in warnings) == 5
    for entry in entries:
        assert entry.source is not None and entry.source.resolve().is_relative_to(src.resolve())


def test_source_reached_through_a_link(tmp_path: Path) -> None:
    src = _src(tmp_path)
    (src / "data.txt").write_text("d")
    os.symlink("data.txt", src / "alias.txt")
    link = tmp_path / "link"
    os.symlink(src, link)
    entries, warnings = app_entries(link)
    assert _names(entries) == ["app/alias.txt", "app/data.txt", "app/main.py"]
    assert warnings == []


@pytest.mark.parametrize(
    "target", ["gha-creds-1a2b3c.json", ".git/config", "node_modules/x.js", "sub/.venv/key"]
)
def test_links_never_bring_files_the_default_rules_exclude(tmp_path: Path, target: str) -> None:
    src = _src(tmp_path)
    path = src / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"type": "x"}')
    os.symlink(target, src / "innocent.json")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/main.py"]
    assert any(
        w.startswith("innocent.json is a symlink to") and "excluded" in w for w in warnings
    ), warnings


# --- directories and files that cannot be read ------------------------------------------


def test_unreadable_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _src(tmp_path)
    (src / "private").mkdir()
    (src / "private" / "a.py").write_text("x")
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(BundleError) as info:
        app_entries(src)
    assert "private" in info.value.message and "Permission denied" in info.value.message


def test_unreadable_ignored_directory_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _src(tmp_path)
    (src / ".git").mkdir()
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith(".git"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    entries, _ = app_entries(src)
    assert _names(entries) == ["app/main.py"]


def test_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _src(tmp_path)
    (src / "locked.txt").write_text("x")
    real = os.open

    def deny(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(BundleError) as info:
        app_entries(src)
    assert "locked.txt" in info.value.message and "Permission denied" in info.value.message


# --- the credentials file named by the environment ----------------------------------------


def test_credential_files_from_the_environment(tmp_path: Path) -> None:
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "a.json"),
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE": str(tmp_path / "b.json"),
        "GOOGLE_GHA_CREDS_PATH": "",
        "HOME": str(tmp_path),
    }
    assert credential_files(env) == (tmp_path / "a.json", tmp_path / "b.json")
    assert credential_files({}) == ()


def test_credentials_file_is_never_bundled(tmp_path: Path) -> None:
    src = _src(tmp_path)
    creds = src / "config" / "settings.json"  # not a key the scanner would recognise
    creds.parent.mkdir()
    creds.write_text('{"not": "a key", "but": "only the deployer uses it", "id": 12345678}')
    os.symlink("config/settings.json", src / "alias.json")
    os.link(creds, src / "hardlink.json")
    (src / "copy.json").write_bytes(creds.read_bytes())
    (src / "other.json").write_bytes(creds.read_bytes().replace(b"1", b"9"))  # same size
    entries, warnings = app_entries(src, never_bundle=[creds])
    assert _names(entries) == ["app/main.py", "app/other.json"]
    for name in ("config/settings.json", "alias.json", "hardlink.json"):
        assert f"{name} is the credentials file named in the environment: never bundled" in warnings
    assert (
        "copy.json is a copy of the credentials file named in the environment: never bundled"
        in warnings
    )
    assert not any("deployer" in w for w in warnings)  # its content is never shown


def test_the_auth_actions_credentials_file_is_never_bundled(tmp_path: Path) -> None:
    """google-github-actions/auth writes gha-creds-<random>.json into the workspace, which
    may be the function's directory (docs/security.md, docs/deploy.md); what it holds
    (an external_account config) is no key the scanner would refuse."""
    src = _src(tmp_path)
    creds = '{"type": "external_account", "audience": "//iam.googleapis.com/projects/1"}'
    (src / "gha-creds-1f2e3d4c5b6a7980.json").write_text(creds)
    (src / "lib").mkdir()
    (src / "lib" / "gha-creds-abc.json").write_text(creds)  # at any depth
    os.symlink("gha-creds-1f2e3d4c5b6a7980.json", src / "settings.json")  # nor through a link
    (src / "gha-creds.json").write_text("{}")  # not the auth action's name: kept
    (src / "gha-creds-notes.txt").write_text("kept")
    entries, warnings = app_entries(src)
    assert _names(entries) == ["app/gha-creds-notes.txt", "app/gha-creds.json", "app/main.py"]
    assert warnings == [  # the files themselves go without a word, as other default rules
        "settings.json is a symlink to gha-creds-1f2e3d4c5b6a7980.json, which is excluded "
        "by default: not bundled"
    ]


def test_relative_and_missing_credentials_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _src(tmp_path)
    (src / "key.json").write_text("k")
    monkeypatch.chdir(src)
    entries, _ = app_entries(src, never_bundle=[Path("key.json"), tmp_path / "missing.json"])
    assert _names(entries) == ["app/main.py"]


# --- pyfn's own trees ------------------------------------------------------------------------


def test_fifo_in_the_runtime_or_site_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pypy"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "pypy3.9").write_text("#!")
    os.mkfifo(root / "bin" / "fifo")
    runtime = Runtime(root, "3.9", None, "x86_64", "73", "0" * 64, "test")
    with pytest.raises(BundleError, match="pypy/bin/fifo: it is a FIFO"):
        list(runtime_entries(runtime))
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / "fifo")
    with pytest.raises(BundleError, match="site/fifo: it is a FIFO"):
        list(site_entries(Installed(site, ())))


# --- the function's own ignore rules decide before a refusal ----------------------------------


@pytest.mark.parametrize(
    ("ignore_file", "rule"),
    [(".pyfnignore", "legacy/"), (".gcloudignore", "legacy"), (".pyfnignore", "*.txt")],
)
def test_refusals_spare_what_the_user_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ignore_file: str, rule: str
) -> None:
    src = _src(tmp_path)
    (src / ignore_file).write_text(rule + "\n")
    legacy = src / "legacy"
    legacy.mkdir()
    Path(os.fsdecode(bytes(legacy) + b"/caf\xe9.txt")).write_text("x")
    (legacy / "locked.txt").write_text("x")
    (legacy / "private").mkdir()
    real_open, real_scandir = os.open, os.scandir

    def deny_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def deny_scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "open", deny_open)
    monkeypatch.setattr(os, "scandir", deny_scandir)
    if rule == "*.txt":  # the files are left out; the directory is not
        with pytest.raises(BundleError) as info:
            app_entries(src)
        assert "legacy/private/" in info.value.message
        assert "caf" not in info.value.message and "locked" not in info.value.message
        return
    entries, _ = app_entries(src)
    assert _names(entries) == ["app/main.py"]


def test_an_empty_credentials_file_does_not_take_empty_files_with_it(tmp_path: Path) -> None:
    src = _src(tmp_path)
    (src / "pkg").mkdir()
    (src / "pkg" / "__init__.py").write_bytes(b"")
    (src / "short.txt").write_bytes(b"{}\n")
    empty, tiny = tmp_path / "empty.json", tmp_path / "tiny.json"
    empty.write_bytes(b"")
    tiny.write_bytes(b"{}\n")
    entries, warnings = app_entries(src, never_bundle=[empty, tiny])
    assert _names(entries) == ["app/main.py", "app/pkg/__init__.py", "app/short.txt"]
    assert warnings == []


def test_what_is_always_skipped_is_documented_exactly() -> None:
    text = DOCS.read_text()
    section = text[text.index("### Always skipped") :]
    section = section[: section.index("\n#")]
    documented = set(re.findall(r"`([^`]+)`", section))
    assert set(APP_DEFAULT_IGNORES) | set(CREDENTIAL_VARIABLES) == documented
