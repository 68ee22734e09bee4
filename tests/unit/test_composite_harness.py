"""The composite-action harness (tests/support/composite.py), on small synthetic actions."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from support.composite import (
    CompositeError,
    CompositeRun,
    Evaluator,
    Standin,
    StepCall,
    parse_file_command,
    run_composite,
)

BASE_ENV = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "LANG": "C.UTF-8"}


def _run(
    tmp_path: Path,
    action: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    github: Mapping[str, Any] | None = None,
    uses: Mapping[str, Standin] | None = None,
    env: Mapping[str, str] | None = None,
) -> CompositeRun:
    action_dir = tmp_path / "action"
    action_dir.mkdir(exist_ok=True)
    (action_dir / "action.yml").write_text(textwrap.dedent(action))
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return run_composite(
        action_dir,
        inputs=inputs or {},
        github=github if github is not None else {"token": "gh-token", "event_name": "push"},
        env={**BASE_ENV, **(env or {})},
        uses=uses or {},
        workdir=workdir,
        timeout=60,
        temp_dir=tmp_path / "runner",
    )


def _evaluate(expression: str, **contexts: Any) -> Any:
    return Evaluator(contexts).evaluate(expression)


# --- expressions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.github-token", "t0k"),
        ("inputs['github-token']", "t0k"),
        ("inputs.GITHUB-TOKEN", "t0k"),  # property names are case-insensitive
        ("inputs.missing", None),
        ("inputs.missing == ''", True),
        ("steps.nope.outputs.x == ''", True),
        ("inputs.cache == 'TRUE'", True),  # strings compare case-insensitively
        ("inputs.cache != 'true'", False),
        ("inputs.cache == 'true' && inputs.deploy == 'true'", False),
        ("inputs.cache == 'true' || inputs.deploy == 'true'", True),
        ("!(inputs.deploy == 'true')", True),
        ("!inputs.missing", True),
        ("inputs.deploy && 'yes' || 'no'", "yes"),  # && and || yield an operand
        ("inputs.missing && 'yes' || 'no'", "no"),
        ("'it''s'", "it's"),
        ("true", True),
        ("false || null", None),
        ("1 == '1'", True),  # mixed types compare as numbers
        ("'0x10' == 16", True),
        ("2 < 10", True),
        ("'2' < '10'", False),
        ("0.5 >= .5", True),
        ("true == 1", True),
        ("null == 0", True),
        ("format('{0}-{{{1}}}', 'a', 2)", "a-{2}"),
        ("contains('Hello', 'ELL')", True),
        ("contains(fromJSON('[\"a\", \"b\"]'), 'B')", True),
        ("startsWith(github.event_name, 'pull')", True),
        ("endsWith(github.event_name, 'REQUEST')", True),
        ("toJSON(fromJSON('{\"a\": [1, true]}'))", '{\n  "a": [\n    1,\n    true\n  ]\n}'),
        ("join(fromJSON('[1, 2]'), '+')", "1+2"),
        ("github.event.pull_request.number", 7.0),
        ("github.event.labels[1].name", "b"),
        ("github.event.nothing.deeper", None),
    ],
)
def test_expressions(expression: str, expected: Any) -> None:
    contexts = {
        "inputs": {"github-token": "t0k", "cache": "true", "deploy": "false"},
        "github": {
            "event_name": "pull_request",
            "event": {"pull_request": {"number": 7}, "labels": [{"name": "a"}, {"name": "b"}]},
        },
        "steps": {},
    }
    assert _evaluate(expression, **contexts) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "secrets.TOKEN",  # a context the harness does not model
        "hashFiles('**/requirements.txt')",  # a function it does not model
        "github.event.*.name",  # object filters
        "inputs.a = 'b'",  # not an operator
        "inputs.a ==",
        "(inputs.a",
        "contains('a')",
        "format('{1}', 'only one')",
        "fromJSON('not json')",
    ],
)
def test_unsupported_or_malformed_expressions_raise(expression: str) -> None:
    with pytest.raises(CompositeError):
        _evaluate(expression, inputs={"a": "b"}, github={})


def test_render_interpolates_and_keeps_quotes_braces_inside_strings() -> None:
    ev = Evaluator({"inputs": {"x": "1"}})
    assert ev.render("a ${{ inputs.x }} b ${{ '}}' }}") == "a 1 b }}"
    assert ev.render(False) == "false"
    assert ev.render(3.12) == "3.12"
    with pytest.raises(CompositeError, match="unterminated"):
        ev.render("${{ inputs.x ")


def test_file_command_parsing_matches_the_runner() -> None:
    text = "a=1\n\nb=x=y\nmulti<<EOF\nline 1\n\nline 3\nEOF\nc<<X\nX\nd=<<not heredoc\n"
    assert parse_file_command(text) == [
        ("a", "1"),
        ("b", "x=y"),
        ("multi", "line 1\n\nline 3"),
        ("c", ""),
        ("d", "<<not heredoc"),
    ]
    # the delimiter line must match exactly: " EOF" and "EOF " are part of the value
    with pytest.raises(CompositeError, match="delimiter not found"):
        parse_file_command("v<<EOF\nvalue\n EOF\nEOF \n")
    for bad in ("no separator\n", "<<EOF\nEOF\n", "=value\n"):
        with pytest.raises(CompositeError):
            parse_file_command(bad)


# --- running steps ---------------------------------------------------------------------

ACTION = """\
name: demo
description: demo
inputs:
  who:
    description: d
    default: world
  github-token:
    description: d
    default: ${{ github.token }}
  flag:
    description: d
    default: "false"
outputs:
  greeting:
    description: d
    value: ${{ steps.greet.outputs.greeting }}
  notes:
    description: d
    value: ${{ steps.greet.outputs.notes }}
  combined:
    description: d
    value: ${{ steps.greet.outputs.greeting }} / ${{ steps.tool.outputs.cache-hit }}
runs:
  using: composite
  steps:
    - id: greet
      shell: bash
      env:
        INPUT_WHO: ${{ inputs.who }}
        INPUT_GITHUB-TOKEN: ${{ inputs.github-token }}
      run: |
        echo "greeting=hello $INPUT_WHO" >> "$GITHUB_OUTPUT"
        {
          echo "notes<<EOF_1"
          printf 'first\\nsecond\\n'
          echo "EOF_1"
        } >> "$GITHUB_OUTPUT"
        echo "FROM_ENV_FILE=carried" >> "$GITHUB_ENV"
        mkdir -p "$RUNNER_TEMP/bin" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
        echo "## greeted" >> "$GITHUB_STEP_SUMMARY"
        python3 -c 'import os; print(os.environ["INPUT_GITHUB-TOKEN"])'
    - id: flagged
      if: inputs.flag == 'true'
      shell: bash
      run: echo should not run
    - id: tool
      uses: actions/cache@v4
      with:
        key: ${{ steps.greet.outputs.greeting }}-${{ runner.os }}
        lookup-only: false
    - id: after
      shell: bash
      env:
        HIT: ${{ steps.tool.outputs.cache-hit }}
        FLAGGED_OUTCOME: ${{ steps.flagged.outcome }}
      run: |
        echo "seen=$FROM_ENV_FILE $HIT $FLAGGED_OUTCOME" >> "$GITHUB_OUTPUT"
        echo "path-head=${PATH%%:*}" >> "$GITHUB_OUTPUT"
        echo "where=$PWD" >> "$GITHUB_OUTPUT"
        echo "## after" >> "$GITHUB_STEP_SUMMARY"
"""


def test_steps_run_in_order_with_outputs_env_path_and_stand_ins(tmp_path: Path) -> None:
    calls: list[StepCall] = []

    def cache(call: StepCall) -> Mapping[str, str]:
        calls.append(call)
        return {"cache-hit": "true"}

    run = _run(tmp_path, ACTION, uses={"actions/cache": cache})

    assert run.ok and run.exit_code == 0
    greet = run.step("greet")
    # the input default `${{ github.token }}` was evaluated, and the hyphenated name
    # reached a child process of the script intact
    assert greet.env["INPUT_GITHUB-TOKEN"] == "gh-token"
    assert greet.stdout.strip() == "gh-token"
    assert greet.env["INPUT_WHO"] == "world"
    assert greet.outputs["notes"] == "first\nsecond"
    assert greet.env["GITHUB_ACTION_PATH"] == str((tmp_path / "action").resolve())
    assert greet.env["GITHUB_WORKSPACE"] == str((tmp_path / "work").resolve())
    assert greet.env["GITHUB_EVENT_NAME"] == "push"
    assert "GITHUB_TOKEN" not in greet.env

    assert run.step("flagged").skipped and run.step("flagged").exit_code is None

    [call] = calls
    assert call.id == "tool" and call.uses == "actions/cache@v4"
    assert call.with_ == {"key": "hello world-Linux", "lookup-only": "false"}
    assert call.env["FROM_ENV_FILE"] == "carried"  # GITHUB_ENV reaches later steps
    assert run.step("tool").outputs == {"cache-hit": "true"}

    after = run.step("after").outputs
    assert after["seen"] == "carried true skipped"
    assert after["path-head"] == str(tmp_path / "runner" / "runner-temp" / "bin")
    assert after["where"] == str((tmp_path / "work").resolve())
    assert "FROM_ENV_FILE" not in greet.env  # only later steps see it

    assert run.outputs == {
        "greeting": "hello world",
        "notes": "first\nsecond",
        "combined": "hello world / true",
    }
    assert run.summary == "## greeted\n## after\n"


def test_given_inputs_override_defaults_and_unknown_inputs_raise(tmp_path: Path) -> None:
    standin: dict[str, Standin] = {"actions/cache": lambda call: {}}
    run = _run(
        tmp_path,
        ACTION,
        inputs={"who": "you", "flag": "TRUE", "github-token": "explicit"},
        uses=standin,
    )
    assert run.step("greet").env["INPUT_GITHUB-TOKEN"] == "explicit"
    assert run.step("flagged").stdout == "should not run\n"  # 'TRUE' == 'true'
    assert run.outputs["greeting"] == "hello you"
    assert run.outputs["combined"] == "hello you / "  # a missing output is ''
    with pytest.raises(CompositeError, match="unexpected inputs"):
        _run(tmp_path, ACTION, inputs={"whom": "x"}, uses=standin)


def test_a_uses_step_without_a_stand_in_raises(tmp_path: Path) -> None:
    with pytest.raises(CompositeError, match="no stand-in for uses: actions/cache@v4"):
        _run(tmp_path, ACTION)


@pytest.mark.parametrize(
    "script",
    [
        'echo "${{ inputs.who }}"',
        "echo ${{github.event.pull_request.title}}",
    ],
)
def test_expressions_in_run_scripts_are_refused_before_anything_runs(
    tmp_path: Path, script: str
) -> None:
    marker = tmp_path / "ran"
    action = f"""\
        name: x
        description: x
        inputs:
          who: {{description: d}}
        runs:
          using: composite
          steps:
            - shell: bash
              run: touch {marker}
            - shell: bash
              run: '{script}'
    """
    with pytest.raises(CompositeError, match="script injection"):
        _run(tmp_path, action)
    assert not marker.exists()


def test_a_failing_step_stops_the_run(tmp_path: Path) -> None:
    action = """\
        name: x
        description: x
        outputs:
          early: {description: d, value: "${{ steps.one.outputs.early }}"}
        runs:
          using: composite
          steps:
            - id: one
              shell: bash
              run: |
                echo "early=yes" >> "$GITHUB_OUTPUT"
                echo oops >&2
                false | cat  # fails only because of -o pipefail
                echo unreachable
            - id: two
              if: steps.one.outputs.early == 'yes'  # true, but means success() && (...)
              shell: bash
              run: echo should not run
            - id: cleanup
              if: always()
              shell: bash
              run: echo cleaned
            - id: report
              if: ${{ failure() && steps.one.outcome == 'failure' }}
              shell: bash
              run: echo reported
    """
    run = _run(tmp_path, action)
    assert not run.ok and run.exit_code == 1
    one = run.step("one")
    assert one.exit_code == 1 and one.outcome == "failure"
    assert one.stderr == "oops\n" and "unreachable" not in one.stdout
    assert one.outputs == {"early": "yes"}  # outputs written before the failure count
    assert run.step("two").skipped
    assert run.step("cleanup").stdout == "cleaned\n"
    assert run.step("report").stdout == "reported\n"
    assert run.outputs == {"early": "yes"}


def test_continue_on_error_and_working_directory(tmp_path: Path) -> None:
    (tmp_path / "work" / "sub").mkdir(parents=True)
    action = """\
        name: x
        description: x
        inputs:
          dir: {description: d, default: sub}
        runs:
          using: composite
          steps:
            - id: flaky
              continue-on-error: true
              shell: bash
              run: exit 3
            - id: next
              working-directory: ${{ inputs.dir }}
              shell: bash
              env:
                CONCLUSION: ${{ steps.flaky.conclusion }}/${{ steps.flaky.outcome }}
              run: echo "$CONCLUSION $PWD"
    """
    run = _run(tmp_path, action)
    assert run.ok
    assert run.step("flaky").exit_code == 3
    assert run.step("next").stdout == f"success/failure {(tmp_path / 'work' / 'sub').resolve()}\n"


def test_a_malformed_output_file_fails_the_step(tmp_path: Path) -> None:
    action = """\
        name: x
        description: x
        runs:
          using: composite
          steps:
            - id: bad
              shell: bash
              run: printf 'v<<EOF\\nno end\\n' >> "$GITHUB_OUTPUT"
    """
    run = _run(tmp_path, action)
    assert run.exit_code == 1 and run.step("bad").exit_code == 0
    assert "delimiter not found" in (run.step("bad").error or "")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("if: ${{ inputs.a }} == 'x'", "mixes"),  # half-wrapped if: is always true on GitHub
        ("if: hashFiles('x') != ''", "unsupported function"),
        ("if: secrets.X == 'y'", "unsupported context"),
        ("env: {X: '${{ matrix.os }}'}", "unsupported context"),
    ],
)
def test_unsupported_expressions_in_steps_raise(tmp_path: Path, step: str, message: str) -> None:
    action = f"""\
        name: x
        description: x
        inputs:
          a: {{description: d}}
        runs:
          using: composite
          steps:
            - shell: bash
              {step}
              run: echo hi
    """
    with pytest.raises(CompositeError, match=message):
        _run(tmp_path, action)


def test_unsupported_step_shapes_raise(tmp_path: Path) -> None:
    template = """\
        name: x
        description: x
        runs:
          using: composite
          steps:
            - {step}
    """
    for step, message in [
        ("{run: echo hi}", "only bash"),
        ("{run: echo hi, shell: sh}", "only bash"),
        ("{run: echo hi, shell: bash, timeout-minutes: 1}", "unsupported keys"),
        ("{uses: actions/cache@v4, run: echo}", "exactly one"),
    ]:
        with pytest.raises(CompositeError, match=message):
            _run(tmp_path, template.format(step=step))
    node_action = "name: x\ndescription: x\nruns: {using: node20, main: index.js}\n"
    with pytest.raises(CompositeError, match="composite"):
        _run(tmp_path, node_action)
