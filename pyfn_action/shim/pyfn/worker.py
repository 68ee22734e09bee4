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
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import fcntl
import gc
import importlib
import io
import json
import logging
import os
import select
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

Headers = list[list[str]]
StartResponse = Callable[..., Callable[[bytes], object]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

REQUEST_FD = 3
RESPONSE_FD = 4
DEFAULT_WARMUP = 3000  # synthetic requests while idle after start (PYFN_WARMUP)
DEFAULT_JIT = "threshold=200,function_threshold=300,trace_eagerness=50"  # PYFN_JIT
_HEADER = struct.Struct(">II")
# Request frames are read READ_AHEAD bytes at a time at least (a small request in one
# system call, usually), MAX_READ at most (a large body in pieces, joined once).
READ_AHEAD = 1 << 16
MAX_READ = 1 << 20
# Above these, a response is answered 500 here (index.js refuses such frames and kills
# the worker that sends one): 64 MiB of body, 1 MiB of JSON header.
MAX_RESPONSE_BODY = 64 * 1024 * 1024
MAX_RESPONSE_HEADER = 1024 * 1024
# Where the protocol pipes move: high, but below select()'s FD_SETSIZE (1024).
_PROTOCOL_FD_BASES = (960, 240, 64, 10)
_PR_SET_PDEATHSIG = 1
_BUNDLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_THREADS = 1000


def _threads_setting() -> int:
    """``PYFN_THREADS``, as index.js sets it (it judged the value): 1 if absent."""
    raw = os.environ.get("PYFN_THREADS", "")
    return min(int(raw), MAX_THREADS) if raw.isdigit() and int(raw) > 0 else 1


_THREADS = _threads_setting()


def _die_with_parent(parent: int | None, quick: bool = True) -> bool:
    """Ask Linux to kill this worker when index.js's process goes away; True if it will.

    ``quick``: through PyPy's built-in ``_cffi_backend``, in well under a millisecond,
    so it is done before the function loads (a hung import dies with Node too).
    Otherwise through ctypes, which takes tens of ms to import on PyPy (after the
    function loaded, only if the quick way is missing). Without prctl (not
    Linux), EOF on the request pipe still ends the worker. ``parent``: index.js's
    pid (``PYFN_NODE_PID``), if it said.
    """
    done = False
    with contextlib.suppress(Exception):
        if quick:
            backend = importlib.import_module("_cffi_backend")
            c_int = backend.new_primitive_type("int")
            c_ulong = backend.new_primitive_type("unsigned long")
            signature = backend.new_function_type((c_int,) + (c_ulong,) * 4, c_int, False)
            prctl = backend.load_library(None).load_function(signature, "prctl")
            done = prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) == 0  # SIGKILL
        else:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            done = libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) == 0
    # Orphaned already, index.js gone before prctl? Its pid says, rather than 1:
    # Node itself may be pid 1 in a container.
    if (os.getppid() != parent) if parent is not None else (os.getppid() == 1):
        os._exit(0)
    return done


def _yield_to_node_when_out_of_memory() -> None:
    """The kernel's out-of-memory killer takes a worker (replaced) before Node (the instance)."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)


def _move_protocol_fds() -> tuple[int, int]:
    """Move the request and response pipes from fds 3 and 4 out of the user's way.

    They go to high, close-on-exec descriptors (a program the function runs does
    not inherit them), are closed in forked children, and 3 and 4 are closed (a
    user's ``os.write(4, ...)`` or ``echo >&4`` fails instead of corrupting a frame).
    """
    moved = []
    for fd in (REQUEST_FD, RESPONSE_FD):
        for base in _PROTOCOL_FD_BASES:
            try:
                new = fcntl.fcntl(fd, fcntl.F_DUPFD, base)  # PyPy 3.9 has no F_DUPFD_CLOEXEC
                break
            except OSError:  # EINVAL: base is above the descriptor limit
                continue
        else:
            new = os.dup(fd)
        os.set_inheritable(new, False)
        moved.append(new)
    os.close(REQUEST_FD)
    os.close(RESPONSE_FD)
    request_fd, response_fd = moved

    def close_in_child() -> None:
        for fd in moved:
            with contextlib.suppress(OSError):
                os.close(fd)

    os.register_at_fork(after_in_child=close_in_child)
    return request_fd, response_fd


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the severity Cloud Logging reads."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return json.dumps({"severity": record.levelname, "message": message, "logger": record.name})


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class FrameReader:
    """Frames from a pipe. A small frame usually arrives whole in one read; the parts
    of a larger one are read in pieces and joined once, into the buffer of its final
    size: every byte is copied once after it is read, never a copy of a copy."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ahead = b""  # the last read, of which ``ahead[taken:]`` is not taken yet
        self.taken = 0

    def pending(self, timeout: float = 0.0) -> bool:
        """Whether a request has (at least partly) arrived, waiting at most ``timeout`` s."""
        if self.taken < len(self.ahead):
            return True
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)

    def _take(self, size: int) -> bytes | None:
        """The next ``size`` bytes; None if the pipe ends first."""
        end = self.taken + size
        if end <= len(self.ahead):
            data = self.ahead[self.taken : end]
            self.taken = end
            return data
        pieces: list[bytes | memoryview] = [memoryview(self.ahead)[self.taken :]]
        have = len(self.ahead) - self.taken
        last = b""
        while have < size:
            last = os.read(self.fd, max(READ_AHEAD, min(size - have, MAX_READ)))
            if not last:
                return None
            pieces.append(last)
            have += len(last)
        # The last read may hold the start of the next frame: it is kept for that.
        self.ahead, self.taken = last, len(last) - (have - size)
        pieces[-1] = memoryview(last)[: self.taken]
        return b"".join(pieces)

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        head = self._take(_HEADER.size)
        if head is None:
            return None
        header_len, body_len = _HEADER.unpack(head)
        header = self._take(header_len)
        body = self._take(body_len) if body_len else b""
        if header is None or body is None:
            return None
        return json.loads(header.decode("utf-8")), body


def write_frame(fd: int, header: dict[str, Any], body: bytes = b"") -> None:
    _write_raw(fd, json.dumps(header).encode("utf-8"), body)


def _write_raw(fd: int, data: bytes, body: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data), len(body)) + data + body)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_response(fd: int, request_id: int, status: int, headers: Headers, body: bytes) -> None:
    """The response frame, or a plain 500 if the response is above the frame's limits."""
    data = json.dumps({"id": request_id, "status": status, "headers": headers}).encode("utf-8")
    if len(body) > MAX_RESPONSE_BODY or len(data) > MAX_RESPONSE_HEADER:
        logging.getLogger("pyfn.worker").error(
            "response too large: %d bytes of body, %d of headers (limits: %d, %d)",
            len(body),
            len(data),
            MAX_RESPONSE_BODY,
            MAX_RESPONSE_HEADER,
        )
        data = json.dumps(
            {"id": request_id, "status": 500, "headers": [["Content-Type", "text/plain"]]}
        ).encode("utf-8")
        body = b"Internal Server Error\n"
    _write_raw(fd, data, body)


def _native(text: str) -> str:
    """PEP 3333 'native strings': code points 0-255 standing for bytes."""
    return text.encode("latin-1", "replace").decode("latin-1")


def make_environ(request: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ for one request, as a server on Cloud Functions would build it."""
    url = request["url"]
    path, _, query = url.partition("?")
    try:
        path_info = unquote_to_bytes(path).decode("latin-1")
    except Exception:
        path_info = path
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": _native(path_info),
        "QUERY_STRING": _native(query),
        "SERVER_PROTOCOL": "HTTP/" + request.get("http_version", "1.1"),
        "REMOTE_ADDR": request.get("remote", "127.0.0.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": _THREADS > 1,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    host = "localhost"
    length_sent = False
    for name, value in request["headers"]:
        if "_" in name:
            # WSGI spells `-` as `_`: `X_Goog_Authenticated_User_Email` would join the
            # platform's `X-Goog-Authenticated-User-Email`. Dropped, as gunicorn does.
            continue
        key = name.upper().replace("-", "_")
        value = _native(value)
        if key == "CONTENT_TYPE":
            environ.setdefault("CONTENT_TYPE", value)  # the first, as Node's body parser
            continue
        if key == "CONTENT_LENGTH":
            length_sent = True
            continue  # the body's true length is set below
        if key == "HOST":
            host = value
        key = "HTTP_" + key
        environ[key] = environ[key] + "," + value if key in environ else value
    if body or length_sent:
        # As gunicorn: no CONTENT_LENGTH for a request that sent none (a plain GET).
        environ["CONTENT_LENGTH"] = str(len(body))
    name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
    environ["SERVER_NAME"] = name or host
    environ["SERVER_PORT"] = port or ("443" if environ["wsgi.url_scheme"] == "https" else "80")
    return environ


def call_app(app: WsgiApp, request: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
    """Run the WSGI app for one request; return (status, headers, body)."""
    state: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info and state:
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"] = int(status.split(" ", 1)[0])
        state["headers"] = [[str(k), str(v)] for k, v in headers]
        return lambda data: state.setdefault("early", []).append(data)

    result = app(make_environ(request, body), start_response)
    try:
        chunks = list(state.pop("early", [])) + [bytes(c) for c in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return state["status"], state["headers"], b"".join(chunks)


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


def load_app(manifest: dict[str, Any]) -> WsgiApp:
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
    app: WsgiApp = functions_framework.create_app(
        target=function["entry_point"],
        source=os.path.join(_BUNDLE, "app", "main.py"),
        signature_type=signature,
    )
    return app


_WARMUP_HEADERS = [["Host", "localhost"], ["User-Agent", "pyfn-warmup"], ["Accept", "*/*"]]
FIRST_REQUEST_GRACE = 0.02  # seconds: a request queued during the cold start goes first


def _warmup_request(signature: str) -> dict[str, Any]:
    """A request the framework answers itself, without calling the user's function.

    HTTP functions: /robots.txt, which the Functions Framework always answers 404.
    CloudEvent functions: a GET, which it answers 405; legacy event functions: a GET,
    which it answers with an empty 200 of its own.
    """
    path = "/robots.txt" if signature == "http" else "/"
    return {
        "method": "GET",
        "url": path,
        "http_version": "1.1",
        "headers": _WARMUP_HEADERS,
        "remote": "127.0.0.1",
        "scheme": "http",
        "id": 0,
    }


def _warmup_function(request: Any) -> str:
    """Stands in for the user's function in the private warm-up app."""
    return "warm\n"


def _warmup_app(signature: str) -> WsgiApp | None:
    """A private app the Functions Framework wires as it wires the user's, around a stand-in.

    Same routes, view wrapper, after-request hook and execution-id middleware as
    the real app, so warming it compiles the code a real request runs (routing to
    the function, making a response from its return value), not only the 404 path.
    None if this framework cannot build one (then the real app's 404 path is warmed).
    """
    if signature != "http":
        return None
    try:
        import functions_framework

        flask = importlib.import_module("flask")
        app = flask.Flask("pyfn_warmup", root_path=os.path.join(_BUNDLE, "pyfn"))
        functions_framework._configure_app(app, _warmup_function, "http")
        execution_id = getattr(functions_framework, "execution_id", None)
        if execution_id is not None:
            app.wsgi_app = execution_id.WsgiMiddleware(app.wsgi_app)
    except Exception:
        return None
    warm: WsgiApp = app
    return warm


class WarmUp:
    """Synthetic requests for idle time: never the user's function, never the user's state.

    Each runs the whole per-request path of the worker (frame header decoding, the
    WSGI call, response header encoding) in a copy of the current context, so
    context variables the frameworks set for it do not outlive it.
    """

    def __init__(self, app: WsgiApp, signature: str, count: int) -> None:
        self.count = self.left = count
        self.ran = 0  # synthetic requests answered
        self.arrived = 0  # real requests read while it was under way
        self.real_app = app
        self.signature = signature
        self.app: WsgiApp | None = None
        self.frame = b""
        if count <= 0:  # its one line, at once: nothing will run
            logging.getLogger("pyfn.worker").info("pyfn warm-up: off (PYFN_WARMUP=0)")

    def step(self) -> None:
        self.left -= 1
        if self.app is None:  # built on first use: after the worker said it is ready
            private = _warmup_app(self.signature)
            self.app = private or self.real_app
            request = _warmup_request(self.signature)
            if private is not None:
                request["url"] = "/"  # the stand-in function's route
            self.frame = json.dumps(request).encode("utf-8")
        try:
            request = json.loads(self.frame.decode("utf-8"))
            status, headers, _ = contextvars.copy_context().run(call_app, self.app, request, b"")
            json.dumps({"id": request["id"], "status": status, "headers": headers})
            self.ran += 1
        except Exception:
            self.left = 0  # whatever went wrong, real requests will show it
        if self.left <= 0:  # one line per worker: what ran, and what it did not hold up
            logging.getLogger("pyfn.worker").info(
                "pyfn warm-up: %d of %d synthetic requests ran while idle; %d real requests "
                "came before it was done",
                self.ran,
                self.count,
                self.arrived,
            )


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
        self, app: WsgiApp, response_fd: int, threads: int, start_jit: Callable[[], None]
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
            status, headers, payload = call_app(self.app, request, body)
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
            write_response(self.response_fd, request["id"], status, headers, payload)
        if not self.jit_started:
            self.jit_once()


def serve(
    app: WsgiApp,
    request_fd: int = REQUEST_FD,
    response_fd: int = RESPONSE_FD,
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
    reader = FrameReader(request_fd)
    warm = WarmUp(app, signature, warmup)
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
    request_fd, response_fd = _move_protocol_fds()
    node = os.environ.pop("PYFN_NODE_PID", "")
    parent = int(node) if node.isdigit() else None
    parent_watched = _die_with_parent(parent)
    _yield_to_node_when_out_of_memory()
    _configure_logging()
    with open(os.path.join(_BUNDLE, "pyfn", "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    try:
        app = load_app(manifest)
    except BaseException:
        logging.getLogger("pyfn.worker").critical(
            "cannot load the function\n%s", traceback.format_exc()
        )
        write_frame(response_fd, {"type": "fatal", "message": "cannot load the function"})
        return 1
    load_ms = round((time.monotonic() - started) * 1000)
    write_frame(response_fd, {"type": "ready", "pid": os.getpid(), "load_ms": load_ms})
    if not parent_watched:
        _die_with_parent(parent, quick=False)  # slow: ctypes takes tens of ms to import
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
