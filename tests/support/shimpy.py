"""The Python side of the shim (pyfn_action/shim/pyfn), loaded for tests as the worker
loads its modules: from their files, under no name in ``sys.modules`` (they are no
modules of pyfn's, and run without it)."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SHIM_PY = Path(__file__).resolve().parents[2] / "pyfn_action" / "shim" / "pyfn"


@functools.cache
def shim_module(name: str) -> ModuleType:
    """``pyfn/<name>.py``, run once, without writing bytecode beside it in the source tree."""
    spec = importlib.util.spec_from_file_location(name, SHIM_PY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writing, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writing
    return module
