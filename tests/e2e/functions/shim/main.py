"""Handlers that exercise the shim: each test serves one of them as the entry point."""

import contextlib
import ctypes
import hashlib
import json
import os
import signal
import sys
import time

import flask
import functions_framework


@functions_framework.http
def hello(request):
    return f"Hello, {request.args.get('name', 'World')}!\n"


@functions_framework.http
def echo(request):
    """Everything the request carried, as JSON; the body's digest and length."""
    body = request.get_data()
    return {
        "method": request.method,
        "path": request.path,
        "args": request.args.to_dict(flat=False),
        "headers": {k: v for k, v in request.headers.items()},
        "json": request.get_json(silent=True),
        "form": request.form.to_dict(flat=False),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


@functions_framework.http
def mirror(request):
    """The request body back, byte for byte."""
    return flask.Response(request.get_data(), mimetype="application/octet-stream")


@functions_framework.http
def shapes(request):
    """What Flask accepts as a return value, chosen by ?kind=."""
    kind = request.args.get("kind")
    if kind == "bytes":
        return b"raw bytes"
    if kind == "tuple":
        return "created", 201, {"X-Custom": "yes", "Set-Cookie": "a=1"}
    if kind == "response":
        response = flask.make_response("teapot", 418)
        response.headers.add("Set-Cookie", "b=2")
        response.headers.add("Set-Cookie", "c=3")
        return response
    return {"kind": kind}


@functions_framework.http
def boom(request):
    raise RuntimeError("secret detail that must not reach the client")


@functions_framework.http
def slow(request):
    time.sleep(float(request.args.get("seconds", "30")))
    return "slept\n"


@functions_framework.http
def crash(request):
    how = request.args.get("how", "exit")
    if how == "ok":
        return f"ok from {os.getpid()}"
    if how == "segfault":
        ctypes.string_at(0)
    if how == "oom-kill":
        os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
    os._exit(3)


@functions_framework.http
def chatty(request):
    print("printed to stdout")
    print("printed to stderr", file=sys.stderr)
    os.write(1, b"written to fd 1\n")
    sys.stdout.flush()
    return "still fine\n"


CALLS = []


@functions_framework.http
def counter(request):
    CALLS.append(request.path)
    return str(len(CALLS))


@functions_framework.http
def pid(request):
    return str(os.getpid())


@functions_framework.http
def nursery(request):
    return os.environ.get("PYPY_GC_NURSERY", "")


@functions_framework.cloud_event
def event(cloud_event):
    print(
        json.dumps(
            {"got_event": cloud_event["id"], "type": cloud_event["type"], "data": cloud_event.data}
        )
    )


@functions_framework.http
def paths(request):
    """Where the bundle's directories are on sys.path, and whether site/'s .pth files ran."""
    import json
    import os
    import sys

    tail = [p.rsplit("/", 1)[-1] for p in sys.path[:2]]
    return json.dumps({"first": tail, "pth": os.environ.get("PYFN_TEST_PTH_RAN")})


@functions_framework.http
def shadowing(request):
    """What this function's imports of the names in ?names= give: the test writes a
    module of each beside main.py, named like one of the worker's own."""
    import importlib

    names = request.args["names"].split(",")
    return json.dumps({n: getattr(importlib.import_module(n), "OWNER", None) for n in names})


# --- hostile code: what a function may do to the worker it runs in ---------------

if os.environ.get("SHIM_TEST_HANG_IMPORT") and not os.path.exists(
    os.environ["SHIM_TEST_HANG_IMPORT"]
):
    open(os.environ["SHIM_TEST_HANG_IMPORT"], "w").close()  # only the first worker hangs
    time.sleep(3600)

if os.environ.get("SHIM_TEST_DIE_LOADING"):
    if os.path.exists(os.environ["SHIM_TEST_DIE_LOADING"]):
        if os.environ.get("SHIM_TEST_DIE_WHEN"):  # once the test creates that file
            for _ in range(12000):  # bounded: 120 s
                if os.path.exists(os.environ["SHIM_TEST_DIE_WHEN"]):
                    break
                time.sleep(0.01)
        else:
            time.sleep(float(os.environ.get("SHIM_TEST_DIE_AFTER", "1")))
        os._exit(3)  # every worker after the first dies while it loads
    open(os.environ["SHIM_TEST_DIE_LOADING"], "w").close()


def _socket_fds():
    """The descriptors above 2 that are sockets: index.js's stdio pipes are socket pairs."""
    import stat

    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and stat.S_ISSOCK(os.fstat(fd).st_mode):
                found.append(fd)
        except OSError:
            pass
    return sorted(found)


def _own_request_id():
    """The id index.js gave the request being served, found in the worker's frames."""
    frame = sys._getframe()
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, dict) and isinstance(request.get("id"), int):
            return request["id"]
        frame = frame.f_back
    return None


def _frame(header, body=b""):
    import struct

    return struct.pack(">II", len(header), len(body)) + header + body


def _write_everywhere(data):
    """What hostile code does: write to every socket it can find."""
    for fd in _socket_fds():
        with contextlib.suppress(OSError):
            os.write(fd, data)


CALLED = []


@functions_framework.http
def hostile(request):
    do = request.args.get("do", "")
    if do == "sleep":
        time.sleep(float(request.args.get("seconds", "1")))
        return "slept\n"
    if do == "hold":
        return _wait_for_others(request.args, do, float(request.args.get("seconds", "60"))) + "\n"
    if do == "pid":
        return str(os.getpid())
    if do == "record":
        CALLED.append(request.args.get("tag", ""))
        return "recorded\n"
    if do == "called":
        return json.dumps(CALLED)
    if do == "frame":
        kind = request.args.get("kind", "garbage")
        own = _own_request_id() or 0
        frames = {
            "garbage": b"\x00\x00\x00\x05\x00\x00\x00\x00notjs",  # 13 bytes, not JSON
            "array": _frame(b"[]"),
            "null": _frame(b"null"),
            "other-id": _frame(
                json.dumps({"id": own + 1000, "status": 200, "headers": []}).encode()
            ),
            "bad-shape": _frame(
                json.dumps({"id": own, "status": "200", "headers": {"a": 1}}).encode()
            ),
            "bad-headers": _frame(
                json.dumps({"id": own, "status": 200, "headers": [[1, 2]]}).encode()
            ),
            "long-garbage": b"\x00\x00\x10\x00\x00\x00\x00\x00garbage",  # 4096 announced
            "huge-body": b"\x00\x00\x00\x02\xff\xff\xff\xff{}",
            "huge-header": b"\xff\xff\xff\xff\x00\x00\x00\x00{",
            "ready": _frame(b'{"type": "ready", "pid": 1, "load_ms": 0}'),
            "fatal": _frame(b'{"type": "fatal"}'),
        }
        _write_everywhere(frames[kind])
        if request.args.get("then") == "exit":
            os._exit(0)
        time.sleep(float(request.args.get("seconds", "0")))
        return "wrote a frame\n"
    if do == "fds":
        import subprocess

        child = subprocess.run(
            ["/bin/sh", "-c", "ls -l /proc/self/fd/"],
            close_fds=False,
            capture_output=True,
            text=True,
            check=False,
        )
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, json.dumps(_socket_fds()).encode())
            os._exit(0)
        os.close(write)
        forked = json.loads(os.read(read, 65536))
        os.close(read)
        os.waitpid(pid, 0)
        shell = subprocess.run(
            ["/bin/sh", "-c", "echo x >&3 && echo x >&4 && echo wrote"],
            close_fds=False,
            capture_output=True,
            text=True,
            check=False,
        )
        return {
            "own": _socket_fds(),
            "child": [line for line in child.stdout.splitlines() if "socket:" in line],
            "forked": forked,
            "shell": shell.stdout,
        }
    if do == "big":
        return flask.Response(b"x" * int(request.args["bytes"]), mimetype="text/plain")
    if do == "flood":
        size = int(request.args["bytes"])
        if request.args.get("newlines") == "1":
            line = (b"z" * 99 + b"\n") * (size // 100)
        else:  # one line of `size` characters, ended only after all of them
            line = b"y" * size + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(1, view) :]
        return "flooded\n"
    if do == "spawn-and-hang":
        import subprocess

        child = subprocess.Popen(["sleep", "1000"])
        with open(request.args["file"], "w") as fh:
            fh.write(str(child.pid))
        time.sleep(60)
        return "not reached\n"
    if do == "kill-group":
        import subprocess

        if request.args.get("how") == "shell":  # the `trap 'kill 0' EXIT` idiom of scripts
            subprocess.run(["/bin/sh", "-c", "kill -KILL 0"], check=False)
        os.killpg(os.getpgrp(), signal.SIGKILL)
        return "not reached\n"
    if do == "oom-score":
        with open("/proc/self/oom_score_adj") as fh:
            return fh.read().strip()
    if do == "deep-log":
        depth = int(request.args.get("depth", "100000"))
        print('{"severity": "INFO", "nested": ' + "[" * depth + "]" * depth + "}", flush=True)
        return "logged\n"
    if do == "status":
        response = flask.Response("odd", status=int(request.args["code"]))
        response.headers.add("Set-Cookie", "session=secret")
        response.headers.add("X-From-Function", "yes")
        return response
    if do == "bad-header":
        response = flask.Response("odd")
        response.headers.add("Set-Cookie", "session=secret")
        response.headers._list.append(("X-Bad", request.args.get("value", "a\r\nb")))
        return response
    if do == "many-headers":
        response = flask.Response("many")
        for i in range(int(request.args["count"])):
            response.headers.add("X-H", "v" * 100 + str(i))
        return response
    CALLED.append(f"unknown: {request.full_path}")  # no test asks this: who called it?
    return "unknown\n"


def background(data, context):
    """A 1st gen background (legacy event) function: signature = "event"."""
    print(
        json.dumps(
            {
                "got_data": data,
                "event_id": context.event_id,
                "timestamp": context.timestamp,
                "event_type": context.event_type,
                "resource": context.resource,
            },
            sort_keys=True,
        )
    )


@functions_framework.http
def mixed(request):
    """Concurrent requests of several kinds: each answers for itself."""
    do = request.args.get("do", "ok")
    seconds = float(request.args.get("seconds", "0"))
    if do == "raise":
        raise RuntimeError("this request's own failure")
    if do == "crash":
        if "of" in request.args:  # once that many requests run, this one among them
            _wait_for_others(request.args, "meet", 60)
        time.sleep(seconds)
        os._exit(3)
    if do in ("meet", "hold"):
        return f"{_wait_for_others(request.args, do, seconds or 60)} {os.getpid()}\n"
    time.sleep(seconds)
    return f"{do} {os.getpid()}\n"


def _wait_for_others(args, mode, seconds):
    """Events the tests wait on instead of the clock, through files in ``args["dir"]``.

    ``meet``: this request's file, then wait until ``of`` requests have one there (all
    of them running at once). ``hold``: the file ``args["tag"]`` says the request is
    running; it then waits until the test creates ``release``. Bounded by ``seconds``:
    "alone" or "unreleased" if the others never came.
    """
    where = args["dir"]
    open(os.path.join(where, args.get("tag") or os.urandom(8).hex()), "w").close()
    if mode == "meet":
        outcome = ("met", "alone")
        done = lambda: len(os.listdir(where)) >= int(args["of"])  # noqa: E731
    else:
        outcome = ("held", "unreleased")
        done = lambda: os.path.exists(os.path.join(where, "release"))  # noqa: E731
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.01) + 1):
        if done() or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return outcome[0] if done() else outcome[1]


class Point:
    """A typed function's input and output: from_dict and to_dict, as the framework wants."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    @staticmethod
    def from_dict(obj):
        return Point(obj["x"], obj["y"])

    def to_dict(self):
        return {"x": self.x, "y": self.y}


@functions_framework.typed
def swap(point: Point):
    return Point(point.y, point.x)
