"""The Action's cache step: ``key``, ``restore-keys`` and ``path`` for actions/cache.

The key names pyfn's version, the runner, the runtime (line, release or archive,
CPU), the target (generation) and a hash of every requirements file, package
source and local package (every file of it); the restore keys fall back to the
same target, then to the runtime alone, so a changed requirement starts from the
closest warm cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

from pyfn_action import __version__
from pyfn_action.config import Config, resolve
from pyfn_action.deps import localreqs
from pyfn_action.deps.reqfile import read_requirements
from pyfn_action.errors import PyfnError
from pyfn_action.flows.jobs import cache_dir
from pyfn_action.github.inputs import parse
from pyfn_action.github.workflow import Runner

log = logging.getLogger(__name__)


def cache_key(env: Mapping[str, str], runner: Runner, cwd: Path) -> int:
    """Set the cache step's outputs for the functions the inputs name; the exit code."""
    inputs = parse(env, cwd=cwd)
    configs = [resolve(source, env=env, flags=inputs.flags) for source in inputs.sources]
    runtime = "+".join(sorted({_runtime_id(c) for c in configs}))
    target = "+".join(sorted({f"gen{c.gen}" for c in configs}))
    digest = hashlib.sha256()
    for config in configs:
        files, local = _requirements(config)
        for path in files:
            digest.update(path.relative_to(config.source).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        digest.update(local.encode() + b"\0")
        sources = (config.index_url, config.extra_index_urls, config.find_links)
        digest.update(repr(sources).encode() + b"\0")
    prefix = f"pyfn-{__version__}-{env.get('RUNNER_OS', 'Linux')}-{env.get('RUNNER_ARCH', 'X64')}"
    key = f"{prefix}-{runtime}-{target}-{digest.hexdigest()[:20]}"
    restore = [f"{prefix}-{runtime}-{target}-", f"{prefix}-{runtime}-"]
    paths = sorted({str(cache_dir(c.cache_dir)) for c in configs})
    runner.set_output("key", key)
    runner.set_output("restore-keys", "\n".join(restore))
    runner.set_output("path", "\n".join(paths))
    log.info("cache key %s", key)
    return 0


def _runtime_id(config: Config) -> str:
    parts = [config.runtime, config.pypy_version or "newest", config.arch]
    if config.pypy_sha256:
        parts.append(config.pypy_sha256[:16])
    return "-".join(parts)


def _requirements(config: Config) -> tuple[tuple[Path, ...], str]:
    """The requirement files to hash, only ever files inside the function's directory,
    and the digest of the local packages they name (``./pkg``): a changed package is a
    changed key, as it is for the installed site. The files are read once."""
    path = config.source / config.requirements
    if not path.is_file():
        return (), ""
    try:
        requirements = read_requirements(path, config.source)
    except PyfnError:
        if not path.resolve().is_relative_to(config.source.resolve()):
            raise  # read nowhere: the error says where it leads
        return (path,), ""  # the build will say what is wrong with it
    try:
        local = localreqs.digest(requirements)
    except PyfnError:
        local = ""  # the build will say what is wrong with it
    return tuple(requirements.files), local
