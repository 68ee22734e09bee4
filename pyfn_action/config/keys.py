"""The configuration keys: every setting's name, parser and one-line documentation.

:data:`KEYS` are a build's settings (bundled into :class:`~pyfn_action.config.models.Config`);
:data:`DEPLOY_KEYS` are the deploy's (:class:`~pyfn_action.config.models.DeploySettings`),
never bundled. A key ``name`` is ``name`` in ``pyfn.toml``, ``PYFN_NAME`` in the
environment (unless the key names another variable) and ``--name`` on the command line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pyfn_action.config.values import (
    _bool,
    _budget,
    _choice,
    _count,
    _cpu,
    _gen,
    _identifier,
    _in_source,
    _memory,
    _node_framework,
    _node_runtime,
    _path,
    _prefix,
    _pypy_version,
    _seconds,
    _sha256,
    _speedup,
    _str,
    _strings,
    _table,
    _whole_seconds,
)

SIGNATURES = ("http", "cloudevent", "event", "script")
RUNTIMES = ("pypy3.11", "pypy3.10")
ARCHES = ("x86_64", "aarch64")
STDIN_KINDS = ("headers", "body", "query", "request")
INGRESS = ("all", "internal-only", "internal-and-gclb")
STORAGE_EVENTS = ("finalized", "deleted", "archived", "metadata-updated")
RESOLVERS = ("uv", "pip")


# How a key's value is written where it is not TOML: a flag is there or not (a
# boolean), a value is one word, a table is KEY=VALUE items (on a command line,
# repeatable; in the Action's inputs, also one a line).
Kind = Literal["flag", "value", "table"]


@dataclass(frozen=True)
class Key:
    """One configuration key: its parser, its kind and its one-line documentation."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    env_name: str | None = None
    kind: Kind = "value"

    @property
    def env(self) -> str:
        return self.env_name or "PYFN_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("name", _str, "function name (default: the source directory's name)"),
        Key("entry_point", _identifier, "Python function to serve (default: the name)"),
        Key("signature", _choice(SIGNATURES), "http, cloudevent, event (legacy) or script"),
        Key("runtime", _choice(RUNTIMES), "PyPy line: pypy3.11 (default) or pypy3.10"),
        Key("pypy_version", _pypy_version, "exact PyPy release, e.g. 7.3.19 (default: newest)"),
        Key("arch", _choice(ARCHES), "target CPU: x86_64 (default) or aarch64"),
        Key("gen", _gen, "Cloud Functions generation: 2 (default) or 1"),
        Key(
            "node_runtime",
            _node_runtime,
            "Cloud Functions Node.js runtime, e.g. nodejs22 (default: the newest the "
            "generation offers; pyfn runtimes shows the calendar)",
        ),
        Key("budget", _budget, "size budget: '95MB' (compressed) or a table"),
        Key("requirements", _in_source, "requirements file in the source (requirements.txt)"),
        Key("script", _in_source, "script mode: the script run per request"),
        Key("stdin", _choice(STDIN_KINDS), "script mode: headers, body, query or request"),
        Key(
            "node_framework",
            _node_framework,
            "Node.js Functions Framework the bundle declares: an exact version or "
            "npm:NAME@VERSION (default: the version pyfn pins)",
        ),
        Key("out", _path, "output directory (default: ./dist)"),
        Key("pypy_archive", _str, "a PyPy archive (path or URL) in the official layout"),
        Key("pypy_sha256", _sha256, "the SHA-256 of --pypy-archive"),
        Key("pypy_mirror", _str, "base URL that replaces the official PyPy download host"),
        Key("cache_dir", _path, "cache for runtimes and wheels (default: user cache)"),
        Key("index_url", _str, "package index for requirements (default: pip's)"),
        Key("extra_index_urls", _strings, "more package indexes"),
        Key("find_links", _strings, "local wheel directories or pages"),
        Key("resolver", _choice(RESOLVERS), "what resolves requirements: uv (default) or pip"),
        Key("dry_run", _bool, "print what trimming would remove, write nothing", kind="flag"),
        Key(
            "refresh", _bool, "resolve requirements again even if they did not change", kind="flag"
        ),
        Key(
            "allow_credentials",
            _bool,
            "bundle files that look like private keys anyway",
            kind="flag",
        ),
        Key("json", _bool, "print the report as JSON", kind="flag"),
        Key("debug", _bool, "show tracebacks and debug logs", kind="flag"),
    )
}


DEPLOY_KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("project", _str, "Google Cloud project ID (default: the credentials' project)"),
        Key("region", _str, "Cloud Functions region, e.g. us-central1"),
        Key("bucket", _str, "staging bucket the bundle is uploaded to"),
        Key("prefix", _prefix, "object prefix in the bucket (default: pyfn)"),
        Key(
            "timeout",
            _seconds,
            "how long to wait for the deploy (default: 10m)",
            env_name="PYFN_DEPLOY_TIMEOUT",
        ),
        Key("memory", _memory, "memory per instance, e.g. 512Mi or 1Gi"),
        Key("cpu", _cpu, "vCPUs per instance (2nd gen), e.g. 1 or 0.583"),
        Key("function_timeout", _whole_seconds, "request timeout of the function, e.g. 60s"),
        Key("min_instances", _count, "minimum number of instances"),
        Key("max_instances", _count, "maximum number of instances"),
        Key("concurrency", _count, "requests per instance at once (2nd gen)"),
        Key(
            "env_vars",
            _table,
            "environment variables: KEY=VALUE,… or ^;^KEY=VALUE;… (replaces the set)",
            kind="table",
        ),
        Key("secrets", _table, "Secret Manager references: ENV=secret:version,…", kind="table"),
        Key("labels", _table, "labels: key=value,… (replaces the set)", kind="table"),
        Key("service_account", _str, "service account the function runs as"),
        Key("ingress", _choice(INGRESS), "all, internal-only or internal-and-gclb"),
        Key("trigger_topic", _str, "Pub/Sub topic that triggers the function"),
        Key("trigger_bucket", _str, "Cloud Storage bucket whose events trigger the function"),
        Key(
            "trigger_event",
            _choice(STORAGE_EVENTS),
            "bucket event: finalized (default), deleted, archived, metadata-updated",
        ),
        Key(
            "retry",
            _bool,
            "event functions: retry an event until the function succeeds",
            kind="flag",
        ),
    )
}


# `pyfn bench`'s settings, beside its [[bench]] requests (config/bench.py).
BENCH_KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key(
            "min_speedup",
            _speedup,
            "pyfn bench: the least speedup (native p50 ÷ pyfn p50) each request must reach, "
            "e.g. 1.5; below it the command fails (exit 19)",
        ),
    )
}
# Tables of the file that are no key: read on their own.
TABLES = ("bench",)


def suggest(name: str, known: Any) -> str:
    """``"did you mean 'entry_point'?"`` for the closest known key, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
