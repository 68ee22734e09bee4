"""pyfn-native-wheels: will each requirement and vendored binary load on the target PyPy?

For every requirement (``requirements*.txt``, ``pyproject.toml`` dependencies)
it says whether a wheel the target can load exists: pure Python, a PyPy wheel,
only an sdist (``pyfn build`` builds it with PyPy), or none, with the tags that
do exist. Vendored ``*.so`` files are read with pyelftools and judged like
``pyfn build`` judges a bundle; vendored wheels by their tags. Answers are
cached for a day; ``--find-links DIR --no-index`` works offline. An index that
cannot be reached gives "could not check", which fails only with ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename

from .. import index
from ..elf import NotElf, read_elf
from ..libdeps import load_image_libs
from ..native import judge
from ..requirements import Sources
from ..targets import Target, parse_glibc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CACHE_SECONDS = 24 * 3600
PIP_TIMEOUT_SECONDS = 300
FAILING = ("none", "invalid")
# What pip says when it cannot reach an index (it then reports no match at all).
_UNREACHABLE = (
    "NewConnectionError", "Connection refused", "Failed to establish",
    "Temporary failure in name resolution", "Name or service not known",
    "ConnectTimeoutError", "Max retries exceeded", "Could not fetch URL",
    "Network is unreachable", "ProxyError",
)  # fmt: skip


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
    """(where, requirement) pairs from a requirements file or a pyproject.toml."""
    if path.name == "pyproject.toml":
        try:
            project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            yield f"{path}", f"!invalid TOML: {exc}"
            return
        for spec in project.get("dependencies", []):
            yield str(path), spec
        for specs in project.get("optional-dependencies", {}).values():
            for spec in specs:
                yield str(path), spec
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or line.startswith((".", "/", "file:")):
            continue
        yield f"{path}:{number}", line


class Checker:
    def __init__(self, target: Target, sources: Sources, cache: Path) -> None:
        self.target = target
        self.sources = sources
        self.cache_file = cache / "native-wheels.json"
        try:
            self.cache: dict[str, list[str | float]] = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def save(self) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.cache_file.write_text(json.dumps(self.cache))

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
            [str(requirement), target.abi, target.arch, list(target.glibc),
             self.sources.pip_args()]
        )  # fmt: skip
        cached = self.cache.get(key)
        if cached and time.time() - float(cached[2]) < CACHE_SECONDS:
            return Verdict(f"{where} {requirement}", str(cached[0]), str(cached[1]))
        kind, detail = self._resolve(requirement)
        if kind != "unknown":
            self.cache[key] = [kind, detail, time.time()]
        return Verdict(f"{where} {requirement}", kind, detail)

    def _resolve(self, requirement: Requirement) -> tuple[str, str]:
        target = self.target
        args = [arg for p in target.platforms() for arg in ("--platform", p)]
        args += ["--implementation", "pp", "--python-version", target.python_version,
                 "--abi", target.abi, *self.sources.pip_args()]  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="pyfn-wheels-") as tmp:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "--no-input", "--retries", "1",
                 "--timeout", "15", "-d", tmp, *args,
                 str(requirement)],
                capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False,
            )  # fmt: skip
            wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode == 0 and wheels:
            tags = parse_wheel_filename(wheels[0].name)[3]
            if any(tag.platform == "any" for tag in tags):
                return "pure", f"pure Python ({wheels[0].name})"
            return "pypy", f"PyPy wheel ({wheels[0].name})"
        unreachable = any(sign in result.stderr for sign in _UNREACHABLE)
        if unreachable or "No matching distribution" not in result.stderr:
            lines = result.stderr.strip().splitlines() or ["pip failed"]
            reason = next((ln for ln in lines if any(s in ln for s in _UNREACHABLE)), lines[-1])
            return "unknown", f"could not check (offline?): {reason.strip()[:200]}"
        tags, has_sdist = index.existing_files(requirement.name, self.sources)
        if has_sdist:
            return "sdist", (
                "no wheel for the target; only an sdist, which pyfn build compiles with "
                "PyPy (fine if it is pure Python)"
            )
        found = index.summarize(tags) if tags else "nothing"
        return "none", f"no wheel PyPy {target.python_version} can load; found {found}"

    def vendored(self, path: Path, siblings: frozenset[str]) -> Verdict | None:
        if path.suffix == ".whl":
            try:
                tags = parse_wheel_filename(path.name)[3]
            except ValueError as exc:
                return Verdict(str(path), "invalid", f"not a wheel name ({exc})")
            if tags & self.target.tags():
                return Verdict(str(path), "ok", "loads on the target")
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
    parser = argparse.ArgumentParser(prog="pyfn-check-wheels", description=__doc__)
    parser.add_argument("filenames", nargs="*")
    parser.add_argument(
        "--runtime", default="pypy3.11", choices=("pypy3.11", "pypy3.10", "pypy3.9")
    )
    parser.add_argument("--arch", default="x86_64", choices=("x86_64", "aarch64"))
    parser.add_argument("--glibc", default="2.35", help="the target image's glibc (2.35)")
    parser.add_argument("--index-url")
    parser.add_argument("--extra-index-url", action="append", default=[])
    parser.add_argument("--find-links", action="append", default=[])
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument("--strict", action="store_true", help="fail when a check cannot run")
    parser.add_argument("--cache-dir", type=Path, help="where answers are kept (a day)")
    args = parser.parse_args(argv)
    try:
        glibc = parse_glibc(args.glibc)
    except ValueError as exc:
        parser.error(str(exc))
    target = Target(args.runtime.removeprefix("pypy"), "73", args.arch, glibc)
    sources = Sources(
        args.index_url, tuple(args.extra_index_url), tuple(args.find_links), args.no_index
    )
    from ..flow import cache_dir

    checker = Checker(target, sources, cache_dir(args.cache_dir))
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
