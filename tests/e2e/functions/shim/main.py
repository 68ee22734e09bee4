"""Handlers that exercise the shim: each test serves one of them as the entry point."""

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
