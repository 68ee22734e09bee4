"""The runner's language: workflow commands, step outputs and the job summary.

Everything the Action tells the runner goes through :class:`Runner`, so that
escaping lives in one place. Untrusted text (input values, file names from a
pull request, a tool's output) can never become a command: the runner's
command processing is stopped with a random token for the whole step, and
resumed only around the commands written here (``stop-commands``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO


def escape_data(text: str) -> str:
    """A command's message, as the runner decodes it (``%``, CR and LF encoded)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value (``file=…``): ``:`` and ``,`` encoded as well."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class Runner:
    """Workflow commands on ``stream``; outputs and the summary in the runner's files.

    Outside a runner (no ``GITHUB_OUTPUT``, say), outputs and the summary are
    simply not written; commands are still printed, as text.
    """

    def __init__(self, env: Mapping[str, str], stream: TextIO) -> None:
        self.stream = stream
        self.output_file = _file(env, "GITHUB_OUTPUT")
        self.summary_file = _file(env, "GITHUB_STEP_SUMMARY")
        self._token = secrets.token_hex(16)
        self._stopped = False
        self._masked: set[str] = set()

    # --- commands -------------------------------------------------------------

    def stop_commands(self) -> None:
        """From here on, only the commands this Runner writes are processed."""
        self._write(f"::stop-commands::{self._token}")
        self._stopped = True

    def command(self, name: str, message: str = "", **properties: str | int | None) -> None:
        given = {k: v for k, v in properties.items() if v is not None and v != ""}
        props = ",".join(f"{k}={escape_property(str(v))}" for k, v in given.items())
        line = f"::{name}{' ' + props if props else ''}::{escape_data(message)}"
        if self._stopped:
            line = f"::{self._token}::\n{line}\n::stop-commands::{self._token}"
        self._write(line)

    def error(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        title: str | None = None,
    ) -> None:
        self.command("error", message, file=file, line=line, title=title)

    def warning(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        title: str | None = None,
    ) -> None:
        self.command("warning", message, file=file, line=line, title=title)

    def mask(self, value: str) -> None:
        """Hide ``value`` in the log from here on (each line of a multi-line value); a
        value already hidden is not said again."""
        for part in value.splitlines() or [value]:
            if part.strip() and part not in self._masked:
                self._masked.add(part)
                self.command("add-mask", part)

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.command("group", title)
        try:
            yield
        finally:
            self.command("endgroup")

    # --- files ----------------------------------------------------------------

    def set_output(self, name: str, value: str) -> None:
        """``name<<DELIMITER`` form, with a random delimiter that is not in ``value``."""
        if self.output_file is None:
            return
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:  # pragma: no cover - 128 random bits
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        with self.output_file.open("a", encoding="utf-8") as out:
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")

    def summary(self, markdown: str) -> None:
        if self.summary_file is None:
            return
        with self.summary_file.open("a", encoding="utf-8") as out:
            out.write(markdown if markdown.endswith("\n") else markdown + "\n")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _file(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "")
    return Path(value) if value else None
