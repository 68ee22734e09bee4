"""What configuration resolves to: a build's :class:`Config`, the deploy's
:class:`DeploySettings` and a user's size :class:`Budget`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Budget:
    """A user's own size budget, in bytes; ``None`` means no budget."""

    compressed: int | None = None
    uncompressed: int | None = None


@dataclass(frozen=True)
class Config:
    """Everything a build needs to know, after precedence has been applied."""

    source: Path
    name: str
    entry_point: str
    signature: str = "http"
    runtime: str = "pypy3.11"
    pypy_version: str | None = None
    arch: str = "x86_64"
    gen: int = 2
    node_runtime: str | None = None  # None: pyfn picks by its runtime calendar
    budget: Budget = Budget()
    requirements: str = "requirements.txt"
    script: str | None = None
    stdin: str = "body"
    node_framework: str | None = None  # None: the version pyfn pins
    out: Path = Path("dist")
    pypy_archive: str | None = None
    pypy_sha256: str | None = None
    pypy_mirror: str | None = None
    cache_dir: Path | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    resolver: str = "uv"
    dry_run: bool = False
    refresh: bool = False
    allow_credentials: bool = False
    json: bool = False
    debug: bool = False


@dataclass(frozen=True)
class DeploySettings:
    """Where and how to deploy. Kept apart from :class:`Config`: none of it is bundled."""

    project: str | None = None
    region: str | None = None
    bucket: str | None = None
    prefix: str = "pyfn"
    timeout: float = 600.0
    node_runtime: str = ""  # not a setting here: the build's choice, set by the deploy flow
    memory: int | None = None
    cpu: str | None = None
    function_timeout: int | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    concurrency: int | None = None
    env_vars: tuple[tuple[str, str], ...] | None = None
    secrets: tuple[tuple[str, str], ...] | None = None
    labels: tuple[tuple[str, str], ...] | None = None
    service_account: str | None = None
    ingress: str | None = None
    trigger_topic: str | None = None
    trigger_bucket: str | None = None
    trigger_event: str = "finalized"
    retry: bool = False


def as_dict(config: Config) -> dict[str, Any]:
    """A JSON-friendly view, for the manifest and ``--json`` output."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, Budget):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
