"""pip's own configuration, for uv: the index, extra indexes, find-links, trusted hosts
and certificate a user set for pip (``pip.conf``, ``PIP_CONFIG_FILE``, ``PIP_INDEX_URL``
and the other ``PIP_*`` variables) apply whichever resolver runs.

pip itself reads them (its ``Configuration``, run by this Python in what a build may see
of the environment, with ``-E``: the ``PYTHONPATH`` that points a build at the runtime's
own pip is not followed, so pyfn's pip reads them from its compiled modules), so they
mean what they mean to pip: the ``install`` section over ``global``, a variable over a
file. As on pip's command line, pyfn's ``index_url``
replaces pip's, and its extra indexes and find-links come after pip's.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pyfn_action.deps.sources import Sources
from pyfn_action.errors import RequirementsError

log = logging.getLogger(__name__)

_READ = """
import json
from pip._internal.configuration import Configuration
c = Configuration(isolated=False)
c.load()
merged = {}
for key, value in c.items():  # pip >= 24: (file, its options), in override order
    if isinstance(value, dict):
        merged.update(value)
    else:
        merged[key] = value
print(json.dumps(merged))
"""
_SECTIONS = (":env:", "install", "global")  # the first that sets an option wins
_AS_INSTALL_READS_THEM = (
    "index-url",
    "extra-index-url",
    "find-links",
    "no-index",
    "trusted-host",
    "cert",
)
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class PipSettings:
    """What pip's configuration adds to pyfn's sources."""

    sources: Sources
    trusted_hosts: tuple[str, ...] = ()
    cert: str | None = None
    # pip's own settings as ``pip install`` reads them, as variables: every pip command a
    # build runs (download, wheel) then reads them so, whatever section set them.
    environment: Mapping[str, str] = field(default_factory=dict)


def read(env: Mapping[str, str]) -> dict[str, str]:
    """pip's merged configuration (``section.option`` → value) in ``env``: read once per
    process and environment (an Action run builds many functions in one)."""
    return dict(_read(tuple(sorted(env.items()))))


@functools.lru_cache(maxsize=8)
def _read(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    env = dict(items)
    try:
        result = subprocess.run(
            [sys.executable, "-E", "-c", _READ],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise ValueError(result.stderr.strip().splitlines()[-1:] or "no output")
        data = json.loads(result.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise RequirementsError(
            "Cannot read pip's configuration",
            why=str(exc),
            fix="Check pip.conf (or PIP_CONFIG_FILE) with `pip config list`",
        ) from None
    return tuple((str(k), str(v)) for k, v in data.items())


def _option(config: Mapping[str, str], name: str) -> str | None:
    for section in _SECTIONS:
        value = config.get(f"{section}.{name}")
        if value is not None:
            return value
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def settings(sources: Sources, env: Mapping[str, str]) -> PipSettings:
    """pyfn's ``sources`` with what pip's configuration in ``env`` adds."""
    config = read(env)
    index = _option(config, "index-url")
    extra = tuple((_option(config, "extra-index-url") or "").split())
    links = tuple((_option(config, "find-links") or "").split())
    merged = replace(
        sources,
        index_url=sources.index_url or index,
        extra_index_urls=(*extra, *sources.extra_index_urls),
        find_links=(*links, *sources.find_links),
        no_index=sources.no_index or _truthy(_option(config, "no-index")),
    )
    environment = {}
    for option in _AS_INSTALL_READS_THEM:
        value = _option(config, option)
        if value is not None:
            environment["PIP_" + option.upper().replace("-", "_")] = value
    return PipSettings(
        sources=merged,
        trusted_hosts=tuple((_option(config, "trusted-host") or "").split()),
        cert=_option(config, "cert"),
        environment=environment,
    )
