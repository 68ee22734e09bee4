"""The Action's previews: which functions of a pull request get one, and, when it closes,
every preview of it deleted and the job's comment told.

The flows do the work (:mod:`pyfn_action.flows.previews`); this adapter decides
from the event: a pull request of this repository, with credentials, an HTTP
function; and maps what became of each to the comment's lines.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from pyfn_action.cloud.auth import project_from_env
from pyfn_action.errors import CloudCredentialsError, CommentError, PyfnError
from pyfn_action.flows.previews import (
    PreviewTarget,
    delete_previews,
    prepare_preview,
    raise_failures,
    skip_reason,
)
from pyfn_action.github.comments import Comments, default_key, mark_previews_deleted
from pyfn_action.github.event import Event
from pyfn_action.github.functions import Function, require_deploy_settings
from pyfn_action.github.inputs import Inputs
from pyfn_action.github.workflow import Runner
from pyfn_action.report.previews import PreviewLine, describe_preview

log = logging.getLogger(__name__)


def prepare_previews(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    env: Mapping[str, str],
    runner: Runner,
) -> None:
    """Which functions get a preview, each judged (settings, credentials, the name not
    taken by another function) before anything is built; why the others get none."""
    if not event.is_pull_request:
        log.info(
            "preview is true, but this is a %s event: previews are made for pull requests",
            event.name or "local",
        )
        return
    assert event.pull_number is not None
    if not event.from_this_repository:
        runner.warning(
            f"No preview: pull request #{event.pull_number} comes from a fork "
            f"({event.head_repository or 'deleted'}), whose code never runs with this "
            "repository's credentials",
            title="pyfn: preview",
        )
        for function in functions:
            function.no_preview = "fork"
        return
    target = PreviewTarget(
        event.repository,
        event.pull_number,
        max_instances=inputs.preview_max_instances,
        public=inputs.public,
    )
    for function in functions:
        function.no_preview = skip_reason(function.config, function.settings)
        if function.no_preview:
            log.info("%s: no preview (an event function)", function.name)
            continue
        require_deploy_settings(function.settings, env, "preview")
        try:
            function.prepared = prepare_preview(function.config, function.settings, env, target)
        except CloudCredentialsError as exc:
            runner.warning(
                f"No preview: no Google Cloud credentials ({exc.what})", title="pyfn: preview"
            )
            for each in functions:
                each.prepared, each.preview_target = None, None
                each.no_preview = each.no_preview or "credentials"
            return
        function.preview_target = target


def close_previews(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    env: Mapping[str, str],
    runner: Runner,
) -> PyfnError | None:
    """The pull request closed: delete every preview of it, found by label in each
    project the functions deploy to, and say so in the job's comment. Back comes what
    failed, for the job to fail with (``None``: nothing did)."""
    from pyfn_action.cloud.previews import FUNCTION_LABEL

    assert event.pull_number is not None
    runner.set_output("preview-urls", "{}")
    projects = list(
        dict.fromkeys(f.settings.project or project_from_env(env) or "" for f in functions)
    )
    deleted: list[PreviewLine] = []
    running: set[str] = set()  # previews whose delete failed
    listed = True
    failure: PyfnError | None = None
    for project in projects:
        settings = dataclasses.replace(functions[0].settings, project=project or None)
        try:
            deletion = delete_previews(
                settings, env, repository=event.repository, pull=event.pull_number
            )
        except CloudCredentialsError as exc:
            runner.warning(
                f"No preview deleted: no Google Cloud credentials ({exc.what})",
                title="pyfn: preview",
            )
            return None
        except PyfnError as exc:  # not even listed: the comment is left as it is
            failure, listed = failure or exc, False
            continue
        for preview in deletion.deleted:
            function = preview.labels.get(FUNCTION_LABEL) or preview.name
            deleted.append(PreviewLine(function=function, name=preview.name, state="deleted"))
        running.update(d.listed.name for d in deletion.failed)
        try:
            raise_failures(deletion)
        except PyfnError as exc:
            failure = failure or exc
    names = ", ".join(p.name for p in deleted)
    log.info(
        "pull request #%d closed: %s",
        event.pull_number,
        f"deleted {len(deleted)} preview(s): {names}" if deleted else "no preview to delete",
    )
    runner.summary(
        f"Previews of pull request #{event.pull_number}: "
        + (f"deleted {names}." if deleted else "none to delete.")
        + "\n"
    )
    if inputs.comment_mode == "combined" and inputs.token and listed:
        comments = Comments.from_env(env, event.repository, inputs.token)
        try:
            posted = mark_previews_deleted(
                comments,
                event.pull_number,
                inputs.comment_key or default_key(env),
                deleted,
                running,
            )
            if posted is not None:
                log.info("%s the comment: %s", posted.action, posted.url)
        except CommentError as exc:
            runner.warning(
                f"The comment does not say the previews are deleted: {exc.message}", title="pyfn"
            )
    return failure


def preview_text(function: Function) -> str:
    """A per-function comment's preview line."""
    if function.preview is None:
        return ""
    return f"\nPreview: {describe_preview(preview_line(function))}\n"


def preview_line(function: Function) -> PreviewLine:
    preview = function.preview
    if preview is None:
        return PreviewLine(function.name, state="skipped", reason=function.no_preview)
    return PreviewLine(
        function.name,
        name=preview.name,
        url=preview.url,
        sha256=preview.sha256,
        public=preview.public,
    )
