"""Resolution by uv: ``uv pip compile`` judges the requirements for the target PyPy and
writes a PEP 751 lock (``pylock.toml``): every distribution with its files' URLs and
SHA-256. pyfn fetches and checks those files itself (:mod:`pyfn_action.deps.files`)
and installs them with ``installer``, as it installs what pip resolves, so the bundle
does not depend on which tool resolved.

uv judges markers and wheel tags by an interpreter: the target PyPy when this machine
runs it, else a PyPy of this machine's told the target's Python version, and the
platform in either case (``--python-platform``, the newest manylinux uv names that is
no newer than the target's glibc).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from pyfn_action.deps.pip_runner import PIP_URL_VARIABLES, Interpreter, pip_tail, run_group
from pyfn_action.deps.pipconfig import PipSettings
from pyfn_action.deps.sdist import Builder, SourceBuild, build_reason, no_wheel
from pyfn_action.deps.sources import Sources, mask_text, url_secrets
from pyfn_action.errors import RequirementsError
from pyfn_action.runtime.targets import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

UV_TIMEOUT_SECONDS = 1800
# The manylinux versions uv's --python-platform names (uv 0.9 to 0.13), newest last.
_UV_MANYLINUX = (
    (2, 17),
    (2, 28),
    (2, 31),
    (2, 32),
    (2, 33),
    (2, 34),
    (2, 35),
    (2, 36),
    (2, 37),
    (2, 38),
    (2, 39),
    (2, 40),
)


@dataclass(frozen=True)
class LockedFile:
    """A file of a locked distribution: where uv found it, its name and SHA-256."""

    location: str  # a URL, or a path for a local file
    name: str
    sha256: str | None


@dataclass(frozen=True)
class Locked:
    """One distribution of the resolved set."""

    name: str
    version: str | None
    wheels: tuple[LockedFile, ...] = ()
    sdist: LockedFile | None = None
    direct: str | None = None  # a local directory or an archive named by path or URL


def uv_binary() -> str:
    """The uv executable shipped with pyfn (the ``uv`` package)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        found = None
    else:
        try:
            found = find_uv_bin()
        except FileNotFoundError:
            found = None
    if found is None:
        raise RequirementsError(
            "uv is not installed",
            why='resolver = "uv" (the default) runs the uv that is installed with pyfn',
            fix='Reinstall pyfn-action (it depends on uv), or set resolver = "pip"',
        )
    return str(found)


def python_platform(target: Target) -> str:
    """uv's name for the target platform: its CPU and the newest manylinux uv knows
    that is no newer than the target's glibc."""
    fitting = [v for v in _UV_MANYLINUX if v <= target.glibc]
    if not fitting:
        raise RequirementsError(
            f"glibc {target.glibc[0]}.{target.glibc[1]} is older than any manylinux uv targets",
            fix='Set resolver = "pip"',
        )
    major, minor = fitting[-1]
    return f"{target.arch}-manylinux_{major}_{minor}"


def uv_python(interpreter: Interpreter, env: Mapping[str, str]) -> str | None:
    """The interpreter uv judges with: the target PyPy, else a PyPy on ``PATH``."""
    if interpreter.is_target:
        return interpreter.argv[0]
    for name in ("pypy3", "pypy"):
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return found
    return None


def compile_lock(
    requirement_files: Sequence[Path],
    specs: Sequence[str],
    *,
    python: str,
    target: Target,
    interpreter: Interpreter,
    pip: PipSettings,
    cache_dir: Path,
    work: Path,
) -> list[Locked]:
    """``uv pip compile`` of the requirements for the target: the locked distributions.
    ``pip`` is where to look (pyfn's sources with pip's configuration)."""
    work.mkdir(parents=True, exist_ok=True)
    inputs = [str(Path(f).absolute()) for f in requirement_files]  # uv runs in ``work``
    if specs:
        extra = work / "requested.txt"
        extra.write_text("".join(f"{spec}\n" for spec in specs), encoding="utf-8")
        inputs.append(str(extra))
    lock = work / "pylock.toml"
    uv = _Uv(
        python=python,
        target=target,
        interpreter=interpreter,
        pip=pip,
        cache_dir=cache_dir,
        work=work,
    )
    result, stderr = uv.compile(inputs, lock)
    if result.returncode != 0:
        _refuse(stderr, target, pip.sources, uv.newest)
        raise RequirementsError(
            f"uv could not resolve the requirements for PyPy {target.python_version}",
            why=pip_tail(stderr),
            fix="Read uv's message above; check the versions you pin and the index "
            "(index_url, find_links)",
        )
    return read_lock(lock)


@dataclass(frozen=True)
class _Uv:
    """``uv pip compile`` for one target, from one set of sources."""

    python: str
    target: Target
    interpreter: Interpreter
    pip: PipSettings
    cache_dir: Path
    work: Path

    def compile(
        self, inputs: Sequence[str], lock: Path
    ) -> tuple[subprocess.CompletedProcess[str], str]:
        """uv run on ``inputs`` (requirement files) into ``lock``; its stderr, masked."""
        shared, env = _shared(self.pip, self.interpreter, self.cache_dir)
        argv = [
            uv_binary(),
            "pip",
            "compile",
            "--format",
            "pylock.toml",
            "--output-file",
            str(lock),
            "--no-header",
            "--quiet",
            *shared,
            "--python",
            self.python,
            "--python-version",
            self.target.python_version,
            "--python-platform",
            python_platform(self.target),
            *([] if self.interpreter.is_target else ["--only-binary", ":all:"]),
            *inputs,
        ]
        secrets = _secrets(argv, env)
        log.debug("running %s", mask_text(shlex.join(argv), secrets))
        try:
            result = run_group(argv, env, UV_TIMEOUT_SECONDS, cwd=self.work)
        except subprocess.TimeoutExpired as exc:
            raise RequirementsError(
                f"uv did not resolve the requirements within {UV_TIMEOUT_SECONDS} s",
                fix="Check that the package index is reachable, or pin versions",
            ) from exc
        except OSError as exc:
            raise RequirementsError("Cannot run uv", why=str(exc)) from exc
        return result, mask_text(result.stderr or "", secrets)

    def newest(self, name: str) -> str | None:
        """The newest release of ``name`` the target can install, if there is one."""
        asked = self.work / "newest.txt"
        asked.write_text(f"{name}\n", encoding="utf-8")
        lock = self.work / "pylock.newest.toml"
        # Not --no-deps: without dependencies, uv reads no metadata, so it would take
        # the newest release from an index that publishes no Requires-Python.
        result, stderr = self.compile([str(asked)], lock)
        if result.returncode != 0:
            log.debug("no release of %s for the target: %s", name, stderr)
            return None
        found = [p for p in read_lock(lock) if canonicalize_name(p.name) == canonicalize_name(name)]
        return found[0].version if found else None


def _shared(
    pip: PipSettings, interpreter: Interpreter, cache_dir: Path
) -> tuple[list[str], dict[str, str]]:
    """What every uv run of a build shares: the arguments (uv's cache inside pyfn's;
    where to look as pip looks, the best version on any index) and the environment
    (what a build may see, pip's certificate, never a ``uv.toml`` of the checkout)."""
    args = [
        "--no-progress",
        "--cache-dir",
        str(cache_dir / "uv"),
        "--index-strategy",
        "unsafe-best-match",
        # A package's own [tool.uv.sources] (a pull request's pyproject.toml) never
        # sends uv to a path, a repository or an index of its choosing: metadata as
        # published, as pip reads it.
        "--no-sources",
        *pip.sources.pip_args(),  # uv takes pip's flags for them
        *(arg for host in pip.trusted_hosts for arg in ("--allow-insecure-host", host)),
    ]
    env = {**interpreter.env, "UV_NO_CONFIG": "1"}
    if pip.cert:
        env["SSL_CERT_FILE"] = pip.cert
    return args, env


def _secrets(argv: Sequence[str], env: Mapping[str, str]) -> set[str]:
    """The credentials a uv run's command line and pip's variables carry."""
    return url_secrets([*argv, *(env.get(name, "") for name in PIP_URL_VARIABLES)])


_NAME = r"`?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?`?"
# uv's reasons a requirement cannot be had, with the distribution they name.
_NO_WHEEL = tuple(
    re.compile(pattern)
    for pattern in (
        rf"Because {_NAME}(?:==(?P<version>[^\s,]+)|[<>!~]=?\S+)? has no wheels with a matching",
        rf"Because {_NAME} was not found in the ",
        rf"Because (?:there is no version of|only) {_NAME}[=<>!~]",
    )
)
_REQUIRES_PYTHON = re.compile(
    rf"Because {_NAME}==(?P<version>\S+) requires Python (?P<spec>[^ ,]+(?:,[^ ,]+)*)"
)


def _refuse(
    stderr: str, target: Target, sources: Sources, newest: Callable[[str], str | None]
) -> None:
    """Raise the error that names the real reason uv gave, when it gave one we know;
    ``newest(name)`` is the newest release of ``name`` the target can install."""
    python = _REQUIRES_PYTHON.search(stderr)
    if python is not None:
        name, version, spec = python["name"], python["version"], python["spec"]
        fitting = newest(name)
        fix = (
            f"Pin {name}=={fitting}, its newest release for Python {target.python_version}"
            if fitting
            else f"No release of {name} supports Python {target.python_version}: choose "
            "a runtime with a newer Python (runtime), or do without it"
        )
        raise RequirementsError(
            f"{name} {version} requires Python {spec}, but the runtime is Python "
            f"{target.python_version}",
            why="no release of it that the requirements allow supports the runtime's Python",
            fix=fix,
        )
    for pattern in _NO_WHEEL:
        missing = pattern.search(stderr)
        if missing is not None:
            name = canonicalize_name(missing["name"])
            version = missing.groupdict().get("version")
            spec = f"{name}=={version}" if version else name
            raise no_wheel(spec, name, target, sources, built=None)


def read_lock(path: Path) -> list[Locked]:
    """The distributions of a ``pylock.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        packages = data.get("packages", [])
        return sorted((_locked(item) for item in packages), key=lambda p: canonicalize_name(p.name))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RequirementsError("uv wrote no usable lock", why=str(exc)) from exc


def _file(entry: Mapping[str, object]) -> LockedFile:
    location = str(entry.get("url") or entry.get("path") or "")
    name = str(entry.get("name") or location.rstrip("/").rsplit("/", 1)[-1])
    hashes = entry.get("hashes") or {}
    sha256 = hashes.get("sha256") if isinstance(hashes, Mapping) else None
    return LockedFile(location, name, str(sha256) if sha256 else None)


def _locked(item: Mapping[str, object]) -> Locked:
    name = str(item["name"])
    version = item.get("version")
    wheels = tuple(_file(w) for w in item.get("wheels", ()))  # type: ignore[attr-defined]
    sdist = item.get("sdist")
    direct = None
    for kind in ("directory", "archive"):
        entry = item.get(kind)
        if isinstance(entry, Mapping):
            direct = str(entry.get("url") or entry.get("path"))
    if item.get("vcs"):
        raise RequirementsError(
            f"{name} is a version-control requirement",
            fix="Name a released version, a wheel or a local directory instead",
        )
    return Locked(
        name=name,
        version=str(version) if version is not None else None,
        wheels=wheels,
        sdist=_file(sdist) if isinstance(sdist, Mapping) else None,
        direct=direct,
    )


def uv_builder(cache_dir: Path, pip: PipSettings) -> Builder:
    """Builds an sdist (or a local package) with ``uv build`` and the target PyPy,
    looking for its build requirements where the resolution looked (``pip``): its build
    environment (setuptools and the like) comes from uv's cache, in a fraction of the
    time pip takes to make one inside PyPy."""

    def build(
        spec: str, name: str, interpreter: Interpreter, sources: Sources, out: Path
    ) -> SourceBuild:
        shared, env = _shared(dataclasses.replace(pip, sources=sources), interpreter, cache_dir)
        argv = [
            uv_binary(),
            "build",
            "--wheel",
            "--out-dir",
            str(out),
            *shared,
            "--python",
            interpreter.argv[0],
            spec,
        ]
        secrets = _secrets(argv, env)
        log.debug("running %s", mask_text(shlex.join(argv), secrets))
        try:
            result = run_group(argv, env, UV_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return SourceBuild((), f"uv build did not finish within {UV_TIMEOUT_SECONDS} s")
        except OSError as exc:
            return SourceBuild((), f"cannot run uv: {exc}")
        stderr = mask_text(result.stderr or "", secrets)
        wheels = tuple(sorted(out.glob("*.whl")))
        if result.returncode != 0 or not wheels:
            log.debug("building %s failed:\n%s", name, stderr)
            return SourceBuild((), build_reason(stderr) or f"uv exited with {result.returncode}")
        return SourceBuild(wheels, "")

    return build
