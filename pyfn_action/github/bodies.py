"""Comment bodies posted as a job wrote them: ``pyfn comment``, in a ``workflow_run``
workflow that posts what a fork's pull request could not.

Each body must start with a pyfn marker: a function's own comment (``pyfn report
--format markdown``) or a job's combined comment (the Action's ``comment-path``).
A combined body is read back field by field (it came from an artifact anyone's
pull request could have written), the bodies of one job (a matrix's) are merged
into one, and each goes to its sticky comment (:mod:`pyfn_action.github.comments`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyfn_action.errors import CommentError
from pyfn_action.github.comments import Comments, Posted, post_combined
from pyfn_action.report import combined
from pyfn_action.report.combined import Combined
from pyfn_action.report.fields import NotCombined

_MARKER_LINE = re.compile(
    r"^<!-- pyfn-size-report: ([A-Za-z0-9_.-]{1,63}|[A-Za-z0-9_.-]{0,40}\+[0-9a-f]{16}) -->$"
)


def marker_of(body: str) -> str:
    """The marker a body starts with: a function's (``pyfn report --format markdown``)
    or a job's combined comment's (the Action's ``comment-path``)."""
    first = body.split("\n", 1)[0]
    if not _MARKER_LINE.match(first) and not combined.is_marker(first):
        raise CommentError(
            "The body does not start with a pyfn size-report marker",
            why=f"its first line is {first[:80]!r}",
            fix="Post the comment.md the Action (or pyfn report --format markdown) wrote",
        )
    return first


def post_bodies(
    comments: Comments, number: int, bodies: Sequence[str], *, head_sha: str | None = None
) -> list[Posted | None]:
    """Post each body as its sticky comment on pull request ``number``: a function's own,
    or a job's combined comment (rows merged into it, and created only when something
    changed: ``None`` then).

    Each body must be for another comment: two for one would both go to it. With
    ``head_sha``, first check that the pull request's head is that commit (and that a
    combined body was made for it): a ``workflow_run`` workflow then cannot be led to
    comment on another one by an artifact that names the wrong number.
    """
    bodies = _one_body_per_job(bodies, head_sha)
    markers = [marker_of(body) for body in bodies]
    twice = sorted({m for m in markers if markers.count(m) > 1})
    if twice:  # one sticky comment per function: the second would replace the first
        names = ", ".join(_marker_name(m) for m in twice)
        raise CommentError(
            f"Several reports are for the same comment: {names}",
            why="each function (or job) has one sticky comment, so one report would "
            "replace the other",
            fix="Give each function its own name, and post one report per function",
        )
    jobs: dict[int, Combined] = {}
    for n, (marker, body) in enumerate(zip(markers, bodies)):
        if combined.is_marker(marker):
            jobs[n] = _combined_body(body, head_sha)
    if head_sha is not None:
        head = comments.pull_head(number)
        if head != head_sha:
            raise CommentError(
                f"Pull request #{number} is at {head[:12]}, not at {head_sha[:12]}",
                why="the report was made for another commit, or names another pull request",
                fix="Post reports only for the workflow run's own head commit",
            )
    return [
        post_combined(comments, number, jobs[n]) if n in jobs else comments.upsert(number, m, b)
        for n, (m, b) in enumerate(zip(markers, bodies))
    ]


def _one_body_per_job(bodies: Sequence[str], head_sha: str | None) -> list[str]:
    """The bodies, those of one job's comment (jobs of a matrix, each with its rows)
    merged into one, at the place of the first."""
    kept: list[str] = []
    jobs: dict[str, tuple[int, Combined]] = {}
    for body in bodies:
        if not combined.is_marker(marker_of(body)):
            kept.append(body)
            continue
        job = _combined_body(body, head_sha)
        name = combined.key_name(job.key)
        if name not in jobs:
            jobs[name] = (len(kept), job)
            kept.append(body)
            continue
        at, first = jobs[name]
        if first.sha != job.sha:
            raise CommentError(
                f"Two reports for the comment {name} were made at other commits",
                why=f"{first.sha[:12] or 'no commit'} and {job.sha[:12] or 'no commit'}",
                fix="Post the reports of one commit together",
            )
        merged = combined.merge(first, job)
        jobs[name] = (at, merged)
        kept[at] = combined.render(merged)
    return kept


def _marker_name(marker: str) -> str:
    for prefix in ("<!-- pyfn-size-report: ", combined.MARKER_PREFIX + ": "):
        marker = marker.removeprefix(prefix)
    return marker.removesuffix(" -->")


def _combined_body(body: str, head_sha: str | None) -> Combined:
    try:
        job = combined.parse(body)
    except NotCombined as exc:
        raise CommentError(
            "The combined size comment cannot be read",
            why=str(exc),
            fix="Post the comment-path file the Action wrote, unchanged",
        ) from None
    if head_sha is not None and job.sha and job.sha != head_sha:
        raise CommentError(
            f"The combined size comment was made for {job.sha[:12]}, not {head_sha[:12]}",
            why="a workflow_run may post only the report of its own head commit",
            fix="Post reports only for the workflow run's own head commit",
        )
    return job
