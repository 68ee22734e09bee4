"""The sticky comment client against the GitHub contract fake."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.github_api import FakeGitHub, fake_github

from pyfn_action.cli import run
from pyfn_action.errors import CommentError
from pyfn_action.github.bodies import marker_of, post_bodies
from pyfn_action.github.comments import (
    SETTLE_SECONDS,
    Comments,
    Posted,
    graphql_url_for,
    post_combined,
)
from pyfn_action.report import combined
from pyfn_action.report.combined import Combined
from pyfn_action.report.compare import marker
from pyfn_action.report.entries import FunctionEntry
from pyfn_action.report.render import COMMENT_LIMIT, TRUNCATED_NOTE

TOKEN = "ghs_unit-test-token"  # noqa: S105 - the fake's token
REPO = "acme/fns"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github(token=TOKEN) as fake:
        yield fake
    assert fake.violations == []


def client(fake: FakeGitHub, sleeps: list[float] | None = None) -> Comments:
    record = sleeps if sleeps is not None else []
    return Comments(fake.base, REPO, TOKEN, sleep=record.append)


def test_upsert_creates_then_updates_the_same_comment(github: FakeGitHub) -> None:
    comments = client(github)
    first = comments.upsert(3, marker("a"), marker("a") + "\none")
    second = comments.upsert(3, marker("a"), marker("a") + "\ntwo")
    other = comments.upsert(3, marker("b"), marker("b") + "\nthree")
    assert (first.action, second.action, other.action) == ("created", "updated", "created")
    assert first.comment_id == second.comment_id != other.comment_id
    assert github.bodies("acme", "fns", 3) == [marker("a") + "\ntwo", marker("b") + "\nthree"]


def test_a_marker_quoted_inside_someone_elses_comment_is_not_ours(github: FakeGitHub) -> None:
    github.add_comment("acme", "fns", 3, "> " + marker("a") + "\nwhy is it so big?")
    posted = client(github).upsert(3, marker("a"), marker("a") + "\nreport")
    assert posted.action == "created"


def test_an_over_long_body_is_cut_with_a_note(github: FakeGitHub) -> None:
    body = marker("a") + "\n" + "\n".join("x" * 99 for _ in range(1000))
    client(github).upsert(3, marker("a"), body)
    [posted] = github.bodies("acme", "fns", 3)
    assert len(posted) <= COMMENT_LIMIT and posted.endswith(TRUNCATED_NOTE)


def test_transient_errors_are_retried_a_bounded_number_of_times(github: FakeGitHub) -> None:
    sleeps: list[float] = []
    github.fail_next("GET", r"/comments$", 503, "Service Unavailable", times=2)
    assert client(github, sleeps).upsert(3, marker("a"), marker("a") + "\nx").action == "created"
    assert sleeps == [1.0, 2.0]
    github.fail_next("POST", r"/comments$", 502, "Bad Gateway", times=5)
    with pytest.raises(CommentError) as caught:
        client(github, sleeps).upsert(4, marker("a"), marker("a") + "\nx")
    assert caught.value.status == 502 and not caught.value.forbidden


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_token_that_may_not_write_is_forbidden(github: FakeGitHub, status: int) -> None:
    github.fail_next("POST", r"/comments$", status, "Resource not accessible by integration")
    with pytest.raises(CommentError) as caught:
        client(github).upsert(3, marker("a"), marker("a") + "\nx")
    assert caught.value.forbidden and "pull-requests: write" in caught.value.message


def test_a_next_page_on_another_host_is_not_followed(github: FakeGitHub) -> None:
    class Elsewhere(requests.Session):
        def request(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
            response = super().request(*args, **kwargs)  # type: ignore[arg-type]
            response.headers["Link"] = '<https://evil.test/steal?page=2>; rel="next"'
            return response

    comments = Comments(github.base, REPO, TOKEN, session=Elsewhere())
    with pytest.raises(CommentError, match="another host"):
        comments.find(3, marker("a"))


def test_post_bodies_checks_markers_and_the_head_first(github: FakeGitHub) -> None:
    github.add_pull("acme", "fns", 3, head_sha="a" * 40, base_sha="b" * 40)
    with pytest.raises(CommentError, match="marker"):
        post_bodies(client(github), 3, [marker("a") + "\nok", "no marker"])
    with pytest.raises(CommentError, match="not at"):
        post_bodies(client(github), 3, [marker("a") + "\nok"], head_sha="c" * 40)
    assert github.changes() == []
    [posted] = post_bodies(client(github), 3, [marker("a") + "\nok"], head_sha="a" * 40)
    assert posted.action == "created"


def test_pyfn_comment_refuses_two_reports_for_one_function(
    github: FakeGitHub, tmp_path: Path
) -> None:
    """Names are unique among several functions: two reports for one name would both go
    to its one sticky comment, the second replacing the first."""
    github.add_pull("acme", "fns", 3, head_sha="a" * 40, base_sha="b" * 40)
    files = {}
    for name, function, text in (("a", "api", "one"), ("b", "api", "two"), ("c", "web", "x")):
        files[name] = tmp_path / name / "comment.md"
        files[name].parent.mkdir()
        files[name].write_text(marker(function) + "\n" + text)
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.base, "GITHUB_REPOSITORY": REPO}

    def pyfn(*names: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(["comment", *(str(files[n]) for n in names), "--pr", "3"], env, out, err)
        return code, out.getvalue(), err.getvalue()

    code, _, err = pyfn("a", "c", "b")
    assert code == 17
    assert "Several reports are for the same comment: api." in err
    assert github.changes() == []  # refused before anything was posted
    code, out, _ = pyfn("a", "c")
    assert code == 0 and out.count("created ") == 2
    assert github.bodies("acme", "fns", 3) == [marker("api") + "\none", marker("web") + "\nx"]


@pytest.mark.parametrize("author", ["octocat", "github-actions", "github-actions[bot]x"])
def test_a_marker_in_anyone_elses_comment_is_left_alone(github: FakeGitHub, author: str) -> None:
    forged = github.add_comment(
        "acme", "fns", 3, marker("a") + "\n**1 KB** zipped, all fine", user=author
    )
    posted = client(github).upsert(3, marker("a"), marker("a") + "\nthe real report")
    assert posted.action == "created" and posted.comment_id != forged["id"]
    first, ours = github.comments("acme", "fns", 3)
    assert first["body"] == forged["body"] and first["user"]["login"] == author
    assert ours["user"]["login"] == "github-actions[bot]"
    again = client(github).upsert(3, marker("a"), marker("a") + "\nupdated")
    assert (again.action, again.comment_id) == ("updated", posted.comment_id)
    assert github.comments("acme", "fns", 3)[0]["body"] == forged["body"]


def test_the_workflow_token_is_known_by_graphql_and_asked_once(github: FakeGitHub) -> None:
    comments = client(github)
    comments.upsert(3, marker("a"), marker("a") + "\none")
    comments.upsert(3, marker("b"), marker("b") + "\ntwo")
    asked = [
        (r.method, r.path, r.status) for r in github.requests if r.path in ("/user", "/graphql")
    ]
    assert asked == [("GET", "/user", 403), ("POST", "/graphql", 200)]
    assert comments.login() == "github-actions[bot]"


def test_a_personal_token_owns_only_its_own_comments(github: FakeGitHub) -> None:
    github.login = "octocat"  # a personal token: GET /user names it
    bots = github.add_comment("acme", "fns", 3, marker("a") + "\nold", user="github-actions[bot]")
    mine = github.add_comment("acme", "fns", 3, marker("a") + "\nmine", user="octocat")
    comments = client(github)
    posted = comments.upsert(3, marker("a"), marker("a") + "\nnew")
    assert (posted.action, posted.comment_id) == ("updated", mine["id"])
    assert github.comments("acme", "fns", 3)[0]["body"] == bots["body"]
    assert not any(r.path == "/graphql" for r in github.requests)


def test_an_unknown_account_is_an_error_not_a_guess(github: FakeGitHub) -> None:
    github.add_comment("acme", "fns", 3, marker("a") + "\nold", user="github-actions[bot]")
    github.fail_next("GET", r"^/user$", 401, "Bad credentials")
    with pytest.raises(CommentError) as caught:
        client(github).upsert(3, marker("a"), marker("a") + "\nnew")
    assert caught.value.status == 401
    assert github.changes() == []


def test_graphql_elsewhere_gets_no_token(github: FakeGitHub) -> None:
    comments = Comments(github.base, REPO, TOKEN, graphql_url="https://evil.test/graphql")
    with pytest.raises(CommentError, match="another host"):
        comments.login()
    assert graphql_url_for("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url_for("https://ghe.test/api/v3/") == "https://ghe.test/api/graphql"


def test_markers_of_two_names_never_collide() -> None:
    stem = "a-very-long-function-name-that-goes-on-and-on-for-sixty-three-ch"
    v1, v2 = marker(stem + "-v1"), marker(stem + "-v2")
    assert v1 != v2 and marker_of(v1 + "\nbody") == v1 and marker_of(v2) == v2
    assert marker("hello") == "<!-- pyfn-size-report: hello -->"  # plain names stay as they were
    assert marker("a b") != marker("a_b") and marker("a/b") != marker("a_b")
    assert marker("x" * 63) != marker("x" * 64)
    for name in ("a b", "é", "x" * 200, "<!-- -->", ""):
        assert marker_of(marker(name)) == marker(name)


# --- one comment for a job's functions, shared by jobs with one key ----------------------


def _job(*rows: tuple[str, int], sha: str = "ab" * 20, key: str = "ci/size") -> Combined:
    """A job's comment whose functions each grew by the bytes given (0: unchanged)."""
    entries = tuple(
        FunctionEntry(
            name,
            1_000_000 + grew,
            1_000_000,
            grew,
            0,
            "changed" if grew else "unchanged",
            None,
            False,
            "built",
        )
        for name, grew in rows
    )
    return Combined(key, entries, sha, "`main` (1a2b3c4)")


def _rows(github: FakeGitHub) -> dict[str, str]:
    [body] = github.bodies("acme", "fns", 3)
    return {e.name: e.state for e in combined.parse(body).entries}


def test_a_job_comment_is_created_only_when_something_changed(github: FakeGitHub) -> None:
    comments = client(github)
    assert post_combined(comments, 3, _job(("a", 0), ("b", 0))) is None
    assert github.bodies("acme", "fns", 3) == []
    made = post_combined(comments, 3, _job(("a", 500), ("b", 0)))
    assert made is not None and made.action == "created"
    again = post_combined(comments, 3, _job(("a", 0), ("b", 0)))  # then the change was undone
    assert again is not None and again.action == "updated"
    assert _rows(github) == {"a": "unchanged", "b": "unchanged"}
    [body] = github.bodies("acme", "fns", 3)
    assert "no function changed" in body.splitlines()[3]


def test_jobs_with_one_key_share_the_comment_and_other_keys_have_their_own(
    github: FakeGitHub,
) -> None:
    sleeps: list[float] = []
    comments = client(github, sleeps)
    post_combined(comments, 3, _job(("a", 500)))
    post_combined(comments, 3, _job(("b", 700)))
    assert _rows(github) == {"a": "changed", "b": "changed"}
    assert sleeps == [SETTLE_SECONDS, SETTLE_SECONDS]  # made it; kept another job's rows
    post_combined(comments, 3, _job(("a", 500)))  # a again: the same rows, written as they are
    assert len(sleeps) == 3
    post_combined(comments, 3, _job(("c", 900), key="ci/other"))
    assert len(github.bodies("acme", "fns", 3)) == 2
    post_combined(comments, 3, _job(("a", 100), sha="cd" * 20))  # a new push: a's rows only
    first = github.bodies("acme", "fns", 3)[0]
    assert [e.name for e in combined.parse(first).entries] == ["a"]


def test_two_jobs_that_create_the_comment_at_once_end_with_one(github: FakeGitHub) -> None:
    """Job A finds no comment; before it writes, job B finds none either and creates it;
    then A creates a second. A reads the comment again after writing: it folds the second
    into the first (B's rows and its own) and deletes it."""
    a, b = client(github), client(github)
    create = a.create

    def b_first(number: int, body: str) -> Posted:
        post_combined(b, number, _job(("b", 700)))
        return create(number, body)

    a.create = b_first  # type: ignore[method-assign]
    post_combined(a, 3, _job(("a", 500)))
    assert _rows(github) == {"a": "changed", "b": "changed"}
    deletes = [r for r in github.changes() if r.method == "DELETE"]
    assert len(deletes) == 1


def test_a_job_whose_rows_another_job_dropped_writes_them_again(github: FakeGitHub) -> None:
    """Job B read the comment before job A wrote its rows, and writes after A: A's rows
    are gone when A reads the comment again, so A writes them back."""
    post_combined(client(github), 3, _job(("b", 700)))
    [stale] = github.bodies("acme", "fns", 3)
    comment_id = github.comments("acme", "fns", 3)[0]["id"]

    def b_overwrites(seconds: float) -> None:
        if not b_overwrites.done:  # type: ignore[attr-defined]
            b_overwrites.done = True  # type: ignore[attr-defined]
            client(github).update(int(comment_id), stale)

    b_overwrites.done = False  # type: ignore[attr-defined]
    a = Comments(github.base, REPO, TOKEN, sleep=b_overwrites)
    post_combined(a, 3, _job(("a", 500)))
    assert _rows(github) == {"a": "changed", "b": "changed"}


def test_pyfn_comment_posts_a_job_comment_and_refuses_one_of_another_commit(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.add_pull("acme", "fns", 3, head_sha="ab" * 20, base_sha="d" * 40)
    body = tmp_path / "comment.md"
    body.write_text(combined.render(_job(("a", 500))))
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.base, "GITHUB_REPOSITORY": REPO}

    def pyfn(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(["comment", *args], env, out, err)
        return code, out.getvalue(), err.getvalue()

    code, out, _ = pyfn(str(body), "--pr", "3", "--head-sha", "ab" * 20)
    assert code == 0 and out.startswith("created ")
    assert _rows(github) == {"a": "changed"}
    quiet = tmp_path / "quiet.md"
    quiet.write_text(combined.render(_job(("z", 0), key="ci/quiet")))
    code, out, _ = pyfn(str(quiet), "--pr", "3")
    assert code == 0 and out.startswith("not posted: ")
    github.add_pull("acme", "fns", 3, head_sha="ef" * 20, base_sha="d" * 40)
    code, _, err = pyfn(str(body), "--pr", "3", "--head-sha", "ef" * 20)
    assert code == 17 and "was made for abababababab, not efefefefefef" in err
    tampered = tmp_path / "tampered.md"
    tampered.write_text(body.read_text().replace("<!-- pyfn-data: ", "<!-- pyfn-data: xx"))
    code, _, err = pyfn(str(tampered), "--pr", "3")
    assert code == 17 and "cannot be read" in err


def test_pyfn_comment_merges_the_bodies_of_one_job_comment(
    github: FakeGitHub, tmp_path: Path
) -> None:
    """A matrix's jobs each wrote their body (comment-mode: off); one later job posts them
    all at once: one comment, every job's rows, no race."""
    files = []
    for name, grew in (("a", 500), ("b", 0), ("c", 900)):
        files.append(tmp_path / f"{name}.md")
        files[-1].write_text(combined.render(_job((name, grew))))
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.base, "GITHUB_REPOSITORY": REPO}
    out, err = io.StringIO(), io.StringIO()
    assert run(["comment", *map(str, files), "--pr", "3"], env, out, err) == 0, err.getvalue()
    assert _rows(github) == {"a": "changed", "b": "unchanged", "c": "changed"}
    other = tmp_path / "other.md"
    other.write_text(combined.render(_job(("d", 5), sha="cd" * 20)))
    err = io.StringIO()
    assert run(["comment", str(files[0]), str(other), "--pr", "3"], env, io.StringIO(), err) == 17
    assert "made at other commits" in err.getvalue()
