"""Ask the real git which files an ignore file leaves out.

A fresh repository (no template, no global or system configuration), the rules
written as a ``.gitignore``, the files created, and one
``git check-ignore --no-index --stdin -z -v -n`` call for all of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path


def git_available() -> bool:
    return shutil.which("git") is not None


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C"
    )
    return env


def make_repo(root: Path) -> dict[str, str]:
    """A fresh, empty repository at ``root``; the environment to run git in it."""
    root.mkdir(parents=True, exist_ok=True)
    env = _env(root / ".home")
    subprocess.run(["git", "init", "-q", "--template=", str(root / "repo")], check=True, env=env)
    return env


def git_ignored(root: Path, rules: bytes, files: Iterable[str]) -> dict[str, bool]:
    """Whether git ignores each of ``files`` with ``rules`` as the ``.gitignore`` of a
    repository made under ``root`` (which must not exist yet, or be empty)."""
    env = make_repo(root)
    return _check(root / "repo", env, _write_tree(root / "repo", rules, files))


def git_ignored_in_dirs(
    root: Path, cases: Sequence[tuple[bytes, Sequence[str]]]
) -> list[dict[str, bool]]:
    """Many questions in one repository and one git call: each case's rules are the
    ``.gitignore`` of its own directory, and its files lie below that directory."""
    env = make_repo(root)
    repo = root / "repo"
    asked: list[str] = []
    for number, (rules, files) in enumerate(cases):
        asked += [f"c{number}/{name}" for name in _write_tree(repo / f"c{number}", rules, files)]
    answers = _check(repo, env, asked)
    return [
        {name: answers[f"c{number}/{name}"] for name in files}
        for number, (_, files) in enumerate(cases)
    ]


def _write_tree(directory: Path, rules: bytes, files: Iterable[str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".gitignore").write_bytes(rules)
    names = list(files)
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return names


def _check(repo: Path, env: dict[str, str], names: Sequence[str]) -> dict[str, bool]:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n"],
        cwd=repo,
        input=b"".join(os.fsencode(name) + b"\0" for name in names),
        capture_output=True,
        env=env,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(result.stderr.decode(errors="replace"))
    fields = result.stdout.split(b"\0")
    answers: dict[str, bool] = {}
    for i in range(0, len(fields) - 1, 4):
        source, _line, pattern, path = fields[i : i + 4]
        answers[os.fsdecode(path)] = bool(source) and not pattern.startswith(b"!")
    return answers
