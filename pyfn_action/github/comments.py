"""One sticky comment per function on a pull request, through GitHub's REST API.

The comment is found by the hidden marker its body starts with, across every
page of the pull request's comments (``Link: rel="next"``, 100 a page), and
updated in place. Only a comment written by the account the token posts as is
ever found or edited: anyone can write a marker, and a token that may write
pull requests may edit other people's comments too. That account is asked of
GitHub once (``GET /user`` for a personal or user token; GraphQL's ``viewer``
for an app's installation token, such as the workflow's own, which posts as
``github-actions[bot]``). Errors come back as :class:`CommentError`, with
``forbidden`` set when the token may not write (a fork's token: 401, 403, 404),
which callers treat as "post it elsewhere".
"""

from __future__ import annotations

import dataclasses
import logging
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from pyfn_action import __version__
from pyfn_action.errors import CommentError
from pyfn_action.report import combined
from pyfn_action.report.combined import Combined
from pyfn_action.report.fields import NotCombined
from pyfn_action.report.previews import PreviewLine
from pyfn_action.report.render import COMMENT_LIMIT, truncate

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 200  # 20,000 comments: far beyond any pull request GitHub can show
ATTEMPTS = 3
TIMEOUT_SECONDS = 30
SETTLE_SECONDS = 2.0  # after writing a shared comment, how long before it is read again


@dataclass(frozen=True)
class Posted:
    action: str  # created | updated
    comment_id: int
    url: str


class Comments:
    """The comments of one repository's pull requests, as one token sees them."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        *,
        graphql_url: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api_url.rstrip("/")
        self.graphql = graphql_url or graphql_url_for(self.api)
        self.repository = repository
        self._login: str | None = None
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"pyfn-action/{__version__}",
            }
        )
        self.sleep = sleep

    @classmethod
    def from_env(cls, env: Mapping[str, str], repository: str, token: str) -> Comments:
        """A client for the API a workflow runs against (``GITHUB_API_URL``, and
        ``GITHUB_GRAPHQL_URL`` on GitHub Enterprise Server), github.com's by default."""
        return cls(
            env.get("GITHUB_API_URL") or "https://api.github.com",
            repository,
            token,
            graphql_url=env.get("GITHUB_GRAPHQL_URL") or None,
        )

    def login(self) -> str:
        """The account this token posts as, as GitHub names it (asked once)."""
        if self._login is None:
            self._login = self._ask_login()
            log.debug("the token posts as %s", self._login)
        return self._login

    def _ask_login(self) -> str:
        try:
            response = self._call("GET", f"{self.api}/user", doing="reading the token's account")
            login = _login_of(response.json())
        except CommentError as exc:
            if exc.status != 403:
                raise
            login = ""  # an installation token (the workflow's own among them) may not
        if login:
            return login
        self._same_host(self.graphql, "GraphQL endpoint")
        answer = self._call(
            "POST",
            self.graphql,
            json={"query": VIEWER_QUERY},
            doing="asking which account the token posts as",
        )
        data = answer.json()
        found = data.get("data") if isinstance(data, dict) else None
        login = _login_of(found.get("viewer") if isinstance(found, dict) else None)
        if not login:
            raise CommentError(
                "GitHub did not say which account the token posts as",
                why="neither GET /user nor GraphQL's viewer named one",
                fix="Give the Action a token that can read its own identity (the default "
                "github.token, an app's installation token or a personal token)",
            )
        return login

    def find(self, number: int, marker: str) -> dict[str, Any] | None:
        """The first comment whose body starts with ``marker`` and that this token's
        account wrote, on any page; a marker in anyone else's comment is left alone."""
        found = self.find_all(number, marker, first=True)
        return found[0] if found else None

    def find_all(self, number: int, marker: str, *, first: bool = False) -> list[dict[str, Any]]:
        """Every comment of this token's account whose body starts with ``marker``, oldest
        first (``first``: stop at the first)."""
        me = self.login().casefold()
        url: str | None = f"{self.api}/repos/{self.repository}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            response = self._call("GET", url, params=params, doing="reading the comments")
            page = response.json()
            if not isinstance(page, list):
                raise CommentError("GitHub answered the comment list with something else")
            for comment in page:
                body = comment.get("body") if isinstance(comment, dict) else None
                if not isinstance(body, str) or not body.startswith(marker):
                    continue
                author = _login_of(comment.get("user"))
                if author.casefold() == me:
                    found.append(dict(comment))
                    if first:
                        return found
                    continue
                log.warning(
                    "comment %s carries the size report's marker but was written by %s, "
                    "not by %s: left alone",
                    comment.get("id"),
                    author or "an unknown account",
                    self.login(),
                )
            url, params = self._next(response), None
        raise CommentError(f"More than {MAX_PAGES} pages of comments on #{number}")

    def create(self, number: int, body: str) -> Posted:
        url = f"{self.api}/repos/{self.repository}/issues/{number}/comments"
        made = self._call("POST", url, json={"body": body}, doing="creating the comment")
        return _posted("created", made.json())

    def update(self, comment_id: int, body: str) -> Posted:
        url = f"{self.api}/repos/{self.repository}/issues/comments/{int(comment_id)}"
        changed = self._call("PATCH", url, json={"body": body}, doing="updating the comment")
        return _posted("updated", changed.json())

    def delete(self, comment_id: int) -> None:
        url = f"{self.api}/repos/{self.repository}/issues/comments/{int(comment_id)}"
        self._call("DELETE", url, doing="deleting a duplicate comment")

    def upsert(self, number: int, marker: str, body: str) -> Posted:
        """Create the comment, or update the one that carries ``marker``."""
        if not body.startswith(marker):
            raise ValueError("the body must start with its marker")
        body = truncate(body, COMMENT_LIMIT)
        existing = self.find(number, marker)
        if existing is None:
            return self.create(number, body)
        return self.update(int(existing["id"]), body)

    def pull_head(self, number: int) -> str:
        """The head commit of pull request ``number``."""
        url = f"{self.api}/repos/{self.repository}/pulls/{number}"
        data = self._call("GET", url, doing="reading the pull request").json()
        head = data.get("head") if isinstance(data, dict) else None
        sha = head.get("sha") if isinstance(head, dict) else None
        if not isinstance(sha, str):
            raise CommentError(f"GitHub gave no head commit for pull request #{number}")
        return sha

    def _next(self, response: requests.Response) -> str | None:
        """The ``rel="next"`` page, only if it is on the same API host (the token goes there)."""
        url = response.links.get("next", {}).get("url")
        if not url:
            return None
        self._same_host(str(url), "next page")
        return str(url)

    def _same_host(self, url: str, what: str) -> None:
        """The token goes only to the API's own host."""
        ours, theirs = urllib.parse.urlsplit(self.api), urllib.parse.urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise CommentError(f"GitHub's {what} is on another host: {theirs.netloc}")

    def _call(self, method: str, url: str, *, doing: str, **kwargs: Any) -> requests.Response:
        delay = 1.0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
            except requests.RequestException as exc:
                if attempt == ATTEMPTS:
                    raise CommentError(
                        f"GitHub could not be reached while {doing}", why=str(exc)
                    ) from None
            else:
                if response.status_code < 400:
                    return response
                transient = response.status_code in (429, 500, 502, 503, 504)
                if not transient or attempt == ATTEMPTS:
                    raise _error(response, doing)
            log.debug("GitHub %s %s: retrying in %.0f s", method, url, delay)
            self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


VIEWER_QUERY = "query { viewer { login } }"


def graphql_url_for(api_url: str) -> str:
    """GraphQL's endpoint beside a REST API URL (GitHub Enterprise Server: /api/graphql)."""
    api = api_url.rstrip("/")
    if api.endswith("/api/v3"):
        return api.removesuffix("/v3") + "/graphql"
    return api + "/graphql"


def _login_of(user: Any) -> str:
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) else ""


def post_combined(comments: Comments, number: int, new: Combined) -> Posted | None:
    """Put ``new``'s rows into the comment its key names on pull request ``number``;
    create that comment only when a function changed (or is over a limit). ``None``:
    nothing was posted.

    Jobs that share a comment (a matrix, one ``comment-key``) each merge their rows into
    it. GitHub has no conditional update, so two jobs that finish together could each
    write what they read before the other wrote, or each create the comment. So a job
    that created the comment, or kept other jobs' rows in it, waits a moment and reads it
    again: a second comment of the same key is folded into the oldest and deleted, and
    rows of its own that went missing are written again; a few rounds at most.
    """
    marker = combined.marker(new.key)
    posted: Posted | None = None
    for _ in range(ATTEMPTS):
        found = comments.find_all(number, marker)
        current = _merged(found)
        merged = combined.merge(current, new)
        if not found and not merged.changed:
            log.info("no function changed: no size comment created")
            return None
        body = combined.render(merged)
        if not found:
            posted = comments.create(number, body)
        elif found[0].get("body") != body:
            posted = comments.update(int(found[0]["id"]), body)
        else:
            posted = _posted("unchanged", found[0])
        for duplicate in found[1:]:
            comments.delete(int(duplicate["id"]))
        if found and len(found) == 1 and len(merged.entries) == len(new.entries):
            return posted  # nobody else's rows, and the comment was there: nothing to race
        comments.sleep(SETTLE_SECONDS)
        again = comments.find_all(number, marker)
        if len(again) == 1 and _holds(str(again[0].get("body", "")), new):
            return posted
        log.info("another job wrote the shared size comment meanwhile: writing it again")
    log.warning(
        "the size comment was rewritten by other jobs %d times; this job's rows may "
        "be missing from it until the next run",
        ATTEMPTS,
    )
    return posted


def default_key(env: Mapping[str, str]) -> str:
    """The job's comment key when ``comment-key`` is not set: the workflow's and the job's
    names, so each job has a comment and a matrix's jobs share theirs."""
    parts = [env.get("GITHUB_WORKFLOW", ""), env.get("GITHUB_JOB", "")]
    return "/".join(p for p in parts if p) or "pyfn"


def mark_previews_deleted(
    comments: Comments,
    number: int,
    key: str,
    deleted: Sequence[PreviewLine],
    running: Collection[str] = (),
) -> Posted | None:
    """Say in the job's comment that its previews are gone (the pull request closed):
    every preview it shows running but those named in ``running`` (their delete failed),
    and each in ``deleted``. ``None``: no comment to say it in (none is made for it)."""
    found = comments.find_all(number, combined.marker(key))
    current = _merged(found)
    if current is None:
        return None
    gone = {
        p.function: dataclasses.replace(p, state="deleted", url="")
        for p in current.previews
        if p.state == "live" and p.name not in running
    }
    for line in deleted:
        gone.setdefault(line.function, line)
    kept = [p for p in current.previews if p.function not in gone]
    previews = tuple(sorted([*kept, *gone.values()], key=lambda p: p.function))
    if previews == current.previews:
        return _posted("unchanged", found[0])
    body = combined.render(dataclasses.replace(current, previews=previews))
    return comments.update(int(found[0]["id"]), body)


def _merged(found: Sequence[dict[str, Any]]) -> Combined | None:
    """The rows of every comment found (a duplicate's too), the oldest's first."""
    current: Combined | None = None
    for comment in found:
        try:
            read = combined.parse(str(comment.get("body", "")))
        except NotCombined as exc:
            log.warning(
                "the size comment %s cannot be read back (%s): drawn anew", comment.get("id"), exc
            )
            continue
        current = read if current is None else combined.merge(read, current)
    return current


def _holds(body: str, new: Combined) -> bool:
    """Whether ``body`` shows every row of ``new`` as ``new`` has it."""
    try:
        shown = {e.name: e for e in combined.parse(body).entries}
    except NotCombined:
        return False
    return all(
        (e.name in shown)
        and (shown[e.name].zipped, shown[e.name].change, shown[e.name].state)
        == (e.zipped, e.change, e.state)
        for e in new.entries
    )


def _posted(action: str, comment: Any) -> Posted:
    return Posted(action, int(comment["id"]), str(comment.get("html_url", "")))


def _error(response: requests.Response, doing: str) -> CommentError:
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        message = response.text[:200]
    status = response.status_code
    fix = ""
    if status in (401, 403, 404):
        fix = (
            "Give the job `permissions: pull-requests: write`; from a fork the token is "
            "read-only, so post the body from a workflow_run workflow (see README)"
        )
    return CommentError(
        f"GitHub answered {status} while {doing}", status=status, why=message, fix=fix
    )
