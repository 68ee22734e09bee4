"""What the job says once its functions are built: the size comment, and the step's outputs.

The comment's markdown is one body for the job (``comment-mode: combined``, and
``off``, which posts nothing) or one a function (``per-function``); either is written
to its file and the job summary before it is posted, so a comment that cannot be
posted (a fork's read-only token) is never lost: the job then warns once, and never
fails for it. The step's outputs are the first function's figures, every function's,
the comment's body and file, and the previews' URLs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyfn_action.errors import CommentError
from pyfn_action.github import speed
from pyfn_action.github.comments import Comments, default_key, post_combined
from pyfn_action.github.event import Event
from pyfn_action.github.functions import Function
from pyfn_action.github.inputs import Inputs
from pyfn_action.github.previews import preview_line, preview_text
from pyfn_action.github.workflow import Runner
from pyfn_action.report import combined
from pyfn_action.report import compare as sizereport
from pyfn_action.report.combined import Combined
from pyfn_action.report.entries import entry
from pyfn_action.report.render import render_markdown

log = logging.getLogger("pyfn_action")


def bodies(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    base_label: str,
    env: Mapping[str, str],
    runner: Runner,
) -> tuple[Combined | None, str, Path | None]:
    """The markdown a reviewer reads, written to its file and the job summary: one body
    for the job (``combined``, and ``off``, which posts nothing), or one a function
    (``per-function``, each in its out directory as ``comment.md``). Back come the job's
    comment (``None`` per function), and its body, or the first function's, with its file."""
    compared = [f for f in functions if f.comparison is not None]
    speed_lines, speed_note, _ = speed.section(functions)
    if inputs.comment_mode == "per-function":
        drawn = {}
        for function in compared:
            assert function.comparison is not None
            drawn[function.name] = (
                render_markdown(function.comparison)
                + preview_text(function)
                + speed.section([function])[2]
            )
            function.comment_path = _write(function.config.out / "comment.md", drawn[function.name])
            runner.summary(drawn[function.name])
        first = functions[0] if functions else None  # in source order
        if first is None or first.comment_path is None:
            return None, "", None
        return None, drawn[first.name], first.comment_path
    if not compared:
        alone = speed.section(functions)[2]  # a push measured: said in the summary only
        if alone:
            runner.summary(alone)
        return None, "", None
    job = Combined(
        key=inputs.comment_key or default_key(env),
        entries=tuple(
            entry(f.comparison, threshold=inputs.minimum, base_from=f.base_from)
            for f in compared
            if f.comparison is not None
        ),
        sha=event.head_sha or "",
        base_label=base_label if any(f.base_from for f in compared) else "",
        minimum=inputs.minimum.describe(),
        previews=tuple(preview_line(f) for f in functions if f.preview or f.no_preview),
        speed=speed_lines,
        speed_note=speed_note,
    )
    body = combined.render(job)
    runner.summary(body)
    return job, body, _write(_job_comment_path(functions, inputs.workdir), body)


def base_sources(functions: Sequence[Function], label: str) -> str:
    """For the job summary: where each function's base came from."""
    said = {
        "cache": "read from the Actions cache (kept by a push)",
        "built": "built at the base commit",
        "report": "the base-report input",
        "": "none (a new function, or no base could be had)",
    }
    lines = [f"Bases{' (' + label + ')' if label else ''}:", ""]
    lines += [f"- `{f.name}`: {said[f.base_from]}" for f in functions if f.report is not None]
    return "\n".join(lines) + "\n"


def _job_comment_path(functions: Sequence[Function], workdir: Path) -> Path:
    """Where the job's comment is written: ``comment.md`` in the directory above the
    functions' outs (``dist`` for ``dist/NAME``), or in the one out there is; never the
    working directory itself, never outside it."""
    outs = [f.config.out.resolve() for f in functions]
    if len(outs) == 1:
        return outs[0] / "comment.md"
    common = Path(os.path.commonpath(outs))
    root = workdir.resolve()
    if common != root and common.is_relative_to(root):
        return common / "comment.md"
    return outs[0] / "pyfn-comment.md"


def _write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def post_comment(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    job: Combined | None,
    env: Mapping[str, str],
    runner: Runner,
) -> None:
    """The job's comment (or each function's) posted on the pull request; a warning, and
    nothing more, when it cannot be."""
    posting = [f for f in functions if f.comparison is not None and f.comment_path is not None]
    if job is None and not posting:
        return
    fallback = "the size report is in the job summary and the comment-body output"
    if not inputs.token:
        runner.warning(f"No github-token: no pull request comment; {fallback}", title="pyfn")
        return
    assert event.pull_number is not None
    comments = Comments.from_env(env, event.repository, inputs.token)
    try:
        if job is not None:
            posted = post_combined(comments, event.pull_number, job)
            if posted is not None:
                log.info("%s the size comment: %s", posted.action, posted.url)
            return
        for function in posting:
            assert function.comparison is not None and function.comment_path is not None
            marker = sizereport.marker(function.comparison.function)
            posted = comments.upsert(
                event.pull_number, marker, function.comment_path.read_text(encoding="utf-8")
            )
            log.info("%s the size comment for %s: %s", posted.action, function.name, posted.url)
    except CommentError as exc:
        why = "the token may not write to this pull request" if exc.forbidden else "GitHub failed"
        runner.warning(f"No pull request comment ({why}: {exc.message}); {fallback}", title="pyfn")


def write_outputs(functions: list[Function], body: str, path: Path | None, runner: Runner) -> None:
    """The step's outputs: the first function's figures (in ``source`` order, whatever
    became of it), the comment's markdown and file, and every function's figures."""
    figures = {f.name: _figures(f) for f in functions if f.report is not None}
    if functions:
        for name, value in _figures(functions[0]).items():
            if name not in ("name", "source"):
                runner.set_output(name, value)
    runner.set_output("comment-body", body)
    runner.set_output("comment-path", str(path or ""))
    runner.set_output("reports", json.dumps(figures, sort_keys=True))
    previews = {f.name: f.preview.url for f in functions if f.preview is not None}
    runner.set_output("preview-urls", json.dumps(previews, sort_keys=True))


def function_list(inputs: Inputs) -> str:
    """``functions``: the function directories found, relative to the working directory,
    as JSON (for a later job's ``strategy.matrix``)."""
    root = inputs.workdir.resolve()
    return json.dumps([p.relative_to(root).as_posix() or "." for p in inputs.sources])


def _figures(function: Function) -> dict[str, Any]:
    report = function.report
    built = function.bundle is not None
    return {
        "name": function.name,
        "source": str(function.source),
        "bundle": str(function.bundle or ""),
        "sha256": report.bundle.sha256 if report is not None and built else "",
        # a bundle refused by its budget still has its sizes: what was refused
        "compressed-bytes": str(report.bundle.compressed_bytes) if report else "",
        "uncompressed-bytes": str(report.bundle.uncompressed_bytes) if report else "",
        "report": str(function.report_path or "") if built else "",
        "url": function.url or "",
    }
