"""Cloud Functions' Node.js runtimes and their calendar, from ``data/node-runtimes.toml``.

Every decision about a runtime is made here, from the data and a given day, never
from the clock: which runtime pyfn picks for a generation (the newest the
generation offers that the pinned Node.js Functions Framework runs on and that is
not decommissioned), whether a deploy may use one (never a decommissioned one),
what to warn about (a runtime past its deprecation, or within ``warn_days`` of it),
and the newest glibc a bundle's wheels may need (its stack's). The adapters say
what day it is (:func:`today`: ``PYFN_TODAY``, else the date in UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pyfn_action.errors import ConfigError
from pyfn_action.runtime.targets import parse_glibc
from pyfn_action.toml import tomllib

TODAY_VARIABLE = "PYFN_TODAY"


@dataclass(frozen=True, kw_only=True)
class Stack:
    """A base image Cloud Functions runs Node.js on."""

    key: str  # "ubuntu24"
    label: str  # "Ubuntu 24.04"
    glibc: tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class NodeRuntime:
    """One Node.js runtime of Cloud Functions, as the calendar knows it."""

    name: str  # "nodejs22"
    node: int  # 22
    generations: tuple[int, ...]
    stack: Stack
    deprecated: dt.date
    decommissioned: dt.date

    def state(self, today: dt.date) -> str:
        """``supported``, ``deprecated`` or ``decommissioned`` on ``today``."""
        if today >= self.decommissioned:
            return "decommissioned"
        return "deprecated" if today >= self.deprecated else "supported"

    def generations_label(self) -> str:
        return " and ".join(_GEN_LABEL[g] for g in self.generations) + " gen"


@dataclass(frozen=True, kw_only=True)
class Calendar:
    read: dt.date  # when the data was read from Google's schedule
    warn_days: int
    runtimes: tuple[NodeRuntime, ...]  # newest Node.js first

    def get(self, name: str) -> NodeRuntime | None:
        return next((r for r in self.runtimes if r.name == name), None)

    @property
    def oldest_glibc(self) -> tuple[int, int]:
        return min(r.stack.glibc for r in self.runtimes)


@dataclass(frozen=True, kw_only=True)
class Choice:
    """The runtime a function is built for and deployed on."""

    name: str
    runtime: NodeRuntime | None  # None: a runtime the calendar does not know
    picked: bool  # pyfn's pick (no node_runtime set)

    @property
    def glibc(self) -> tuple[int, int]:
        """The newest glibc the bundle's wheels may need: its stack's; for a runtime
        the calendar does not know, the oldest stack's."""
        return self.runtime.stack.glibc if self.runtime else calendar().oldest_glibc


_GEN_LABEL = {1: "1st", 2: "2nd"}


# --- the data ---------------------------------------------------------------------------


@cache
def calendar() -> Calendar:
    """The packaged calendar, validated."""
    text = resources.files("pyfn_action").joinpath("data/node-runtimes.toml").read_text()
    return parse_calendar(text)


def parse_calendar(text: str) -> Calendar:
    """A calendar from its TOML; a broken file is a ``RuntimeError`` naming what is wrong."""
    try:
        data = tomllib.loads(text)
        stacks = {
            key: Stack(key=key, label=str(s["label"]), glibc=parse_glibc(str(s["glibc"])))
            for key, s in data["stack"].items()
        }
        runtimes = [_runtime(name, table, stacks) for name, table in data["runtime"].items()]
        read, warn_days = data["read"], int(data["warn_days"])
        if not isinstance(read, dt.date) or warn_days < 0 or not runtimes:
            raise ValueError("read must be a date, warn_days a count, and runtimes listed")
    except (KeyError, TypeError, ValueError, AttributeError, tomllib.TOMLDecodeError) as exc:
        raise RuntimeError(f"node-runtimes.toml is invalid: {exc}") from exc
    runtimes.sort(key=lambda r: -r.node)
    return Calendar(read=read, warn_days=warn_days, runtimes=tuple(runtimes))


def _runtime(name: str, table: Mapping[str, Any], stacks: Mapping[str, Stack]) -> NodeRuntime:
    node = int(table["node"])
    if name != f"nodejs{node}":
        raise ValueError(f"{name} says node = {node}")
    generations = tuple(int(g) for g in table["generations"])
    deprecated, decommissioned = table["deprecated"], table["decommissioned"]
    if not set(generations) <= {1, 2} or not generations:
        raise ValueError(f"{name}: generations must be 1 and/or 2")
    if not (isinstance(deprecated, dt.date) and isinstance(decommissioned, dt.date)):
        raise ValueError(f"{name}: deprecated and decommissioned must be dates")
    if decommissioned < deprecated:
        raise ValueError(f"{name} is decommissioned before it is deprecated")
    if table["stack"] not in stacks:
        raise ValueError(f"{name}: no [stack.{table['stack']}]")
    return NodeRuntime(
        name=name,
        node=node,
        generations=generations,
        stack=stacks[table["stack"]],
        deprecated=deprecated,
        decommissioned=decommissioned,
    )


# --- the Node.js Functions Framework's own range ----------------------------------------


@cache
def framework_engines() -> tuple[str, ...]:
    """The Node.js ranges the bundle's ``package.json`` and its pinned framework declare
    (``engines.node`` in ``shim/package-lock.json``)."""
    lock = json.loads(resources.files("pyfn_action").joinpath("shim/package-lock.json").read_text())
    packages = lock.get("packages", {})
    found = [
        packages.get(key, {}).get("engines", {}).get("node")
        for key in ("", "node_modules/@google-cloud/functions-framework")
    ]
    return tuple(str(r) for r in found if r)


def framework_runs_on(node: int) -> bool:
    """Whether Node.js ``node`` satisfies every declared range."""
    return all(_satisfies(node, spec) for spec in framework_engines())


_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?v?(\d+)(?:\.(?:\d+|x|\*))*$")


def _satisfies(node: int, spec: str) -> bool:
    """A major version against an npm range, as far as majors go (``>=18``, ``^20 || 22``);
    a range it cannot read is taken as satisfied."""
    for alternative in spec.split("||"):
        parts = alternative.split()
        if parts and all(_compare(node, p) for p in parts):
            return True
    return not any(_COMPARATOR.match(p) for alt in spec.split("||") for p in alt.split())


def _compare(node: int, part: str) -> bool:
    match = _COMPARATOR.match(part)
    if match is None:
        return True
    op, major = match.group(1) or "=", int(match.group(2))
    return {
        ">=": node >= major,
        ">": node > major,
        "<=": node <= major,
        "<": node < major,
    }.get(op, node == major)


# --- decisions ----------------------------------------------------------------------------


def today(env: Mapping[str, str]) -> dt.date:
    """The day the calendar is read on: ``PYFN_TODAY`` (YYYY-MM-DD), else today in UTC."""
    given = env.get(TODAY_VARIABLE, "").strip()
    if not given:
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(given)
    except ValueError:
        raise ConfigError(
            f"{TODAY_VARIABLE}={given!r} is not a date",
            fix=f"Set {TODAY_VARIABLE} to a day such as 2027-05-01, or unset it",
        ) from None


def default_for(gen: int, on: dt.date) -> NodeRuntime:
    """pyfn's pick for generation ``gen`` on day ``on``: the newest runtime the generation
    offers that the Node.js Functions Framework runs on and that is not decommissioned."""
    for runtime in calendar().runtimes:
        live = runtime.state(on) != "decommissioned"
        if gen in runtime.generations and framework_runs_on(runtime.node) and live:
            return runtime
    raise ConfigError(
        f"pyfn knows no Node.js runtime of {_GEN_LABEL.get(gen, gen)} gen still deployable on {on}",
        why=f"its runtime calendar was read on {calendar().read}",
        fix='Upgrade pyfn, or set node_runtime = "nodejsNN" to a runtime Cloud Functions '
        "offers today",
    )


def choose(gen: int, wanted: str | None, on: dt.date) -> Choice:
    """The runtime a function of generation ``gen`` is built for: ``wanted`` (the
    setting ``node_runtime``), else pyfn's pick."""
    if wanted is None:
        pick = default_for(gen, on)
        return Choice(name=pick.name, runtime=pick, picked=True)
    runtime = calendar().get(wanted)
    if runtime is not None and gen not in runtime.generations:
        pick = default_for(gen, on)
        raise ConfigError(
            f"{wanted} is not offered on {_GEN_LABEL.get(gen, gen)} gen",
            why=f"Cloud Functions offers {wanted} on {runtime.generations_label()} only",
            fix=f'Set node_runtime = "{pick.name}", or drop it (pyfn picks {pick.name}), '
            f"or deploy to {runtime.generations_label()}",
        )
    return Choice(name=wanted, runtime=runtime, picked=False)


def notice(choice: Choice, gen: int, on: dt.date) -> str:
    """What a build says of its runtime on day ``on``: ``""`` while it is supported and
    more than ``warn_days`` from its deprecation."""
    runtime, cal = choice.runtime, calendar()
    if runtime is None:
        glibc = "{}.{}".format(*choice.glibc)
        return (
            f"{choice.name} is not in pyfn's runtime calendar (read {cal.read}): its stack "
            f"and dates are unknown, so wheels are chosen for glibc {glibc}"
        )
    state, instead = runtime.state(on), _instead(runtime, gen, on)
    if state == "decommissioned":
        return (
            f"{runtime.name} was decommissioned on {runtime.decommissioned}: Cloud Functions "
            f"no longer creates or updates functions on it; {instead}"
        )
    days = (runtime.deprecated - on).days
    if state == "deprecated":
        left = (runtime.decommissioned - on).days
        return (
            f"{runtime.name} has been deprecated since {runtime.deprecated} and is "
            f"decommissioned on {runtime.decommissioned} (in {left} days); {instead}"
        )
    if days <= cal.warn_days:
        return (
            f"{runtime.name} is deprecated on {runtime.deprecated} (in {days} days) and "
            f"decommissioned on {runtime.decommissioned}; {instead}"
        )
    return ""


def require_deployable(choice: Choice, gen: int, on: dt.date) -> None:
    """Refuse a decommissioned runtime before anything is uploaded."""
    runtime = choice.runtime
    if runtime is not None and runtime.state(on) == "decommissioned":
        raise ConfigError(
            f"{runtime.name} was decommissioned on {runtime.decommissioned}",
            why="Cloud Functions no longer creates or updates functions on it",
            fix=_instead(runtime, gen, on)[0].upper() + _instead(runtime, gen, on)[1:],
        )


def _instead(runtime: NodeRuntime, gen: int, on: dt.date) -> str:
    """What to use instead of ``runtime``, never a decommissioned runtime."""
    try:
        pick = default_for(gen, on)
    except ConfigError:
        return "upgrade pyfn for a newer runtime calendar"
    if pick.node > runtime.node:
        return f'set node_runtime = "{pick.name}", or drop it (pyfn picks {pick.name})'
    newer = next(
        (r for r in calendar().runtimes if r.node > runtime.node and r.state(on) == "supported"),
        None,
    )
    if newer is not None:
        return (
            f"{_GEN_LABEL.get(gen, gen)} gen offers no newer Node.js runtime: move the "
            f"function to {newer.generations_label()} (gen = {newer.generations[-1]}) for "
            f"{newer.name}"
        )
    return "no newer Node.js runtime is known to pyfn yet: watch Google's runtime schedule"


def describe(on: dt.date) -> dict[str, Any]:
    """The calendar as ``pyfn runtimes --json`` prints it."""
    cal = calendar()
    picks: dict[str, str | None] = {}
    for gen in (1, 2):
        try:
            picks[str(gen)] = default_for(gen, on).name
        except ConfigError:
            picks[str(gen)] = None
    return {
        "today": on.isoformat(),
        "read": cal.read.isoformat(),
        "warn_days": cal.warn_days,
        "framework_engines": list(framework_engines()),
        "runtimes": [
            {
                "name": r.name,
                "node": r.node,
                "generations": list(r.generations),
                "stack": r.stack.label,
                "glibc": "{}.{}".format(*r.stack.glibc),
                "deprecated": r.deprecated.isoformat(),
                "decommissioned": r.decommissioned.isoformat(),
                "state": r.state(on),
                "days_to_deprecation": (r.deprecated - on).days,
                "framework_runs_on": framework_runs_on(r.node),
            }
            for r in cal.runtimes
        ],
        "picks": picks,
    }
