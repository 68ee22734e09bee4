"""The Node side of the shim as it ships: ``index.js`` and the modules it requires.

``index.js`` only wires the modules under ``shim/`` (``pyfn_action/shim/shim/*.js``,
``shim/*.js`` in the bundle): every bundle carries them all, staging ships them and
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


def shim_script_names() -> list[str]:
    """The bundle paths of :func:`shim_scripts`: files trimming must keep."""
    return [name for name, _ in shim_scripts()]
