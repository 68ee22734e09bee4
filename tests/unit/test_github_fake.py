"""The GitHub REST API contract fake: it serves the sticky-comment calls and says no like GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.github_api import (
    BOT,
    FakeGitHub,
    OpenAPIMissing,
    Recorded,
    fake_github,
    github_api,
    load_document,
)
from urllib3.util import SKIP_HEADER

TOKEN = "ghs_test-token"  # noqa: S105 - the fake's token
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "pyfn-action-tests",
}
COMMENTS = "/repos/octo/app/issues/7/comments"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github(token=TOKEN) as fake:
        yield fake


def call(
    fake: FakeGitHub,
    method: str,
    path: str,
    *,
    headers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One request to the fake; ``path`` may be a full URL (a Link target)."""
    url = path if path.startswith("http") else fake.base + path
    merged: dict[str, Any] = {**HEADERS, **(headers or {})}
    return requests.request(method, url, headers=merged, timeout=10, **kwargs)


def assert_github_error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    assert isinstance(answer["message"], str) and answer["message"]
    assert answer["documentation_url"].startswith("https://docs.github.com/")
    assert answer["status"] == str(status)
    return answer


# --- the happy path ---------------------------------------------------------------------


def test_create_list_update_round_trip(github: FakeGitHub) -> None:
    github.add_pull(
        "octo",
        "app",
        7,
        head_sha="a" * 40,
        base_sha="b" * 40,
        head_repo="fork-owner/app",
        head_ref="topic",
    )
    github.add_comment("octo", "app", 7, "LGTM", user="octocat")

    pull = call(github, "GET", "/repos/octo/app/pulls/7")
    assert pull.status_code == 200
    assert pull.json()["number"] == 7
    assert pull.json()["head"]["sha"] == "a" * 40
    assert pull.json()["head"]["repo"]["full_name"] == "fork-owner/app"
    assert pull.json()["head"]["repo"]["fork"] is True
    assert pull.json()["base"]["sha"] == "b" * 40
    assert pull.json()["base"]["ref"] == "main"
    assert pull.json()["state"] == "open"

    body = "<!-- pyfn-action:hello -->\n### hello: 12.3 MB"
    created = call(github, "POST", COMMENTS, json={"body": body})
    assert created.status_code == 201
    comment = created.json()
    assert comment["body"] == body
    assert comment["user"]["login"] == BOT
    assert comment["user"]["type"] == "Bot"
    assert comment["html_url"].endswith(f"/octo/app/pull/7#issuecomment-{comment['id']}")
    assert created.headers["Location"] == comment["url"]
    assert comment["url"] == f"{github.base}/repos/octo/app/issues/comments/{comment['id']}"

    listed = call(github, "GET", COMMENTS, params={"per_page": 100})
    assert listed.status_code == 200
    assert [c["body"] for c in listed.json()] == ["LGTM", body]
    assert "Link" not in listed.headers

    updated = call(
        github,
        "PATCH",
        f"/repos/octo/app/issues/comments/{comment['id']}",
        json={"body": body + " → 12.1 MB"},
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == comment["id"]
    assert updated.json()["body"].endswith("12.1 MB")

    assert github.bodies("octo", "app", 7) == ["LGTM", body + " → 12.1 MB"]
    assert [c["id"] for c in github.comments("octo", "app", 7)][1] == comment["id"]
    assert [(r.method, r.status) for r in github.requests] == [
        ("GET", 200),
        ("POST", 201),
        ("GET", 200),
        ("PATCH", 200),
    ]
    first: Recorded = github.requests[0]
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["user-agent"] == "pyfn-action-tests"
    assert github.requests[2].query == {"per_page": "100"}
    assert github.requests[1].body == {"body": body}
    assert [r.method for r in github.changes()] == ["POST", "PATCH"]
    assert github.violations == []


def test_token_scheme_and_newer_api_version_are_accepted(github: FakeGitHub) -> None:
    headers = {"Authorization": f"token {TOKEN}", "X-GitHub-Api-Version": "2026-03-10"}
    answer = call(github, "POST", COMMENTS, json={"body": "x"}, headers=headers)
    assert answer.status_code == 201
    assert answer.headers["X-GitHub-Api-Version-Selected"] == "2026-03-10"
    no_version = call(github, "GET", COMMENTS, headers={"X-GitHub-Api-Version": None})
    assert no_version.status_code == 200
    assert no_version.headers["X-GitHub-Api-Version-Selected"] == "2022-11-28"
    assert github.violations == []


def test_get_and_delete_comment_and_unknown_ids(github: FakeGitHub) -> None:
    mine = github.add_comment("octo", "app", 7, "one")
    assert call(github, "GET", f"/repos/octo/app/issues/comments/{mine['id']}").json() == mine
    # a comment id of another repository is not found through this one
    other = call(
        github, "PATCH", f"/repos/octo/other/issues/comments/{mine['id']}", json={"body": "x"}
    )
    assert_github_error(other, 404)
    missing = call(github, "PATCH", "/repos/octo/app/issues/comments/999", json={"body": "x"})
    assert_github_error(missing, 404)
    assert_github_error(call(github, "GET", "/repos/octo/app/pulls/99"), 404)
    gone = call(github, "DELETE", f"/repos/octo/app/issues/comments/{mine['id']}")
    assert gone.status_code == 204
    assert gone.content == b""
    assert github.comments("octo", "app", 7) == []
    assert github.violations == []


# --- pagination -------------------------------------------------------------------------


def test_pagination_over_350_comments(github: FakeGitHub) -> None:
    seeded = [github.add_comment("octo", "app", 7, f"comment {i}")["id"] for i in range(350)]
    first = call(github, "GET", COMMENTS, params={"per_page": 100})
    url = f"{github.base}{COMMENTS}"
    assert first.headers["Link"] == (
        f'<{url}?per_page=100&page=2>; rel="next", <{url}?per_page=100&page=4>; rel="last"'
    )

    pages: list[list[dict[str, Any]]] = [first.json()]
    links = [first.headers["Link"]]
    response = first
    for _ in range(10):  # bounded: four pages expected
        if "next" not in response.links:
            break
        response = call(github, "GET", response.links["next"]["url"])
        assert response.status_code == 200
        pages.append(response.json())
        links.append(response.headers["Link"])
    else:
        pytest.fail("rel=next never ended")

    assert [len(p) for p in pages] == [100, 100, 100, 50]
    visited = [c["id"] for page in pages for c in page]
    assert visited == seeded  # each comment once, oldest first
    assert links[1] == (
        f'<{url}?per_page=100&page=1>; rel="prev", <{url}?per_page=100&page=3>; rel="next", '
        f'<{url}?per_page=100&page=4>; rel="last", <{url}?per_page=100&page=1>; rel="first"'
    )
    assert links[3] == (
        f'<{url}?per_page=100&page=3>; rel="prev", <{url}?per_page=100&page=1>; rel="first"'
    )
    assert [r.query.get("page") for r in github.requests] == [None, "2", "3", "4"]
    assert github.violations == []


def test_default_page_size_is_30(github: FakeGitHub) -> None:
    for i in range(31):
        github.add_comment("octo", "app", 7, f"c{i}")
    answer = call(github, "GET", COMMENTS)
    assert len(answer.json()) == 30
    assert answer.links["last"]["url"] == f"{github.base}{COMMENTS}?page=2"
    assert answer.links["next"]["url"] == f"{github.base}{COMMENTS}?page=2"
    beyond = call(github, "GET", COMMENTS, params={"page": 9})
    assert beyond.json() == []
    assert github.violations == []


# --- the fake says no -------------------------------------------------------------------


def _post(body: Any) -> dict[str, Any]:
    return {"method": "POST", "path": COMMENTS, "json": body}


NO = {
    "post-without-body": (_post({}), 422, "'body' is a required property"),
    "post-without-any-json": ({"method": "POST", "path": COMMENTS}, 422, "body is required"),
    "unknown-field": (_post({"body": "x", "bdy": "y"}), 422, "request body.bdy: unknown field"),
    "wrong-type": (_post({"body": 123}), 422, "123 is not of type 'string'"),
    "null-body": (_post({"body": None}), 422, "None is not of type 'string'"),
    "not-json": (
        {
            "method": "POST",
            "path": COMMENTS,
            "data": b"{body",
            "headers": {"Content-Type": "application/json"},
        },
        400,
        "not JSON",
    ),
    "wrong-content-type": (
        {
            "method": "POST",
            "path": COMMENTS,
            "data": b'{"body": "x"}',
            "headers": {"Content-Type": "text/plain"},
        },
        415,
        "Content-Type",
    ),
    "per-page-101": ({"method": "GET", "path": COMMENTS + "?per_page=101"}, 400, "maximum of 100"),
    "per-page-abc": (
        {"method": "GET", "path": COMMENTS + "?per_page=abc"},
        400,
        "'abc' is not of type 'integer'",
    ),
    "repeated-page": (
        {"method": "GET", "path": COMMENTS + "?page=1&page=2"},
        400,
        "page given 2 times",
    ),
    "since-not-a-date": (
        {"method": "GET", "path": COMMENTS + "?since=yesterday"},
        400,
        "is not a 'date-time'",
    ),
    "unknown-query": (
        {"method": "GET", "path": COMMENTS + "?sort=created"},
        400,
        "unknown query parameter 'sort'",
    ),
    "issue-number-not-int": (
        {"method": "GET", "path": "/repos/octo/app/issues/abc/comments"},
        404,
        "'abc' is not of type 'integer'",
    ),
    "wrong-method": (
        {"method": "PUT", "path": COMMENTS, "json": {"body": "x"}},
        404,
        "has no PUT (only GET, POST)",
    ),
    "unknown-path": (
        {"method": "GET", "path": "/repos/octo/app/sticky-comments"},
        404,
        "no such path",
    ),
    "trailing-slash": ({"method": "GET", "path": COMMENTS + "/"}, 404, "no such path"),
    "no-authorization": (
        {"method": "GET", "path": COMMENTS, "headers": {"Authorization": None}},
        401,
        "no Authorization",
    ),
    "wrong-token": (
        {"method": "GET", "path": COMMENTS, "headers": {"Authorization": "Bearer ghs_other"}},
        401,
        "Authorization is not",
    ),
    "basic-auth": (
        {"method": "GET", "path": COMMENTS, "headers": {"Authorization": f"Basic {TOKEN}"}},
        401,
        "Authorization is not",
    ),
    "no-user-agent": (
        {"method": "GET", "path": COMMENTS, "headers": {"User-Agent": SKIP_HEADER}},
        403,
        "no User-Agent",
    ),
    "wrong-api-version": (
        {"method": "GET", "path": COMMENTS, "headers": {"X-GitHub-Api-Version": "v3"}},
        400,
        "X-GitHub-Api-Version 'v3'",
    ),
    "accept-html": (
        {"method": "GET", "path": COMMENTS, "headers": {"Accept": "text/html"}},
        415,
        "Accept is 'text/html'",
    ),
    "accept-anything": (
        {"method": "GET", "path": COMMENTS, "headers": {"Accept": "*/*"}},
        415,
        "Accept is '*/*'",
    ),
}


@pytest.mark.parametrize(("case", "status", "violation"), NO.values(), ids=NO.keys())
def test_the_fake_says_no(
    github: FakeGitHub, case: dict[str, Any], status: int, violation: str
) -> None:
    github.add_comment("octo", "app", 7, "seeded")
    spec = dict(case)
    answer = call(github, spec.pop("method"), spec.pop("path"), **spec)
    assert_github_error(answer, status)
    assert len(github.violations) >= 1
    assert any(violation in v for v in github.violations), github.violations
    assert github.bodies("octo", "app", 7) == ["seeded"]  # nothing was written
    assert github.requests[-1].status == status
    # the error answer itself is GitHub-shaped: no violation blames the fake
    assert not any("the fake's own answer" in v for v in github.violations)


def test_messages_read_like_github(github: FakeGitHub) -> None:
    wrong_token = call(github, "GET", COMMENTS, headers={"Authorization": "Bearer nope"})
    assert wrong_token.json()["message"] == "Bad credentials"
    wrong_version = call(github, "GET", COMMENTS, headers={"X-GitHub-Api-Version": "v3"})
    assert wrong_version.json()["message"].startswith(
        'The version you specified in the "X-GitHub-Api-Version" request header, "v3", '
        "is not a supported version."
    )
    missing = call(github, "POST", COMMENTS, json={})
    assert missing.json()["message"].startswith("Invalid request.\n\n")
    assert missing.json()["documentation_url"] == (
        "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
    )


def test_body_over_65536_characters_is_refused(github: FakeGitHub) -> None:
    exact = call(github, "POST", COMMENTS, json={"body": "x" * 65536})
    assert exact.status_code == 201
    assert github.violations == []

    too_long = call(github, "POST", COMMENTS, json={"body": "x" * 65537})
    answer = assert_github_error(too_long, 422)
    assert answer["message"] == "Validation Failed"
    assert answer["errors"] == [
        {
            "resource": "IssueComment",
            "code": "custom",
            "field": "body",
            "message": "body is too long (maximum is 65536 characters)",
        },
    ]
    patched = call(
        github,
        "PATCH",
        f"/repos/octo/app/issues/comments/{exact.json()['id']}",
        json={"body": "é" * 65537},
    )
    assert_github_error(patched, 422)
    assert len(github.violations) == 2
    assert all("more than GitHub's 65536" in v for v in github.violations)
    assert github.bodies("octo", "app", 7) == ["x" * 65536]


# --- faults -----------------------------------------------------------------------------


def test_read_only_token_gets_403_on_writes(github: FakeGitHub) -> None:
    mine = github.add_comment("octo", "app", 7, "before", user=BOT)
    github.read_only = True
    created = call(github, "POST", COMMENTS, json={"body": "x"})
    answer = assert_github_error(created, 403)
    assert answer["message"] == "Resource not accessible by integration"
    updated = call(
        github, "PATCH", f"/repos/octo/app/issues/comments/{mine['id']}", json={"body": "after"}
    )
    assert_github_error(updated, 403)
    assert call(github, "GET", COMMENTS).status_code == 200  # reading still works
    assert github.bodies("octo", "app", 7) == ["before"]
    assert github.violations == []  # a fork's token is a situation, not a contract breach


def test_fail_next_injects_once_then_behaves(github: FakeGitHub) -> None:
    github.fail_next(
        "post", r"/issues/\d+/comments$", 403, "Resource not accessible by integration"
    )
    assert call(github, "GET", COMMENTS).status_code == 200  # another method: untouched
    failed = call(github, "POST", COMMENTS, json={"body": "x"})
    assert failed.status_code == 403
    assert failed.json() == {
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
        "status": "403",
    }
    assert github.bodies("octo", "app", 7) == []
    again = call(github, "POST", COMMENTS, json={"body": "x"})
    assert again.status_code == 201
    assert github.bodies("octo", "app", 7) == ["x"]
    assert github.violations == []


def test_fail_next_with_headers_and_repeats(github: FakeGitHub) -> None:
    github.fail_next(
        "GET",
        "/comments",
        429,
        "API rate limit exceeded",
        times=2,
        headers={"Retry-After": "1", "X-RateLimit-Remaining": "0"},
    )
    for _ in range(2):
        limited = call(github, "GET", COMMENTS)
        assert_github_error(limited, 429)
        assert limited.headers["Retry-After"] == "1"
    assert call(github, "GET", COMMENTS).status_code == 200
    assert github.violations == []


def test_fail_next_still_checks_the_request(github: FakeGitHub) -> None:
    github.fail_next("POST", "/comments", 500, "Server Error")
    assert_github_error(call(github, "POST", COMMENTS, json={"bdy": "x"}), 422)
    assert github.violations != []
    assert_github_error(call(github, "POST", COMMENTS, json={"body": "x"}), 500)


# --- the fake's own answers -------------------------------------------------------------


def test_a_broken_answer_is_a_violation(github: FakeGitHub) -> None:
    def break_it(request: Recorded, body: Any) -> Any:
        if request.method == "POST":
            return {**body, "id": str(body["id"]), "user": {"login": "x"}}
        return body

    github.tamper = break_it
    assert call(github, "POST", COMMENTS, json={"body": "x"}).status_code == 201
    wrong = [v for v in github.violations if "the fake's own answer is wrong" in v]
    assert any(
        "response 201 to issues/create-comment.id: '2000000001' is not of type 'integer'" in v
        for v in wrong
    ), wrong
    assert any(".user: " in v and "required property" in v for v in wrong), wrong


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "problem"),
    [
        ("GET", "/repos/o/r/pulls/1", 200, {"number": 1}, "'head' is a required property"),
        ("GET", "/repos/o/r/issues/1/comments", 200, {"id": 1}, "is not of type 'array'"),
        ("GET", "/repos/o/r/issues/1/comments", 200, [{"id": 1}], "[0]: 'node_id' is a req"),
        ("PATCH", "/repos/o/r/issues/comments/1", 201, None, "not documented"),
        ("DELETE", "/repos/o/r/issues/comments/1", 204, {"x": 1}, "has no body"),
        ("POST", "/repos/o/r/issues/1/comments", 403, {"msg": "x"}, "'message' is a required"),
        ("POST", "/repos/o/r/issues/1/comments", 422, {"message": 1}, "is not of type 'str"),
    ],
)
def test_response_validator_reports_bad_shapes(
    method: str, path: str, status: int, body: Any, problem: str
) -> None:
    problems = github_api().response_errors(method, path, status, body)
    assert any(problem in p for p in problems), problems


def test_response_validator_accepts_nulls_where_nullable(github: FakeGitHub) -> None:
    pull = github.add_pull("o", "r", 1, head_sha="a" * 40, base_sha="b" * 40)
    assert pull["milestone"] is None and pull["auto_merge"] is None
    assert github_api().response_errors("GET", "/repos/o/r/pulls/1", 200, pull) == []
    pull["head"]["repo"] = None  # GitHub sends this for a deleted fork; the schema forbids it
    assert github_api().response_errors("GET", "/repos/o/r/pulls/1", 200, pull) != []


def test_routes_prefer_literal_segments() -> None:
    api = github_api()
    found = api.match("/repos/o/r/issues/comments/5")
    assert found is not None
    assert found[0].template == "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    assert found[1] == {"owner": "o", "repo": "r", "comment_id": "5"}
    found = api.match("/repos/o/r/issues/5/comments")
    assert found is not None
    assert found[0].template == "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    assert api.match("/repos/o/r/issues/5/comments/") is None


def test_a_missing_description_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(OpenAPIMissing, match=r"cd tests/node && npm ci"):
        load_document(tmp_path / "api.github.com.json")
