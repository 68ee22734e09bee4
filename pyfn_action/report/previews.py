"""A function's preview as the job's comment says it: a line of its "Previews" section,
and its row of the comment's hidden data, read back field by field.

A preview runs at a URL with a bundle (``live``), was deleted as the pull request
closed (``deleted``), or was not made (``skipped``, with a reason of
:data:`NO_PREVIEW`). Only a URL of the shape Cloud Functions gives is ever shown:
the comment never carries markup it did not write.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pyfn_action.report.fields import NotCombined, text

PREVIEW_STATES = ("live", "deleted", "skipped")
# Why a function has no preview, as the comment says it.
NO_PREVIEW = {
    "event": "an event function's preview would take its trigger's events too",
    "fork": "pull requests from forks get no preview",
    "credentials": "the job had no Google Cloud credentials",
}
IDENTITY_CALL = 'curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" URL'
URL = r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"


@dataclass(frozen=True)
class PreviewLine:
    """A function's preview, as the comment says it: running at ``url`` with the bundle
    ``sha256``, deleted (the pull request closed), or skipped (``reason``, of NO_PREVIEW)."""

    function: str
    name: str = ""  # the preview function's own name: hello-pr-42
    state: str = "live"  # live | deleted | skipped
    url: str = ""
    sha256: str = ""
    public: bool = False  # anyone may call it (allow-unauthenticated)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.url and not re.fullmatch(URL, self.url):  # never markup in the comment
            object.__setattr__(self, "url", "")


def describe_preview(p: PreviewLine) -> str:
    """A running preview in one line: where, which function, which bundle, who may call."""
    access = "anyone may call it" if p.public else "private"
    return f"{p.url or '(no URL)'} · `{p.name}` runs bundle `{p.sha256}` · {access}"


def preview_section(previews: Sequence[PreviewLine]) -> list[str]:
    """The previews: each running one's URL and bundle, the deleted ones named once, and
    how to call a private one."""
    if not previews:
        return []
    lines = ["#### Previews", ""]
    for p in sorted(previews, key=lambda p: p.function):
        if p.state == "live":
            lines.append(f"- `{p.function}`: {describe_preview(p)}")
        elif p.state == "skipped":
            lines.append(f"- `{p.function}`: no preview: {NO_PREVIEW.get(p.reason, p.reason)}")
    deleted = sorted(p.name for p in previews if p.state == "deleted" and p.name)
    if deleted:
        names = ", ".join(f"`{n}`" for n in deleted)
        lines.append(f"- Deleted as the pull request closed: {names}")
    if any(p.state == "live" and not p.public for p in previews):
        lines += [
            "",
            f"_A private preview answers those the project lets invoke it: `{IDENTITY_CALL}`._",
        ]
    return [*lines, ""]


def preview_data(p: PreviewLine) -> list[object]:
    """The preview's row of the comment's hidden data."""
    return [p.function, p.name, p.state, p.url, p.sha256, p.public, p.reason]


def read_preview(row: object) -> PreviewLine:
    """A preview's row read back from the hidden data; :class:`NotCombined` if it is not
    one pyfn could have written."""
    if not isinstance(row, list) or len(row) != 7:
        raise NotCombined("a preview is not a preview's row")
    function, name, state, url, sha256, public, reason = row
    if state not in PREVIEW_STATES or not isinstance(public, bool):
        raise NotCombined("a preview has an unknown state")
    if reason not in ("", *NO_PREVIEW):
        raise NotCombined("a preview gives an unknown reason")
    line = PreviewLine(
        function=text(function, 63, r"[A-Za-z0-9_.-]+"),
        name=text(name, 63, r"[a-z0-9-]*"),
        state=state,
        url=text(url, 300, f"(?:{URL})?"),
        sha256=text(sha256, 64, r"(?:[0-9a-f]{64})?"),
        public=public,
        reason=reason,
    )
    if not line.function:
        raise NotCombined("a preview names no function")
    return line
