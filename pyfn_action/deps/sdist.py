"""Requirements that have no wheel for the target: built from their sdist by the target
PyPy, and kept only when the target can load what the build gives.

``pip wheel`` builds without pip's wheel cache: pip would take a wheel it found there
for the sdist's URL unchecked, and the cache may be shared. A failed build is reported
in its own words (the end of the output pip quotes), never pip's generic summary.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from pyfn_action.deps import index
from pyfn_action.deps.pip_runner import Interpreter, pip_tail, run_pip
from pyfn_action.deps.sources import Sources, mask_url
from pyfn_action.errors import NoCompatibleWheel
from pyfn_action.fetch import cache_lock
from pyfn_action.runtime.releases import untargeted
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)


# A compiler's own error line (gcc, clang: ``file.c:3:10: fatal error: Python.h: No such
# file or directory``), which a package's hints after it would otherwise hide.
_COMPILER_ERROR = re.compile(r"\S+:\d+(?::\d+)?: (?:fatal )?error: .+")


def build_reason(stderr: str, lines: int = 4) -> str:
    """What a failed build said itself: the end of the subprocess output pip quotes
    between ``╰─> [N lines of output]`` and ``[end of output]``, else pip's last lines;
    a compiler's first error line comes first, wherever it was."""
    found = (_COMPILER_ERROR.fullmatch(line.strip()) for line in stderr.splitlines())
    compiler = next((m.group(0) for m in found if m), None)
    reason = pip_tail(stderr, lines)
    end = stderr.rfind("[end of output]")
    start = stderr.rfind("lines of output]", 0, end) if end >= 0 else -1
    if start >= 0:
        quoted = stderr[start + len("lines of output]") : end].splitlines()
        kept = [ln.strip() for ln in quoted if ln.strip()]
        if kept:
            reason = "\n".join(kept[-lines:])
    if compiler and compiler not in reason:
        reason = f"{compiler}\n{reason}"
    return reason


@dataclass(frozen=True)
class SourceBuild:
    """What building one sdist with the target PyPy gave: wheels, or pip's reason."""

    wheels: tuple[Path, ...]
    failure: str  # the last lines pip wrote, when it built nothing


def build_from_source(
    spec: str, name: str, interpreter: Interpreter, sources: Sources, out: Path
) -> SourceBuild:
    """``pip wheel`` of ``spec`` from its sdist, by ``interpreter``, into ``out``."""
    result = run_pip(
        interpreter,
        ["wheel", "--no-deps", "--no-binary", name, "--wheel-dir", str(out)]
        + sources.pip_args()
        # Not pip's cache: pip would take a wheel found there for the sdist's URL
        # unchecked, and the cache may be shared (CI). The build itself is cached
        # with the installed site.
        + ["--no-cache-dir"]
        + [spec],
    )
    wheels = tuple(sorted(out.glob("*.whl")))
    if result.returncode != 0 or not wheels:
        log.debug("building %s failed:\n%s", mask_url(spec), result.stderr)
        reason = build_reason(result.stderr) or f"pip exited with {result.returncode}"
        return SourceBuild((), reason)
    return SourceBuild(wheels, "")


# What builds an sdist: (spec, name, interpreter, sources, out) → what it gave.
Builder = Callable[[str, str, Interpreter, Sources, Path], SourceBuild]


def build_for_target(
    spec: str,
    name: str,
    version: str,
    interpreter: Interpreter,
    target: Target,
    sources: Sources,
    wheelhouse: Path,
    tags: frozenset[Tag],
    builder: Builder = build_from_source,
    shown: str | None = None,
) -> None:
    """Build ``name`` ``version`` (asked for as ``spec``; ``shown`` in messages, if
    given) from source with the target PyPy into ``wheelhouse``; keep it only if the
    target loads it, else raise :class:`NoCompatibleWheel`."""
    label = shown or spec
    log.info("no %s wheel of %s %s; building it from source", target.abi, name, version)
    out = wheelhouse / f".build-{canonicalize_name(name)}"
    shutil.rmtree(out, ignore_errors=True)
    try:
        built = builder(spec, name, interpreter, sources, out)
        if built.failure:
            raise no_wheel(label, name, target, sources, built=None, build_log=built.failure)
        for wheel in built.wheels:
            if not (parse_wheel_filename(wheel.name)[3] & tags):
                raise no_wheel(label, name, target, sources, built=wheel.name)
            os.replace(wheel, wheelhouse / wheel.name)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def built_once(
    sdist: Path,
    sha256: str,
    name: str,
    version: str,
    interpreter: Interpreter,
    target: Target,
    sources: Sources,
    wheelhouse: Path,
    cache_dir: Path,
    builder: Builder,
) -> None:
    """:func:`build_for_target` of a checked sdist, once per cache: the wheel it gives is
    kept under the sdist's SHA-256 and the target's tags, and every later build of that
    sdist for that target takes it from there."""
    tags = target.tags()
    key = hashlib.sha256("\n".join(sorted(map(str, tags))).encode()).hexdigest()[:16]
    home = cache_dir / "built" / sha256 / key
    with cache_lock(home.parent / f"{key}.lock", what=f"the wheel built from {sdist.name}"):
        if not (home / ".complete").is_file():
            home.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=home.parent))
            try:
                build_for_target(
                    str(sdist),
                    name,
                    version,
                    interpreter,
                    target,
                    sources,
                    tmp,
                    tags,
                    builder,
                    shown=f"{name}=={version}",
                )
                (tmp / ".complete").write_text(f"{sdist.name}\n")
                shutil.rmtree(home, ignore_errors=True)
                os.replace(tmp, home)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            log.info("%s %s: reusing the wheel built from %s", name, version, sdist.name)
        for wheel in home.glob("*.whl"):
            shutil.copyfile(wheel, wheelhouse / wheel.name)


def no_wheel(
    spec: str,
    name: str,
    target: Target,
    sources: Sources,
    *,
    built: str | None,
    build_log: str = "",
) -> NoCompatibleWheel:
    """The error for a requirement the target cannot load: which tags do exist for it,
    and what building it gave (a native wheel, or the build's own last words)."""
    existing = index.existing_tags(name, sources)
    found = (
        f"tags that exist for {name}: {index.summarize(existing)}"
        if existing
        else f"no wheel of {name} was found on the configured index"
    )
    fix = (
        "Use a release that ships PyPy (pp) or pure-Python (py3-none-any) wheels, "
        "or replace the package with a pure-Python alternative"
    )
    foreign = untargeted(tag.abi for tag in existing)
    if foreign is not None:
        found += f"; {foreign.wheels_note()}"
        fix = (
            f"Use a release of {name} with {foreign.wanted}, a pure-Python (py3-none-any) "
            "wheel or an sdist, or replace the package with a pure-Python alternative"
        )
    if built:
        why = (
            f"its source builds into native code ({built}), which is not portable to "
            f"the target; {found}"
        )
    else:
        why = f"no wheel or buildable pure-Python source for {target.abi} on "
        why += f"manylinux ≤ glibc {target.glibc[0]}.{target.glibc[1]} {target.arch}; {found}"
        if build_log:
            why += f"; building from source failed: {build_log}"
    return NoCompatibleWheel(
        f"Requirement {mask_url(spec)} has no wheel PyPy {target.python_version} can load",
        requirement=name,
        why=why,
        fix=fix,
    )
