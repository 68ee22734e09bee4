"""From a lock to a wheelhouse: the target's best wheel of every locked distribution,
fetched and checked; a distribution with none is built from its sdist by the target
PyPy (once per cache, :func:`pyfn_action.deps.sdist.built_once`)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence, Set
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from pyfn_action.deps.files import fetch_all
from pyfn_action.deps.pip_runner import Interpreter
from pyfn_action.deps.sdist import Builder, build_for_target, built_once, no_wheel
from pyfn_action.deps.sources import Sources
from pyfn_action.deps.uvlock import Locked, LockedFile
from pyfn_action.errors import RequirementsError
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)

# Work done with the fetched wheels while sdists build, until the event is set.
Meanwhile = Callable[[Sequence[Path], threading.Event], None]


def best_wheel(wheels: Sequence[LockedFile], order: Sequence[Tag]) -> LockedFile | None:
    """The wheel whose most specific tag comes first in ``order``, if any fits."""
    rank = {tag: i for i, tag in enumerate(order)}
    best: tuple[int, LockedFile] | None = None
    for wheel in wheels:
        try:
            tags = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename:
            continue
        fits = [rank[t] for t in tags if t in rank]
        if fits and (best is None or min(fits) < best[0]):
            best = (min(fits), wheel)
    return best[1] if best else None


def _pinned_files(dist: Locked, hashes: Mapping[str, Set[str]]) -> Locked:
    """``dist`` with only the files whose SHA-256 the requirements pin, as pip's
    hash-checking mode allows; an error for a distribution pinned by no hash."""
    allowed = hashes.get(canonicalize_name(dist.name))
    if not allowed or dist.direct is not None:
        raise RequirementsError(
            f"{dist.name} has no --hash in the requirements, which are in hash-checking mode",
            why="a --hash on any requirement (or --require-hashes) makes every "
            "distribution installed need one, those pulled in by others too",
            fix=f"Pin {dist.name}=={dist.version} with --hash=sha256:… (pip-compile "
            "--generate-hashes or uv pip compile --generate-hashes writes them)"
            if dist.version
            else "Name a released version with its --hash instead of a local path",
        )
    wheels = tuple(w for w in dist.wheels if w.sha256 in allowed)
    sdist = dist.sdist if dist.sdist is not None and dist.sdist.sha256 in allowed else None
    if not wheels and sdist is None:
        offered = sorted(f.sha256 or "unknown" for f in (*dist.wheels, *filter(None, [dist.sdist])))
        raise RequirementsError(
            f"No file of {dist.name} {dist.version} matches the hashes the requirements pin",
            why=f"pinned: {', '.join(sorted(allowed))}; the index offers: "
            f"{', '.join(offered) or 'nothing'}",
            fix="Check the --hash values (a file changed on the index, or the pins are "
            "for another version)",
        )
    return dataclasses.replace(dist, wheels=wheels, sdist=sdist)


def fill_wheelhouse(
    locked: Sequence[Locked],
    *,
    lock_dir: Path,
    target: Target,
    interpreter: Interpreter,
    sources: Sources,
    cache_dir: Path,
    wheelhouse: Path,
    work: Path,
    builder: Builder,
    hashes: Mapping[str, Set[str]] | None = None,
    meanwhile: Meanwhile | None = None,
) -> None:
    """A target wheel of every distribution of ``locked`` in ``wheelhouse``, those with
    none built by ``builder``; with ``hashes`` (pip's hash-checking mode: name → the
    SHA-256s pinned), only files whose SHA-256 is pinned for their distribution.
    ``meanwhile`` is given the fetched wheels while sdists build, and an event set once
    the builds are done (or failed): work it may do ahead until then."""
    order = target.ordered_tags()
    wheels: list[LockedFile] = []
    sdists: list[tuple[Locked, LockedFile]] = []
    direct: list[Locked] = []
    for dist in locked:
        if hashes is not None:
            dist = _pinned_files(dist, hashes)
        wheel = best_wheel(dist.wheels, order)
        if wheel is not None:
            wheels.append(wheel)
        elif dist.sdist is not None:
            sdists.append((dist, dist.sdist))
        elif dist.direct is not None:
            direct.append(dist)
        else:
            raise no_wheel(f"{dist.name}=={dist.version}", dist.name, target, sources, built=None)
    if sdists and not interpreter.is_target:
        first = sdists[0][0]
        raise no_wheel(f"{first.name}=={first.version}", first.name, target, sources, built=None)
    if wheels or sdists:
        log.info("fetching %d package file(s)", len(wheels) + len(sdists))
    got = fetch_all([s for _, s in sdists], work / "sdists", cache_dir, sources, lock_dir)
    built = threading.Event()

    def fetch_wheels() -> None:
        fetched = fetch_all(wheels, wheelhouse, cache_dir, sources, lock_dir)
        if meanwhile is not None and sdists and not built.is_set():
            meanwhile(fetched, built)

    # The wheels are fetched while the sdists build.
    builds = _Builds(
        interpreter=interpreter,
        target=target,
        sources=sources,
        wheelhouse=wheelhouse,
        cache_dir=cache_dir,
        builder=builder,
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        fetching = pool.submit(fetch_wheels)
        try:
            _build_sdists(sdists, got, builds)
        finally:
            built.set()
        fetching.result()
    _build_direct(direct, lock_dir, builds)


@dataclasses.dataclass(frozen=True)
class _Builds:
    """What every build of a distribution with no wheel for the target is given."""

    interpreter: Interpreter
    target: Target
    sources: Sources
    wheelhouse: Path
    cache_dir: Path
    builder: Builder


def _build_sdists(
    sdists: Sequence[tuple[Locked, LockedFile]], got: Sequence[Path], b: _Builds
) -> None:
    for (dist, file), path in zip(sdists, got):
        # An sdist the index published no SHA-256 for is built again each time.
        sha256 = file.sha256
        version = dist.version or ""
        if sha256 is None:
            build_for_target(
                str(path),
                dist.name,
                version,
                b.interpreter,
                b.target,
                b.sources,
                b.wheelhouse,
                b.target.tags(),
                b.builder,
                shown=f"{dist.name}=={version}",
            )
        else:
            built_once(
                path,
                sha256,
                dist.name,
                version,
                b.interpreter,
                b.target,
                b.sources,
                b.wheelhouse,
                b.cache_dir,
                b.builder,
            )


def _build_direct(direct: Sequence[Locked], lock_dir: Path, b: _Builds) -> None:
    for dist in direct:
        assert dist.direct is not None
        parts = urllib.parse.urlsplit(dist.direct)
        location = (
            urllib.request.url2pathname(parts.path)
            if parts.scheme == "file"
            else dist.direct
            if parts.scheme
            else str(lock_dir / dist.direct)
        )
        if location.endswith(".whl"):
            name = urllib.parse.unquote(location.rsplit("/", 1)[-1])
            fetch_all(
                [LockedFile(location, name, None)], b.wheelhouse, b.cache_dir, b.sources, lock_dir
            )
            continue
        if not b.interpreter.is_target:
            raise no_wheel(dist.direct, dist.name, b.target, b.sources, built=None)
        build_for_target(
            location,
            dist.name,
            dist.version or "",
            b.interpreter,
            b.target,
            b.sources,
            b.wheelhouse,
            b.target.tags(),
            b.builder,
        )
