"""The machine a bundle runs on: glibc, platform tags and limits, from packaged data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from packaging.tags import Tag, compatible_tags, generic_tags

from pyfn_action.toml import tomllib

# Legacy manylinux names and the glibc each stands for (PEP 600).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


@dataclass(frozen=True)
class Generation:
    """What one Cloud Functions generation offers, from ``data/targets.toml``."""

    gen: int
    image: str
    glibc: tuple[int, int]
    max_compressed_bytes: int | None
    max_uncompressed_bytes: int | None
    max_request_bytes: int
    max_timeout_seconds: int


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
        platforms = list(self.platforms())
        return frozenset(
            [
                *generic_tags(self.interpreter, [self.abi, "none"], platforms),
                *compatible_tags(self.python_tuple, self.interpreter, platforms),
            ]
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


def generation(gen: int) -> Generation:
    """The packaged facts about Cloud Functions generation ``gen``, validated."""
    table = _targets().get("gen", {}).get(str(gen))
    if not isinstance(table, dict):
        raise RuntimeError(f"targets.toml has no [gen.{gen}] table")
    try:
        return Generation(
            gen=gen,
            image=str(table["image"]),
            glibc=parse_glibc(str(table["glibc"])),
            max_compressed_bytes=table.get("max_compressed_bytes"),
            max_uncompressed_bytes=table.get("max_uncompressed_bytes"),
            max_request_bytes=int(table["max_request_bytes"]),
            max_timeout_seconds=int(table["max_timeout_seconds"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise RuntimeError(f"targets.toml [gen.{gen}] is invalid: {exc}") from exc
