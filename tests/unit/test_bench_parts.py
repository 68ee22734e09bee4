"""`pyfn bench`'s parts that need no runtime: the [[bench]] schema, the load loops and
their bounds (against a loopback server), and what a result says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pyfn_action.config import resolve_bench
from pyfn_action.config.bench import BenchRequest, read_requests
from pyfn_action.errors import ConfigError
from pyfn_action.flows import loadgen
from pyfn_action.flows.benchsession import BenchOptions, _compare
from pyfn_action.report import bench as report
from pyfn_action.report.bench import BenchResult, Difference, Measured, Side


def _declare(tmp_path: Path, text: str) -> Path:
    (tmp_path / "main.py").write_text("def f(request):\n    return 'ok'\n")
    (tmp_path / "pyfn.toml").write_text(text)
    return tmp_path


def test_requests_as_declared_and_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "score.json").write_bytes(b'{"a": 1}')
    src = _declare(
        tmp_path,
        """
[[bench]]
name = "score"
method = "post"
path = "/score?top=5"
headers = { "Content-Type" = "application/json" }
body_file = "bench/score.json"
status = 201

[[bench]]
body = "hi"
""",
    )
    score, plain = read_requests(src)
    assert score == BenchRequest(
        "score", "POST", "/score?top=5", (("Content-Type", "application/json"),), b'{"a": 1}', 201
    )
    assert (plain.name, plain.method, plain.path, plain.body, plain.status) == (
        "GET /",
        "GET",
        "/",
        b"hi",
        200,
    )
    assert score.label == "POST /score"
    none = tmp_path / "none"
    none.mkdir()
    assert read_requests(_declare(none, 'name = "f"\n')) == ()


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('methd = "GET"', "Did you mean 'method'"),
        ('method = "TRACE"', "is not one pyfn bench sends"),
        ('path = "score"', "is not a request path"),
        ('path = "/a b"', "is not a request path"),
        ("status = 42", "is not an HTTP status"),
        ("status = true", "is not an HTTP status"),
        ('headers = { "Host" = "evil" }', "is not a header a request may set"),
        ('headers = { "X-A" = "1\\r\\nX-B: 2" }', "is not one line"),
        ('headers = { "X A" = "1" }', "is not a header a request may set"),
        ('body = "a"\nbody_file = "b"', "sets both body and body_file"),
        ('body_file = "missing.json"', "does not exist"),
        ('body_file = "../outside.json"', "leads out of the function's directory"),
        ('body_file = "/etc/passwd"', "is not a path relative"),
        ("body = 3", "body is not a string"),
        ('name = "a\\nb"', "one line"),
    ],
)
def test_a_bad_request_is_refused_naming_it(tmp_path: Path, table: str, said: str) -> None:
    (tmp_path / "outside.json").write_text("{}")
    src = tmp_path / "fn"
    src.mkdir()
    _declare(src, f"[[bench]]\n{table}\n")
    with pytest.raises(ConfigError, match="#1") as caught:
        read_requests(src)
    assert said in caught.value.message


def test_a_body_file_through_a_link_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    src = tmp_path / "fn"
    src.mkdir()
    (src / "body.json").symlink_to(tmp_path / "secret")
    _declare(src, '[[bench]]\nbody_file = "body.json"\n')
    with pytest.raises(ConfigError, match="leads out"):
        read_requests(src)


def test_names_are_unique_and_requests_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="named 'GET /'"):
        read_requests(_declare(tmp_path, "[[bench]]\n[[bench]]\n"))
    with pytest.raises(ConfigError, match="51 bench requests"):
        read_requests(_declare(tmp_path, "".join(f'[[bench]]\npath = "/{n}"\n' for n in range(51))))
    with pytest.raises(ConfigError, match="not a list of tables"):
        read_requests(_declare(tmp_path, 'bench = "GET /"\n'))


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), ("1.5x", 1.5), (0.8, 0.8)])
def test_min_speedup_is_a_key(tmp_path: Path, value: object, expected: float) -> None:
    written = f'min_speedup = "{value}"\n' if isinstance(value, str) else f"min_speedup = {value}\n"
    src = _declare(tmp_path, written)
    assert resolve_bench(src, env={}, flags={})["min_speedup"] == expected
    assert resolve_bench(src, env={"PYFN_MIN_SPEEDUP": "3"}, flags={})["min_speedup"] == 3.0


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan"])
def test_a_min_speedup_that_is_no_ratio_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="min_speedup"):
        resolve_bench(_declare(tmp_path, f'min_speedup = "{value}"\n'), env={}, flags={})


def test_options_out_of_bounds_are_refused() -> None:
    with pytest.raises(ConfigError, match="clients 0"):
        BenchOptions(clients=0)
    with pytest.raises(ConfigError, match="duration"):
        BenchOptions(duration=10_000)


# --- the load loops, against a loopback server ------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.0
    wrong_every = 0
    seen = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        cls = type(self)
        cls.seen += 1
        time.sleep(cls.delay)
        body = b"wrong" if cls.wrong_every and cls.seen % cls.wrong_every == 0 else b"right"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"delay": 0.0, "wrong_every": 0, "seen": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


RIGHT = loadgen.Answer(200, b"right")
GET = BenchRequest("GET /", "GET", "/")


def test_one_client_stops_at_its_count_and_at_its_time(server: tuple[int, type[_Handler]]) -> None:
    port, handler = server
    client = loadgen.Client("127.0.0.1", port)
    counted = loadgen.sequential(client, GET, RIGHT, duration=60, most=25)
    assert (counted.count, counted.wrong) == (25, 0) and counted.seconds < 30
    handler.delay = 0.02
    began = time.perf_counter()
    timed = loadgen.sequential(client, GET, RIGHT, duration=0.3)
    assert 0.3 <= time.perf_counter() - began < 2 and 3 <= timed.count <= 20
    assert timed.p50_ms >= 20 and timed.p95_ms >= timed.p50_ms
    client.close()


def test_wrong_answers_are_counted_never_timed_as_right(server: tuple[int, type[_Handler]]) -> None:
    port, handler = server
    handler.wrong_every = 4
    client = loadgen.Client("127.0.0.1", port)
    result = loadgen.sequential(client, GET, RIGHT, duration=60, most=40)
    client.close()
    assert result.wrong == 10
    load = loadgen.concurrent("127.0.0.1", port, GET, RIGHT, clients=4, duration=0.3)
    assert load.wrong > 0 and load.count > 0
    assert abs(load.rps - load.count / load.seconds) < 1


def test_several_clients_stop_by_time_even_when_the_server_is_slow(
    server: tuple[int, type[_Handler]],
) -> None:
    port, handler = server
    handler.delay = 0.1
    began = time.perf_counter()
    load = loadgen.concurrent("127.0.0.1", port, GET, RIGHT, clients=8, duration=0.3)
    assert time.perf_counter() - began < 3
    assert load.clients == 8 and 8 <= load.count + load.wrong <= 40
    began = time.perf_counter()
    bounded = loadgen.concurrent("127.0.0.1", port, GET, RIGHT, clients=2, duration=30, most=3)
    assert bounded.count == 6 and time.perf_counter() - began < 10


def test_a_server_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    port = loadgen.free_port()
    began = time.perf_counter()
    with pytest.raises(TimeoutError):
        loadgen.first_answer("127.0.0.1", port, GET, alive=lambda: True, limit=0.3)
    assert time.perf_counter() - began < 2
    with pytest.raises(TimeoutError):
        loadgen.first_answer("127.0.0.1", port, GET, alive=lambda: False, limit=30)
    client = loadgen.Client("127.0.0.1", port)
    latency = loadgen.sequential(client, GET, RIGHT, duration=0.1, most=5)
    assert latency.wrong == latency.count and latency.count >= 1  # no answer is a wrong one


# --- comparing answers, and what a result says ------------------------------------------


def test_answers_are_compared_status_then_body() -> None:
    ok = loadgen.Answer(200, b'{"a":1}')
    assert _compare(GET, ok, ok) == ""
    assert "500 on pyfn" in _compare(GET, ok, loadgen.Answer(500, b"error"))
    assert "not the declared status 200" in _compare(
        GET, loadgen.Answer(404, b""), loadgen.Answer(404, b"")
    )
    assert "differ from byte 6" in _compare(GET, ok, loadgen.Answer(200, b'{"a":1.0}'))


def _result(speedups: dict[str, float], **more: object) -> BenchResult:
    measured = tuple(
        Measured(
            name,
            f"GET /{name}",
            Side(10.0, 12.0, 100.0, 500, 0),
            Side(10.0 / s, 12.0 / s, 100.0 * s, 500, 0),
        )
        for name, s in speedups.items()
    )
    return BenchResult(
        "hello",
        2,
        8,
        3.0,
        "3.11.7",
        "7.3.11",
        measured,
        cold_start_ms={"native": 190.0, "pyfn": 480.0},
        idle_rss_mb={"native": 63.0, "pyfn": 173.0},
        **more,
    )  # type: ignore[arg-type]


def test_a_result_says_each_ratio_and_the_machine() -> None:
    result = _result({"score": 14.0, "health": 0.8, "same": 1.02})
    text = report.render_text(result)
    assert "14× faster" in text and "1.2× slower" in text and "about as fast" in text
    assert "+290 ms" in text and "2.7×" in text and "2 CPUs, 8 clients" in text
    assert report.line(result.measured[0]) == "GET /score  p50 0.714 ms vs 10 ms native: 14× faster"
    data = json.loads(result.to_json())  # what --json prints
    assert data["format"] == report.FORMAT and data["too_slow"] == []
    assert [(m["name"], m["speedup"]) for m in data["measured"]] == [
        ("score", 14.0),
        ("health", 0.8),
        ("same", 1.02),
    ]


def test_min_speedup_names_the_slow_requests() -> None:
    result = _result({"score": 14.0, "health": 0.8}, min_speedup=1.5)
    assert [m.name for m in result.too_slow()] == ["health"]
    assert result.to_dict()["too_slow"] == ["health"]
    assert "below min_speedup 1.5: health (0.8×)" in report.render_text(result)


def test_the_comment_section_with_and_without_a_base() -> None:
    now = _result({"score": 7.0})
    alone = report.markdown([now], {})
    assert alone.startswith("#### Speed against the native Python runtime")
    assert "- `hello` GET /score  p50 1.43 ms vs 10 ms native: 7× faster\n" in alone
    assert "one shared machine" in alone and "2 CPUs" in alone
    based = report.markdown([now], {"hello": _result({"score": 14.0})})
    assert "(base: 14×, ⚠️ slower than at the base by 2×)" in based
    steady = report.markdown([now], {"hello": _result({"score": 7.2})})
    assert "(base: 7.2×)" in steady and "slower than at the base" not in steady
    differs = _result(
        {},
        differences=(Difference("score", "200: 'a'", "200: 'b'", "the bodies differ from byte 0"),),
    )
    assert "❌ the runtimes answer differently" in report.markdown([differs], {})


def test_a_request_name_of_a_pull_requests_making_cannot_be_markup() -> None:
    hostile = "<img src=x onerror=alert(1)> `x` *b* [l](u) | #"
    result = _result({hostile: 2.0})
    [text] = report.comment_lines(result, None)
    assert "<" not in text and ">" not in text
    assert "\\`x\\`" in text and "\\*b\\*" in text and "\\[l\\]" in text and "\\|" in text


def test_two_requests_of_one_path_are_told_apart_by_their_names() -> None:
    small = Measured("small", "POST /score", Side(10, 12, 100, 50, 0), Side(5, 6, 200, 50, 0))
    large = Measured("large", "POST /score", Side(40, 50, 25, 50, 0), Side(4, 5, 250, 50, 0))
    result = BenchResult("hello", 2, 8, 3.0, "3.11.7", "7.3.11", (small, large))
    assert report.comment_lines(result, None) == (
        "POST /score  p50 5 ms vs 10 ms native: 2× faster (small)",
        "POST /score  p50 4 ms vs 40 ms native: 10× faster (large)",
    )
