"""The shim's files as they ship: ``index.js`` and the modules it requires, and the
Python side of the protocol.

``index.js`` only wires the modules under ``shim/`` (``pyfn_action/shim/shim/*.js``,
``shim/*.js`` in the bundle); ``pyfn/worker.py`` loads the modules beside it
(``pyfn_action/shim/pyfn/*.py``). Every bundle carries them all, staging ships them and
trimming never removes them, so both ask here rather than each keep a list of names.
"""

from __future__ import annotations

from importlib import resources

MODULES = "shim"


def shim_scripts() -> list[tuple[str, bytes]]:
    """Each of the shim's JavaScript files, by its path in the bundle, sorted by path."""
    shim = resources.files("pyfn_action").joinpath("shim")
    found = [("index.js", shim.joinpath("index.js").read_bytes())]
    modules = shim.joinpath(MODULES)
    if modules.is_dir():
        for item in modules.iterdir():
            if item.is_file() and item.name.endswith(".js"):
                found.append((f"{MODULES}/{item.name}", item.read_bytes()))
    return sorted(found, key=lambda pair: pair[0])


def shim_python() -> list[tuple[str, bytes]]:
    """Each of the shim's Python files (``pyfn/worker.py`` and its modules), by its path
    in the bundle, sorted by path."""
    worker = resources.files("pyfn_action").joinpath("shim", "pyfn")
    found = [
        (f"pyfn/{item.name}", item.read_bytes())
        for item in worker.iterdir()
        if item.is_file() and item.name.endswith(".py")
    ]
    return sorted(found, key=lambda pair: pair[0])


def shim_script_names() -> list[str]:
    """The bundle paths of :func:`shim_scripts`: files trimming must keep."""
    return [name for name, _ in shim_scripts()]


def shim_python_names() -> list[str]:
    """The bundle paths of :func:`shim_python`: files trimming must keep."""
    return [name for name, _ in shim_python()]
