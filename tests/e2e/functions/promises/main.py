"""Handlers for tests/e2e/test_promises.py: what the worker does to the JIT and to logs.

One entry point, ``promises``, chosen by path: ``/jit?n=N`` and ``/log?token=T``.
"""

import logging
import uuid

import functions_framework


def _jit_compiles(n):
    """Whether PyPy's JIT compiles a loop of ``n`` iterations in fresh code.

    The code object is new on every call (its name is unique), so no counter of an
    earlier call counts towards it: only the JIT parameters in force decide.
    """
    try:
        import pypyjit
    except ImportError:
        return None
    name = "probe_" + uuid.uuid4().hex
    source = (
        f"def {name}(n):\n"
        "    total = 0\n"
        "    i = 0\n"
        "    while i < n:\n"
        "        total += i\n"
        "        i += 1\n"
        "    return total\n"
    )
    namespace = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 (fixed text, fresh code)
    compiled = []
    pypyjit.set_compile_hook(compiled.append)
    try:
        assert namespace[name](n) == n * (n - 1) // 2
    finally:
        pypyjit.set_compile_hook(None)
    return any(
        info.jitdriver_name == "pypyjit" and name in repr(info.greenkey) for info in compiled
    )


LOG = logging.getLogger("promises")
LOG.setLevel(logging.DEBUG)  # the worker's root logger passes INFO and above


def _log_each_level(token):
    LOG.debug("%s debug", token)
    LOG.info("%s info", token)
    LOG.warning("%s warning", token)
    LOG.error("%s error", token)
    LOG.critical("%s critical", token)
    logging.warning("%s root warning", token)  # the root logger itself
    try:
        raise ValueError(f"{token} boom")
    except ValueError:
        LOG.exception("%s exception", token)
        LOG.critical("%s critical with traceback", token, exc_info=True)
    LOG.info("%s done", token)


@functions_framework.http
def promises(request):
    if request.path == "/jit":
        return {"compiled": _jit_compiles(int(request.args["n"]))}
    if request.path == "/log":
        _log_each_level(request.args["token"])
        return "logged\n"
    return "ok\n"
