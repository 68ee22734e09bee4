"""The bundle's own description, ``pyfn/manifest.json``: what the function is, which
runtime and packages it carries, and which pyfn built it.

Written once by the build (its bytes are part of the bundle, so they depend on the
inputs alone: keys sorted, no times); read by the shim's worker (which entry point
to load), ``pyfn serve`` and ``pyfn upload`` (the function's name), and by tests.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyfn_action.redact import redact_url
from pyfn_action.runtime.noderuntimes import Choice
from pyfn_action.runtime.pypy import Runtime
from pyfn_action.runtime.targets import Target

PATH = "pyfn/manifest.json"  # inside the bundle


def runtime_record(runtime: Runtime, target: Target, node_runtime: Choice) -> dict[str, object]:
    """What runs the function, as the manifest and ``report.json`` record it."""
    return {
        "node_runtime": node_runtime.name,
        "glibc": "{}.{}".format(*target.glibc),
        "python_version": runtime.python_version,
        "pypy_version": runtime.pypy_version,
        "arch": runtime.arch,
        "abi": target.abi,
        "sha256": runtime.sha256,
        "source": redact_url(runtime.source),  # never a URL's user info or query
        "executable": f"pypy/bin/pypy{runtime.python_version}",
    }


class ManifestError(ValueError):
    """The manifest is missing, unreadable or incomplete."""


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    entry_point: str
    signature: str
    script: str | None
    stdin: str | None
    gen: int
    timeout: int | None = None  # seconds; the shim's own request timeout
    concurrency: int | None = None  # requests the platform sends one instance at once

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "entry_point": self.entry_point,
            "signature": self.signature,
            "script": self.script,
            "stdin": self.stdin,
            "gen": self.gen,
        }
        if self.timeout is not None:
            data["timeout"] = self.timeout
        if self.concurrency is not None:
            data["concurrency"] = self.concurrency
        return data


@dataclass(frozen=True)
class Manifest:
    pyfn_version: str
    function: FunctionInfo
    runtime: Mapping[str, object]
    packages: tuple[Mapping[str, object], ...] = field(default=())
    node_framework: str | None = None  # what package.json declares; None: an older bundle

    def to_bytes(self) -> bytes:
        data: dict[str, object] = {
            "pyfn_version": self.pyfn_version,
            "function": self.function.to_dict(),
            "runtime": dict(self.runtime),
            "packages": [dict(p) for p in self.packages],
        }
        if self.node_framework is not None:
            data["node_framework"] = self.node_framework
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw: Any = json.loads(data)
            function = raw["function"]
            timeout = function.get("timeout")
            concurrency = function.get("concurrency")
            return cls(
                pyfn_version=str(raw["pyfn_version"]),
                function=FunctionInfo(
                    name=_text(function["name"]),
                    entry_point=_text(function["entry_point"]),
                    signature=_text(function["signature"]),
                    script=function.get("script"),
                    stdin=function.get("stdin"),
                    gen=int(function["gen"]),
                    timeout=None if timeout is None else int(timeout),
                    concurrency=None if concurrency is None else int(concurrency),
                ),
                runtime=dict(raw["runtime"]),
                packages=tuple(dict(p) for p in raw.get("packages", [])),
                node_framework=_optional_text(raw.get("node_framework")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{PATH} is not a complete manifest ({exc!r})") from exc


def read_bundle(bundle: Path) -> Manifest:
    """The manifest of a bundle zip. Raises ``OSError`` (``FileNotFoundError`` for no
    file), ``zipfile.BadZipFile`` or :class:`ManifestError`."""
    with zipfile.ZipFile(bundle) as zf:
        try:
            data = zf.read(PATH)
        except KeyError:
            raise ManifestError(f"no {PATH}") from None
    return Manifest.from_bytes(data)


def read_tree(root: Path) -> Manifest:
    """The manifest of an unpacked bundle."""
    try:
        data = (root / PATH).read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"no {PATH}") from None
    return Manifest.from_bytes(data)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)
