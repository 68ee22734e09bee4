"""What the Action's step says besides the comment: annotations on the files findings
name, where the job's comment is written, and the step's outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pyfn_action.errors import ConfigError, Finding
from pyfn_action.github.annotations import annotate, report_error
from pyfn_action.github.inputs import Inputs
from pyfn_action.github.outcome import (
    _job_comment_path,
    base_sources,
    function_list,
    write_outputs,
)
from pyfn_action.github.workflow import Runner


def _function(out: Path, name: str = "hello", base_from: str = "", report: Any = None) -> Any:
    """A function of the run, as far as these parts read one."""
    return SimpleNamespace(
        name=name,
        source=out.parent,
        config=SimpleNamespace(out=out),
        base_from=base_from,
        report=report,
        bundle=None,
        report_path=None,
        url=None,
        preview=None,
    )


def test_a_finding_is_annotated_on_its_file_only_inside_the_workspace(tmp_path: Path) -> None:
    out = io.StringIO()
    runner = Runner({}, out)
    env = {"GITHUB_WORKSPACE": str(tmp_path)}
    inside = Finding(kind="native", message="no wheel", file=tmp_path / "fn" / "a.so", line=3)
    outside = Finding(kind="unknown", message="far", file=Path("/elsewhere/b.py"), line=4)
    annotate(runner, inside, env, error=True)
    annotate(runner, outside, env, error=False)
    first, second = out.getvalue().splitlines()
    assert first == "::error file=fn/a.so,line=3,title=pyfn%3A native code::no wheel"
    assert second == "::warning title=pyfn::far"  # no file outside, so no line either


def test_an_error_names_its_function_its_type_and_each_of_its_findings(tmp_path: Path) -> None:
    out = io.StringIO()
    finding = Finding(kind="budget", message="over by 1 KB")
    error = ConfigError("Over budget", findings=[finding])
    report_error(Runner({}, out), error, {"GITHUB_WORKSPACE": str(tmp_path)}, function="hello")
    lines = out.getvalue().splitlines()
    assert lines[0] == "::error title=pyfn%3A size budget::over by 1 KB"
    assert lines[1].startswith("::error title=pyfn%3A ConfigError::hello: Over budget")


def test_the_jobs_comment_is_written_above_the_functions_outs_never_at_the_root(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    one = [_function(dist / "a")]
    assert _job_comment_path(one, tmp_path) == dist / "a" / "comment.md"
    both = [_function(dist / "a"), _function(dist / "b")]
    assert _job_comment_path(both, tmp_path) == dist / "comment.md"
    apart = [_function(tmp_path / "a"), _function(tmp_path / "b")]
    assert _job_comment_path(apart, tmp_path) == tmp_path / "a" / "pyfn-comment.md"


def test_the_function_list_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    inputs = Inputs(workdir=tmp_path, sources=(tmp_path / "fns" / "a", tmp_path))
    assert json.loads(function_list(inputs)) == ["fns/a", "."]


def test_the_summary_says_where_each_base_came_from(tmp_path: Path) -> None:
    functions = [
        _function(tmp_path, "a", "cache", report=object()),
        _function(tmp_path, "b", "", report=object()),
        _function(tmp_path, "c", "built"),  # not built: not listed
    ]
    said = base_sources(functions, "`main` (1a2b3c4)")
    assert said.splitlines() == [
        "Bases (`main` (1a2b3c4)):",
        "",
        "- `a`: read from the Actions cache (kept by a push)",
        "- `b`: none (a new function, or no base could be had)",
    ]


def test_outputs_name_the_comment_even_when_nothing_was_built(tmp_path: Path) -> None:
    output = tmp_path / "output"
    runner = Runner({"GITHUB_OUTPUT": str(output)}, io.StringIO())
    write_outputs([_function(tmp_path / "dist")], "body", tmp_path / "comment.md", runner)
    text = output.read_text()
    for name, value in [
        ("bundle", ""),
        ("comment-body", "body"),
        ("comment-path", str(tmp_path / "comment.md")),
        ("reports", "{}"),
        ("preview-urls", "{}"),
    ]:
        assert f"{name}<<" in text
        assert f"\n{value}\nghadelimiter_" in text.split(f"{name}<<", 1)[1]
