"""pyfn-native-wheels: will each requirement and vendored binary load on the target PyPy?

For every requirement (``requirements*.txt``, ``pyproject.toml`` dependencies)
it says whether a wheel the target can load exists: pure Python, a PyPy wheel,
only an sdist, or none, with the tags that do exist. An sdist-only requirement
is built as ``pyfn build`` would build it, with a PyPy of the target's Python
(one in pyfn's cache after any build, or ``--pypy``), and judged by what the
build gives (cached by the sdist's SHA-256); without such a PyPy it is "not
verified". Vendored ``*.so`` files are read with pyelftools and judged like
``pyfn build`` judges a bundle; vendored wheels by their tags. A wheel or
extension module built for a PyPy release pyfn cannot target yet (``pp80``) is
named as such, with the release's needs (``data/pypy-releases.toml``). Answers are
cached for a day; ``--find-links DIR --no-index`` works offline. An index that
cannot be reached gives "could not check"; that and "not verified" fail only
with ``--strict``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename

from pyfn_action.bundle.native import judge
from pyfn_action.config import ARCHES
from pyfn_action.deps import index
from pyfn_action.deps.pip_runner import (
    Interpreter,
    host_interpreter,
    interpreter_for,
    run_pip,
    target_args,
    unsupported_wheel,
)
from pyfn_action.deps.reqfile import project_requirements, requirement_specs
from pyfn_action.deps.sdist import build_from_source
from pyfn_action.deps.sources import Sources
from pyfn_action.errors import ConfigError, PyfnError
from pyfn_action.fetch import replace_file
from pyfn_action.flows.jobs import cache_dir
from pyfn_action.runtime.elf import NotElf, read_elf
from pyfn_action.runtime.libdeps import load_image_libs
from pyfn_action.runtime.pypy import Runtime, cached_runtimes, local_runtime
from pyfn_action.runtime.releases import untargeted, untargeted_wheel
from pyfn_action.runtime.targets import Target, image_glibc, parse_glibc, pypy_lines, pypy_target
from pyfn_action.toml import tomllib

CACHE_SECONDS = 24 * 3600
PIP_TIMEOUT_SECONDS = 300  # per pip run; pip's own network timeout is 15 s, one retry
_PIP_NETWORK = ["--retries", "1", "--timeout", "15"]
FAILING = ("none", "invalid")
# What pip says when it cannot reach an index (it then reports no match at all).
_UNREACHABLE = (
    "NewConnectionError",
    "Connection refused",
    "Failed to establish",
    "Temporary failure in name resolution",
    "Name or service not known",
    "ConnectTimeoutError",
    "Max retries exceeded",
    "Could not fetch URL",
    "Network is unreachable",
    "ProxyError",
)


@dataclass(frozen=True)
class Verdict:
    subject: str
    kind: str  # pure | pypy | sdist | none | unknown | invalid | ok
    detail: str

    def line(self) -> str:
        return f"{self.subject}: {self.detail}"


def _environment(target: Target) -> dict[str, str]:
    return {
        "implementation_name": "pypy",
        "platform_python_implementation": "PyPy",
        "python_version": target.python_version,
        "python_full_version": target.python_version + ".0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": target.arch,
    }


def requirements_in(path: Path) -> Iterator[tuple[str, str]]:
    """(where, requirement) pairs from a requirements file or a pyproject.toml, read by
    the reader ``pyfn build`` uses; a ``!`` marks what could not be read."""
    if path.name == "pyproject.toml":
        try:
            specs = project_requirements(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            yield f"{path}", f"!invalid TOML: {exc}"
            return
        for spec in specs:
            yield str(path), spec
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, spec in requirement_specs(text):
        yield f"{path}:{number}", spec


class SdistBuilder:
    """Builds sdist-only requirements with a PyPy of the target's Python, as
    ``pyfn build`` would, and says what the build gives; outcomes are kept by the
    sdist's SHA-256 (the same bytes build the same way for the same target)."""

    def __init__(
        self, interpreter: Interpreter, target: Target, sources: Sources, cache: Path
    ) -> None:
        self.interpreter = interpreter
        self.downloader = host_interpreter(os.environ)  # fetches the sdist, as before a build
        self.target = target
        self.sources = sources
        self.cache_file = cache / "sdist-builds.json"
        try:
            self.cache: dict[str, list[str]] = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def judge(self, requirement: Requirement) -> tuple[str, str]:
        with tempfile.TemporaryDirectory(prefix="pyfn-sdist-") as tmp:
            work = Path(tmp)
            result = run_pip(
                self.downloader,
                [
                    "download",
                    "--no-deps",
                    "--no-binary",
                    requirement.name,
                    *_PIP_NETWORK,
                    "-d",
                    str(work / "sdist"),
                    *self.sources.pip_args(),
                    str(requirement),
                ],
                timeout=PIP_TIMEOUT_SECONDS,
            )
            sdists = sorted((work / "sdist").glob("*")) if result.returncode == 0 else []
            if len(sdists) != 1:
                lines = result.stderr.strip().splitlines()
                errors = [ln for ln in lines if "ERROR:" in ln] or [
                    ln for ln in lines if "error" in ln.lower()
                ]
                reason = (errors or lines or ["pip found no sdist"])[-1]
                return "unknown", f"only an sdist, not verified: {reason.strip()[:200]}"
            sdist = sdists[0]
            digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
            key = f"{digest}|{self.target.abi}|{self.target.arch}|{self.target.glibc}"
            if key in self.cache:
                kind, detail = self.cache[key]
                return kind, detail
            built = build_from_source(
                str(sdist), requirement.name, self.interpreter, self.sources, work / "wheels"
            )
        kind, detail = self._verdict(sdist.name, built.wheels, built.failure)
        self.cache[key] = [kind, detail]
        return kind, detail

    def _verdict(self, sdist: str, wheels: tuple[Path, ...], failure: str) -> tuple[str, str]:
        version = self.target.python_version
        if failure:
            reason = " ".join(line.strip() for line in failure.splitlines() if line.strip())
            return (
                "none",
                f"only an sdist ({sdist}), which does not build for PyPy {version}: {reason[:400]}",
            )
        names = [w.name for w in wheels]
        loadable = all(parse_wheel_filename(n)[3] & self.target.tags() for n in names)
        if not loadable:
            return (
                "none",
                f"only an sdist ({sdist}); it builds {', '.join(names)}, "
                f"which PyPy {version} cannot load",
            )
        pure = all(any(t.platform == "any" for t in parse_wheel_filename(n)[3]) for n in names)
        what = "pure Python" if pure else f"a PyPy {version} wheel"
        return (
            "sdist",
            f"only an sdist ({sdist}); it builds for PyPy {version}: {what} ({', '.join(names)})",
        )

    def save(self) -> None:
        _save_json(self.cache_file, self.cache)


def _save_json(path: Path, data: object) -> None:
    """Written whole to a temporary name and renamed: never a half-written cache file."""
    replace_file(path, json.dumps(data).encode())


def find_pypy(target: Target, cache: Path, given: Path | None) -> Runtime | None:
    """A PyPy of the target's Python and CPU: ``given``, else one in pyfn's cache."""
    if given is not None:
        runtime = local_runtime(given)
        if runtime.python_version != target.python_version or runtime.arch != target.arch:
            raise ConfigError(
                f"--pypy {given} is PyPy {runtime.python_version} for {runtime.arch}, and the "
                f"target is PyPy {target.python_version} for {target.arch}",
                fix="Pass a PyPy of the target's Python (or --runtime to match it)",
            )
        return runtime
    return next(
        (
            r
            for r in cached_runtimes(cache)
            if r.python_version == target.python_version and r.arch == target.arch
        ),
        None,
    )


class Checker:
    def __init__(
        self, target: Target, sources: Sources, cache: Path, builder: SdistBuilder | None = None
    ) -> None:
        self.target = target
        self.sources = sources
        self.pip = host_interpreter(os.environ)  # told the target by flags
        self.builder = builder
        self.cache_file = cache / "native-wheels.json"
        try:
            self.cache: dict[str, list[str | float]] = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def save(self) -> None:
        _save_json(self.cache_file, self.cache)
        if self.builder is not None:
            self.builder.save()

    def requirement(self, where: str, spec: str) -> Verdict | None:
        if spec.startswith("!"):
            return Verdict(where, "invalid", spec[1:])
        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            return Verdict(where, "invalid", f"not a valid requirement ({exc})")
        marker: Marker | None = requirement.marker
        if marker is not None and not marker.evaluate(_environment(self.target)):
            return None  # not installed on PyPy at all
        target = self.target
        key = json.dumps(
            [
                str(requirement),
                target.abi,
                target.arch,
                list(target.glibc),
                self.sources.pip_args(),
                self.builder is not None,
            ]
        )
        cached = self.cache.get(key)
        if cached and time.time() - float(cached[2]) < CACHE_SECONDS:
            return Verdict(f"{where} {requirement}", str(cached[0]), str(cached[1]))
        try:
            kind, detail = self._resolve(requirement)
        except PyfnError as exc:  # pip could not run, or did not finish
            kind, detail = "unknown", f"could not check (offline?): {exc.message}"
        if kind != "unknown":
            self.cache[key] = [kind, detail, time.time()]
        return Verdict(f"{where} {requirement}", kind, detail)

    def _resolve(self, requirement: Requirement) -> tuple[str, str]:
        target = self.target
        with tempfile.TemporaryDirectory(prefix="pyfn-wheels-") as tmp:
            result = run_pip(
                self.pip,
                [
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    *_PIP_NETWORK,
                    "-d",
                    tmp,
                    *target_args(target),
                    *self.sources.pip_args(),
                    str(requirement),
                ],
                timeout=PIP_TIMEOUT_SECONDS,
            )
            wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode == 0 and wheels:
            tags = parse_wheel_filename(wheels[0].name)[3]
            if any(tag.platform == "any" for tag in tags):
                return "pure", f"pure Python ({wheels[0].name})"
            return "pypy", f"PyPy wheel ({wheels[0].name})"
        refused = unsupported_wheel(result.stderr)  # a wheel named by path or URL
        foreign = untargeted_wheel(refused) if refused else None
        if foreign is not None:
            return "none", f"{refused} is built for {foreign.describe()}; {foreign.fix()}"
        unreachable = any(sign in result.stderr for sign in _UNREACHABLE)
        if unreachable or "No matching distribution" not in result.stderr:
            lines = result.stderr.strip().splitlines() or ["pip failed"]
            reason = next((ln for ln in lines if any(s in ln for s in _UNREACHABLE)), lines[-1])
            return "unknown", f"could not check (offline?): {reason.strip()[:200]}"
        tags, has_sdist = index.existing_files(requirement.name, self.sources)
        if has_sdist:
            if self.builder is not None:
                return self.builder.judge(requirement)
            return "unknown", (
                f"no wheel for the target; only an sdist, not verified: no PyPy "
                f"{target.python_version} at hand to build it (pyfn build once, which keeps "
                "one in pyfn's cache, or pass --pypy)"
            )
        found = index.summarize(tags) if tags else "nothing"
        detail = f"no wheel PyPy {target.python_version} can load; found {found}"
        foreign = untargeted(tag.abi for tag in tags)
        if foreign is not None:
            detail += f"; {foreign.wheels_note()}; {foreign.fix()}"
        return "none", detail

    def vendored(self, path: Path, siblings: frozenset[str]) -> Verdict | None:
        if path.suffix == ".whl":
            try:
                tags = parse_wheel_filename(path.name)[3]
            except ValueError as exc:
                return Verdict(str(path), "invalid", f"not a wheel name ({exc})")
            if tags & self.target.tags():
                return Verdict(str(path), "ok", "loads on the target")
            foreign = untargeted(tag.abi for tag in tags)
            if foreign is not None:
                detail = f"built for {foreign.describe()}; {foreign.fix()}"
                return Verdict(str(path), "none", detail)
            return Verdict(str(path), "none", f"tags {index.summarize(tags)}: PyPy cannot load it")
        try:
            info = read_elf(path)
        except NotElf as exc:
            return Verdict(str(path), "invalid", f"named like a shared object but {exc}")
        problems = judge(path.name, info, self.target, load_image_libs() | siblings)
        if problems:
            return Verdict(str(path), "none", "; ".join(problems))
        return Verdict(str(path), "ok", "loads on the target")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyfn-native-wheels", description=__doc__)
    parser.add_argument("filenames", nargs="*")
    runtimes = tuple(pypy_lines())
    glibc = "{}.{}".format(*image_glibc())
    parser.add_argument("--runtime", default=runtimes[0], choices=runtimes)
    parser.add_argument("--arch", default=ARCHES[0], choices=ARCHES)
    parser.add_argument("--glibc", default=glibc, help=f"the target image's glibc ({glibc})")
    parser.add_argument("--index-url")
    parser.add_argument("--extra-index-url", action="append", default=[])
    parser.add_argument("--find-links", action="append", default=[])
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument("--strict", action="store_true", help="fail when a check cannot run")
    parser.add_argument("--cache-dir", type=Path, help="where answers are kept (a day)")
    parser.add_argument(
        "--pypy",
        type=Path,
        metavar="PATH",
        help="a PyPy in the official layout (its root or bin/pypy3.X) to build sdists "
        "with (default: one in pyfn's cache)",
    )
    args = parser.parse_args(argv)
    try:
        target = pypy_target(args.runtime, args.arch, parse_glibc(args.glibc))
    except ValueError as exc:
        parser.error(str(exc))
    sources = Sources(
        args.index_url, tuple(args.extra_index_url), tuple(args.find_links), args.no_index
    )
    cache = cache_dir(args.cache_dir)
    builder = None
    try:
        runtime = find_pypy(target, cache, args.pypy)
        if runtime is not None:
            interpreter = interpreter_for(runtime, target, cache, dict(os.environ))
            if interpreter.is_target:
                builder = SdistBuilder(interpreter, target, sources, cache)
    except PyfnError as exc:
        print(f"{parser.prog}: {exc.message}", file=sys.stderr)
        return 2
    checker = Checker(target, sources, cache, builder)
    paths = [Path(n) for n in args.filenames if Path(n).is_file()]
    siblings = frozenset(p.name for p in paths if ".so" in p.name)
    verdicts: list[Verdict] = []
    for path in paths:
        if path.name.endswith((".so", ".whl")) or ".so." in path.name:
            verdict = checker.vendored(path, siblings)
            if verdict is not None:
                verdicts.append(verdict)
            continue
        for where, spec in requirements_in(path):
            found = checker.requirement(where, spec)
            if found is not None:
                verdicts.append(found)
    checker.save()
    failed = False
    for verdict in verdicts:
        print(verdict.line())
        failed |= verdict.kind in FAILING or (args.strict and verdict.kind == "unknown")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
