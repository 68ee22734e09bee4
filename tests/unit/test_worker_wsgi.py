"""The worker's request adapter (the shim's pyfn/pyfn_wsgi.py): a request as index.js
frames it, made the WSGI environ gunicorn would make on Cloud Functions, and a WSGI
app's answer made (status, header pairs, body)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any
from wsgiref.validate import validator

import pytest
from support.shimpy import shim_module

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]


@pytest.fixture(scope="module")
def wsgi() -> ModuleType:
    """pyfn_wsgi.py, loaded from its file as the worker loads it."""
    return shim_module("pyfn_wsgi")


def _request(
    method: str = "GET", url: str = "/", headers: list[list[str]] | None = None, **more: str
) -> dict[str, Any]:
    """A request's frame header as index.js writes it."""
    return {"id": 1, "method": method, "url": url, "headers": headers or [], **more}


def _plain(environ: Environ) -> Environ:
    return {k: v for k, v in environ.items() if k not in ("wsgi.input", "wsgi.errors")}


def test_a_plain_get(wsgi: ModuleType) -> None:
    request = _request(
        url="/hello?name=PyPy&x=%20y",
        headers=[["Host", "fn.example:8080"], ["Accept", "*/*"]],
        remote="10.0.0.7",
        http_version="1.0",
    )
    environ = wsgi.make_environ(request, b"")
    assert _plain(environ) == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/hello",
        "QUERY_STRING": "name=PyPy&x=%20y",  # as sent: the app decodes it
        "SERVER_PROTOCOL": "HTTP/1.0",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_HOST": "fn.example:8080",
        "HTTP_ACCEPT": "*/*",
        "SERVER_NAME": "fn.example",
        "SERVER_PORT": "8080",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    assert environ["wsgi.input"].read() == b""
    assert environ["wsgi.errors"] is sys.stderr


def test_what_index_js_may_leave_out_has_defaults(wsgi: ModuleType) -> None:
    environ = wsgi.make_environ({"method": "GET", "url": "/", "headers": []}, b"")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")
    assert environ["QUERY_STRING"] == ""


@pytest.mark.parametrize(
    ("host", "scheme", "name", "port"),
    [
        ("fn.example", "https", "fn.example", "443"),
        ("fn.example", "http", "fn.example", "80"),
        ("fn.example:9000", "https", "fn.example", "9000"),
        ("[::1]:8080", "http", "[::1]", "8080"),
        ("[::1]", "http", "[::1]", "80"),
    ],
)
def test_server_name_and_port_come_from_host(
    wsgi: ModuleType, host: str, scheme: str, name: str, port: str
) -> None:
    environ = wsgi.make_environ(_request(headers=[["Host", host]], scheme=scheme), b"")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == (name, port)
    assert environ["wsgi.url_scheme"] == scheme


def test_the_path_is_percent_decoded_to_byte_code_points_and_the_query_is_not(
    wsgi: ModuleType,
) -> None:
    """PEP 3333: PATH_INFO holds the decoded path's bytes as latin-1 code points (the app
    decodes them as UTF-8); QUERY_STRING is left as sent."""
    environ = wsgi.make_environ(_request(url="/caf%C3%A9/a%2Fb?q=caf%C3%A9&r=%E9"), b"")
    assert environ["PATH_INFO"] == "/caf\xc3\xa9/a/b"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a/b"
    assert environ["QUERY_STRING"] == "q=caf%C3%A9&r=%E9"


def test_headers_become_http_keys_repeated_ones_joined(wsgi: ModuleType) -> None:
    headers = [
        ["X-Forwarded-For", "1.1.1.1"],
        ["x-forwarded-for", "2.2.2.2"],
        ["Accept-Encoding", "gzip"],
        ["Cookie", "a=1"],
        ["Cookie", "b=2"],
    ]
    environ = wsgi.make_environ(_request(headers=headers), b"")
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1,2.2.2.2"
    assert environ["HTTP_ACCEPT_ENCODING"] == "gzip"
    assert environ["HTTP_COOKIE"] == "a=1,b=2"


def test_header_names_with_underscores_are_dropped(wsgi: ModuleType) -> None:
    """``X_Goog_Authenticated_User_Email`` would be read as the platform's
    ``X-Goog-Authenticated-User-Email``: dropped, as gunicorn drops it."""
    headers = [
        ["X_Goog_Authenticated_User_Email", "forged@example.com"],
        ["X-Goog-Authenticated-User-Email", "real@example.com"],
    ]
    environ = wsgi.make_environ(_request(headers=headers), b"")
    assert environ["HTTP_X_GOOG_AUTHENTICATED_USER_EMAIL"] == "real@example.com"


def test_header_values_are_native_strings(wsgi: ModuleType) -> None:
    """Values arrive as latin-1 code points (a byte each) and stay so; a code point
    above 255 (which Node never sends) cannot stand for a byte and becomes ``?``."""
    headers = [["X-Raw", "caf\xc3\xa9"], ["X-Wide", "snow\u2603"]]
    environ = wsgi.make_environ(_request(headers=headers), b"")
    assert environ["HTTP_X_RAW"] == "caf\xc3\xa9"
    assert environ["HTTP_X_WIDE"] == "snow?"


def test_content_type_is_the_first_sent_and_content_length_the_bodys_own(
    wsgi: ModuleType,
) -> None:
    headers = [
        ["Content-Type", "application/json"],
        ["Content-Type", "text/plain"],
        ["Content-Length", "999"],
    ]
    environ = wsgi.make_environ(_request("POST", headers=headers), b'{"a": 1}')
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "8"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input"].read() == b'{"a": 1}'


@pytest.mark.parametrize(
    ("headers", "body", "length"),
    [
        ([], b"", None),  # a plain GET: no CONTENT_LENGTH, as gunicorn
        ([["Content-Length", "0"]], b"", "0"),
        ([], b"abc", "3"),  # index.js decoded a body that came chunked or compressed
        ([["Transfer-Encoding", "chunked"]], b"\x00\xff" * 5, "10"),
    ],
)
def test_content_length_is_set_when_a_body_was_sent(
    wsgi: ModuleType, headers: list[list[str]], body: bytes, length: str | None
) -> None:
    environ = wsgi.make_environ(_request("POST", headers=headers), body)
    assert environ.get("CONTENT_LENGTH") == length
    assert environ["wsgi.input"].read() == body


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_pass_through(wsgi: ModuleType, method: str) -> None:
    assert wsgi.make_environ(_request(method), b"")["REQUEST_METHOD"] == method


def test_multithread_says_whether_requests_may_run_at_once(wsgi: ModuleType) -> None:
    assert wsgi.make_environ(_request(), b"", multithread=True)["wsgi.multithread"] is True
    assert wsgi.make_environ(_request(), b"")["wsgi.multithread"] is False


CLOUD_EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "//pubsub.googleapis.com/projects/p/topics/t",
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "datacontenttype": "application/json",
    "data": {"message": {"data": "aGk="}},
}


def test_a_binary_mode_cloud_event_reaches_the_framework_as_ce_headers(
    wsgi: ModuleType,
) -> None:
    """The Functions Framework reads a binary-mode CloudEvent from ``ce-`` headers and the
    body: both arrive as sent."""
    data = json.dumps(CLOUD_EVENT["data"]).encode()
    headers = [
        ["ce-specversion", "1.0"],
        ["ce-id", "evt-1"],
        ["ce-source", str(CLOUD_EVENT["source"])],
        ["ce-type", str(CLOUD_EVENT["type"])],
        ["Content-Type", "application/json"],
    ]
    environ = wsgi.make_environ(_request("POST", headers=headers), data)
    assert environ["HTTP_CE_SPECVERSION"] == "1.0"
    assert environ["HTTP_CE_ID"] == "evt-1"
    assert environ["HTTP_CE_SOURCE"] == CLOUD_EVENT["source"]
    assert environ["HTTP_CE_TYPE"] == CLOUD_EVENT["type"]
    assert environ["CONTENT_TYPE"] == "application/json"
    assert json.loads(environ["wsgi.input"].read()) == CLOUD_EVENT["data"]


@pytest.mark.parametrize(
    ("content_type", "event"),
    [
        ("application/cloudevents+json; charset=utf-8", CLOUD_EVENT),
        (
            "application/json",  # a 1st gen background event: data and context
            {
                "data": {"bucket": "b", "name": "n"},
                "context": {
                    "eventId": "1",
                    "timestamp": "2024-01-01T00:00:00Z",
                    "eventType": "google.storage.object.finalize",
                    "resource": {"service": "storage.googleapis.com", "name": "projects/_/b"},
                },
            },
        ),
    ],
    ids=["structured-cloud-event", "legacy-event"],
)
def test_an_event_in_the_body_arrives_whole(
    wsgi: ModuleType, content_type: str, event: dict[str, object]
) -> None:
    body = json.dumps(event).encode()
    headers = [["Content-Type", content_type], ["Content-Length", str(len(body))]]
    environ = wsgi.make_environ(_request("POST", headers=headers), body)
    assert environ["CONTENT_TYPE"] == content_type
    assert environ["CONTENT_LENGTH"] == str(len(body))
    assert json.loads(environ["wsgi.input"].read()) == event


# --- call_app --------------------------------------------------------------------


def _app(
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    body: Iterable[bytes] = (b"ok",),
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers or [("Content-Type", "text/plain")])
        return body

    return app


def test_the_answer_is_status_header_pairs_and_the_joined_body(wsgi: ModuleType) -> None:
    app = _app(
        "201 Created", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1")], [b"a", b"bc"]
    )
    status, headers, body = wsgi.call_app(app, _request(), b"")
    assert status == 201
    assert headers == [["Content-Type", "text/plain"], ["Set-Cookie", "a=1"]]
    assert body == b"abc"


def test_apps_checked_by_wsgiref_validate(wsgi: ModuleType) -> None:
    """The environ is one PEP 3333 accepts, for requests of every shape: the standard
    library's validator checks it and the app's side of the exchange."""

    def echo(environ: Environ, start_response: StartResponse) -> list[bytes]:
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [environ["REQUEST_METHOD"].encode(), b" ", data]

    checked = validator(echo)
    requests = [
        (_request("GET", "/?a=1", [["Host", "h"]]), b""),
        (_request("POST", "/x%20y", [["Content-Type", "text/plain"]]), b"body"),
        (_request("PUT", "/", [["Content-Length", "0"]]), b""),
        (_request("DELETE", "/", [["X-Raw", "\xff"]], scheme="https"), b""),
    ]
    for request, sent in requests:
        status, _, body = wsgi.call_app(checked, request, sent)
        assert (status, body) == (200, request["method"].encode() + b" " + sent)


def test_what_the_app_wrote_comes_before_what_it_returned(wsgi: ModuleType) -> None:
    """The ``write`` callable start_response returns (PEP 3333's legacy way) still works."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"early ")
        write(b"and ")
        return [b"late"]

    assert wsgi.call_app(app, _request(), b"") == (200, [], b"early and late")


class _Closing:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        self.closed = True


def test_the_result_is_closed_even_when_iterating_it_fails(wsgi: ModuleType) -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        raise RuntimeError("mid-body")

    good, bad = _Closing(iter([b"a", b"b"])), _Closing(failing())
    assert wsgi.call_app(_app(body=good), _request(), b"")[2] == b"ab"
    with pytest.raises(RuntimeError, match="mid-body"):
        wsgi.call_app(_app(body=bad), _request(), b"")
    assert good.closed and bad.closed


def test_an_error_after_the_headers_re_raises_the_apps_exception(wsgi: ModuleType) -> None:
    """start_response with ``exc_info`` once headers are set raises that exception (PEP
    3333): the worker answers 500, not a half-made response."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"unreachable"]

    with pytest.raises(ValueError, match="late failure"):
        wsgi.call_app(app, _request(), b"")


def test_an_error_before_the_headers_may_replace_them(wsgi: ModuleType) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            raise ValueError("early failure")
        except ValueError:
            start_response("500 Internal Server Error", [("X-Failed", "1")], sys.exc_info())
        return [b"sorry"]

    assert wsgi.call_app(app, _request(), b"") == (500, [["X-Failed", "1"]], b"sorry")
