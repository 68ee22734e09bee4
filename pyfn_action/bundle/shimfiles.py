"""The shim's files as they ship: ``index.js`` and the modules it requires, and the
Python side of the protocol.

``index.js`` only wires the modules under ``shim/`` (``pyfn_action/shim/shim/*.js``,
``shim/*.js`` in the bundle); ``pyfn/worker.py`` loads the modules beside it
(``pyfn_action/shim/pyfn/*.py``). Every bundle carries them all, staging ships them and
trimming never removes them, so both ask here rather than each keep a list of names.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runtime needs no import (3.9 has no importlib.resources.abc)
    from importlib.resources.abc import Traversable

MODULES = "shim"


def shim_scripts() -> list[tuple[str, bytes]]:
    """Each of the shim's JavaScript files, by its path in the bundle, sorted by path."""
    return [(name, item.read_bytes()) for name, item in _scripts()]


def shim_python() -> list[tuple[str, bytes]]:
    """Each of the shim's Python files (``pyfn/worker.py`` and its modules), by its path
    in the bundle, sorted by path."""
    return [(name, item.read_bytes()) for name, item in _python()]


def shim_script_names() -> list[str]:
    """The bundle paths of :func:`shim_scripts`: files trimming must keep."""
    return [name for name, _ in _scripts()]


def shim_python_names() -> list[str]:
    """The bundle paths of :func:`shim_python`: files trimming must keep."""
    return [name for name, _ in _python()]


def _scripts() -> list[tuple[str, Traversable]]:
    shim = resources.files("pyfn_action").joinpath("shim")
    found = [("index.js", shim.joinpath("index.js")), *_listed(shim, MODULES, ".js")]
    return sorted(found, key=lambda pair: pair[0])


def _python() -> list[tuple[str, Traversable]]:
    return _listed(resources.files("pyfn_action").joinpath("shim"), "pyfn", ".py")


def _listed(shim: Traversable, folder: str, suffix: str) -> list[tuple[str, Traversable]]:
    """The files of the package's ``shim/FOLDER`` ending in ``suffix``, by bundle path
    (``FOLDER/NAME``), sorted; nothing is read."""
    found = [
        (f"{folder}/{item.name}", item)
        for item in shim.joinpath(folder).iterdir()
        if item.is_file() and item.name.endswith(suffix)
    ]
    return sorted(found, key=lambda pair: pair[0])
