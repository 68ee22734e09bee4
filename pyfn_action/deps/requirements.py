"""Install a function's requirements for the target PyPy into the bundle's ``site/``.

Resolution is uv's (:mod:`.uvlock`, the default) or pip's. pip runs *inside the
target PyPy* whenever this machine can run it, so environment markers
(``platform_python_implementation``, ``python_version``) are judged by the
interpreter that will load the code; uv judges with the same interpreter. Either is
restricted to the target's wheel tags: PyPy's ABI and every ``manylinux`` tag up to
the target image's glibc. A requirement that has no such wheel is built from its
sdist by the target PyPy; the result is accepted only if it is a wheel the target
can load (a pure-Python one, in practice). Every wheel is checked once more (tags,
Requires-Python) and installed with ``installer``, whichever tool resolved.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import urllib.parse
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from pyfn_action.deps import pipconfig, uvlock
from pyfn_action.deps.locked import Meanwhile, fill_wheelhouse
from pyfn_action.deps.pip_runner import Interpreter as Interpreter  # also imported from here
from pyfn_action.deps.pip_runner import pip_tail, run_pip, target_args, unsupported_wheel
from pyfn_action.deps.reqfile import requirement_specs
from pyfn_action.deps.reqlines import pinned_hashes, source_options
from pyfn_action.deps.sdist import build_for_target, no_wheel
from pyfn_action.deps.sources import Sources
from pyfn_action.errors import NoCompatibleWheel, RequirementsError
from pyfn_action.runtime.releases import untargeted_wheel
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)

_NO_MATCH = re.compile(r"No matching distribution found for (?P<spec>\S+)")


@dataclass(frozen=True)
class Distribution:
    """One installed distribution and the files it put into ``site/``."""

    name: str
    version: str
    wheel: str
    files: tuple[str, ...]  # POSIX paths relative to site/


@dataclass(frozen=True)
class Installed:
    site: Path
    distributions: tuple[Distribution, ...]
    resolver: str = "uv"  # which resolved them: "uv" or "pip"


@dataclass(frozen=True)
class Pin:
    """One distribution of the resolved set, and what pip first chose for it."""

    name: str
    version: str
    spec: str  # what to ask pip for: name==version, or the direct URL
    chosen: str  # the file pip picked while resolving


def install_requirements(
    requirements: Sequence[str],
    *,
    requirement_files: Sequence[Path],
    target: Target,
    interpreter: Interpreter,
    site: Path,
    work: Path,
    cache_dir: Path,
    sources: Sources,
    resolver: str = "uv",
    meanwhile: Meanwhile | None = None,
) -> Installed:
    """Resolve and install ``requirements`` (specs) and ``requirement_files`` into ``site``.

    1. resolve the whole set for the target, with uv (:mod:`pyfn_action.deps.uvlock`) or
       pip (inside the target PyPy when possible);
    2. fetch a target wheel of every pin;
    3. build the pins that have none from source, keeping only loadable wheels;
    4. verify every wheel (tags, Requires-Python) and install it.

    ``meanwhile`` may work ahead with the fetched wheels while sdists build (uv only).
    """
    site.mkdir(parents=True, exist_ok=True)
    if not requirements and not requirement_files:
        return Installed(site, (), resolver)  # nothing to resolve: the setting stands
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    pip = pipconfig.settings(sources, interpreter.env)
    # Build trees (pip's and uv's) go inside ``work``, which the build removes however
    # it ends (SIGTERM included), never into the system's temporary directory.
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    private = {name: str(tmp) for name in ("TMPDIR", "TEMP", "TMP")}
    interpreter = dataclasses.replace(
        interpreter, env={**interpreter.env, **pip.environment, **private}
    )
    python = uvlock.uv_python(interpreter, interpreter.env) if resolver == "uv" else None
    if resolver == "uv" and python is None:
        log.warning(
            "uv judges requirements with a PyPy, and this machine has none that runs "
            "(install pypy3 to use it): resolving with pip"
        )
        resolver = "pip"
    if python is not None:
        log.info("resolving the requirements with uv")
        locked = uvlock.compile_lock(
            requirement_files,
            requirements,
            python=python,
            target=target,
            interpreter=interpreter,
            pip=pip,
            cache_dir=cache_dir,
            work=work,
        )
        fill_wheelhouse(
            locked,
            lock_dir=work,
            target=target,
            interpreter=interpreter,
            sources=pip.sources,
            cache_dir=cache_dir,
            wheelhouse=wheelhouse,
            work=work,
            builder=uvlock.uv_builder(cache_dir, pip),
            hashes=_pinned_hashes(requirement_files),
            meanwhile=meanwhile,
        )
    else:
        log.info("resolving the requirements with pip")
        _pip_wheelhouse(
            requirements,
            requirement_files,
            target,
            interpreter,
            sources,
            cache_dir,
            work,
            wheelhouse,
        )
    wheels = sorted(wheelhouse.glob("*.whl"))
    _check_wheels(wheels, target, wheelhouse)
    installed = Installed(site, tuple(_install(w, site) for w in wheels), resolver)
    _say_what_markers_left_out(requirement_files, installed)
    return installed


def _say_what_markers_left_out(files: Sequence[Path], installed: Installed) -> None:
    """Name each requirement its environment marker kept out of the bundle."""
    have = {canonicalize_name(d.name) for d in installed.distributions}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for _, spec in requirement_specs(text):
            try:
                requirement = Requirement(spec)
            except InvalidRequirement:
                continue
            if requirement.marker and canonicalize_name(requirement.name) not in have:
                log.info(
                    "%s is not installed: its marker (%s) is false for the target",
                    requirement.name,
                    requirement.marker,
                )


def _pinned_hashes(files: Sequence[Path]) -> dict[str, set[str]] | None:
    """The hashes the requirements pin by name, if they are in hash-checking mode."""
    pinned: dict[str, set[str]] = {}
    required = False
    for path in files:
        found, asked = pinned_hashes(path)
        required = required or asked
        for name, digests in found.items():
            pinned.setdefault(name, set()).update(digests)
    return pinned if pinned or required else None


def _pip_wheelhouse(
    requirements: Sequence[str],
    requirement_files: Sequence[Path],
    target: Target,
    interpreter: Interpreter,
    sources: Sources,
    cache_dir: Path,
    work: Path,
    wheelhouse: Path,
) -> None:
    """pip's way to a wheelhouse: resolve, download, build what has no wheel."""
    args = [arg for f in requirement_files for arg in ("-r", str(f))] + list(requirements)
    pins = _resolve(args, interpreter, target, sources, cache_dir, work)
    # What the requirement files say of sources applies to the download too, which
    # names pins, not the files.
    from_files = [arg for f in requirement_files for arg in source_options(f)]
    tags = target.tags()
    # What pip could only resolve to an sdist is built at once; the rest is downloaded.
    from_source = [p for p in pins if not p.chosen.endswith(".whl")]
    remaining = [p for p in pins if p.chosen.endswith(".whl")]
    if from_source and not interpreter.is_target:
        first = from_source[0]
        raise no_wheel(first.spec, first.name, target, sources, built=None)
    for pin in from_source:
        build_for_target(
            pin.spec, pin.name, pin.version, interpreter, target, sources, wheelhouse, tags
        )
    for _ in range(len(pins) + 1):
        if not remaining:
            break
        result = run_pip(
            interpreter,
            ["download", "--no-deps", "--dest", str(wheelhouse), "--only-binary=:all:"]
            + target_args(target)
            + sources.pip_args()
            + from_files
            + _cache_args(cache_dir)
            + [p.spec for p in remaining],
        )
        if result.returncode == 0:
            break
        failed = _failed_pin(result.stderr, remaining)
        if failed is None:
            raise RequirementsError(
                "pip could not download the requirements for the target",
                why=pip_tail(result.stderr),
                fix="Check that the package index is reachable (index_url, find_links)",
            )
        remaining.remove(failed)
        if not interpreter.is_target:
            raise no_wheel(failed.spec, failed.name, target, sources, built=None)
        build_for_target(
            failed.spec, failed.name, failed.version, interpreter, target, sources, wheelhouse, tags
        )


def _resolve(
    args: list[str],
    interpreter: Interpreter,
    target: Target,
    sources: Sources,
    cache_dir: Path,
    work: Path,
) -> list[Pin]:
    """The full set of distributions the requirements need, as pip resolves it."""
    report = work / "resolution.json"
    extra = [] if interpreter.is_target else target_args(target) + ["--only-binary=:all:"]
    result = run_pip(
        interpreter,
        [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--prefer-binary",
            "--quiet",
            "--report",
            str(report),
        ]
        + extra
        + sources.pip_args()
        + _cache_args(cache_dir)
        + args,
    )
    if result.returncode != 0:
        spec = _unmatched(result.stderr)
        if spec is not None:
            raise no_wheel(spec, _spec_name(spec), target, sources, built=None)
        unsupported = unsupported_wheel(result.stderr)
        foreign = _untargeted_wheel(unsupported, target) if unsupported else None
        if foreign is not None:
            raise foreign
        raise RequirementsError(
            f"pip could not resolve the requirements for PyPy {target.python_version}",
            why=pip_tail(result.stderr),
            fix="Read pip's message above; check the versions you pin and the index "
            "(index_url, find_links)",
        )
    try:
        installs = json.loads(report.read_text())["install"]
        pins = []
        for item in installs:
            meta, download = item["metadata"], item["download_info"]
            name, version, url = meta["name"], meta["version"], download["url"]
            direct = bool(item.get("is_direct"))
            spec = f"{name} @ {url}" if direct else f"{name}=={version}"
            # The file's name is the last segment of the URL's path (never its query).
            chosen = urllib.parse.unquote(urllib.parse.urlsplit(str(url)).path.rsplit("/", 1)[-1])
            pins.append(Pin(name=str(name), version=str(version), spec=spec, chosen=chosen))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RequirementsError("pip wrote no usable resolution report", why=str(exc)) from exc
    return sorted(pins, key=lambda p: canonicalize_name(p.name))


def _failed_pin(stderr: str, pins: list[Pin]) -> Pin | None:
    spec = _unmatched(stderr)
    if spec is None:
        return None
    name = _spec_name(spec)
    return next((p for p in pins if canonicalize_name(p.name) == name), None)


def _cache_args(cache_dir: Path) -> list[str]:
    return ["--cache-dir", str(cache_dir / "pip")]


def _unmatched(stderr: str) -> str | None:
    match = _NO_MATCH.search(stderr)
    return match.group("spec") if match else None


def _spec_name(spec: str) -> str:
    return canonicalize_name(re.split(r"[<>=!~;\[ @]", spec, maxsplit=1)[0])


def _metadata(wheel: Path) -> tuple[str, str, str | None]:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as zf:
        meta = next(
            (n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")),
            None,
        )
        if meta is None:
            raise RequirementsError(f"{wheel.name} has no METADATA", fix="Rebuild the wheel")
        headers = HeaderParser().parsestr(zf.read(meta).decode("utf-8", "replace"))
    return str(name), str(version), headers.get("Requires-Python")


def _check_wheels(wheels: list[Path], target: Target, wheelhouse: Path) -> None:
    tags = target.tags()
    python = Version(target.python_version + ".99")
    for wheel in wheels:
        try:
            tagset = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename as exc:
            raise RequirementsError(f"pip produced an invalid wheel name {wheel.name}") from exc
        if not tagset & tags:
            foreign = _untargeted_wheel(wheel.name, target)
            if foreign is not None:
                raise foreign
            raise NoCompatibleWheel(
                f"{wheel.name} cannot be loaded by PyPy {target.python_version}",
                why=f"its tags are not among the target's ({target.abi}, manylinux ≤ "
                f"glibc {target.glibc[0]}.{target.glibc[1]})",
                fix="Pin a release with a PyPy or pure-Python wheel",
            )
        name, version, requires = _metadata(wheel)
        try:
            ok = requires is None or SpecifierSet(requires).contains(python, prereleases=True)
        except InvalidSpecifier:
            ok = True  # pip accepted it; an unparseable marker is not ours to judge
        if not ok:
            raise RequirementsError(
                f"{name} {version} requires Python {requires}, but the runtime is "
                f"Python {target.python_version}",
                why="the package index did not publish Requires-Python, so pip picked a "
                "release that is too new for the target",
                fix=f"Pin an older {name} in requirements.txt, or use an index that "
                "publishes Requires-Python",
            )
    names = [canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RequirementsError(
            f"pip left several wheels of {', '.join(duplicates)} in {wheelhouse}",
            fix="Report this as a bug with your requirements.txt",
        )


def _untargeted_wheel(filename: str, target: Target) -> NoCompatibleWheel | None:
    """The error for a wheel built for a PyPy release pyfn cannot target, if it is one."""
    foreign = untargeted_wheel(filename)
    if foreign is None:
        return None
    name = parse_wheel_filename(filename)[0]
    return NoCompatibleWheel(
        f"{filename} cannot be loaded by PyPy {target.python_version}",
        requirement=canonicalize_name(name),
        why=f"it is built for {foreign.describe()}",
        fix=f"Use {foreign.wanted} of {name} or its sdist",
    )


def _install(wheel: Path, site: Path) -> Distribution:
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(site / "include"),
        "scripts": str(site / "bin"),
        "data": str(site),
    }
    destination = SchemeDictionaryDestination(
        scheme,
        interpreter="/usr/bin/env pypy3",
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    try:
        with WheelFile.open(wheel) as source, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            install(source, destination, additional_metadata={"INSTALLER": b"pyfn\n"})
        for warning in caught:  # e.g. stray __pycache__ in a wheel, which installer skips
            log.debug("%s: %s", wheel.name, warning.message)
    except (FileExistsError, ValueError, zipfile.BadZipFile) as exc:
        raise RequirementsError(
            f"Cannot install {wheel.name} into the bundle", why=str(exc)
        ) from exc
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return Distribution(
        name=str(name),
        version=str(version),
        wheel=wheel.name,
        files=_recorded_files(site, str(name), str(version)),
    )


def _recorded_files(site: Path, name: str, version: str) -> tuple[str, ...]:
    wanted = canonicalize_name(name)
    for info in site.glob("*.dist-info"):
        dist, _, ver = info.name[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(dist) == wanted and Version(ver) == Version(version):
            record = info / "RECORD"
            rows = record.read_text(encoding="utf-8").splitlines()
            paths = (row.rsplit(",", 2)[0].strip('"') for row in rows if row.strip())
            return tuple(sorted(os.path.normpath(p).replace(os.sep, "/") for p in paths))
    raise RequirementsError(f"{name} {version} was installed without a RECORD")
