"""The worker's idle-time warm-up (the shim's pyfn/pyfn_warmup.py): synthetic requests
the framework answers itself, never the function, each in a context of its own."""

from __future__ import annotations

import contextvars
from types import ModuleType
from typing import Any

import pytest
from support.shimpy import shim_module

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


@pytest.fixture(scope="module")
def warmup() -> ModuleType:
    """pyfn_warmup.py, loaded from its file as the worker loads it."""
    return shim_module("pyfn_warmup")


class _Calls:
    """Stands in for the request adapter's ``call_app``: records what it is given."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[object, dict[str, Any], bytes]] = []
        self.fail_after = fail_after

    def __call__(
        self, app: object, request: dict[str, Any], body: bytes
    ) -> tuple[int, list[list[str]], bytes]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("the framework failed")
        self.calls.append((app, request, body))
        SEEN.set("set by a synthetic request")
        return 404, [["Content-Type", "text/html"]], b"not found"


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pyfn.worker"]


@pytest.mark.parametrize(
    ("signature", "url"), [("http", "/robots.txt"), ("cloudevent", "/"), ("event", "/")]
)
def test_the_synthetic_request_is_one_the_framework_answers_itself(
    warmup: ModuleType, signature: str, url: str
) -> None:
    request = warmup._warmup_request(signature)
    assert (request["method"], request["url"], request["id"]) == ("GET", url, 0)
    assert ["User-Agent", "pyfn-warmup"] in request["headers"]


def test_it_runs_its_count_then_says_what_ran(
    warmup: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a framework to build a private app from (none here), the function's own
    app is warmed on the path the framework answers itself; one line when done."""
    caplog.set_level("INFO")
    calls, app = _Calls(), object()
    warm = warmup.WarmUp(app, "http", 3, calls)
    warm.arrived = 2  # real requests the loop read meanwhile
    while warm.left > 0:
        warm.step()
    assert [(a, r["url"], b) for a, r, b in calls.calls] == [(app, "/robots.txt", b"")] * 3
    assert warm.ran == 3
    assert _messages(caplog) == [
        "pyfn warm-up: 3 of 3 synthetic requests ran while idle; 2 real requests came "
        "before it was done"
    ]


def test_each_synthetic_request_runs_in_a_copy_of_the_context(warmup: ModuleType) -> None:
    warm = warmup.WarmUp(object(), "cloudevent", 1, _Calls())
    warm.step()
    assert SEEN.get() == "unset"


def test_a_failure_ends_the_warm_up_and_is_left_to_real_requests(
    warmup: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    warm = warmup.WarmUp(object(), "event", 10, _Calls(fail_after=2))
    steps = 0
    while warm.left > 0:
        warm.step()
        steps += 1
    assert (steps, warm.ran, warm.left) == (3, 2, 0)
    assert _messages(caplog)[-1].startswith("pyfn warm-up: 2 of 10 synthetic requests ran")


def test_a_count_of_0_says_at_once_that_it_is_off(
    warmup: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    calls = _Calls()
    warm = warmup.WarmUp(object(), "http", 0, calls)
    assert warm.left == 0 and calls.calls == []
    assert _messages(caplog) == ["pyfn warm-up: off (PYFN_WARMUP=0)"]
