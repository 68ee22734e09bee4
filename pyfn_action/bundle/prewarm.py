"""Work done ahead while requirements build from source: the bytecode and the
compressed data of the wheels already fetched, put into the caches the bundle stage
reads.

A cold build that must build an sdist (MarkupSafe for PyPy, say) waits seconds for
it, on one CPU, with every other wheel already fetched. Those wheels' files are what
the bundle stage will compile (:mod:`.bytecode`) and compress (:mod:`.deflate`), and
both caches are keyed by content: what is computed here is exactly what the stage
would compute, and the stage reads it through the same checks as any other cache
entry. So nothing here can change a bundle; a file trimmed later only costs the work.

It runs one PyPy compiling and one thread compressing (the build has the rest of the
machine) and stops between pieces of work as soon as the builds are done: what is
left, the bundle stage does with every CPU, as it would have.
"""

from __future__ import annotations

import logging
import threading
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyfn_action.bundle.bytecode import compile_entries
from pyfn_action.bundle.deflate import DeflateCache, compress_all
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.trim import Rule, plan_trim
from pyfn_action.bundle.zipper import COMPRESS_LEVEL
from pyfn_action.deps.requirements import Interpreter
from pyfn_action.runtime.pypy import Runtime

log = logging.getLogger(__name__)

CHUNK = 100  # files compiled or compressed between two looks at ``stop``


def warm(
    wheels: Sequence[Path],
    stop: threading.Event,
    *,
    runtime: Runtime,
    interpreter: Interpreter,
    rules: Sequence[Rule],
    cache_dir: Path,
) -> None:
    """Compile and compress the files ``wheels`` install under ``site/``, kept by
    ``rules``, into the caches under ``cache_dir``, until ``stop`` is set. Best effort:
    a failure here is left for the bundle stage to meet and report."""
    try:
        entries = [e for wheel in wheels for e in _site_entries(wheel)]
        kept = list(plan_trim(entries, rules, ()).kept)
        cache = DeflateCache(cache_dir / "deflate", COMPRESS_LEVEL)
        # The files as they are, compressed while PyPy compiles the modules among them.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pressing = pool.submit(_compress, kept, cache, stop)
            compiled = _compile(kept, runtime, interpreter, cache_dir, stop)
            pressing.result()
        _compress(compiled, cache, stop)
        log.debug(
            "worked ahead: %d modules compiled, %d files compressed, of %d files",
            len(compiled),
            cache.misses + cache.hits,
            len(kept),
        )
    except Exception as exc:  # the bundle stage does this work again, and reports
        log.debug("working ahead stopped: %s", exc)


def _compile(
    entries: Sequence[Entry],
    runtime: Runtime,
    interpreter: Interpreter,
    cache_dir: Path,
    stop: threading.Event,
) -> list[Entry]:
    """The bytecode of the modules among ``entries``, as far as it got."""
    if not interpreter.is_target:
        return []
    sources = [e for e in entries if e.arcname.endswith(".py")]
    compiled: list[Entry] = []
    for start in range(0, len(sources), CHUNK):
        if stop.is_set():
            break
        done = compile_entries(
            sources[start : start + CHUNK], runtime, interpreter, cache_dir, processes=1, quiet=True
        )
        compiled += [e for e in done if e.arcname.endswith(".pyc")]
    return compiled


def _compress(entries: Sequence[Entry], cache: DeflateCache, stop: threading.Event) -> None:
    for start in range(0, len(entries), CHUNK):
        if stop.is_set():
            return
        compress_all([e.read for e in entries[start : start + CHUNK]], cache, workers=1)


def _site_entries(wheel: Path) -> Iterator[Entry]:
    """The files ``wheel`` installs as they are, under their place in ``site/``: all
    but its ``.dist-info`` (rewritten on install) and ``.data`` (installed elsewhere)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            top = info.filename.split("/", 1)[0]
            if info.is_dir() or top.endswith((".dist-info", ".data")):
                continue
            yield Entry(
                arcname=f"site/{info.filename}",
                source=None,
                data=archive.read(info),
                executable=False,
                component=top,
                kind="package",
            )
