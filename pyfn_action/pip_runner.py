"""Which Python runs pip for a build, and the pip it runs.

pip runs inside the target PyPy whenever this machine can execute it, so that
environment markers are judged by the interpreter that will load the code. The
pip it runs is the runtime's own (its ``ensurepip`` wheel), unpacked once into
the cache, or else this environment's pip when that supports the runtime's
Python.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .errors import BundleError
from .fetch import sha256_file
from .requirements import Interpreter, host_can_run
from .runtime import Runtime
from .targets import Target

log = logging.getLogger(__name__)


def interpreter_for(
    runtime: Runtime, target: Target, cache_dir: Path, env: Mapping[str, str]
) -> Interpreter:
    """pip inside the target PyPy when this machine runs it; else this Python, with flags."""
    if not host_can_run(target):
        log.warning(
            "this machine cannot run the %s PyPy, so requirements are resolved by "
            "this Python with target flags: environment markers are judged for the "
            "host, and sdists cannot be built",
            target.arch,
        )
        return Interpreter((sys.executable,), dict(env), is_target=False)
    child = dict(env)
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
        return _cached_tree(cache_dir, f"wheel-{sha256_file(wheel)[:16]}", _unpack_wheel(wheel))
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

    return _cached_tree(cache_dir, f"host-{version}", copy)


def _unpack_wheel(wheel: Path) -> Callable[[Path], None]:
    def unpack(dest: Path) -> None:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise BundleError(f"{wheel.name} has an unsafe entry {member.filename!r}")
            zf.extractall(dest)

    return unpack


def _cached_tree(cache_dir: Path, key: str, fill: Callable[[Path], None]) -> Path:
    """``<cache>/pip-for-pypy/<key>``, filled once through a temporary directory."""
    home = cache_dir / "pip-for-pypy" / key
    if (home / "pip" / "__main__.py").is_file():
        return home
    shutil.rmtree(home, ignore_errors=True)  # an incomplete copy is never used
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=home.parent))
    try:
        fill(tmp)
        try:
            os.replace(tmp, home)
        except OSError:
            if not (home / "pip" / "__main__.py").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return home
