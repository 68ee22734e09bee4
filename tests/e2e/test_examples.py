"""Every example under examples/ as a new user meets it: built with ``pyfn build``,
served with ``pyfn serve`` (the real Node Functions Framework, PyPy workers), answered
over loopback, and planned with ``pyfn deploy --dry-run``. The examples with a
cloud behind them (beacon, cloud-button) have files of their own as well."""

from __future__ import annotations

import json
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from conftest import EXAMPLES, REPO, Built, Cloud, Running, call, serving
from support.functions_api import Schema

from pyfn_action.sizes import format_size, parse_size

pytestmark = pytest.mark.e2e

# Each example: where it lives, and env vars it needs to start.
EXAMPLE_DIRS = sorted(
    p.parent.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("pyfn.toml")
)


def test_every_example_is_listed_in_the_examples_readme() -> None:
    index = (EXAMPLES / "README.md").read_text()
    for name in EXAMPLE_DIRS:
        top = name.split("/")[0]
        assert f"({top}/" in index or f"({top})" in index, f"examples/README.md omits {top}"
        assert (EXAMPLES / top / "README.md").is_file() or top == "hello"


def _documented_limits() -> dict[int, dict[str, int]]:
    """The platform's source limits of each generation, as docs/configuration.md names
    them ("Size limits and budgets"), by the names report.json gives them."""
    text = " ".join((REPO / "docs" / "configuration.md").read_text().split())
    found = re.search(
        r"\(1st gen: (\d+) MB compressed, (\d+) MB uncompressed sources; "
        r"2nd gen publishes none\)",
        text,
    )
    assert found, "docs/configuration.md no longer names the limits as this test reads them"
    compressed, uncompressed = (parse_size(f"{n}MB") for n in found.groups())
    return {
        1: {"gen1 compressed sources": compressed, "gen1 uncompressed sources": uncompressed},
        2: {},
    }


def _budget(value: object) -> dict[str, int]:
    """A pyfn.toml budget as report.json names its limits."""
    if value is None:
        return {}
    table = value if isinstance(value, dict) else {"compressed": value}
    return {f"budget {kind}": parse_size(size) for kind, size in table.items()}


@pytest.mark.parametrize("name", EXAMPLE_DIRS)
def test_example_builds_within_the_limits(name: str, build_example: Callable[[str], Built]) -> None:
    """Within every limit that applies: its generation's published source limits (2nd
    gen publishes none, so none may be invented) and its own budget, each listed in
    report.json with what the bundle uses of it."""
    built = build_example(name)
    report = built.report
    bundle = report["bundle"]
    assert built.bundle.stat().st_size == bundle["compressed_bytes"]
    with zipfile.ZipFile(built.bundle) as zf:
        assert sum(i.file_size for i in zf.infolist()) == bundle["uncompressed_bytes"]
    settings = tomllib.loads((EXAMPLES / name / "pyfn.toml").read_text())
    gen = settings.get("gen", 2)  # the documented default
    assert report["function"]["gen"] == gen
    expected = {**_documented_limits()[gen], **_budget(settings.get("budget"))}
    assert {limit["name"]: limit["limit_bytes"] for limit in report["limits"]} == expected
    for limit in report["limits"]:
        kind = "uncompressed" if "uncompressed" in limit["name"] else "compressed"
        used = bundle[f"{kind}_bytes"]
        assert limit["used_bytes"] == used <= limit["limit_bytes"] and limit["ok"], limit


# examples/README.md's table: each example's bundle, compressed, as report.json of the
# tests' builds gives it (format_size's rounding: decimal megabytes, one decimal). A row
# with several figures lists its examples in this order.
SIZE_HEADER = "| example | what it shows | bundle, compressed |"
SEVERAL = {"reflection": ["reflection/script", "reflection/framework"]}


def _size_column() -> dict[str, str]:
    """Each row's example directory and its size cell, as written."""
    lines = iter((EXAMPLES / "README.md").read_text().splitlines())
    if SIZE_HEADER not in (line.strip() for line in lines):
        pytest.fail(f"examples/README.md has no table headed {SIZE_HEADER}")
    next(lines)  # the separator
    cells = {}
    for line in lines:
        if not line.startswith("|"):
            break
        first, *_, last = (cell.strip() for cell in line.strip().strip("|").split("|"))
        link = re.fullmatch(r"\[[^]]+\]\(([^)/]+)/\)", first)
        assert link, f"a row of the size table names no example: {line}"
        cells[link.group(1)] = last
    return cells


def test_the_examples_size_table_is_what_the_builds_make(
    build_example: Callable[[str], Built],
) -> None:
    documented = _size_column()
    tops = sorted({name.split("/")[0] for name in EXAMPLE_DIRS})
    assert sorted(documented) == tops
    built = {}
    for top in tops:
        names = SEVERAL.get(top, [top])
        assert sorted(names) == [n for n in EXAMPLE_DIRS if n.split("/")[0] == top]
        reports = [build_example(name).report for name in names]
        figures = [format_size(r["bundle"]["compressed_bytes"]) for r in reports]
        assert all(f.endswith(" MB") for f in figures), figures
        cell = " / ".join(f.removesuffix(" MB") for f in figures) + " MB"
        part = re.search(r"\((\S+) [\d.]+ [KMG]B\)$", documented[top])
        if part:  # a component named beside the total
            [component] = [c for c in reports[0]["components"] if c["name"] == part.group(1)]
            cell += f" ({part.group(1)} {format_size(component['compressed_bytes'])})"
        built[top] = cell
    assert documented == built, "examples/README.md's sizes are not what the builds make"


@pytest.mark.parametrize("name", EXAMPLE_DIRS)
def test_example_dry_run_deploy_plans_a_valid_function(name: str, cloud: Cloud) -> None:
    out = cloud.deploy(EXAMPLES / name, "--dry-run", "--json")
    assert out.code == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["action"] == "create"
    body = plan["requests"]["create"]["body"]
    assert Schema("v2").validate("Function", body) == []
    function = tomllib.loads((EXAMPLES / name / "pyfn.toml").read_text())["name"]
    assert body["name"].endswith(f"/functions/{function}")
    assert body["buildConfig"]["runtime"].startswith("nodejs")
    storage = body["buildConfig"]["source"]["storageSource"]
    assert f"gs://{storage['bucket']}/{storage['object']}" == plan["upload"]["object"]
    assert cloud.fake.changes() == [] and cloud.proxy.log == []
    assert not (EXAMPLES / f"dist-{Path(name).name}").exists()  # a dry run writes nothing


def served_example(name: str) -> Any:
    """A module fixture: examples/NAME built, then served with ``pyfn serve --bundle``."""

    @pytest.fixture(scope="module")
    def fixture(
        build_example: Callable[[str], Built],
        serve_cache: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[Running]:
        log = tmp_path_factory.mktemp(f"serve-{name.replace('/', '-')}") / "serve.log"
        with serving(build_example(name).bundle, serve_cache, log) as running:
            yield running

    return fixture


def _no_traceback(answer_body: bytes) -> None:
    assert b"Traceback" not in answer_body and b'File "' not in answer_body
    assert len(answer_body) < 300  # a short message


# --- hello --------------------------------------------------------------------------


hello = served_example("hello")


def test_hello_answers(hello: Running) -> None:
    assert call(f"{hello.base}/?name=PyPy").body == b"Hello, PyPy!\n"
    posted = call(hello.base, "POST", b'{"name": "JSON"}', {"Content-Type": "application/json"})
    assert posted.body == b"Hello, JSON!\n"


# --- reflection: the two-line script and its framework-mode twin ----------------------


reflection_script = served_example("reflection/script")


reflection = served_example("reflection/framework")


REQUESTS = [
    ("GET", "/", None, {}),
    ("GET", "/some/path?q=1", None, {"Accept": "application/json", "X-Trace": "abc"}),
    (
        "POST",
        "/",
        b'{"a": 1}',
        {"Content-Type": "application/json", "Authorization": "Bearer t", "X-Empty": ""},
    ),
    ("PUT", "/x", b"plain text", {"Content-Type": "text/plain", "Cookie": "a=1; b=2"}),
    ("GET", "/", None, {"User-Agent": "curl/8.5.0", "X-Forwarded-For": "203.0.113.7"}),
    ("GET", "/", None, {"Function-Execution-Id": "abcdefABCDEF", "Accept-Language": "ja"}),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), REQUESTS)
def test_reflection_script_and_framework_answer_the_same_json(
    reflection_script: Running,
    reflection: Running,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    answers = []
    for running in (reflection_script, reflection):
        # The same request, but for Host, which names each server's own port.
        answer = call(running.base + path, method, body, headers)
        assert answer.status == 200, answer.body
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert answer.text.startswith("{\n  ")  # indented, for people and jq
        reflected = answer.json()
        assert reflected.pop("host") == running.base.removeprefix("http://")
        # As on Cloud Functions, every request carries an execution id: the caller's,
        # else one made up for this request.
        execution_id = reflected.pop("function-execution-id")
        assert execution_id == headers.get("Function-Execution-Id", execution_id)
        assert len(execution_id) == 12
        answers.append(reflected)
    script, framework = answers
    assert script == framework
    for name, value in headers.items():
        if name != "Function-Execution-Id":
            assert script[name.lower()] == value
    if body:
        assert script["content-length"] == str(len(body))
    else:
        assert "content-length" not in script


# --- whoami ---------------------------------------------------------------------------


whoami = served_example("whoami")


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (None, "127.0.0.1"),  # no proxy: the peer
        ("203.0.113.7", "203.0.113.7"),  # what Google's front end appends
        ("2001:DB8::1", "2001:db8::1"),  # normalised
        # Spoofed: the caller wrote an address of its own before the front end's entry.
        ("8.8.8.8, 203.0.113.7", "203.0.113.7"),
        ("1.1.1.1,8.8.8.8,203.0.113.7", "203.0.113.7"),
        # Malformed: the peer address.
        ("not-an-ip", "127.0.0.1"),
        ("203.0.113.7, <script>", "127.0.0.1"),
        ("203.0.113.7:443", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("999.1.1.1", "127.0.0.1"),
        ("10.0.0.1, " * 500 + "203.0.113.7", "127.0.0.1"),  # longer than any real chain
    ],
)
def test_whoami_names_the_hop_the_front_end_saw(
    whoami: Running, forwarded: str | None, expected: str
) -> None:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    text = call(whoami.base, headers=headers)
    assert (text.status, text.text) == (200, expected + "\n")
    assert text.headers["Content-Type"].startswith("text/plain")
    as_json = call(whoami.base, headers={**headers, "Accept": "application/json"})
    assert as_json.status == 200 and as_json.headers["Content-Type"] == "application/json"
    assert as_json.json() == {"ip": expected}


def test_whoami_negotiates_and_refuses_briefly(whoami: Running) -> None:
    assert call(whoami.base, headers={"Accept": "*/*"}).text == "127.0.0.1\n"
    prefers_json = {"Accept": "text/plain;q=0.5, application/json"}
    assert call(whoami.base, headers=prefers_json).json() == {"ip": "127.0.0.1"}
    posted = call(whoami.base, "POST", b"x")
    assert posted.status == 405 and posted.headers["Allow"] == "GET, HEAD"
    _no_traceback(posted.body)


# --- numpy ----------------------------------------------------------------------------


regress = served_example("numpy")


def test_numpy_ships_as_a_pypy_binary_wheel(build_example: Callable[[str], Built]) -> None:
    report = build_example("numpy").report
    # Its size is reported as a part of its own, numpy.libs with it.
    (numpy,) = [c for c in report["components"] if c["name"] == "numpy"]
    assert numpy["kind"] == "package" and numpy["version"].startswith("2.")
    assert 5_000_000 < numpy["compressed_bytes"] < report["bundle"]["compressed_bytes"]
    with zipfile.ZipFile(build_example("numpy").bundle) as bundle:
        names = bundle.namelist()
    assert any(n.startswith("site/numpy/") and ".pypy39-pp73-" in n for n in names)
    assert any(n.startswith("site/numpy.libs/") for n in names)  # the vendored OpenBLAS


def test_numpy_fits_a_line(regress: Running) -> None:
    points = [[x, 3.0 * x - 2.0] for x in range(50)]
    answer = call(regress.base, "POST", json.dumps({"points": points}).encode())
    assert answer.status == 200, answer.body
    fit = answer.json()
    assert fit["n"] == 50
    assert fit["slope"] == pytest.approx(3.0) and fit["intercept"] == pytest.approx(-2.0)
    assert fit["r2"] == pytest.approx(1.0)
    noisy = [[0, 1], [1, 2], [2, 2], [3, 4]]
    fit = call(regress.base, "POST", json.dumps({"points": noisy}).encode()).json()
    # By hand: x̄ = 1.5, ȳ = 2.25, slope = Σ(x-x̄)(y-ȳ)/Σ(x-x̄)² = 4.5/5
    assert fit["slope"] == pytest.approx(0.9) and fit["intercept"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[" * 100_000, 400),
        (b'{"points": 3}', 400),
        (b'{"points": [[1, 2]]}', 400),
        (b'{"points": [[1, 2], [1, 5]]}', 400),  # one x: no line
        (b'{"points": [[1, 2], [2, "3"]]}', 400),
        (b'{"points": [[1, 2], [2, NaN]]}', 400),
        (b'{"points": [[1, 2], [2, 1e999]]}', 400),
        (b'{"points": [[1, 2], [2, ' + b"9" * 400 + b"]]}", 400),
        (b'{"points": [[1, 2], [2, true]]}', 400),
        (b'{"points": [[1, 2, 3], [2, 3]]}', 400),
        (json.dumps({"points": [[i, i] for i in range(10_001)]}).encode(), 400),
        (b" " * (1024 * 1024 + 1), 413),
    ],
)
def test_numpy_refuses_bad_input_briefly(regress: Running, body: bytes, status: int) -> None:
    answer = call(regress.base, "POST", body)
    assert answer.status == status, answer.body
    _no_traceback(answer.body)


# --- cpu: the Mandelbrot tile ---------------------------------------------------------


mandelbrot = served_example("cpu")


def _grey_png(data: bytes) -> list[bytes]:
    """The rows of an 8-bit greyscale PNG, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (width + 1) : (r + 1) * (width + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows)  # filter type None
    return [row[1:] for row in rows]


def _reference(x: float, y: float, zoom: float, size: int, iterations: int) -> list[bytes]:
    """The escape-time image, computed here independently of the example's code."""
    rows = []
    scale = 3.0 / (zoom * size)
    for r in range(size):
        line = bytearray()
        for c in range(size):
            z, point = 0j, complex(x + (c - size / 2) * scale, y + (size / 2 - r) * scale)
            n = 0
            while n < iterations and abs(z) <= 2.0:
                z = z * z + point
                n += 1
            line.append(0 if n == iterations else int(255 * (n / iterations) ** 0.5))
        rows.append(bytes(line))
    return rows


def test_cpu_renders_the_mandelbrot_set(mandelbrot: Running) -> None:
    answer = call(f"{mandelbrot.base}/?size=64&iterations=64")
    assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
    rows = _grey_png(answer.body)
    assert len(rows) == 64 and {len(r) for r in rows} == {64}
    assert rows[32][32] == 0  # -0.5 + 0i lies inside the set
    assert rows[0][0] < 40  # -2 + 1.5i escapes at once
    expected = _reference(-0.5, 0.0, 1.0, 64, 64)
    # complex abs() and the example's squared compare differ only on the circle's edge.
    differing = sum(a != b for row, ref in zip(rows, expected) for a, b in zip(row, ref))
    assert differing <= 8
    zoomed = _grey_png(call(f"{mandelbrot.base}/?x=-0.75&y=0.1&zoom=20&size=32").body)
    assert len(zoomed) == 32 and zoomed != rows[:32]


@pytest.mark.parametrize(
    "query",
    ["size=100000", "size=abc", "iterations=0", "zoom=nan", "x=inf", "x=9", "size=1.5"],
)
def test_cpu_refuses_bad_queries_briefly(mandelbrot: Running, query: str) -> None:
    answer = call(f"{mandelbrot.base}/?{query}")
    assert answer.status == 400, answer.body
    assert answer.headers["Content-Type"].startswith("text/plain")
    _no_traceback(answer.body)
    assert call(mandelbrot.base, "POST", b"").status == 405
