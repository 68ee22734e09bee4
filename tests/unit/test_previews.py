"""Preview functions: their names, labels and ages, and the settings a preview deploys with."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pyfn_action.cloud import previews
from pyfn_action.cloud.names import check_function_name, check_labels
from pyfn_action.cloud.previews import Listed
from pyfn_action.config import Config, DeploySettings
from pyfn_action.errors import ConfigError, DeployError
from pyfn_action.flows.previews import PreviewTarget, preview_settings, select, skip_reason
from pyfn_action.runtime.targets import generations


@pytest.mark.parametrize(
    ("function", "pull", "expected"),
    [
        ("hello", 42, "hello-pr-42"),
        ("api-v2", 7, "api-v2-pr-7"),
    ],
)
def test_a_plain_name_is_the_function_and_the_pull_request(
    function: str, pull: int, expected: str
) -> None:
    assert previews.preview_name(function, pull) == expected


@pytest.mark.parametrize(
    "function",
    ["My_Func", "my_func", "9lives", "x" * 63, "a" * 57, "Ünïcode", "-dash-", "__"],
)
def test_every_preview_name_follows_every_generations_rule(function: str) -> None:
    for pull in (1, 42, 999999):
        name = previews.preview_name(function, pull)
        assert name.endswith(f"-pr-{pull}")
        for gen in generations():
            assert check_function_name(name, gen.gen) == name


def test_names_that_had_to_change_carry_a_hash_and_never_meet() -> None:
    made = {f: previews.preview_name(f, 42) for f in ("my_func", "my-func", "My-Func", "my.func")}
    assert made["my-func"] == "my-func-pr-42"
    assert len(set(made.values())) == len(made), made
    assert re.fullmatch(r"my-func-[0-9a-f]{6}-pr-42", made["my_func"])


def test_a_long_name_is_cut_and_hashed_within_63_characters() -> None:
    long_a, long_b = "a" * 70, "a" * 69 + "b"
    first, second = previews.preview_name(long_a, 12345), previews.preview_name(long_b, 12345)
    assert len(first) <= 63 and len(second) <= 63
    assert first != second


def test_labels_say_whose_preview_and_are_valid_labels() -> None:
    labels = previews.preview_labels("Octo-Org/App.JS", 42, "My_Func")
    check_labels(tuple(labels.items()))
    assert labels[previews.LABEL] == "true"
    assert labels[previews.PR_LABEL] == "42"
    assert previews.is_preview_of(labels, "Octo-Org/App.JS", 42)
    assert previews.is_preview_of(labels, "octo-org/app.js", 42)  # GitHub's names ignore case
    assert previews.is_preview_of(labels, "Octo-Org/App.JS", None)
    assert not previews.is_preview_of(labels, "Octo-Org/App.JS", 43)
    assert not previews.is_preview_of(labels, "Octo-Org/App-JS", 42)  # the same slug
    assert not previews.is_preview_of({}, "Octo-Org/App.JS", 42)
    long = previews.repository_label("o" * 39 + "/" + "r" * 100)
    assert len(long) <= 63


def test_a_function_under_the_name_is_touched_only_if_it_is_this_preview() -> None:
    class Existing:
        def __init__(self, labels: dict[str, str]) -> None:
            self.labels = labels

    mine = previews.preview_labels("o/r", 42, "hello")
    previews.check_owner(None, "hello-pr-42", "o/r", 42)
    previews.check_owner(Existing(mine), "hello-pr-42", "o/r", 42)
    for labels, said in [
        ({}, "not a preview"),
        ({"env": "prod"}, "not a preview"),
        (previews.preview_labels("o/other", 42, "hello"), "another repository"),
        (previews.preview_labels("o/r", 41, "hello"), "pull request #41"),
    ]:
        with pytest.raises(DeployError, match=said):
            previews.check_owner(Existing(labels), "hello-pr-42", "o/r", 42)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        (" 2w ", timedelta(weeks=2)),
    ],
)
def test_ages(text: str, expected: timedelta) -> None:
    assert previews.parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "-1d", "0d", "1y", "1.5d", "7 days"])
def test_a_bad_age_is_refused_saying_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="30m, 12h, 7d or 2w"):
        previews.parse_age(text)


def _listed(name: str, repo: str, pull: int, updated: datetime | None) -> Listed:
    return Listed(
        path=f"projects/p/locations/us-central1/functions/{name}",
        gen=2,
        state="ACTIVE",
        url=None,
        labels=previews.preview_labels(repo, pull, name),
        updated=updated,
    )


def test_select_by_repository_pull_request_and_age() -> None:
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    old = _listed("a-pr-1", "o/r", 1, now - timedelta(days=9))
    new = _listed("b-pr-2", "o/r", 2, now - timedelta(hours=1))
    other = _listed("c-pr-1", "o/other", 1, now - timedelta(days=30))
    unknown = _listed("d-pr-3", "o/r", 3, None)
    every = [old, new, other, unknown]
    pick = lambda **kw: [p.name for p in select(every, now=now, **kw)]  # noqa: E731
    assert pick(repository="o/r", pull=1, older_than=None) == ["a-pr-1"]
    assert pick(repository=None, pull=None, older_than=timedelta(days=7)) == ["a-pr-1", "c-pr-1"]
    assert pick(repository="o/r", pull=None, older_than=timedelta(days=7)) == ["a-pr-1"]
    assert pick(repository="o/r", pull=None, older_than=None) == ["a-pr-1", "b-pr-2", "d-pr-3"]


def test_a_preview_keeps_no_instance_warm_and_its_size_is_the_workflows() -> None:
    settings = DeploySettings(
        min_instances=3, max_instances=500, labels=(("team", "a"), ("pyfn-preview-pr", "999"))
    )
    target = PreviewTarget("o/r", 42, max_instances=2)
    made = preview_settings(settings, "hello", target)
    assert made.min_instances == 0 and made.max_instances == 2
    labels = dict(made.labels or ())
    assert labels["team"] == "a"
    assert labels == {"team": "a", **previews.preview_labels("o/r", 42, "hello")}


def test_event_functions_get_no_preview() -> None:
    http = Config(source=Path("."), name="f", entry_point="f")
    event = Config(source=Path("."), name="f", entry_point="f", signature="cloudevent")
    assert skip_reason(http, DeploySettings()) == ""
    assert skip_reason(event, DeploySettings()) == "event"
    assert skip_reason(http, DeploySettings(trigger_topic="t")) == "event"


@pytest.mark.parametrize("kwargs", [{"pull": 0}, {"max_instances": 0}, {"max_instances": 5000}])
def test_a_preview_target_out_of_bounds_is_refused(kwargs: dict[str, int]) -> None:
    values = {"pull": 1, "max_instances": 1, **kwargs}
    with pytest.raises(ConfigError):
        PreviewTarget("o/r", values["pull"], max_instances=values["max_instances"])
