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

import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from pyfn_action import __version__
from pyfn_action.errors import PyfnError
from pyfn_action.report.render import COMMENT_LIMIT, truncate

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 200  # 20,000 comments: far beyond any pull request GitHub can show
ATTEMPTS = 3
TIMEOUT_SECONDS = 30


class CommentError(PyfnError):
    """A pull-request comment could not be read or written."""

    exit_code = 17

    def __init__(self, what: str, *, status: int | None = None, why: str = "",
                 fix: str = "") -> None:  # fmt: skip
        super().__init__(what, why=why, fix=fix)
        self.status = status

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403, 404)


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
        answer = self._call("POST", self.graphql, json={"query": VIEWER_QUERY},
                            doing="asking which account the token posts as")  # fmt: skip
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
        me = self.login().casefold()
        url: str | None = f"{self.api}/repos/{self.repository}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            if url is None:
                return None
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
                    return dict(comment)
                log.warning(
                    "comment %s carries the size report's marker but was written by %s, "
                    "not by %s: left alone",
                    comment.get("id"),
                    author or "an unknown account",
                    self.login(),
                )
            url, params = self._next(response), None
        raise CommentError(f"More than {MAX_PAGES} pages of comments on #{number}")

    def upsert(self, number: int, marker: str, body: str) -> Posted:
        """Create the comment, or update the one that carries ``marker``."""
        if not body.startswith(marker):
            raise ValueError("the body must start with its marker")
        body = truncate(body, COMMENT_LIMIT)
        existing = self.find(number, marker)
        if existing is None:
            url = f"{self.api}/repos/{self.repository}/issues/{number}/comments"
            made = self._call("POST", url, json={"body": body}, doing="creating the comment")
            return _posted("created", made.json())
        url = f"{self.api}/repos/{self.repository}/issues/comments/{int(existing['id'])}"
        changed = self._call("PATCH", url, json={"body": body}, doing="updating the comment")
        return _posted("updated", changed.json())

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
                    raise CommentError(f"GitHub could not be reached while {doing}",
                                       why=str(exc)) from None  # fmt: skip
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


_MARKER_LINE = re.compile(
    r"^<!-- pyfn-size-report: ([A-Za-z0-9_.-]{1,63}|[A-Za-z0-9_.-]{0,40}\+[0-9a-f]{16}) -->$"
)


def marker_of(body: str) -> str:
    """The marker a body starts with (a ``pyfn report --format markdown`` body's first line)."""
    first = body.split("\n", 1)[0]
    if not _MARKER_LINE.match(first):
        raise CommentError(
            "The body does not start with a pyfn size-report marker",
            why=f"its first line is {first[:80]!r}",
            fix="Post the comment.md the Action (or pyfn report --format markdown) wrote",
        )
    return first


def post_bodies(
    comments: Comments, number: int, bodies: Sequence[str], *, head_sha: str | None = None
) -> list[Posted]:
    """Post each body as its function's sticky comment on pull request ``number``.

    Each body must be another function's: two for one function would both go to its
    one comment. With ``head_sha``, first check that the pull request's head is that
    commit: a ``workflow_run`` workflow then cannot be led to comment on another one
    by an artifact that names the wrong number.
    """
    markers = [marker_of(body) for body in bodies]
    twice = sorted({m for m in markers if markers.count(m) > 1})
    if twice:  # one sticky comment per function: the second would replace the first
        names = ", ".join(m.removeprefix("<!-- pyfn-size-report: ").removesuffix(" -->")
                          for m in twice)  # fmt: skip
        raise CommentError(
            f"Several reports are for the same function: {names}",
            why="each function has one sticky comment, so one report would replace the other",
            fix="Give each function its own name, and post one report per function",
        )
    if head_sha is not None:
        head = comments.pull_head(number)
        if head != head_sha:
            raise CommentError(
                f"Pull request #{number} is at {head[:12]}, not at {head_sha[:12]}",
                why="the report was made for another commit, or names another pull request",
                fix="Post reports only for the workflow run's own head commit",
            )
    return [comments.upsert(number, m, body) for m, body in zip(markers, bodies)]


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
    return CommentError(f"GitHub answered {status} while {doing}", status=status,
                        why=message, fix=fix)  # fmt: skip
