"""The Python side of the pyfn shim: a persistent worker serving requests from index.js.

Runs inside the bundle on its own PyPy (``pypy/bin/pypy3.X -s pyfn/worker.py``).
Requests arrive on fd 3 and responses leave on fd 4, as frames::

    u32 header length | u32 body length | header (JSON, UTF-8) | body (raw bytes)

so nothing the function prints (fd 1, fd 2) can corrupt the protocol: index.js
turns those streams into log lines. Before the function is loaded, the two
pipes move to high, close-on-exec descriptors and 3 and 4 are closed: the user's
code, the programs it runs and the children it forks do not find them there.
The user's code is the standard Python Functions Framework code; its WSGI app is
called in-process, on up to ``PYFN_THREADS`` threads at once (index.js never sends
more): each response carries its request's id, so answers go back in the order
they finish. With one thread, requests run on the main thread. This file must run
on every PyPy 3 the bundle may carry (3.9 and later).

index.js starts it with PyPy's JIT off (``--jit off``): tracing import-time code
that runs once only slows the cold start. The JIT is switched on once the
function is loaded and the worker is first idle or has answered one request.

This file keeps the loop and the wiring; its parts are the modules beside it,
each loaded from its own file (:func:`_own_module`): ``pyfn_frames`` (the
protocol's frames), ``pyfn_wsgi`` (the request adapter: a framed request through
the WSGI app), ``pyfn_warmup`` (the idle-time JIT warm-up) and ``pyfn_process``
(the process's pipes, parent, out-of-memory score and JSON logs).
"""

from __future__ import annotations

import collections
import functools
import gc
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

DEFAULT_WARMUP = 3000  # synthetic requests while idle after start (PYFN_WARMUP)
DEFAULT_JIT = "threshold=200,function_threshold=300,trace_eagerness=50"  # PYFN_JIT
_SHIM = os.path.dirname(os.path.abspath(__file__))  # the bundle's pyfn/
_BUNDLE = os.path.dirname(_SHIM)
MAX_THREADS = 1000
FIRST_REQUEST_GRACE = 0.02  # seconds: a request queued during the cold start goes first


def _own_module(name: str) -> types.ModuleType:
    """The worker's module ``name``, run from its file beside this one, in no ``sys.modules``.

    On ``sys.path`` the function's directories come first (app/, site/, then this
    one), so an import by name could find a user's module of the same name instead
    of ours; and once in ``sys.modules``, ours would be what the function's own
    ``import`` of that name returns. Loaded by path under no name, ours can be
    neither replaced nor found: a function's ``pyfn_frames.py`` (or ``frames.py``)
    is the module its import gives it. The bytecode comes from ``__pycache__``, as
    an import's would.
    """
    spec = importlib.util.spec_from_file_location(name, os.path.join(_SHIM, name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:  # for mypy alone, which reads them as modules beside this one
    from . import pyfn_frames as frames
    from . import pyfn_process as process
    from . import pyfn_warmup as warming
    from . import pyfn_wsgi as wsgi
else:
    frames = _own_module("pyfn_frames")
    process = _own_module("pyfn_process")
    warming = _own_module("pyfn_warmup")
    wsgi = _own_module("pyfn_wsgi")


def _threads_setting() -> int:
    """``PYFN_THREADS``, as index.js sets it (it judged the value): 1 if absent."""
    raw = os.environ.get("PYFN_THREADS", "")
    return min(int(raw), MAX_THREADS) if raw.isdigit() and int(raw) > 0 else 1


_THREADS = _threads_setting()


def _add_paths(app: str, site_dir: str) -> None:
    """``app`` then ``site_dir`` first on ``sys.path``, with ``site_dir``'s ``.pth`` files run.

    Installed distributions may rely on ``.pth`` files (old-style namespace
    packages, for example), which a runtime's site-packages would process.
    """
    import site

    site.addsitedir(site_dir)  # appends site_dir and what its .pth files add
    sys.path.remove(site_dir)
    sys.path[:0] = [app, site_dir]


def _framework_signature(signature: str) -> str:
    """The Python Functions Framework's signature type (script mode is not served here)."""
    return signature if signature in ("cloudevent", "event") else "http"


def load_app(manifest: dict[str, Any]) -> wsgi.WsgiApp:
    function = manifest["function"]
    _add_paths(os.path.join(_BUNDLE, "app"), os.path.join(_BUNDLE, "site"))
    os.environ.setdefault("FUNCTION_TARGET", function["entry_point"])
    # Importing the framework allocates what stays alive: a major collection would
    # find little garbage and take a third of the import time. The user's module
    # (run by create_app) is loaded with the collector on, as ever.
    collecting = gc.isenabled()
    gc.disable()
    try:
        import functions_framework
    finally:
        if collecting:
            gc.enable()

    signature = _framework_signature(function["signature"])
    app: wsgi.WsgiApp = functions_framework.create_app(
        target=function["entry_point"],
        source=os.path.join(_BUNDLE, "app", "main.py"),
        signature_type=signature,
    )
    return app


class _Thread:
    """A request thread, woken by a lock of its own: on PyPy a plain lock hands work
    over several times faster than ``queue`` or ``Condition`` (tens of µs, not hundreds)."""

    def __init__(self, owner: Requests, number: int) -> None:
        self.owner = owner
        self.wake = threading.Lock()
        self.wake.acquire()
        self.item: tuple[dict[str, Any], bytes] | None = None
        threading.Thread(target=self._loop, name=f"pyfn-request-{number}", daemon=True).start()

    def give(self, item: tuple[dict[str, Any], bytes]) -> None:
        self.item = item
        self.wake.release()

    def _loop(self) -> None:
        while True:
            self.wake.acquire()
            item, self.item = self.item, None
            try:
                if item is not None:
                    self.owner.run(*item)
            except BaseException:  # a thread's end must not lose its count
                logging.getLogger("pyfn.worker").error(
                    "request thread failed\n%s", traceback.format_exc()
                )
            finally:
                self.owner.finished(self)


class Requests:
    """Runs requests and writes their responses: on the calling thread when there is one
    thread, else on up to ``threads`` threads, started as requests need them.

    A request's exception is its own 500; the response frames of several threads
    never interleave. ``start_jit`` runs once, after the first response.
    """

    def __init__(
        self, app: wsgi.WsgiApp, response_fd: int, threads: int, start_jit: Callable[[], None]
    ) -> None:
        self.app = app
        self.response_fd = response_fd
        self.threads = max(1, threads)
        self.start_jit = start_jit
        self.jit_started = False
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.active = 0  # requests taken and not yet answered
        self.started = 0  # threads started
        self.idle_threads: list[_Thread] = []
        self.backlog: collections.deque[tuple[dict[str, Any], bytes]] = collections.deque()
        # One thread: SystemExit ends the worker, as it always has (index.js answers 500
        # and replaces it). Several: it is that request's 500 alone.
        self.caught: type[BaseException] = Exception if self.threads == 1 else BaseException

    def idle(self) -> bool:
        return self.active == 0

    def jit_once(self) -> None:
        with self.lock:
            if self.jit_started:
                return
            self.jit_started = True
        self.start_jit()

    def submit(self, request: dict[str, Any], body: bytes) -> None:
        if self.threads == 1:
            self.run(request, body)
            return
        with self.lock:
            self.active += 1
            if self.idle_threads:
                thread: _Thread | None = self.idle_threads.pop()
            elif self.started < self.threads:
                self.started += 1
                thread = _Thread(self, self.started)
            else:  # index.js sends no more than there are threads; kept all the same
                thread = None
                self.backlog.append((request, body))
        if thread is not None:
            thread.give((request, body))

    def finished(self, thread: _Thread) -> None:
        """``thread`` answered its request: the next waiting one, or back to the idle."""
        with self.lock:
            self.active -= 1
            if self.backlog:
                thread.give(self.backlog.popleft())
            else:
                self.idle_threads.append(thread)

    def run(self, request: dict[str, Any], body: bytes) -> None:
        try:
            status, headers, payload = wsgi.call_app(
                self.app, request, body, multithread=self.threads > 1
            )
        except self.caught:
            logging.getLogger("pyfn.worker").error(
                "unhandled error in %s %s\n%s",
                request.get("method"),
                request.get("url"),
                traceback.format_exc(),
            )
            status, headers, payload = (
                500,
                [["Content-Type", "text/plain"]],
                b"Internal Server Error\n",
            )
        with self.write_lock:
            frames.write_response(self.response_fd, request["id"], status, headers, payload)
        if not self.jit_started:
            self.jit_once()


def serve(
    app: wsgi.WsgiApp,
    request_fd: int = process.REQUEST_FD,
    response_fd: int = process.RESPONSE_FD,
    *,
    warmup: int = 0,
    signature: str = "http",
    start_jit: Callable[[], None] = lambda: None,
    threads: int = 1,
) -> None:
    """Answer framed requests until the pipe closes.

    While no request is waiting or running, up to ``warmup`` synthetic requests
    that never reach the user's code run through the framework, so PyPy's JIT has
    compiled its hot paths before real traffic needs them. A real request never
    waits behind more than one of them, and one already queued while the worker
    was loading goes before all of them.

    ``start_jit`` runs once, when the worker is first idle or has answered its
    first request: a request that waited for a cold start is not also made to
    wait for the JIT to trace code that the first request runs once.
    """
    reader = frames.FrameReader(request_fd)
    call = functools.partial(wsgi.call_app, multithread=threads > 1)
    warm = warming.WarmUp(app, signature, warmup, call)
    requests = Requests(app, response_fd, threads, start_jit)
    grace = FIRST_REQUEST_GRACE
    while True:
        if warm.left > 0:
            idle = requests.idle()
            # Busy: look again soon, for the moment the worker is idle.
            if not reader.pending(grace if idle else 0.05):
                if idle:
                    requests.jit_once()
                    warm.step()
                    grace = 0.0
                continue
        frame = reader.read()
        if frame is None:
            return  # index.js closed the pipe: its process is gone or shutting down
        if warm.left > 0:
            warm.arrived += 1
        requests.submit(*frame)


def _tune_jit() -> None:
    """Switch PyPy's JIT on, tuned for request paths (``serve`` says when).

    Loading runs with the JIT off (index.js passes ``--jit off``: tracing code
    that runs once costs more than it saves); serving uses ``PYFN_JIT`` (``--jit``
    syntax) over PyPy's defaults, which ``default`` keeps as they are.
    """
    params = os.environ.get("PYFN_JIT", DEFAULT_JIT)
    try:
        import pypyjit
    except ImportError:
        return  # not PyPy
    pypyjit.set_param("default")
    if params == "default":
        return
    try:
        pypyjit.set_param(params)
    except Exception:
        logging.getLogger("pyfn.worker").warning("PYFN_JIT=%r is not valid; ignored", params)


def _warmup_count() -> int:
    """``PYFN_WARMUP``, an integer >= 0; anything else is the default, and said so."""
    raw = os.environ.get("PYFN_WARMUP", "")
    if raw.strip().isdigit():
        return int(raw)
    if raw:
        logging.getLogger("pyfn.worker").warning(
            "PYFN_WARMUP=%r is not an integer >= 0; used %d", raw[:40], DEFAULT_WARMUP
        )
    return DEFAULT_WARMUP


def main() -> int:
    started = time.monotonic()
    request_fd, response_fd = process.move_protocol_fds()
    node = os.environ.pop("PYFN_NODE_PID", "")
    parent = int(node) if node.isdigit() else None
    parent_watched = process.die_with_parent(parent)
    process.yield_to_node_when_out_of_memory()
    process.configure_logging()
    with open(os.path.join(_BUNDLE, "pyfn", "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    try:
        app = load_app(manifest)
    except BaseException:
        logging.getLogger("pyfn.worker").critical(
            "cannot load the function\n%s", traceback.format_exc()
        )
        frames.write_frame(response_fd, {"type": "fatal", "message": "cannot load the function"})
        return 1
    load_ms = round((time.monotonic() - started) * 1000)
    frames.write_frame(response_fd, {"type": "ready", "pid": os.getpid(), "load_ms": load_ms})
    if not parent_watched:
        process.die_with_parent(parent, quick=False)  # slow: ctypes takes tens of ms to import
    signature = _framework_signature(manifest["function"]["signature"])
    serve(
        app,
        request_fd,
        response_fd,
        warmup=_warmup_count(),
        signature=signature,
        start_jit=_tune_jit,
        threads=_THREADS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
