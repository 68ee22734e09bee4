"""The machine a bundle runs on: glibc, platform tags and limits, from packaged data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from packaging.tags import Tag, compatible_tags, generic_tags

from pyfn_action.runtime.releases import targeted_lines
from pyfn_action.toml import tomllib

# Legacy manylinux names and the glibc each stands for (PEP 600).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


@dataclass(frozen=True)
class Generation:
    """What one Cloud Functions generation offers, from ``data/targets.toml``.

    Everything that differs between generations is here, read from the data:
    the machine, the limits, the names and event types the platform takes, and
    the API version spoken with the field each deploy setting goes to.
    """

    gen: int
    label: str  # "1st gen": how messages name it
    glibc: tuple[int, int]
    max_compressed_bytes: int | None
    max_uncompressed_bytes: int | None
    max_timeout_seconds: Mapping[str, int]  # by trigger kind: "http", "event"
    memory_mib: tuple[int, ...] | None  # the sizes it takes; None: any
    services: tuple[str, ...]  # what a deployment needs enabled
    describe_flags: str  # appended to `gcloud functions describe NAME …`
    name_pattern: re.Pattern[str]  # a function name's rule, as a pattern …
    name_max_length: int
    name_rule: str  # … and in words
    pubsub_event: str  # the event type of a Pub/Sub trigger
    storage_events: Mapping[str, str]  # trigger_event → the Cloud Storage event type
    api_version: str  # "v1", "v2": picks the request body's builder and the client
    fields: Mapping[str, str]  # deploy setting → its field path in the API's function

    def has_setting(self, setting: str) -> bool:
        """Whether this generation has a field for the deploy setting ``setting``."""
        return setting in self.fields


@dataclass(frozen=True)
class Target:
    """A PyPy on a CPU and glibc: what wheels it loads."""

    python_version: str  # "3.11"
    pp_tag: str  # "73"
    arch: str  # "x86_64"
    glibc: tuple[int, int]

    @property
    def nodot(self) -> str:
        return self.python_version.replace(".", "")

    @property
    def interpreter(self) -> str:
        return f"pp{self.nodot}"

    @property
    def abi(self) -> str:
        return f"pypy{self.nodot}_pp{self.pp_tag}"

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    def platforms(self) -> tuple[str, ...]:
        """Every manylinux tag up to the target's glibc, newest first, with legacy aliases.

        pip matches ``--platform`` literally, so each one has to be listed.
        """
        major, top = self.glibc
        out: list[str] = []
        for minor in range(top, 4, -1):
            out.append(f"manylinux_{major}_{minor}_{self.arch}")
            legacy = _LEGACY.get((major, minor))
            # manylinux1 and manylinux2010 were only ever defined for x86 CPUs.
            if legacy and (legacy == "manylinux2014" or self.arch == "x86_64"):
                out.append(f"{legacy}_{self.arch}")
        return tuple(out)

    def tags(self) -> frozenset[Tag]:
        """Every wheel tag the target PyPy can load."""
        return frozenset(self.ordered_tags())

    def ordered_tags(self) -> tuple[Tag, ...]:
        """The target's tags, most specific first (as an installer prefers them)."""
        platforms = list(self.platforms())
        return (
            *generic_tags(self.interpreter, [self.abi, "none"], platforms),
            *compatible_tags(self.python_tuple, self.interpreter, platforms),
        )


@cache
def _targets() -> dict[str, Any]:
    text = resources.files("pyfn_action").joinpath("data/targets.toml").read_text()
    return tomllib.loads(text)


def parse_glibc(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"{text!r} is not a glibc version such as 2.35")
    return int(major), int(minor)


def generations() -> tuple[Generation, ...]:
    """Every generation ``data/targets.toml`` describes, oldest first."""
    return tuple(generation(int(gen)) for gen in sorted(_targets().get("gen", {}), key=int))


def generation(gen: int) -> Generation:
    """The packaged facts about Cloud Functions generation ``gen``, validated."""
    table = _targets().get("gen", {}).get(str(gen))
    if not isinstance(table, dict):
        raise RuntimeError(f"targets.toml has no [gen.{gen}] table")
    try:
        names, events, api = table["function_name"], table["events"], table["api"]
        memory = table.get("memory_mib")
        return Generation(
            gen=gen,
            label=str(table["label"]),
            glibc=parse_glibc(str(table["glibc"])),
            max_compressed_bytes=table.get("max_compressed_bytes"),
            max_uncompressed_bytes=table.get("max_uncompressed_bytes"),
            max_timeout_seconds={
                kind: int(table["max_timeout_seconds"][kind]) for kind in ("http", "event")
            },
            memory_mib=tuple(int(m) for m in memory) if memory is not None else None,
            services=tuple(str(s) for s in table["services"]),
            describe_flags=str(table["describe_flags"]),
            name_pattern=re.compile(str(names["pattern"])),
            name_max_length=int(names["max_length"]),
            name_rule=str(names["rule"]),
            pubsub_event=str(events["pubsub"]),
            storage_events={str(k): str(v) for k, v in events["storage"].items()},
            api_version=str(api["version"]),
            fields={str(k): str(v) for k, v in api["fields"].items()},
        )
    except (KeyError, ValueError, TypeError, AttributeError, re.error) as exc:
        raise RuntimeError(f"targets.toml [gen.{gen}] is invalid: {exc}") from exc


def pypy_lines() -> dict[str, str]:
    """The PyPy lines whose wheels and extension modules can be judged, newest first, each
    with the ABI tag of its releases (PyPy 7.3.x: ``pp73``), from ``data/pypy-releases.toml``.
    They reach back further than the lines pyfn bundles: vendored code may have been built
    for an older one."""
    return targeted_lines()


def image_glibc() -> tuple[int, int]:
    """The glibc every Cloud Functions image has: the oldest of the generations'."""
    return min(generation(gen).glibc for gen in (1, 2))


def pypy_target(runtime: str, arch: str, glibc: tuple[int, int] | None = None) -> Target:
    """PyPy line ``runtime`` (``"pypy3.11"``) on ``arch`` with ``glibc`` (by default
    :func:`image_glibc`): what wheels and extension modules it loads."""
    pp_tag = pypy_lines().get(runtime)
    if pp_tag is None:
        raise ValueError(f"{runtime!r} is not one of {', '.join(pypy_lines())}")
    return Target(
        python_version=runtime.removeprefix("pypy"),
        pp_tag=pp_tag,
        arch=arch,
        glibc=glibc or image_glibc(),
    )
