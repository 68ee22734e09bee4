"""Which Python runs pip for a build, the pip it runs, and running it.

pip runs inside the target PyPy whenever this machine can execute it, so that
environment markers are judged by the interpreter that will load the code. The
pip it runs is the runtime's own (its ``ensurepip`` wheel), unpacked once into
the cache, or else this environment's pip when that supports the runtime's
Python. Otherwise this Python's pip runs, told the target by flags
(:func:`target_args`). Whatever pip prints comes back with the credentials of
index URLs masked.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pyfn_action.buildenv import build_environment
from pyfn_action.deps.sources import mask_text, url_secrets
from pyfn_action.errors import BundleError, RequirementsError
from pyfn_action.fetch import cache_lock, file_identity, replace_file, settled, sha256_file
from pyfn_action.runtime.pypy import Runtime
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)

# pip reads these from the environment: their credentials are as secret as --index-url's.
PIP_URL_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS")
_UNSUPPORTED = re.compile(r"(?P<wheel>[^\s/]+\.whl) is not a supported wheel on this platform")

PIP_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class Interpreter:
    """How to run pip: the target PyPy itself, or this Python with target flags; ``env``
    is all its processes see (:func:`pyfn_action.buildenv.build_environment`)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    is_target: bool


def host_can_run(target: Target) -> bool:
    """Whether this machine can execute the target's PyPy binary."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return platform.system() == "Linux" and machine == target.arch


def host_interpreter(env: Mapping[str, str]) -> Interpreter:
    """This Python's pip, in what a build may see of ``env``: it learns the target from
    :func:`target_args`."""
    return Interpreter((sys.executable,), build_environment(env), is_target=False)


def target_args(target: Target) -> list[str]:
    """pip's flags for the target's wheels: every platform tag, PyPy, its Python and ABI."""
    args = [arg for p in target.platforms() for arg in ("--platform", p)]
    return args + [
        "--implementation",
        "pp",
        "--python-version",
        target.python_version,
        "--abi",
        target.abi,
    ]


def run_pip(
    interpreter: Interpreter, args: list[str], *, timeout: float = PIP_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """pip run with ``args``; its output comes back with credentials masked, as every
    message and log line that quotes it must show it."""
    argv = [*interpreter.argv, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    secrets = url_secrets([*argv, *(interpreter.env.get(name, "") for name in PIP_URL_VARIABLES)])
    log.debug("running %s", mask_text(shlex.join(argv), secrets))
    try:
        result = run_group(argv, interpreter.env, timeout)
    except subprocess.TimeoutExpired as exc:
        raise RequirementsError(
            f"pip did not finish within {timeout:g} s",
            fix="Check that the package index is reachable",
        ) from exc
    except OSError as exc:
        raise RequirementsError(f"Cannot run pip with {argv[0]}", why=str(exc)) from exc
    result.stdout = mask_text(result.stdout or "", secrets)
    result.stderr = mask_text(result.stderr or "", secrets)
    if result.stdout:
        log.debug("%s", result.stdout)
    return result


HEARTBEAT_SECONDS = 30.0


def run_group(
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end in a process group of its own, its output captured, with
    a line every ``heartbeat`` seconds while it runs (a long resolution is never
    silent). If the wait ends early (a timeout, Ctrl-C, SIGTERM), the whole group is
    killed: pip's and uv's build backends too, which would go on writing into a
    build's temporary tree while it is removed."""
    name = "pip" if "pip" in argv[1:4] else Path(argv[0]).name
    started = time.monotonic()
    with subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            while True:
                left = timeout - (time.monotonic() - started)
                try:
                    stdout, stderr = process.communicate(timeout=max(0.0, min(heartbeat, left)))
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() - started >= timeout:
                        raise
                    log.info("%s is still working (%.0f s)", name, time.monotonic() - started)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def pip_tail(text: str, lines: int = 12) -> str:
    """The last ``lines`` pip wrote, without its warnings about install locations."""
    kept = [ln for ln in text.strip().splitlines() if not ln.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


def unsupported_wheel(stderr: str) -> str | None:
    """The file name of a wheel pip refused as "not a supported wheel on this platform"
    (a wheel named directly, by path or URL, whose tags are not the target's)."""
    match = _UNSUPPORTED.search(stderr)
    return match["wheel"] if match else None


def interpreter_for(
    runtime: Runtime, target: Target, cache_dir: Path, env: Mapping[str, str]
) -> Interpreter:
    """pip inside the target PyPy when this machine runs it; else this Python, with flags.
    Either runs in what a build may see of ``env``, never a credential."""
    if not host_can_run(target):
        log.warning(
            "this machine cannot run the %s PyPy, so requirements are resolved by "
            "this Python with target flags: environment markers are judged for the "
            "host, and sdists cannot be built",
            target.arch,
        )
        return host_interpreter(env)
    child = build_environment(env)
    child["PYTHONPATH"] = str(_pip_for_target(runtime, cache_dir))
    child["PYTHONNOUSERSITE"] = "1"
    child["PYTHONDONTWRITEBYTECODE"] = "1"  # the cached runtime is never written to
    child["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(runtime.root / "lib"), env.get("LD_LIBRARY_PATH")])
    )
    return Interpreter((str(runtime.executable), "-s"), child, is_target=True)


def _pip_for_target(runtime: Runtime, cache_dir: Path) -> Path:
    """A directory holding a pip the target PyPy can run, alone on its path.

    The runtime's own pip (the wheel its ``ensurepip`` bundles) is preferred: it
    always supports the runtime's Python. Otherwise this environment's pip is
    used if its Requires-Python admits the runtime's Python.
    """
    wheels = sorted(
        runtime.stdlib.glob("ensurepip/_bundled/pip-*.whl"),
        key=lambda p: Version(p.name.split("-")[1]),
    )
    if wheels:
        wheel = wheels[-1]
        key = f"wheel-{sha256_file(wheel)[:16]}"
        return _cached_tree(
            cache_dir, key, _unpack_wheel(wheel), _wheel_files(wheel), sources=(wheel,)
        )
    spec = importlib.util.find_spec("pip")
    if spec is None or not spec.submodule_search_locations:
        raise BundleError("pip is not installed", fix="pip install pip")
    host_pip = Path(next(iter(spec.submodule_search_locations)))
    version = importlib.metadata.version("pip")
    requires = importlib.metadata.metadata("pip")["Requires-Python"] or ""
    if requires and not SpecifierSet(requires).contains(runtime.python_version + ".0"):
        raise BundleError(
            f"The runtime has no pip of its own and this pip {version} does not run on "
            f"Python {runtime.python_version} (it requires Python {requires})",
            fix="Use a PyPy build whose ensurepip carries a pip wheel (official builds do), "
            "or install an older pip next to pyfn",
        )

    def copy(dest: Path) -> None:
        shutil.copytree(host_pip, dest / "pip", ignore=shutil.ignore_patterns("__pycache__"))

    return _cached_tree(
        cache_dir, f"host-{version}", copy, _dir_files(host_pip, "pip"), sources=(host_pip,)
    )


def _unpack_wheel(wheel: Path) -> Callable[[Path], None]:
    def unpack(dest: Path) -> None:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise BundleError(f"{wheel.name} has an unsafe entry {member.filename!r}")
            zf.extractall(dest)

    return unpack


Files = Callable[[], Iterator[tuple[str, bytes]]]  # (POSIX path, content) of a source


def _wheel_files(wheel: Path) -> Files:
    def files() -> Iterator[tuple[str, bytes]]:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                if not member.is_dir():
                    yield member.filename, zf.read(member)

    return files


def _dir_files(source: Path, prefix: str) -> Files:
    def files() -> Iterator[tuple[str, bytes]]:
        for root, dirs, names in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                path = Path(root, name)
                yield f"{prefix}/{path.relative_to(source).as_posix()}", path.read_bytes()

    return files


def _holds_exactly(home: Path, files: Files) -> bool:
    """Whether ``home`` holds ``files`` and nothing else: regular files, same bytes."""
    expected: set[str] = set()
    try:
        for name, data in files():
            if name.startswith("/") or ".." in name.split("/"):
                return False  # never looked for outside home (unpacking refuses it)
            expected.add(name)
            path = home / name
            if path.is_symlink() or not path.is_file() or path.read_bytes() != data:
                return False
        found: set[str] = set()
        for root, dirs, names in os.walk(home):
            for name in dirs + names:
                path = Path(root, name)
                if path.is_symlink() or not (path.is_dir() or path.is_file()):
                    return False
                if path.is_file():
                    found.add(path.relative_to(home).as_posix())
    except (OSError, zipfile.BadZipFile):
        return False
    return found == expected


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _tree_identity(roots: Sequence[Path]) -> tuple[str, bool]:
    """Every file and directory under ``roots`` as the kernel describes it (path, type,
    size, modification and change times in ns, inode, device), and whether all of them
    have settled (:func:`pyfn_action.fetch.settled`)."""
    digest = hashlib.sha256()
    steady = True
    for root in roots:
        paths = [root]
        if root.is_dir() and not root.is_symlink():
            for where, dirs, names in os.walk(root):
                dirs.sort()
                paths.extend(Path(where, name) for name in sorted(dirs + names))
        for path in paths:
            st = path.lstat()
            steady = steady and settled(st)
            digest.update(repr([str(path), *file_identity(st)]).encode() + b"\n")
    return digest.hexdigest(), steady


def _cached_tree(
    cache_dir: Path,
    key: str,
    fill: Callable[[Path], None],
    files: Files,
    *,
    sources: Sequence[Path],
) -> Path:
    """``<cache>/pip-for-pypy/<key>``, filled once through a temporary directory, and
    used only while it holds exactly ``files``. Concurrent builds take turns (a lock per
    key), so none removes a copy another is about to run.

    Checking ``files`` byte for byte is done once: a stamp beside the copy then records
    the identity of every file of the copy and of its ``sources`` (path, size, times,
    inode), once their change times have settled. While both are the same files, the
    copy is used without reading them again; a file cannot change without its change
    time moving, and a cache restored from
    elsewhere (a shared CI cache) has other inodes and times, so its stamps never match
    and its copies are checked byte for byte."""
    home = cache_dir / "pip-for-pypy" / key
    stamp = home.parent / f"{key}.checked"
    with cache_lock(home.parent / f"{key}.lock", what="pip for PyPy"):
        if home.is_dir() and not home.is_symlink():
            try:
                if stamp.read_text() == _tree_identity([home, *sources])[0]:
                    return home
            except OSError:
                pass
            if _holds_exactly(home, files):
                _write_stamp(stamp, [home, *sources])
                return home
            log.warning("the cached pip in %s is not what it was made from; making it again", home)
        stamp.unlink(missing_ok=True)
        _remove(home)  # an incomplete or altered copy is never used
        home.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=home.parent))
        try:
            fill(tmp)
            try:
                os.replace(tmp, home)
            except OSError as exc:
                raise BundleError(
                    f"Cannot put a copy of pip at {home}",
                    why=exc.strerror or str(exc),
                    fix="Check that the cache directory is writable, or clear it",
                ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if _holds_exactly(home, files):
            _write_stamp(stamp, [home, *sources])
    return home


def _write_stamp(stamp: Path, roots: Sequence[Path]) -> None:
    identity, steady = _tree_identity(roots)
    if not steady:
        return  # changed too recently to be told by its times: checked again next time
    try:
        replace_file(stamp, identity.encode())
    except OSError as exc:  # no stamp: the next build checks byte for byte again
        log.debug("cannot write %s: %s", stamp, exc)
