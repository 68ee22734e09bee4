"""The Node.js runtime calendar: decisions on each side of each date, never a
decommissioned runtime suggested or deployed, and the glibc that follows the stack."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from importlib import resources

import pytest

from pyfn_action.cli import run
from pyfn_action.errors import ConfigError
from pyfn_action.runtime import noderuntimes
from pyfn_action.runtime.noderuntimes import (
    _satisfies,
    choose,
    default_for,
    notice,
    parse_calendar,
    require_deployable,
    today,
)

DAY = timedelta(days=1)
NODE20_GONE, NODE22_DEPRECATED, NODE22_GONE = (
    date(2026, 10, 30),
    date(2027, 4, 30),
    date(2027, 10, 31),
)
NODE24_DEPRECATED, NODE24_GONE = date(2028, 4, 30), date(2028, 10, 31)


def test_the_packaged_calendar_is_googles() -> None:
    cal = noderuntimes.calendar()
    assert [r.name for r in cal.runtimes] == ["nodejs24", "nodejs22", "nodejs20", "nodejs18"]
    node24, node22, node20 = (cal.get(n) for n in ("nodejs24", "nodejs22", "nodejs20"))
    assert node24 and node22 and node20
    assert (node24.generations, node24.stack.label, node24.stack.glibc) == (
        (2,),
        "Ubuntu 24.04",
        (2, 39),
    )
    assert (node22.generations, node22.stack.label, node22.stack.glibc) == (
        (1, 2),
        "Ubuntu 22.04",
        (2, 35),
    )
    assert (node22.deprecated, node22.decommissioned) == (NODE22_DEPRECATED, NODE22_GONE)
    assert (node24.deprecated, node24.decommissioned) == (NODE24_DEPRECATED, NODE24_GONE)
    assert node20.decommissioned == NODE20_GONE
    assert cal.read == date(2026, 12, 7) and cal.warn_days == 90


@pytest.mark.parametrize(
    ("gen", "on", "picked"),
    [
        (2, date(2026, 12, 7), "nodejs24"),
        (1, date(2026, 12, 7), "nodejs22"),
        (1, NODE22_GONE - DAY, "nodejs22"),  # deprecated, still deployable: still the newest
        (2, NODE24_GONE - DAY, "nodejs24"),
    ],
)
def test_the_default_is_the_newest_runtime_the_generation_offers(
    gen: int, on: date, picked: str
) -> None:
    choice = choose(gen, None, on)
    assert (choice.name, choice.picked) == (picked, True)


@pytest.mark.parametrize(("gen", "on"), [(1, NODE22_GONE), (2, NODE24_GONE)])
def test_no_default_once_every_runtime_of_a_generation_is_gone(gen: int, on: date) -> None:
    with pytest.raises(ConfigError, match="still deployable") as caught:
        default_for(gen, on)
    assert "Upgrade pyfn" in caught.value.message


def test_the_default_is_one_the_framework_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noderuntimes, "framework_engines", lambda: (">=18 <24",))
    assert choose(2, None, date(2026, 12, 7)).name == "nodejs22"


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        (">=18", [18, 24], [16]),
        (">=10.0.0", [10, 22], [8]),
        ("^20 || 22", [20, 22], [18, 24]),
        (">=18 <24", [18, 22], [24]),
        ("20.x", [20], [22]),
        ("*", [18, 24], []),
    ],
)
def test_engines_ranges_are_read_for_majors(spec: str, yes: list[int], no: list[int]) -> None:
    assert all(_satisfies(n, spec) for n in yes)
    assert not any(_satisfies(n, spec) for n in no)


def test_a_runtime_not_offered_on_the_generation_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        choose(1, "nodejs24", date(2026, 12, 7))
    message = caught.value.message
    assert (
        "nodejs24 is not offered on 1st gen" in message and 'node_runtime = "nodejs22"' in message
    )


@pytest.mark.parametrize(
    ("name", "gen", "on", "refused"),
    [
        ("nodejs20", 2, NODE20_GONE - DAY, False),
        ("nodejs20", 2, NODE20_GONE, True),
        ("nodejs22", 1, NODE22_GONE - DAY, False),
        ("nodejs22", 1, NODE22_GONE, True),
        ("nodejs22", 2, NODE22_GONE, True),
        ("nodejs24", 2, NODE24_GONE - DAY, False),
        ("nodejs24", 2, NODE24_GONE, True),
        ("nodejs26", 2, date(2026, 12, 7), False),  # unknown: the platform decides
    ],
)
def test_a_decommissioned_runtime_is_refused_from_its_day(
    name: str, gen: int, on: date, refused: bool
) -> None:
    choice = choose(gen, name, on)
    if not refused:
        require_deployable(choice, gen, on)
        return
    with pytest.raises(ConfigError) as caught:
        require_deployable(choice, gen, on)
    runtime = noderuntimes.calendar().get(name)
    assert runtime is not None
    message = caught.value.message
    assert f"{name} was decommissioned on {runtime.decommissioned}" in message
    for gone in ("nodejs18", "nodejs20", "nodejs22", "nodejs24"):
        state = noderuntimes.calendar().get(gone)
        if state and state.state(on) == "decommissioned":
            assert f'"{gone}"' not in message  # never suggested


@pytest.mark.parametrize(
    ("name", "gen", "on", "expected"),
    [
        ("nodejs22", 2, NODE22_DEPRECATED - 91 * DAY, ""),
        (
            "nodejs22",
            2,
            NODE22_DEPRECATED - 90 * DAY,
            "nodejs22 is deprecated on 2027-04-30 (in 90 days) and decommissioned on 2027-10-31; "
            'set node_runtime = "nodejs24", or drop it (pyfn picks nodejs24)',
        ),
        (
            "nodejs22",
            2,
            NODE22_DEPRECATED,
            "nodejs22 has been deprecated since 2027-04-30 and is decommissioned on 2027-10-31 "
            '(in 184 days); set node_runtime = "nodejs24", or drop it (pyfn picks nodejs24)',
        ),
        (
            "nodejs22",
            1,
            NODE22_DEPRECATED - 30 * DAY,
            "nodejs22 is deprecated on 2027-04-30 (in 30 days) and decommissioned on 2027-10-31; "
            "1st gen offers no newer Node.js runtime: move the function to 2nd gen (gen = 2) for "
            "nodejs24",
        ),
        (
            "nodejs20",
            2,
            NODE20_GONE,
            "nodejs20 was decommissioned on 2026-10-30: Cloud Functions no longer creates or "
            'updates functions on it; set node_runtime = "nodejs24", or drop it (pyfn picks '
            "nodejs24)",
        ),
        ("nodejs24", 2, NODE24_DEPRECATED - 91 * DAY, ""),
        (
            "nodejs24",
            2,
            NODE24_DEPRECATED - 90 * DAY,
            "nodejs24 is deprecated on 2028-04-30 (in 90 days) and decommissioned on 2028-10-31; "
            "no newer Node.js runtime is known to pyfn yet: watch Google's runtime schedule",
        ),
        (
            "nodejs26",
            2,
            date(2026, 12, 7),
            "nodejs26 is not in pyfn's runtime calendar (read 2026-12-07): its stack and dates "
            "are unknown, so wheels are chosen for glibc 2.35",
        ),
    ],
)
def test_what_a_build_says_of_its_runtime(name: str, gen: int, on: date, expected: str) -> None:
    assert notice(choose(gen, name, on), gen, on) == expected


@pytest.mark.parametrize(
    ("gen", "name", "glibc"),
    [(2, None, (2, 39)), (1, None, (2, 35)), (2, "nodejs22", (2, 35)), (2, "nodejs99", (2, 35))],
)
def test_the_glibc_ceiling_follows_the_stack(
    gen: int, name: str | None, glibc: tuple[int, int]
) -> None:
    assert choose(gen, name, date(2026, 12, 7)).glibc == glibc


def test_today_is_given_or_the_date_in_utc() -> None:
    assert today({"PYFN_TODAY": "2027-05-01"}) == date(2027, 5, 1)
    assert abs((today({}) - date.today()).days) <= 1
    with pytest.raises(ConfigError, match="PYFN_TODAY='soon' is not a date"):
        today({"PYFN_TODAY": "soon"})


def _packaged() -> str:
    return resources.files("pyfn_action").joinpath("data/node-runtimes.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("node = 24\n", "node = 23\n", "nodejs24 says node = 23"),
        ("generations = [2]", "generations = [3]", "generations must be 1 and/or 2"),
        ("decommissioned = 2028-10-31", "decommissioned = 2028-01-01", "decommissioned before"),
        ('stack = "ubuntu24"', 'stack = "ubuntu26"', r"no \[stack.ubuntu26\]"),
        ('glibc = "2.39"', 'glibc = "2"', "is not a glibc version"),
        ("deprecated = 2028-04-30", 'deprecated = "soon"', "must be dates"),
        ("warn_days = 90", "", "warn_days"),
    ],
)
def test_a_broken_calendar_is_refused_on_load(old: str, new: str, error: str) -> None:
    text = _packaged()
    assert old in text
    with pytest.raises(RuntimeError, match=f"node-runtimes.toml is invalid: .*{error}"):
        parse_calendar(text.replace(old, new, 1))


def test_pyfn_runtimes_prints_the_calendar_and_its_picks() -> None:
    out = io.StringIO()
    assert run(["runtimes", "--date", "2027-03-01"], {}, out, io.StringIO()) == 0
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].split() == [
        "runtime",
        "generations",
        "stack",
        "glibc",
        "deprecated",
        "decommissioned",
        "on",
        "2027-03-01",
    ]
    assert lines[1].split()[:3] == ["nodejs24", "2nd", "Ubuntu"]
    assert "supported, deprecated in 60 days" in lines[2] and lines[2].startswith("nodejs22")
    assert lines[3].startswith("nodejs20") and lines[3].endswith("decommissioned")
    assert "  1st gen: nodejs22" in lines and "  2nd gen: nodejs24" in lines
    assert "Node.js Functions Framework runs on (node >=18 and >=10.0.0)" in text
    assert "read from Google's runtime support schedule on 2026-12-07" in text


def test_pyfn_runtimes_json_for_scripts() -> None:
    out = io.StringIO()
    assert run(["runtimes", "--json"], {"PYFN_TODAY": "2027-10-31"}, out, io.StringIO()) == 0
    data = json.loads(out.getvalue())
    assert data["today"] == "2027-10-31" and data["picks"] == {"1": None, "2": "nodejs24"}
    by_name = {r["name"]: r for r in data["runtimes"]}
    assert by_name["nodejs22"]["state"] == "decommissioned"
    assert by_name["nodejs24"] | {"days_to_deprecation": 0} == {
        "name": "nodejs24",
        "node": 24,
        "generations": [2],
        "stack": "Ubuntu 24.04",
        "glibc": "2.39",
        "deprecated": "2028-04-30",
        "decommissioned": "2028-10-31",
        "state": "supported",
        "days_to_deprecation": 0,
        "framework_runs_on": True,
    }
