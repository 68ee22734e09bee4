"""Precompiled bytecode for the target: faster cold starts on a read-only bundle.

The zip's fixed timestamps make every timestamp-checked ``.pyc`` stale once
Cloud Functions unpacks the bundle, and the function cannot write new ones, so
PyPy would compile every module it imports on every cold start. Instead, every
``.py`` entry gets an *unchecked-hash* ``.pyc`` (PEP 552) for the runtime's own
cache tag, compiled by the runtime itself, so imports read bytecode and never
compare times.

Compiled files are cached by what determines them (runtime, path in the bundle,
source bytes): a rebuild compiles only what changed. Output is the same bytes
whether the cache was warm or cold.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import logging
import os
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pyfn_action.bundle.entry import Entry
from pyfn_action.deps.requirements import Interpreter
from pyfn_action.fetch import file_identity, replace_file, settled
from pyfn_action.runtime.pypy import Runtime

log = logging.getLogger(__name__)

COMPILE_TIMEOUT_SECONDS = 900
COMPILER_VERSION = "v2"  # in the store's name: bytes from an older compiler are not reused

# Run by the target PyPy: compile [source, cfile, dfile] jobs read from stdin,
# print the sources that did not compile (syntax of another Python, templates).
# PyPy's marshal flags a string as interned when a string of the same value is
# interned and alive in the process, so the same source could give different
# bytes from run to run, as objects die and leave the intern table: every string
# of every code object is interned, and every code object kept alive until the
# end, so the bytes depend on the source alone. (What py_compile writes for an
# unchecked-hash pyc, with the code kept.)
_COMPILER = """
import json, marshal, sys
from importlib import _bootstrap_external, util
CODE = type(compile("", "", "exec"))
FIELDS = [f for f in ("co_consts", "co_names", "co_varnames", "co_freevars",
                      "co_cellvars", "co_filename", "co_name", "co_qualname")
          if hasattr(CODE, f)]
ALIVE = []
def interned(obj):
    kind = type(obj)
    if kind is str:
        ALIVE.append(sys.intern(obj))
        return ALIVE[-1]
    if kind is tuple:
        return tuple(interned(o) for o in obj)
    if kind is frozenset:
        return frozenset(interned(o) for o in obj)
    if kind is CODE:
        ALIVE.append(obj)
        return obj.replace(**{f: interned(getattr(obj, f)) for f in FIELDS})
    return obj
failed = []
for source, cfile, dfile in json.load(sys.stdin):
    try:
        with open(source, "rb") as f:
            data = f.read()
        code = interned(compile(data, dfile, "exec", dont_inherit=True))
        ALIVE.append(code)
        pyc = _bootstrap_external._code_to_hash_pyc(code, util.source_hash(data), checked=False)
    except Exception:
        failed.append(source)
        continue
    with open(cfile, "wb") as f:
        f.write(pyc)
json.dump(failed, sys.stdout)
"""


def cache_tag(runtime: Runtime) -> str:
    """``pypy311`` for PyPy 3.11: the infix of its ``__pycache__`` file names."""
    return f"pypy{runtime.nodot}"


def pyc_name(arcname: str, tag: str) -> str:
    directory, name = posixpath.split(arcname)
    return posixpath.join(directory, "__pycache__", f"{name[:-3]}.{tag}.pyc")


def compile_entries(
    entries: Sequence[Entry],
    runtime: Runtime,
    interpreter: Interpreter,
    cache_dir: Path,
    *,
    processes: int | None = None,
    quiet: bool = False,
) -> list[Entry]:
    """``entries`` with an unchecked-hash ``.pyc`` beside every ``.py``.

    The runtime's own ``.pyc`` files for its tag are replaced by these; a source
    the runtime cannot compile keeps no bytecode (it could not be imported either).
    ``processes`` caps the PyPy processes compiling (else one per CPU, up to 4);
    ``quiet`` says nothing of what was compiled (work done ahead, see ``prewarm``).
    """
    tag = cache_tag(runtime)
    store = cache_dir / "bytecode" / f"{COMPILER_VERSION}-{runtime.sha256[:16]}"
    sources = [e for e in entries if e.arcname.endswith(".py")]
    planned: dict[str, tuple[Entry, Path]] = {}
    known = _SourceKeys(store / "sources.json")
    for entry in sources:
        key = known.key(entry, _source_key)
        planned[pyc_name(entry.arcname, tag)] = (entry, store / key[:2] / f"{key}.pyc")
    known.save()
    missing = {arc: pair for arc, pair in planned.items() if not pair[1].is_file()}
    failed = _compile(missing, interpreter, store, processes) if missing else set()
    if missing and not quiet:
        log.info("compiled %d modules for %s", len(missing) - len(failed), tag)
    compiled = [
        replace(entry, arcname=arc, source=pyc, data=None, executable=False)
        for arc, (entry, pyc) in planned.items()
        if entry.arcname not in failed and pyc.is_file()
    ]
    replaced = {e.arcname for e in compiled}
    kept = [e for e in entries if e.arcname not in replaced]
    return sorted([*kept, *compiled], key=lambda e: e.arcname)


def _source_key(entry: Entry) -> str:
    """Where a source's bytecode is stored: its name and bytes, hashed."""
    return hashlib.sha256(entry.arcname.encode() + b"\0" + entry.read()).hexdigest()


class _SourceKeys:
    """Each source file's bytecode key, kept by the file's identity
    (``fetch.file_identity``), so that a rebuild reads only the sources that changed.
    Kept only once a file's change time has settled (``fetch.settled``); a file cannot
    change without its change time moving, and a cache restored from elsewhere has other
    inodes and times, so nothing of it matches."""

    LIMIT = 200_000  # entries kept: those of this build first

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, list[object]] = {}
        self.changed = False

    @functools.cached_property
    def known(self) -> dict[str, list[object]]:
        """The keys kept, read when a file's key is first asked for (bytes without a file,
        as work done ahead compiles, never need them)."""
        try:
            return dict(json.loads(self.path.read_bytes())["sources"])
        except (OSError, ValueError, TypeError, KeyError):
            return {}

    def key(self, entry: Entry, compute: Callable[[Entry], str]) -> str:
        """The entry's key as kept, if its file is the same file; else ``compute``'s,
        kept for next time if the file has settled."""
        try:
            st = entry.source.stat() if entry.source is not None else None
        except OSError:
            st = None
        if st is None:  # bytes without a file, or no file to describe: never kept
            return compute(entry)
        name, fields = f"{entry.arcname}\0{entry.source}", file_identity(st)
        kept = self.known.get(name)
        if isinstance(kept, list) and kept[:-1] == fields and isinstance(kept[-1], str):
            self.seen[name] = kept
            return kept[-1]
        key = compute(entry)
        if settled(st):
            self.seen[name] = [*fields, key]
            self.changed = True
        return key

    def save(self) -> None:
        if not self.changed:
            return
        merged = dict(self.seen)
        for name, kept in self.known.items():
            if len(merged) >= self.LIMIT:
                break
            merged.setdefault(name, kept)
        try:
            replace_file(self.path, json.dumps({"sources": merged}).encode())
        except OSError as exc:  # the next build reads the sources again
            log.debug("cannot write %s: %s", self.path, exc)


PER_PROCESS = 150  # modules worth starting one more PyPy for


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _compile(
    missing: dict[str, tuple[Entry, Path]],
    interpreter: Interpreter,
    store: Path,
    processes: int | None = None,
) -> set[str]:
    """Compile ``missing`` into the store; return the arcnames that did not compile."""
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".compile-", dir=store) as tmp_name:
        tmp = Path(tmp_name)
        jobs, targets, by_source = [], {}, {}
        for n, (_, (entry, final)) in enumerate(sorted(missing.items())):
            if entry.source is not None:
                source = str(entry.source)
            else:  # generated bytes: give the compiler a file
                source = str(tmp / f"{n}.py")
                Path(source).write_bytes(entry.read())
            out = tmp / f"{n}.pyc"
            jobs.append([source, str(out), entry.arcname])
            targets[out] = final
            by_source[source] = entry.arcname
        # One PyPy per CPU (up to 4) for a cold build's hundreds of modules: each
        # compiles every n-th file.
        parts = max(1, min(processes or _cpus(), 4, len(jobs) // PER_PROCESS))
        with concurrent.futures.ThreadPoolExecutor(max_workers=parts) as pool:
            results = list(
                pool.map(
                    lambda part: subprocess.run(
                        [*interpreter.argv, "-c", _COMPILER],
                        input=json.dumps(jobs[part::parts]),
                        env=dict(interpreter.env),
                        capture_output=True,
                        text=True,
                        timeout=COMPILE_TIMEOUT_SECONDS,
                        check=False,
                    ),
                    range(parts),
                )
            )
        broken = next((r for r in results if r.returncode != 0), None)
        if broken is not None:
            log.warning(
                "could not precompile bytecode (cold starts will be slower): %s",
                broken.stderr.strip()[-500:],
            )
            return {entry.arcname for entry, _ in missing.values()}
        failed = {by_source[s] for r in results for s in json.loads(r.stdout or "[]")}
        for out, final in targets.items():
            if out.is_file():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(out, final)  # whole files only: a cache entry is never partial
        shutil.rmtree(tmp, ignore_errors=True)
    return failed
