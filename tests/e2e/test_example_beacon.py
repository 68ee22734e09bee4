"""examples/beacon, built with ``pyfn build`` and served with ``pyfn serve --bundle``
against gcp-storage-emulator on loopback (behind the fault-injecting proxy, which
enforces ``ifGenerationMatch=0`` as Cloud Storage does), and driven by a real headless
chromium opening its test page. Every wait is bounded."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, Answer, Built, Running, call, serving
from support import gcs
from support.browser import chromium
from support.gcs import Fault, Proxy
from support.servers import running

pytestmark = pytest.mark.e2e

BUCKET = "beacons"
PREFIX = "events/"
OTHER_ORIGIN = "https://example.com"  # allowed besides the test page's own origin
STATIC = EXAMPLES / "beacon" / "static"
# With the emulator the client needs no credentials: it must never ask a metadata server.
NO_METADATA = {"NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9"}


# --- fixtures: storage, the test page's server, the served function ------------------


@dataclass
class Storage:
    emulator: str  # the emulator's base URL, to look at the bucket directly
    proxy: Proxy  # what the function talks to


@pytest.fixture(scope="module")
def storage() -> Iterator[Storage]:
    with gcs.emulator(buckets=(BUCKET,)) as base, gcs.proxy(base) as p:
        yield Storage(base, p)


@dataclass
class Page:
    base: str  # the test page's origin, e.g. http://127.0.0.1:PORT
    endpoint: dict[str, str]  # {"url": the function's URL}, set once it is served
    hits: list[str]


def page_handler(page: Page) -> type[BaseHTTPRequestHandler]:
    """examples/beacon/static as a site serves it, its data-endpoint pointed at the
    function under test."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            page.hits.append(path)
            if path in ("/", "/index.html"):
                html = (STATIC / "index.html").read_text()
                html, found = re.subn(
                    r'data-endpoint="[^"]*"', f'data-endpoint="{page.endpoint["url"]}"', html
                )
                assert found == 1, "index.html has no data-endpoint attribute"
                body, kind = html.encode(), "text/html; charset=utf-8"
            elif path == "/beacon.js":
                body, kind = (STATIC / "beacon.js").read_bytes(), "text/javascript"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    state = Page(base="", endpoint={"url": ""}, hits=[])
    with running(page_handler(state)) as base:
        state.base = base
        yield state


@pytest.fixture(scope="module")
def built(build_example: Callable[[str], Built]) -> Built:
    return build_example("beacon")


def function_env(storage: Storage, **extra: str) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": storage.proxy.base, **NO_METADATA, **extra}


@pytest.fixture(scope="module")
def function(
    built: Built,
    serve_cache: Path,
    storage: Storage,
    page: Page,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    log = tmp_path_factory.mktemp("beacon-serve") / "serve.log"
    env = function_env(
        storage,
        BEACON_BUCKET=BUCKET,
        BEACON_ORIGINS=f"{page.base}, {OTHER_ORIGIN}/ https://third.example",
    )
    with serving(built.bundle, serve_cache, log, env) as served:
        page.endpoint["url"] = f"{served.base}/"
        yield served


# --- helpers --------------------------------------------------------------------------


def event(**changes: Any) -> dict[str, Any]:
    """A valid beacon, as beacon.js sends it."""
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "page": "https://example.com/articles/pypy?ref=home",
        "referrer": "https://search.example/",
        "scroll_depth": 64,
        "screen": {"width": 1920, "height": 1080},
        "time": int(time.time() * 1000),
    }
    base.update(changes)
    return base


def object_name(sent: Mapping[str, Any]) -> str:
    day = datetime.fromtimestamp(sent["time"] / 1000, tz=timezone.utc)
    return f"{PREFIX}{day:%Y/%m/%d}/{sent['id']}.json"


def post(
    function: Running, body: bytes | dict[str, Any], headers: Mapping[str, str] | None = None
) -> Answer:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": "beacon-test/1.0"}
    sent.update(headers or {})
    return call(function.base + "/", "POST", data, sent, timeout=60)


def stored(storage: Storage) -> dict[str, int]:
    """Every object under the prefix → its generation, read from the emulator itself."""
    status, body = gcs.request(storage.emulator, "GET", f"/storage/v1/b/{BUCKET}/o?prefix={PREFIX}")
    assert status == 200, body
    return {item["name"]: int(item["generation"]) for item in json.loads(body).get("items", [])}


def content(storage: Storage, name: str) -> dict[str, Any]:
    quoted = urllib.parse.quote(name, safe="")
    status, body = gcs.request(
        storage.emulator, "GET", f"/storage/v1/b/{BUCKET}/o/{quoted}?alt=media"
    )
    assert status == 200, body
    record: dict[str, Any] = json.loads(body)
    return record


def assert_short_text(answer: Answer, status: int) -> None:
    """A refusal: the status, a one-line text/plain message, no traceback."""
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["Content-Type"].startswith("text/plain"), answer.headers
    assert 0 < len(answer.body) < 120, answer.body
    assert answer.text.count("\n") == 1, answer.body
    assert "Traceback" not in answer.text and 'File "' not in answer.text, answer.body


# --- CORS and methods -----------------------------------------------------------------


def test_preflight_is_answered_for_the_configured_origins_only(
    function: Running, page: Page
) -> None:
    for origin in (page.base, OTHER_ORIGIN):
        answer = call(
            function.base + "/",
            "OPTIONS",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert answer.status == 204, (origin, answer.status, answer.body)
        assert answer.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert "content-type" in answer.headers["Access-Control-Allow-Headers"].lower()
        assert int(answer.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in answer.headers["Vary"]
        assert answer.body == b""

    for origin in ("https://evil.example", "http://127.0.0.1:1", "null", None):
        headers = {"Access-Control-Request-Method": "POST"}
        if origin is not None:
            headers["Origin"] = origin
        answer = call(function.base + "/", "OPTIONS", headers=headers)
        assert_short_text(answer, 403)
        assert "Access-Control-Allow-Origin" not in answer.headers


def test_only_post_is_accepted(function: Running) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = call(function.base + "/", method, b"" if method != "GET" else None)
        assert_short_text(answer, 405)
        assert answer.headers["Allow"] == "POST, OPTIONS"


# --- storing: one object per event, nothing lost, nothing duplicated ------------------


def test_200_beacons_from_8_concurrent_clients_are_200_objects(
    function: Running, storage: Storage
) -> None:
    before = stored(storage)
    events = [event(scroll_depth=i % 101) for i in range(200)]

    def send(sent: dict[str, Any]) -> Answer:
        return post(function, sent, {"Origin": OTHER_ORIGIN})

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, events, timeout=300))
    elapsed = time.monotonic() - started
    for answer in answers:
        assert answer.status in (200, 204), (answer.status, answer.body, function.output())
        assert answer.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN

    after = stored(storage)
    new = set(after) - set(before)
    assert len(after) == len(before) + 200
    assert new == {object_name(e) for e in events}, f"{len(new)} new objects in {elapsed:.1f} s"
    # Every object holds its own event, whole: 200 distinct ids, the ones sent.
    ids = set()
    for sent in events:
        record = content(storage, object_name(sent))
        assert {k: record[k] for k in sent} == sent
        assert record["user_agent"] == "beacon-test/1.0"
        assert record["received"].endswith("+00:00")
        ids.add(record["id"])
    assert ids == {e["id"] for e in events} and len(ids) == 200


def test_a_beacon_sent_again_is_stored_once(function: Running, storage: Storage) -> None:
    sent = event()
    name = object_name(sent)
    first = post(function, sent)
    assert first.status == 204, first.body
    generation = stored(storage)[name]
    count = len(stored(storage))

    again = post(function, sent)  # e.g. a client's retry after a lost answer
    assert again.status == 204, again.body
    assert any(s == 412 and "ifGenerationMatch=0" in p for _, p, s in storage.proxy.log)
    assert stored(storage)[name] == generation  # not overwritten
    assert len(stored(storage)) == count


def test_a_transient_storage_error_is_retried_and_loses_nothing(
    function: Running, storage: Storage
) -> None:
    sent = event()
    storage.proxy.faults.append(Fault("POST", "/upload/", times=1, status=503))
    answer = post(function, sent)
    assert answer.status == 204, (answer.body, function.output())
    assert object_name(sent) in stored(storage)
    assert not storage.proxy.faults[-1].times  # the fault was hit, then retried


def test_storage_errors_are_short_5xx_answers(function: Running, storage: Storage) -> None:
    before = stored(storage)
    # Refused by Cloud Storage (say, the service account lacks objectCreator): 502.
    storage.proxy.faults.append(Fault("POST", "/upload/", times=1, status=403))
    assert_short_text(post(function, event()), 502)
    # Unavailable for longer than the function's retries last: 503, within bounds.
    outage = Fault("POST", "/upload/", times=100, status=503)
    storage.proxy.faults.append(outage)
    answer = post(function, event())
    storage.proxy.faults.clear()
    assert_short_text(answer, 503)
    # The 503 is the function giving up after its own bounded retries: it tried again
    # (more than one upload refused; the proxy counts a refusal before it answers), and
    # stopped while storage was still down (refusals were left), not because storage
    # came back or the client gave up.
    refused = 100 - outage.times
    assert 2 <= refused < 100, refused
    assert stored(storage) == before
    assert "Traceback" not in post(function, event()).text  # and it serves on


# --- bad input: 4xx with a short message, nothing stored ------------------------------


LONG_URL = "https://example.com/" + "a" * 2100
WITH_NAN = json.dumps(event()).replace('"scroll_depth": 64', '"scroll_depth": NaN').encode()
TOO_BIG = json.dumps(event(page="https://example.com/?" + "x" * 5000)).encode()

BAD: list[tuple[str, bytes | dict[str, Any], int]] = [
    ("over the bound", TOO_BIG, 413),
    ("not JSON", b"page=/&scroll=50", 400),
    ("empty", b"", 400),
    ("not UTF-8", b'{"id": "\xff\xfe"}', 400),
    ("a JSON array", b"[1, 2, 3]", 400),
    ("a JSON string", b'"hello"', 400),
    ("NaN", WITH_NAN, 400),
    ("deeply nested", b"[" * 2040 + b"]" * 2040, 400),
    ("a duplicated key", json.dumps(event())[:-1].encode() + b', "scroll_depth": 5}', 400),
    ("an unknown field", {**event(), "cookie": "secret"}, 400),
    ("a missing field", {k: v for k, v in event().items() if k != "screen"}, 400),
    ("an id that is not a UUID", event(id="1; DROP TABLE"), 400),
    ("an id that is a path", event(id="../../etc/passwd"), 400),
    ("an uppercase UUID", event(id=str(uuid.uuid4()).upper()), 400),
    ("a numeric id", event(id=12), 400),
    ("a javascript: page", event(page="javascript:alert(1)"), 400),
    ("a page without host", event(page="https://"), 400),
    ("a page over 2048 characters", event(page=LONG_URL), 400),
    ("a page that is null", event(page=None), 400),
    ("an ftp referrer", event(referrer="ftp://example.com/"), 400),
    ("scroll depth 101", event(scroll_depth=101), 400),
    ("scroll depth -1", event(scroll_depth=-1), 400),
    ("scroll depth as text", event(scroll_depth="50"), 400),
    ("scroll depth as a fraction", event(scroll_depth=50.5), 400),
    ("scroll depth true", event(scroll_depth=True), 400),
    ("screen width 0", event(screen={"width": 0, "height": 800}), 400),
    ("screen width huge", event(screen={"width": 10**9, "height": 800}), 400),
    ("screen without height", event(screen={"width": 1024}), 400),
    ("screen with extras", event(screen={"width": 1024, "height": 768, "dpr": 2}), 400),
    ("screen as a list", event(screen=[1024, 768]), 400),
    ("time a year ago", event(time=int(time.time() * 1000) - 365 * 86400 * 1000), 400),
    ("time in seconds", event(time=int(time.time())), 400),
    ("time as text", event(time="2026-01-01T00:00:00Z"), 400),
    ("time astronomically large", event(time=10**30), 400),
]


@pytest.mark.parametrize(("what", "body", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_beacons_are_refused_and_store_nothing(
    function: Running, storage: Storage, what: str, body: bytes | dict[str, Any], status: int
) -> None:
    before = stored(storage)
    assert_short_text(post(function, body), status)
    assert stored(storage) == before, what


def test_over_the_bound_without_a_declared_length_is_refused(
    function: Running, storage: Storage
) -> None:
    """A chunked body declares no length: the function still reads no more than its bound."""
    before = stored(storage)
    url = urllib.parse.urlsplit(function.base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        chunks = iter([TOO_BIG[:1000], TOO_BIG[1000:]])
        conn.request(
            "POST", "/", body=chunks, encode_chunked=True, headers={"Content-Type": "text/plain"}
        )
        response = conn.getresponse()
        answer = Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()
    assert_short_text(answer, 413)
    assert stored(storage) == before


def test_other_refusals(function: Running, storage: Storage) -> None:
    before = stored(storage)
    # A form is not a beacon.
    form = post(function, event(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert_short_text(form, 415)
    # A page on another site.
    foreign = post(function, event(), {"Origin": "https://evil.example"})
    assert_short_text(foreign, 403)
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert stored(storage) == before
    # application/json (what fetch() would send after a preflight) is a beacon too.
    sent = event()
    assert post(function, sent, {"Content-Type": "application/json"}).status == 204
    assert object_name(sent) in stored(storage)


def test_a_missing_bucket_setting_is_a_short_answer_and_a_clear_log(
    built: Built, serve_cache: Path, storage: Storage, tmp_path: Path
) -> None:
    env = function_env(storage, BEACON_BUCKET="", BEACON_ORIGINS=OTHER_ORIGIN)
    with serving(built.bundle, serve_cache, tmp_path / "serve.log", env) as served:
        assert_short_text(post(served, event()), 500)
        assert_short_text(post(served, b"not json"), 400)
        assert "BEACON_BUCKET is not set" in served.output()


# --- a real browser -------------------------------------------------------------------


def test_the_test_page_in_chromium_sends_its_beacon(
    function: Running, storage: Storage, page: Page
) -> None:
    before = stored(storage)
    with chromium() as driver:
        driver.get(page.base + "/")
        assert "/beacon.js" in page.hits
        height = driver.execute_script("return document.documentElement.scrollHeight")
        viewport = driver.execute_script("return window.innerHeight")
        assert height > 2 * viewport, "the test page is not tall enough to scroll"
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        deadline = time.monotonic() + 10
        while driver.execute_script("return window.scrollY") == 0:
            assert time.monotonic() < deadline, "the page did not scroll"
            time.sleep(0.05)
        screen = driver.execute_script("return [screen.width, screen.height]")
        agent = driver.execute_script("return navigator.userAgent")
        driver.get("about:blank")  # leave: pagehide, visibilitychange → sendBeacon

        deadline = time.monotonic() + 30
        new: set[str] = set()
        for _ in range(300):
            new = set(stored(storage)) - set(before)
            if new or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert len(new) == 1, f"{len(new)} beacons stored\n{function.output()}"
    record = content(storage, new.pop())
    assert record["page"] == page.base + "/"
    assert record["referrer"] == ""
    assert 0 < record["scroll_depth"] <= 100
    assert record["scroll_depth"] == 100  # scrolled to the bottom
    assert [record["screen"]["width"], record["screen"]["height"]] == screen
    assert "Chrome" in record["user_agent"] and record["user_agent"] == agent
    assert abs(record["time"] - time.time() * 1000) < 120_000
    assert re.fullmatch(r"[0-9a-f-]{36}", record["id"])


def test_the_bundle_holds_the_function_only(built: Built) -> None:
    """No key file, no page: the function's code and settings, and the report's size."""
    with zipfile.ZipFile(built.bundle) as bundle:
        app = {n for n in bundle.namelist() if n.startswith("app/") and "__pycache__" not in n}
    assert app == {"app/main.py", "app/requirements.txt", "app/pyfn.toml"}, app
    assert built.report["function"] == {
        **built.report["function"],
        "name": "beacon",
        "entry_point": "beacon",
        "signature": "http",
    }
    assert 0 < built.report["bundle"]["compressed_bytes"] < 100_000_000
