"""The worker's own modules and the function's cannot stand in for each other.

On the worker's ``sys.path`` the function's directories come first (app/, site/),
then the worker's own (pyfn/), then the standard library. So the worker loads its
modules from their files, under no name in ``sys.modules``: a function's module
named like one of them (``pyfn_frames.py``, or a ``frames.py``) is the one its
imports give it, and the worker's are never replaced by it. Proven here under the
test's Python and, when it is installed, a PyPy 3 (the worker's own kind).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.shimpy import SHIM_PY

from pyfn_action.bundle.nodepackage import NodePackage
from pyfn_action.bundle.stage import shim_entries
from pyfn_action.bundle.trim import protected_files

OWN = sorted(p.stem for p in SHIM_PY.glob("*.py"))
INTERPRETERS = [sys.executable] + [p for p in [shutil.which("pypy3")] if p]

# Run by the interpreter under test: the function's directory first on sys.path, as
# the worker's load_app leaves it, then worker.py loaded as a module (its main() is
# not run). Prints which file each name gives, to the worker and to the function.
_CHECK = """
import importlib, importlib.util, json, sys
app, worker_py, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.dont_write_bytecode = True
sys.path.insert(0, app)
spec = importlib.util.spec_from_file_location("pyfn_worker_under_test", worker_py)
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)
seen = {
    "worker": {a: getattr(worker, a).__file__ for a in ("frames", "process", "warming", "wsgi")},
    "in_sys_modules": sorted(n for n in names if n in sys.modules),
}
seen["function"] = {n: importlib.import_module(n).__file__ for n in names}
print(json.dumps(seen))
"""


def _function_dir(tmp_path: Path, names: list[str]) -> Path:
    """A function's app/ holding a module of each name, each of which breaks the worker
    if the worker takes it for its own (it defines none of the worker's names)."""
    app = tmp_path / "app"
    app.mkdir()
    for name in names:
        (app / f"{name}.py").write_text(f"OWNER = 'function'\nNAME = {name!r}\n")
    return app


@pytest.mark.parametrize("python", INTERPRETERS, ids=lambda p: Path(p).name)
def test_the_functions_modules_and_the_workers_are_each_their_own(
    tmp_path: Path, python: str
) -> None:
    names = OWN + ["frames", "adapter", "wsgi", "process", "warmup"]
    app = _function_dir(tmp_path, names)
    ran = subprocess.run(
        [python, "-s", "-c", _CHECK, str(app), str(SHIM_PY / "worker.py"), json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["worker"] == {
        "frames": str(SHIM_PY / "pyfn_frames.py"),
        "process": str(SHIM_PY / "pyfn_process.py"),
        "warming": str(SHIM_PY / "pyfn_warmup.py"),
        "wsgi": str(SHIM_PY / "pyfn_wsgi.py"),
    }
    assert seen["in_sys_modules"] == []  # the worker's modules entered under no name
    assert seen["function"] == {n: str(app / f"{n}.py") for n in names}


def test_the_worker_loads_every_module_beside_it_and_nothing_else() -> None:
    """What the stage ships in pyfn/ (every .py there) is what the worker runs."""
    text = (SHIM_PY / "worker.py").read_text()
    loaded = sorted(n for n in OWN if f'_own_module("{n}")' in text)
    assert loaded == [n for n in OWN if n != "worker"]


def test_no_module_of_the_worker_is_named_like_one_of_the_standard_library() -> None:
    """pyfn/ comes before the standard library on the worker's sys.path: a module there
    named like one of the library's would be what the function imports under that name."""
    assert all(name == "worker" or name.startswith("pyfn_") for name in OWN), OWN
    assert not set(OWN) & set(sys.stdlib_module_names)


def test_the_bundle_ships_every_module_of_the_worker_and_trimming_keeps_them() -> None:
    """The stage ships pyfn/*.py, in name order (the bytecode step then compiles each, as
    any .py of the bundle); no trim rule may remove one."""
    node = NodePackage(package_json=b"{}", lock=b"{}", spec="1", name="x", version="1")
    shipped = [e.arcname for e in shim_entries(b"{}", node) if e.arcname.endswith(".py")]
    assert shipped == [f"pyfn/{name}.py" for name in OWN]
    assert set(shipped) <= set(protected_files("3.9", "main.py"))
