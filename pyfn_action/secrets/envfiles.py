"""The credentials files the environment names, kept out of every bundle.

``GOOGLE_APPLICATION_CREDENTIALS`` and its kin name the file pyfn and gcloud run
with: that file is never bundled, whatever it holds, and neither is a hard or
symbolic link to it or a copy of it. It is recognised by identity or by content,
never by what it looks like (the scanner judges content).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables that name the credentials file pyfn and gcloud run with.
CREDENTIAL_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",  # gcloud's; google-github-actions/auth sets it
    "GOOGLE_GHA_CREDS_PATH",  # google-github-actions/auth
)
# A credentials file is a few KB: a copy of one is looked for only in that range (an
# empty or tiny "credentials file" must not take every empty __init__.py with it).
_COPY_CHECKED = range(64, 1_000_001)


def credential_files(env: Mapping[str, str]) -> tuple[Path, ...]:
    """The credentials files the environment names (relative paths are the process's)."""
    paths: list[Path] = []
    for name in CREDENTIAL_VARIABLES:
        value = env.get(name)
        if value and Path(value) not in paths:
            paths.append(Path(value))
    return tuple(paths)


class CredentialFiles:
    """Recognises the credentials files by identity (the file, a hard link, a link to it)
    or by content (a copy), never by what they hold."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.files: list[tuple[os.stat_result, Path]] = []
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                continue  # not there: nothing to keep out
            if stat.S_ISREG(info.st_mode):
                self.files.append((info, path))

    def judge(self, path: Path, info: os.stat_result) -> str | None:
        for known, known_path in self.files:
            if (info.st_dev, info.st_ino) == (known.st_dev, known.st_ino):
                return "is the credentials file named in the environment"
            if (
                info.st_size == known.st_size
                and known.st_size in _COPY_CHECKED
                and _same_bytes(path, known_path)
            ):
                return "is a copy of the credentials file named in the environment"
        return None


def _same_bytes(one: Path, other: Path) -> bool:
    try:
        return one.read_bytes() == other.read_bytes()
    except OSError:
        return False
