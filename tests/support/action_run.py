"""The Action's step run in this process as the runner would run it: inputs as
``INPUT_*`` variables, outputs and the summary read back from the runner's files, and
the workflow commands the runner would act on."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from pyfn_action.github.action import run

from .github_api import FakeGitHub
from .repos import NAME, OWNER, PR

TOKEN = "ghs_loopback-test-token"  # noqa: S105 - the fake's token


@dataclass
class Step:
    code: int
    stdout: str
    outputs: dict[str, str]
    summary: str
    commands: list[str] = field(default_factory=list)

    def annotations(self, kind: str) -> list[str]:
        return [c for c in self.commands if c.startswith(f"::{kind}")]


def read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: ``name<<DELIMITER`` blocks."""
    text = path.read_text() if path.exists() else ""
    return {m[0]: m[2] for m in re.findall(r"^(\S+?)<<(\S+)\n(.*?)\n\2$", text, re.S | re.M)}


def commands_of(stdout: str) -> list[str]:
    """The commands the runner would process: only lines between resume and stop."""
    lines = stdout.splitlines()
    first = lines[0]
    assert first.startswith("::stop-commands::"), first
    token = first.removeprefix("::stop-commands::")
    out, live = [], False
    for line in lines[1:]:
        if line == f"::{token}::":
            live = True
        elif line == f"::stop-commands::{token}":
            live = False
        elif live:
            out.append(line)
    return out


@dataclass
class Action:
    """Runs entrypoint.py's ``run`` as the runner would, in this process."""

    env: dict[str, str]
    fake: FakeGitHub
    tmp_path: Path
    runs: int = 0

    def __call__(self, workdir: Path, *args: str, **inputs: str) -> Step:
        """The main step; with ``"--check-inputs"``, the step that checks the inputs."""
        self.runs += 1
        step = self.tmp_path / f"step-{self.runs}"
        step.mkdir()
        env = {
            **self.env,
            "GITHUB_WORKSPACE": str(workdir),
            "GITHUB_OUTPUT": str(step / "output"),
            "GITHUB_STEP_SUMMARY": str(step / "summary"),
        }
        for name, value in inputs.items():
            env["INPUT_" + name.replace("_", "-").upper()] = value
        out = io.StringIO()
        code = run(list(args), env, out, cwd=workdir)
        summary = step / "summary"
        text = out.getvalue()
        return Step(
            code,
            text,
            read_outputs(step / "output"),
            summary.read_text() if summary.exists() else "",
            commands_of(text),
        )


def our_comments(github: FakeGitHub) -> list[dict[str, object]]:
    return [c for c in github.comments(OWNER, NAME, PR) if "pyfn-size-" in str(c["body"])]
