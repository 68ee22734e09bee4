"""The Node shim and the PyPy workers under the real Node.js Functions Framework.

One bundle is built from tests/e2e/functions/shim; each test serves one of its
handlers (by rewriting the unpacked bundle's manifest) on a free loopback port.
Every wait is bounded.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from conftest import REPO, Served, build_args, hermetic_env, pyfn
from support.servers import free_port, pyfn_serve, wait_listening

from pyfn_action.bundle.nodepackage import pinned
from pyfn_action.flows import serve, served
from pyfn_action.flows.nodeframework import Framework, framework_home

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "functions" / "shim"
TEST_CACHE = REPO / "tests" / ".cache"
START_TIMEOUT = 60.0
MiB = 1024 * 1024
# The fault table (docs/runtime-contract.md, "Faults") is proven with the idle JIT warm-up
# off, as every other test runs, and once more with the default warm-up on, as deployed.
WARMUP_DEFAULT = "default"
FAULTS_WITH_AND_WITHOUT_WARMUP = pytest.mark.parametrize(
    "warmup", ["0", WARMUP_DEFAULT], ids=["warmup-off", "warmup-default"]
)


@pytest.fixture(scope="session")
def framework() -> Framework:
    home = framework_home(TEST_CACHE)
    node = shutil.which("node")
    if node is None or not (home / ".complete").is_file():
        pytest.fail("the Node.js Functions Framework is missing: run `python tests/prepare.py`")
    return Framework(home, node, pinned())


@pytest.fixture(scope="module")
def shim_bundle(
    tmp_path_factory: pytest.TempPathFactory,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
) -> Path:
    out = tmp_path_factory.mktemp("shim-dist")
    args = build_args(APP, out, served_pypy, index_url, "--entry-point", "hello")
    result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 0, result.stderr
    return out / "bundle.zip"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory, shim_bundle: Path) -> Path:
    root = tmp_path_factory.mktemp("shim-bundle") / "bundle"
    served.unpack_bundle(shim_bundle, root)
    return root


def _bundle_state(root: Path) -> tuple[str, dict[str, list[str]]]:
    """What the tests may change in the unpacked bundle: its manifest, and the files in
    its directories' tops (a .pth file in site/, a module beside main.py)."""
    tops = {name: sorted(os.listdir(root / name)) for name in ("", "app", "pyfn", "site")}
    return (root / "pyfn" / "manifest.json").read_text(), tops


@pytest.fixture(autouse=True)
def _bundle_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that changes the module's shared bundle puts it back, even when it fails:
    checked after each test that uses it. A manifest left changed is put back here too, so
    that the tests after it are not misled, and the test fails."""
    if "unpacked" not in request.fixturenames:
        yield
        return
    root: Path = request.getfixturevalue("unpacked")
    manifest, tops = _bundle_state(root)
    yield
    manifest_after, tops_after = _bundle_state(root)
    if manifest_after != manifest:
        (root / "pyfn" / "manifest.json").write_text(manifest)
    assert (manifest_after, tops_after) == (manifest, tops), "the test left the bundle changed"


@contextlib.contextmanager
def _manifest_function(root: Path, **changes: object) -> Iterator[None]:
    """The bundle's manifest with these changes to its function, put back afterwards."""
    manifest_path = root / "pyfn" / "manifest.json"
    original = manifest_path.read_text()
    manifest = json.loads(original)
    manifest["function"].update(changes)
    try:
        manifest_path.write_text(json.dumps(manifest))
        yield
    finally:
        manifest_path.write_text(original)


@dataclass
class Server:
    port: int
    log: Path
    process: object
    signature: str = "http"
    events_file: Path | None = None  # PYFN_TEST_EVENTS

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), data, response.getheaders()
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        status, _, data, _ = self.request("GET", path, timeout=timeout)
        return status, data

    def logs(self) -> list[dict[str, object]]:
        """Every complete line of the log: each must be one JSON object with a severity."""
        *complete, _still_written = self.log.read_text(errors="replace").split("\n")
        entries = []
        for line in complete:
            if _framework_banner(line, self.port, self.signature):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise AssertionError(f"a log line that is not JSON: {line[:500]!r}") from None
            assert isinstance(entry, dict) and "severity" in entry, line[:500]
            entries.append(entry)
        return entries

    def wait_for_workers(self, count: int, seconds: float = 60) -> None:
        """Until ``count`` workers said they are ready (they start one after another)."""
        self.wait_for_log(lambda e: len(self.ready_workers()) >= count, seconds)
        assert len(self.ready_workers()) >= count, self.log.read_text()[-2000:]

    def ready_workers(self) -> list[str]:
        return [
            str(e["message"])
            for e in self.logs()
            if str(e.get("message", "")).startswith("pyfn worker ")
            and str(e["message"]).split()[3:4] == ["ready"]
        ]

    def wait_for_log(self, predicate, seconds: float = 60) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
        """The log, once an entry satisfies ``predicate``; failing if none does in ``seconds``."""
        deadline = time.monotonic() + seconds
        for _ in range(int(seconds / 0.1) + 1):
            entries = self.logs()
            if any(predicate(e) for e in entries):
                return entries
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"no such log entry within {seconds} s:\n{self.log.read_text()[-3000:]}"
        )

    def messages(self, containing: str, seconds: float = 60) -> list[str]:
        """The log's messages that contain ``containing``, once there is one (bounded)."""
        entries = self.wait_for_log(lambda e: containing in str(e.get("message")), seconds)
        return [str(e["message"]) for e in entries if containing in str(e.get("message"))]

    def events(self) -> list[dict[str, object]]:
        """The shim's test events so far (PYFN_TEST_EVENTS): a request queued, sent to a
        worker, withdrawn from the queue, answered."""
        assert self.events_file is not None
        if not self.events_file.exists():
            return []
        *complete, _still_written = self.events_file.read_text().split("\n")
        return [json.loads(line) for line in complete]

    def wait_for_event(self, predicate, seconds: float = 60) -> dict[str, object]:  # type: ignore[no-untyped-def]
        """The first event that satisfies ``predicate``; failing if none does in ``seconds``."""

        def matching() -> list[dict[str, object]]:
            return [e for e in self.events() if predicate(e)]

        _until(matching, seconds, step=0.02)
        found = matching()
        assert found, f"no such event within {seconds} s: {self.events()[-20:]}"
        return found[0]


def _messages(server: Server) -> list[str]:
    return [str(e.get("message")) for e in server.logs()]


def _framework_banner(line: str, port: int, signature: str = "http") -> bool:
    """The lines the Node.js Functions Framework prints as it starts when NODE_ENV is not
    ``production`` (pyfn serve runs it in ``development``; deployed, it prints none): the
    only lines of the log that are not the shim's JSON. It names the function's signature
    type (a script is served as HTTP)."""
    return line in (
        "Serving function...",
        f"Signature type: {_banner_signature(signature)}",
        f"URL: http://localhost:{port}/",
    ) or line.startswith("Function: ")


def _banner_signature(signature: str) -> str:
    return signature if signature in ("cloudevent", "event") else "http"


@contextlib.contextmanager
def serving(
    root: Path,
    framework: Framework,
    tmp_path: Path,
    entry_point: str,
    signature: str = "http",
    **env: str,
) -> Iterator[Server]:
    changes = {"entry_point": entry_point, "signature": signature}
    if signature == "script":
        changes.update(script=env.pop("script"), stdin=env.pop("stdin"))
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    events = tmp_path / f"events-{port}.jsonl"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child_env["PYFN_WARMUP"] = "0"  # idle-time JIT warm-up has a test of its own
    child_env["PYFN_TEST_EVENTS"] = str(events)
    child_env.update(env)
    if child_env["PYFN_WARMUP"] == WARMUP_DEFAULT:
        del child_env["PYFN_WARMUP"]  # as deployed: the worker's own default
    with _manifest_function(root, **changes), log.open("wb") as out:
        process = serve.start(
            framework,
            root,
            entry_point=entry_point,
            host="127.0.0.1",
            port=port,
            env=child_env,
            output=out,
        )
        server = Server(port, log, process, signature, events)
        try:
            wait_listening(port, process, START_TIMEOUT, log.read_text)
            yield server
        finally:
            serve.stop(process)


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.split(") ", 1)[1][0] != "Z":
            alive.append(pid)
    return alive


def _worker_pids(server: Server) -> list[int]:
    return sorted(
        {int(e["worker"]) for e in server.logs() if "worker" in e}
        | {
            int(str(e["message"]).split()[2])
            for e in server.logs()
            if str(e.get("message", "")).startswith("pyfn worker ") and "ready" in str(e["message"])
        }
    )


# --- framework mode: requests ---------------------------------------------------


def test_hello_and_persistent_workers(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with serving(unpacked, framework, tmp_path, "pid", PYFN_WORKERS="2") as server:
        pids = set()
        for _ in range(20):
            status, body = server.get("/")
            assert status == 200
            pids.add(int(body))
        assert 1 <= len(pids) <= 2  # nothing spawned per request
    with serving(unpacked, framework, tmp_path, "hello") as server:
        assert server.get("/?name=PyPy") == (200, b"Hello, PyPy!\n")


def test_workers_get_a_small_gc_nursery_unless_the_function_sets_one(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """PyPy sizes its nursery from the host's last-level cache (half of it): hundreds of
    MB on a large host, more than a 256 MiB instance holds. The shim gives PyPy's own
    fallback, 4 MB, and keeps a value the function's environment sets."""
    environ = {k: v for k, v in os.environ.items() if k != "PYPY_GC_NURSERY"}
    with mock.patch.dict(os.environ, environ, clear=True):
        with serving(unpacked, framework, tmp_path, "nursery") as server:
            assert server.get("/") == (200, b"4MB")
        with serving(unpacked, framework, tmp_path, "nursery", PYPY_GC_NURSERY="16MB") as server:
            assert server.get("/") == (200, b"16MB")


def test_site_comes_first_after_app_and_its_pth_files_run(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    pth = unpacked / "site" / "zz-pyfn-test.pth"
    pth.write_text("import os; os.environ['PYFN_TEST_PTH_RAN'] = 'yes'\n")
    try:
        with serving(unpacked, framework, tmp_path, "paths") as server:
            status, body = server.get("/")
        assert status == 200
        assert json.loads(body) == {"first": ["app", "site"], "pth": "yes"}
    finally:
        pth.unlink()


def test_the_functions_modules_named_like_the_workers_are_its_own(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """A module of the function named like one of the worker's (pyfn/*.py) or like what
    they do is the one the function imports, and the worker serves as ever: the worker
    loads its own by path, under no name a function's import could meet."""
    names = sorted(p.stem for p in (unpacked / "pyfn").glob("*.py")) + ["adapter", "frames"]
    written = [unpacked / "app" / f"{name}.py" for name in names]
    try:
        for path in written:
            path.write_text("OWNER = 'function'\n")
        with serving(unpacked, framework, tmp_path, "shadowing", PYFN_THREADS="2") as server:
            for _ in range(3):
                status, body = server.get("/?names=" + ",".join(names))
                assert status == 200, body
                assert json.loads(body) == dict.fromkeys(names, "function")
    finally:
        for path in written:
            path.unlink(missing_ok=True)


WARMUP_DONE = re.compile(
    r"pyfn warm-up: (\d+) of (\d+) synthetic requests ran while idle; "
    r"(\d+) real requests came before it was done"
)


def _warmup_report(server: Server, seconds: float = 180) -> tuple[int, int, int]:
    """What the worker's one warm-up line says: (ran, asked for, real requests meanwhile)."""
    [line] = server.messages("pyfn warm-up:", seconds)
    found = WARMUP_DONE.fullmatch(line)
    assert found, line
    ran, count, arrived = (int(n) for n in found.groups())
    return ran, count, arrived


def test_idle_warmup_runs_never_calls_the_function_nor_delays_requests(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """The worker runs every synthetic request it was asked for while idle (its log line
    counts them); none reaches the function (its own count of calls); and the real
    requests are read and answered while the warm-up is under way, not after it."""
    count = 100000  # seconds of work for the worker: far more than two requests take
    with serving(
        unpacked, framework, tmp_path, "counter", PYFN_WARMUP=str(count), PYFN_WORKERS="1"
    ) as server:
        assert server.get("/", timeout=60) == (200, b"1")  # no synthetic call reached it
        server.wait_for_workers(1)
        assert server.get("/", timeout=60) == (200, b"2")
        ran, asked, arrived = _warmup_report(server)
        assert (ran, asked) == (count, count)
        assert arrived == 2  # both were taken between synthetic requests, none after them
        assert server.get("/", timeout=30) == (200, b"3")  # none of them reached the function


@pytest.mark.parametrize(
    ("value", "warning"),
    [(WARMUP_DEFAULT, None), ("lots", "PYFN_WARMUP='lots' is not an integer >= 0; used 3000")],
    ids=["unset", "invalid"],
)
def test_the_warmup_runs_3000_synthetic_requests_by_default(
    unpacked: Path, framework: Framework, tmp_path: Path, value: str, warning: str | None
) -> None:
    """PYFN_WARMUP unset, or invalid (a warning says so): the worker runs 3000 synthetic
    requests while idle (its one line counts them), none of which reaches the function."""
    with serving(
        unpacked, framework, tmp_path, "counter", PYFN_WARMUP=value, PYFN_WORKERS="1"
    ) as server:
        ran, asked, _ = _warmup_report(server)
        assert (ran, asked) == (3000, 3000)
        assert server.get("/", timeout=60) == (200, b"1")
        warned = [e for e in server.logs() if "PYFN_WARMUP" in str(e.get("message"))]
        assert [(e["severity"], e["message"]) for e in warned] == (
            [] if warning is None else [("WARNING", warning)]
        )


def test_warmup_0_turns_it_off(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    """PYFN_WARMUP=0: the worker's one warm-up line, as it starts serving, says it is off
    (instead of counting synthetic requests once they ran)."""
    with serving(
        unpacked, framework, tmp_path, "counter", PYFN_WARMUP="0", PYFN_WORKERS="1"
    ) as server:
        assert server.get("/", timeout=60) == (200, b"1")
        [said] = server.messages("pyfn warm-up:")
        assert said == "pyfn warm-up: off (PYFN_WARMUP=0)"
        assert server.get("/", timeout=60) == (200, b"2")


def test_invalid_jit_settings_are_reported_and_ignored(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "hello", PYFN_JIT="no_such_param=3") as server:
        assert server.get("/?name=jit") == (200, b"Hello, jit!\n")
        entries = server.wait_for_log(lambda e: "PYFN_JIT" in str(e.get("message")))
        warning = [e for e in entries if "PYFN_JIT" in str(e.get("message"))]
        assert warning and warning[0]["severity"] == "WARNING"


def test_request_reaches_flask_intact(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with serving(unpacked, framework, tmp_path, "echo") as server:
        status, _, body, _ = server.request(
            "POST",
            "/some/path?a=1&a=2&b=x",
            body=b'{"k": [1, 2]}',
            headers={"Content-Type": "application/json", "X-Test": "v"},
        )
        seen = json.loads(body)
        assert status == 200
        assert seen["method"] == "POST" and seen["path"] == "/some/path"
        assert seen["args"] == {"a": ["1", "2"], "b": ["x"]}
        assert seen["json"] == {"k": [1, 2]}
        assert seen["headers"]["X-Test"] == "v"
        status, _, body, _ = server.request(
            "PUT",
            "/",
            body=b"x=1&y=two",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert json.loads(body)["form"] == {"x": ["1"], "y": ["two"]}
        # a gzip body: the Node framework inflates it, Python must see plain bytes
        plain = b'{"zipped": true}'
        status, _, body, _ = server.request(
            "POST",
            "/",
            body=gzip.compress(plain),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        seen = json.loads(body)
        assert status == 200 and seen["json"] == {"zipped": True}
        assert seen["length"] == len(plain) and "Content-Encoding" not in seen["headers"]


def test_return_shapes(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with serving(unpacked, framework, tmp_path, "shapes") as server:
        assert server.get("/?kind=bytes") == (200, b"raw bytes")
        status, headers, body, raw = server.request("GET", "/?kind=tuple")
        assert (status, body, headers["X-Custom"]) == (201, b"created", "yes")
        status, _, body, raw = server.request("GET", "/?kind=response")
        assert (status, body) == (418, b"teapot")
        assert [v for k, v in raw if k.lower() == "set-cookie"] == ["b=2", "c=3"]
        status, headers, body, _ = server.request("GET", "/?kind=dict")
        assert status == 200 and json.loads(body) == {"kind": "dict"}
        assert headers["Content-Type"] == "application/json"


def test_large_and_binary_bodies_round_trip(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "mirror") as server:
        for size in (0, 1, 65_535, 1_000_003, 32 * 1024 * 1024):
            body = os.urandom(size)
            status, _, data, _ = server.request(
                "POST",
                "/",
                body=body,
                headers={"Content-Type": "application/octet-stream"},
                timeout=120,
            )
            assert status == 200
            assert hashlib.sha256(data).digest() == hashlib.sha256(body).digest(), size
        # A JSON body, as the conformance client sends one: the exact bytes, whitespace,
        # key order and escapes included, though the Node framework parsed it on the way.
        sent = b'{ "b" : 1,\n  "a": [1.0, 2e3, "\\u00e9\xc3\xa9"], "z": null }'
        status, _, data, _ = server.request(
            "POST", "/", body=sent, headers={"Content-Type": "application/json"}
        )
        assert (status, data) == (200, sent)


def test_non_utf8_query_and_headers(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with (
        serving(unpacked, framework, tmp_path, "echo") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
    ):
        sock.sendall(
            b"GET /p?q=%ff%fe&r=%e9t&r=caf%C3%A9 HTTP/1.1\r\nHost: x\r\nX-Bin: caf\xe9\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        seen = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert seen["path"] == "/p"
        assert seen["headers"]["X-Bin"] == "caf\u00e9"
        assert "caf\u00e9" in seen["args"]["r"]
        # An undecodable *path* reaches the function, as on the native Python runtime
        # (the Node framework's router would have answered 400); nothing breaks.
        status, body = server.get("/p%ff")
        assert status == 200 and json.loads(body)["path"].startswith("/p")
        status, body = server.get("/?after=1")
        assert status == 200 and json.loads(body)["args"] == {"after": ["1"]}


def test_requests_reach_python_as_on_the_native_runtime(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """The shim reads the raw request itself (not through the Node framework's express
    app): what the native Python runtime hands the function, the function gets here,
    where express would have answered first; bodies are still decoded as the Node
    framework decodes them, and an encoding it cannot decode is 415."""
    with serving(unpacked, framework, tmp_path, "echo") as server:
        # JSON that does not parse: the function decides (get_json(silent=True) is None).
        status, _, body, _ = server.request(
            "POST", "/", body=b'{"a": ', headers={"Content-Type": "application/json"}
        )
        seen = json.loads(body)
        assert status == 200 and seen["json"] is None and seen["length"] == 6
        # More than 1,000 form fields: all of them reach Flask.
        form = "&".join(f"p{i}={i}" for i in range(1500)).encode()
        status, _, body, _ = server.request(
            "POST",
            "/",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200 and len(json.loads(body)["form"]) == 1500
        # deflate and br bodies arrive decoded, without the header that no longer holds.
        plain = b'{"k": "' + b"v" * 5000 + b'"}'
        for encoding, packed in (
            ("deflate", zlib.compress(plain)),
            ("br", _brotli(plain, framework.node)),
        ):
            status, _, body, _ = server.request(
                "POST",
                "/",
                body=packed,
                headers={"Content-Type": "application/json", "Content-Encoding": encoding},
            )
            seen = json.loads(body)
            assert status == 200, body
            assert seen["length"] == len(plain) and seen["json"] == {"k": "v" * 5000}
            assert "Content-Encoding" not in seen["headers"]
        # An encoding nobody decodes, or a body that is not what its encoding says.
        status, _, body, _ = server.request(
            "POST", "/", body=b"xx", headers={"Content-Encoding": "zstd"}
        )
        assert status == 415 and b"zstd" in body
        status, _, _, _ = server.request(
            "POST", "/", body=b"not gzip", headers={"Content-Encoding": "gzip"}
        )
        assert status == 400
        assert server.get("/?after=1")[0] == 200


def _brotli(data: bytes, node: str) -> bytes:
    """``data`` compressed with brotli, by Node's zlib (Python's standard library has none)."""
    import subprocess

    script = (
        "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    )
    return subprocess.run(
        [node, "-e", script], input=data, capture_output=True, check=True, timeout=60
    ).stdout


# --- request bodies: bounded however they are encoded ---------------------------------

ENCODINGS = ("gzip", "deflate", "br")


def _zeros(encoding: str, size: int, node: str) -> bytes:
    """``size`` bytes of zeros (whole MiB), compressed: 600 MiB are 611 KB of gzip, 1 KB of br."""
    if encoding == "br":
        import subprocess

        script = (
            "const z = require('zlib');"
            "const c = z.createBrotliCompress({params: {[z.constants.BROTLI_PARAM_QUALITY]: 5}});"
            "c.pipe(process.stdout);"
            "const zero = Buffer.alloc(1 << 20); let left = Number(process.argv[1]);"
            "const more = () => { while (left > 0) { left -= zero.length;"
            " if (!c.write(zero)) return c.once('drain', more); } c.end(); };"
            "more();"
        )
        return subprocess.run(
            [node, "-e", script, str(size)], capture_output=True, check=True, timeout=60
        ).stdout
    packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    zero = bytes(MiB)
    return b"".join([*(packer.compress(zero) for _ in range(size // MiB)), packer.flush()])


def _peak_memory(pid: int) -> int:
    """The most memory ``pid`` has held resident since it started (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no VmHWM")


def _post_octets(server: Server, body: bytes, encoding: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/octet-stream"}
    if encoding:
        headers["Content-Encoding"] = encoding
    status, _, data, _ = server.request("POST", "/", body=body, headers=headers, timeout=120)
    return status, data


def _posted(server: Server, body: bytes, encoding: str) -> tuple[float, int, bytes]:
    """What posting ``body`` cost Node's thread (seconds of CPU), and the answer."""
    answers: list[tuple[int, bytes]] = []
    cost = _node_cpu_for(server, lambda: answers.append(_post_octets(server, body, encoding)))
    [(status, data)] = answers
    return cost, status, data


def test_a_compressed_body_is_refused_once_it_decodes_past_the_limit(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """A body that inflates past the limit (32 MiB on 2nd gen) is 413 as soon as it does:
    600 MiB of zeros in 611 KB of gzip costs Node what 64 MiB in 65 KB cost (the decoder is
    stopped at the limit: measured against the smaller one, not against a clock), neither
    Node nor the worker holds the 600 MiB (their peak memory grows by less than 200 MB),
    the function never sees it, and the next request is served. Up to the limit, a body
    decodes whole. The same for deflate and br."""
    node = framework.node
    with serving(unpacked, framework, tmp_path, "echo", PYFN_WORKERS="1") as server:
        server.wait_for_workers(1)
        assert _post_octets(server, gzip.compress(b"warm"), "gzip")[0] == 200
        [worker] = _worker_pids(server)
        processes = {"node": server.process.pid, "worker": worker}  # type: ignore[attr-defined]
        before = {name: _peak_memory(pid) for name, pid in processes.items()}
        for encoding in ENCODINGS:
            small, large = _zeros(encoding, 64 * MiB, node), _zeros(encoding, 600 * MiB, node)
            cost_small, status_small, _ = _posted(server, small, encoding)
            cost_large, status_large, said = _posted(server, large, encoding)
            assert (status_small, status_large) == (413, 413), encoding
            assert str(32 * MiB).encode() in said, said  # the answer names the limit
            # stopped at the limit: alike (0.05 s each here); decoded to the end, 9 times
            assert cost_large < 3 * cost_small + _TICKS, (encoding, cost_large, cost_small)
        grown = {name: _peak_memory(pid) - before[name] for name, pid in processes.items()}
        assert all(size < 200 * 10**6 for size in grown.values()), grown
        status, data = _post_octets(server, gzip.compress(b"after"), "gzip")
        assert status == 200 and json.loads(data)["length"] == 5
        assert _worker_pids(server) == [worker]  # the same worker served it: none died
        status, data = _post_octets(server, _zeros("gzip", 32 * MiB, node), "gzip")
        assert status == 200 and json.loads(data)["length"] == 32 * MiB  # the limit itself


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_encoded_request_without_a_body_has_an_empty_one(
    unpacked: Path, framework: Framework, tmp_path: Path, encoding: str
) -> None:
    """`Content-Encoding` with no body is no decoding error: the function gets an empty
    body, sent with `Content-Length: 0` or with none, from the shim as from the Node
    framework's own app (IGNORED_ROUTES); a body that is not what its encoding says is
    still 400."""
    for routes in ({}, {"IGNORED_ROUTES": "/skipped"}):
        with serving(unpacked, framework, tmp_path, "echo", **routes) as server:
            for method, body in (("POST", b""), ("GET", None)):
                status, _, data, _ = server.request(
                    method, "/", body=body, headers={"Content-Encoding": encoding}
                )
                assert status == 200, (routes, method, data)
                assert json.loads(data)["length"] == 0, (routes, method, data)
            assert _post_octets(server, b"not encoded", encoding)[0] == 400, routes


LIMIT = 1000  # PYFN_MAX_BODY below: bytes


def _plain_and_encoded_bodies(size: int, node: str) -> list[tuple[str, bytes, str | None]]:
    """A body of ``size`` bytes: as it is, and in gzip, deflate and br."""
    data = os.urandom(size // 2 + 1).hex().encode()[:size]
    return [
        ("plain", data, None),
        ("gzip", gzip.compress(data), "gzip"),
        ("deflate", zlib.compress(data), "deflate"),
        ("br", _brotli(data, node), "br"),
    ]


def test_the_body_limit_is_a_setting_and_holds_however_the_body_comes(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """PYFN_MAX_BODY lowers the limit: a body of that size is served; one byte more is 413
    whether it announces its length, comes in chunks, or decodes to it."""
    with serving(unpacked, framework, tmp_path, "echo", PYFN_MAX_BODY=str(LIMIT)) as server:
        for name, body, encoding in _plain_and_encoded_bodies(LIMIT, framework.node):
            status, data = _post_octets(server, body, encoding)
            assert status == 200 and json.loads(data)["length"] == LIMIT, (name, data)
        for name, body, encoding in _plain_and_encoded_bodies(LIMIT + 1, framework.node):
            assert _post_octets(server, body, encoding)[0] == 413, name
            status, _, data, _ = server.request(  # an iterable goes chunked, no length
                "POST",
                "/",
                body=iter([body[:10], body[10:]]),
                headers={
                    "Content-Type": "application/octet-stream",
                    **({"Content-Encoding": encoding} if encoding else {}),
                },
            )
            assert status == 413 and str(LIMIT).encode() in data, (name, data)
        assert server.get("/?after=1")[0] == 200


@pytest.mark.parametrize(
    "mode",
    [{"IGNORED_ROUTES": "/skipped"}, {"script": "reflection.py", "stdin": "body"}],
    ids=["ignored-routes", "script"],
)
def test_the_body_limit_holds_where_the_framework_reads_the_body(
    unpacked: Path, framework: Framework, tmp_path: Path, mode: dict[str, str]
) -> None:
    """Where the Node framework's app reads the body (with IGNORED_ROUTES, and in script
    mode), a body over PYFN_MAX_BODY is refused all the same."""
    entry, signature = ("handler", "script") if "script" in mode else ("echo", "http")
    with serving(
        unpacked, framework, tmp_path, entry, signature, PYFN_MAX_BODY=str(LIMIT), **mode
    ) as server:
        assert _post_octets(server, b"x" * LIMIT)[0] == 200
        status, data = _post_octets(server, gzip.compress(b"x" * (LIMIT + 1)), "gzip")
        assert status == 413 and str(LIMIT).encode() in data, data


def test_ignored_routes_go_through_the_framework(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """IGNORED_ROUTES asks the Node framework to answer some paths 404 itself: then every
    request goes through its express app, and the rest still reach the function."""
    with serving(unpacked, framework, tmp_path, "echo", IGNORED_ROUTES="/skipped") as server:
        assert server.get("/skipped")[0] == 404
        status, body = server.get("/served?x=1")
        assert status == 200 and json.loads(body)["args"] == {"x": ["1"]}


def test_cloud_events_binary_and_structured(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "event", "cloudevent") as server:
        status, _, _, _ = server.request(
            "POST",
            "/",
            body=b'{"n": 1}',
            headers={
                "Content-Type": "application/json",
                "ce-id": "binary-1",
                "ce-specversion": "1.0",
                "ce-type": "t.binary",
                "ce-source": "//test",
            },
        )
        assert status == 200
        structured = {
            "specversion": "1.0",
            "id": "structured-1",
            "type": "t.structured",
            "source": "//test",
            "data": {"n": 2},
        }
        status, _, _, _ = server.request(
            "POST",
            "/",
            body=json.dumps(structured).encode(),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        assert status == 200
        entries = server.wait_for_log(lambda e: "structured-1" in str(e.get("message")))
        seen = [
            json.loads(str(e["message"])) for e in entries if "got_event" in str(e.get("message"))
        ]
        assert {"got_event": "binary-1", "type": "t.binary", "data": {"n": 1}} in seen
        assert {"got_event": "structured-1", "type": "t.structured", "data": {"n": 2}} in seen


LEGACY_EVENTS = [
    (
        {
            "context": {
                "eventId": "pubsub-1",
                "timestamp": "2026-12-01T10:00:00.000Z",
                "eventType": "google.pubsub.topic.publish",
                "resource": {
                    "service": "pubsub.googleapis.com",
                    "name": "projects/p/topics/t",
                    "type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
                },
            },
            "data": {
                "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
                "data": "aGk=",
                "attributes": {"a": "1"},
            },
        },
        "google.cloud.pubsub.topic.v1.messagePublished",
    ),
    (
        {
            "context": {
                "eventId": "storage-1",
                "timestamp": "2026-12-01T10:00:00.000Z",
                "eventType": "google.storage.object.finalize",
                "resource": {
                    "service": "storage.googleapis.com",
                    "name": "projects/_/buckets/b/objects/o.txt",
                    "type": "storage#object",
                },
            },
            "data": {"bucket": "b", "name": "o.txt", "size": "3"},
        },
        "google.cloud.storage.object.v1.finalized",
    ),
    (
        {
            "eventType": "providers/google.firebase.database/eventTypes/ref.write",
            "params": {"child": "xyz"},
            "auth": {"admin": True},
            "domain": "firebaseio.com",
            "data": None,
            "delta": {"grandchild": "other"},
            "resource": "projects/_/instances/my-db/refs/gcf-test/xyz",
            "timestamp": "2026-12-01T10:00:00.000Z",
            "eventId": "firebase-1",
        },
        "google.firebase.database.ref.v1.written",
    ),
]


def test_a_cloudevent_function_gets_legacy_events_converted(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Pub/Sub, Storage and Firebase events in the legacy shape reach a CloudEvent function
    as CloudEvents, with the Python framework's own mapping of their types."""
    with serving(unpacked, framework, tmp_path, "event", "cloudevent") as server:
        for event, _ in LEGACY_EVENTS:
            status, _, body, _ = server.request(
                "POST",
                "/",
                body=json.dumps(event).encode(),
                headers={"Content-Type": "application/json"},
            )
            assert status == 200, body
        entries = server.wait_for_log(lambda e: "firebase-1" in str(e.get("message")))
        seen = {
            got["got_event"]: got
            for got in (
                json.loads(str(e["message"]))
                for e in entries
                if "got_event" in str(e.get("message"))
            )
        }
        assert {name: seen[name]["type"] for name in seen} == {
            "pubsub-1": LEGACY_EVENTS[0][1],
            "storage-1": LEGACY_EVENTS[1][1],
            "firebase-1": LEGACY_EVENTS[2][1],
        }
        assert seen["pubsub-1"]["data"]["message"]["data"] == "aGk="
        assert seen["storage-1"]["data"]["name"] == "o.txt"


def test_a_typed_function_round_trips_its_type(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "swap") as server:
        status, _, body, _ = server.request(
            "POST",
            "/",
            body=b'{"x": 1, "y": [2, "three"]}',
            headers={"Content-Type": "application/json"},
        )
        assert status == 200, body
        assert json.loads(body) == {"x": [2, "three"], "y": 1}


def test_legacy_event_functions_get_data_and_context(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """signature = "event": a legacy event (1st gen) and a CloudEvent (2nd gen, converted
    by the Python framework's own mapping) both reach ``handler(data, context)``."""
    with serving(unpacked, framework, tmp_path, "background", "event") as server:
        legacy = {
            "context": {
                "eventId": "legacy-1",
                "timestamp": "2026-12-01T10:00:00.000Z",
                "eventType": "google.pubsub.topic.publish",
                "resource": "projects/p/topics/t",
            },
            "data": {"data": "aGVsbG8="},
        }
        status, _, _, _ = server.request(
            "POST",
            "/",
            body=json.dumps(legacy).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 200
        message = {
            "message": {
                "data": "d29ybGQ=",
                "messageId": "ce-1",
                "publishTime": "2026-12-01T10:00:01.000Z",
            },
            "subscription": "projects/p/subscriptions/s",
        }
        status, _, _, _ = server.request(
            "POST",
            "/",
            body=json.dumps(message).encode(),
            headers={
                "Content-Type": "application/json",
                "ce-id": "ce-1",
                "ce-specversion": "1.0",
                "ce-time": "2026-12-01T10:00:01.000Z",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
            },
        )
        assert status == 200
        # The framework's own answer to a GET, as on the native runtime: the function is
        # not called (the log holds two events below, no third).
        assert server.get("/") == (200, b"")
        entries = server.wait_for_log(lambda e: '"event_id": "ce-1"' in str(e.get("message")))
        seen = {
            got["event_id"]: got
            for got in (
                json.loads(str(e["message"]))
                for e in entries
                if "got_data" in str(e.get("message"))
            )
        }
        assert seen["legacy-1"] == {
            "got_data": {"data": "aGVsbG8="},
            "event_id": "legacy-1",
            "timestamp": "2026-12-01T10:00:00.000Z",
            "event_type": "google.pubsub.topic.publish",
            "resource": "projects/p/topics/t",
        }
        assert set(seen) == {"legacy-1", "ce-1"}
        converted = seen["ce-1"]
        assert converted["event_type"] == "google.pubsub.topic.publish"
        assert converted["timestamp"] == "2026-12-01T10:00:01.000Z"
        assert converted["got_data"]["data"] == "d29ybGQ="
        assert "projects/p/topics/t" in json.dumps(converted["resource"])


@pytest.mark.parametrize(
    ("signature", "entry_point"),
    [("cloudevent", "event"), ("event", "background"), ("http", "hello")],
)
def test_the_banner_names_the_functions_signature_type(
    unpacked: Path, framework: Framework, tmp_path: Path, signature: str, entry_point: str
) -> None:
    """The Node framework's start-up banner (under pyfn serve) names the function's own
    signature type, not the http the shim registers every function with."""
    with serving(unpacked, framework, tmp_path, entry_point, signature) as server:

        def named() -> list[str]:
            lines = server.log.read_text().splitlines()
            return [line for line in lines if line.startswith("Signature type: ")]

        _until(named, 30)
        assert named() == [f"Signature type: {signature}"]


# --- faults are never 200 --------------------------------------------------------


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_exception_is_500_without_traceback(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    with serving(unpacked, framework, tmp_path, "boom", PYFN_WARMUP=warmup) as server:
        status, body = server.get("/")
        assert status == 500
        assert b"secret detail" not in body and b"Traceback" not in body
        entries = server.wait_for_log(lambda e: "Traceback" in str(e.get("message")))
        errors = [e for e in entries if "Traceback" in str(e.get("message"))]
        assert len(errors) == 1 and errors[0]["severity"] == "ERROR"
        assert "secret detail" in str(errors[0]["message"])  # the log has it, whole
        assert server.get("/")[0] == 500  # and the worker still serves


def _times_out_after_two_seconds(server: Server) -> None:
    """A handler that sleeps an hour is answered 504 by the 2 s timer (its log line says
    so, for this request), not by anything else and not by the default 60 s."""
    server.get("/?seconds=0")  # the worker is up
    status, body = server.get("/?seconds=3600", timeout=120)
    assert status == 504 and b"timeout" in body
    [timed_out] = server.messages("answered 504")
    assert timed_out.startswith("pyfn: GET /?seconds=3600 ran past 2 s on worker "), timed_out


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_timeout_is_504_and_the_worker_is_killed_and_replaced(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """One thread: the stuck thread cannot be left to finish, so the worker is killed (its
    handler sleeps an hour: it cannot have ended by itself) and a new one serves the next
    request, which does not wait for the old one."""
    with serving(
        unpacked,
        framework,
        tmp_path,
        "mixed",
        PYFN_TIMEOUT="2",
        PYFN_WORKERS="1",
        PYFN_THREADS="1",
        PYFN_WARMUP=warmup,
    ) as server:
        before = int(server.get("/")[1].split()[1])
        status, body = server.get("/?seconds=3600", timeout=120)
        assert status == 504 and b"timeout" in body
        [restart] = server.messages("restarting it")
        assert restart.startswith(f"pyfn worker {before}: its one thread is stuck"), restart
        _wait_until_dead(before)  # killed, an hour before its handler would have returned
        server.wait_for_workers(2)  # the old one's ready line, and its replacement's
        replacement = int(server.ready_workers()[-1].split()[2])
        assert replacement != before
        status, after = server.get("/", timeout=120)
        assert (status, int(after.split()[1])) == (200, replacement)


def _wait_for_file(path: Path, request: concurrent.futures.Future, seconds: float = 60) -> None:  # type: ignore[type-arg]
    """Until a request's handler created ``path`` (it is running), or the request ended."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.02) + 1):
        if path.exists() or request.done() or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert path.exists(), request.result() if request.done() else f"no {path} in {seconds} s"


def _wait_until_dead(pid: int, seconds: float = 30) -> None:
    _until(lambda: not _pids_alive([pid]), seconds)
    assert _pids_alive([pid]) == [], f"process {pid} is still alive"


def _until(condition: Callable[[], object], seconds: float, step: float = 0.1) -> None:
    """Until ``condition`` holds: at most ``seconds``, checked at most seconds / step + 1
    times. The caller asserts what it waited for."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / step) + 1):
        if condition() or time.monotonic() > deadline:
            return
        time.sleep(step)


# --- concurrent requests: threads in each worker ----------------------------------------


def _concurrently(server: Server, paths: list[str], timeout: float = 60) -> list[tuple[int, bytes]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(lambda path: server.get(path, timeout=timeout), paths))


def test_concurrent_requests_run_on_threads(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Ten concurrent requests on two workers run at once, as many as their threads hold:
    each waits until that many are running (a rendezvous), which one thread per worker,
    or requests run one after another, would never reach."""
    with serving(unpacked, framework, tmp_path, "mixed", PYFN_WORKERS="2") as server:
        server.wait_for_workers(2)
        # The settings line names what was used: 4 threads per CPU by default.
        threads = int(str(_settings_entry(server)["threads"]))
        assert threads >= 4
        at_once = min(10, 2 * threads)
        where = tmp_path / "rendezvous"
        where.mkdir()
        answers = _concurrently(server, [f"/?do=meet&of={at_once}&dir={where}&seconds=30"] * 10)
        assert [status for status, _ in answers] == [200] * 10
        assert [body.split()[0] for _, body in answers] == [b"met"] * 10
        assert len({body.split()[1] for _, body in answers}) == 2  # on both workers


def _settings_line(unpacked: Path, framework: Framework, tmp_path: Path, **env: str) -> dict:  # type: ignore[type-arg]
    """The settings index.js logs as it loads (its workers are stopped right after)."""
    import subprocess

    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child_env["PYFN_WORKERS"] = "1"
    child_env.update(env)
    process = subprocess.Popen(
        [framework.node, "-e", "require(process.argv[1])", str(unpacked / "index.js")],
        cwd=unpacked,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(50):
            line = process.stdout.readline()
            if not line:
                break
            entry = json.loads(line)
            if str(entry.get("message", "")).startswith("pyfn settings"):
                return dict(entry)
        raise AssertionError("index.js logged no settings line")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs, rounded up
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
    ],
)
def test_threads_default_to_four_per_cpu_of_the_cgroup(
    unpacked: Path, framework: Framework, tmp_path: Path, files: dict[str, str], cpus: int
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    host = len(os.sched_getaffinity(0))
    settings = _settings_line(unpacked, framework, tmp_path, PYFN_CGROUP_ROOT=str(tmp_path))
    assert settings["threads"] == 4 * min(cpus, host)
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir()
    (unlimited / "cpu.max").write_text("max 100000\n")
    settings = _settings_line(unpacked, framework, tmp_path, PYFN_CGROUP_ROOT=str(unlimited))
    assert settings["threads"] == 4 * host
    settings = _settings_line(
        unpacked, framework, tmp_path, PYFN_CGROUP_ROOT=str(tmp_path), PYFN_THREADS="3"
    )
    assert settings["threads"] == 3


@pytest.mark.parametrize(
    ("files", "cpus", "memory_mib"),
    [
        ({"cpu.max": "400000 100000\n", "memory.max": f"{256 * 2**20}\n"}, 4, 256),  # v2
        ({"cpu.max": "400000 100000\n", "memory.max": f"{2**30}\n"}, 4, 1024),
        ({"cpu.max": "100000 100000\n", "memory.max": f"{2**30}\n"}, 1, 1024),
        ({"cpu.max": "max 100000\n", "memory.max": "max\n"}, None, None),  # no limits
        (  # cgroup v1
            {
                "cpu/cpu.cfs_quota_us": "-1\n",
                "cpu/cpu.cfs_period_us": "100000\n",
                "memory/memory.limit_in_bytes": f"{480 * 2**20}\n",
            },
            None,
            480,
        ),
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None, None),  # v1, none
    ],
)
def test_workers_default_to_what_the_instance_carries(
    unpacked: Path,
    framework: Framework,
    tmp_path: Path,
    files: dict[str, str],
    cpus: int | None,
    memory_mib: int | None,
) -> None:
    """One worker per CPU of the cgroup's quota, as many as its memory limit carries
    (96 MiB for Node and 192 MiB for each busy worker): a 256 MiB instance gets one."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    host_cpus = len(os.sched_getaffinity(0))
    host_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    want_cpus = min(cpus or host_cpus, host_cpus)
    want_mib = min(memory_mib or host_mib, host_mib)
    carried = (want_mib - 96) // 192
    settings = _settings_line(
        unpacked, framework, tmp_path, PYFN_CGROUP_ROOT=str(root), PYFN_WORKERS=""
    )
    assert settings["cpus"] == want_cpus
    assert abs(settings["memory_mib"] - want_mib) <= 1
    assert settings["workers"] == max(1, min(want_cpus, carried)), settings
    assert settings["threads"] == 4 * want_cpus
    if memory_mib == 256:
        assert settings["workers"] == 1
    # PYFN_WORKERS still overrides the default.
    settings = _settings_line(
        unpacked, framework, tmp_path, PYFN_CGROUP_ROOT=str(root), PYFN_WORKERS="3"
    )
    assert settings["workers"] == 3


def test_threads_follow_the_concurrency_the_deploy_recorded(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    for concurrency, workers, threads in ((1, "1", 1), (3, "1", 3), (5, "2", 3)):
        with _manifest_function(unpacked, concurrency=concurrency):
            settings = _settings_line(unpacked, framework, tmp_path, PYFN_WORKERS=workers)
        assert settings["threads"] == threads, (concurrency, settings)


@pytest.mark.parametrize(
    ("workers", "threads", "queue"),
    [("1", "1", 64), ("1", "16", 64), ("1", "17", 68), ("2", "10", 80)],
)
def test_the_queue_defaults_to_four_per_thread_and_at_least_64(
    unpacked: Path, framework: Framework, tmp_path: Path, workers: str, threads: str, queue: int
) -> None:
    """PYFN_QUEUE unset: 4 × workers × threads, at least 64."""
    settings = _settings_line(
        unpacked, framework, tmp_path, PYFN_WORKERS=workers, PYFN_THREADS=threads
    )
    assert (settings["severity"], settings["queue"]) == ("INFO", queue), settings


@pytest.mark.parametrize(
    ("gen", "env", "name", "used", "warned"),
    [
        (2, {"PYFN_WORKERS": "64"}, "workers", 64, None),
        (2, {"PYFN_WORKERS": "65"}, "workers", 64, "is above the maximum: used 64"),
        (2, {"PYFN_WORKERS": "0"}, "workers", None, "is not an integer >= 1"),
        (2, {"PYFN_THREADS": "1000"}, "threads", 1000, None),
        (2, {"PYFN_THREADS": "1001"}, "threads", 1000, "is above the maximum: used 1000"),
        (2, {}, "load_timeout", 300, None),
        (1, {}, "load_timeout", 300, None),
        (2, {"PYFN_LOAD_TIMEOUT": "3600"}, "load_timeout", 3600, None),
        (2, {"PYFN_LOAD_TIMEOUT": "3601"}, "load_timeout", 3600, "is above the maximum: used 3600"),
        (1, {"PYFN_LOAD_TIMEOUT": "541"}, "load_timeout", 540, "is above the maximum: used 540"),
        (2, {"PYFN_LOAD_TIMEOUT": "soon"}, "load_timeout", 300, "is not an integer >= 1"),
    ],
)
def test_settings_bounds_and_defaults(
    unpacked: Path,
    framework: Framework,
    tmp_path: Path,
    gen: int,
    env: dict[str, str],
    name: str,
    used: int | None,
    warned: str | None,
) -> None:
    """PYFN_WORKERS from 1 to 64, PYFN_THREADS at most 1000, PYFN_LOAD_TIMEOUT 300 s by
    default and at most the request timeout's cap (3600 s; 540 s on 1st gen): a value above
    its maximum is the maximum, one that is no integer >= 1 the default, each named in a
    warning; a value within bounds is used as it is."""
    with _manifest_function(unpacked, gen=gen):
        settings = _settings_line(unpacked, framework, tmp_path, **env)
        if used is None:  # the default: what the same instance reads without the setting
            default = _settings_line(unpacked, framework, tmp_path, **dict.fromkeys(env, ""))
            used = int(str(default[name]))
    assert settings[name] == used, settings
    message = str(settings["message"])
    if warned is None:
        assert settings["severity"] == "INFO", settings
    else:
        [variable] = env
        assert settings["severity"] == "WARNING", settings
        assert f"{variable}={json.dumps(env[variable])} {warned}" in message, message


@pytest.mark.parametrize(
    ("gen", "value", "used", "warned"),
    [
        (2, "", 32 * MiB, False),  # the platform's request limit
        (1, "", 10 * MiB, False),
        (2, "1000", 1000, False),
        (1, str(32 * MiB), 10 * MiB, True),  # above the platform's: its own
        (2, "0", 32 * MiB, True),
        (2, "1e6", 32 * MiB, True),
    ],
)
def test_the_body_limit_defaults_to_the_platforms_and_can_only_be_lowered(
    unpacked: Path,
    framework: Framework,
    tmp_path: Path,
    gen: int,
    value: str,
    used: int,
    warned: bool,
) -> None:
    with _manifest_function(unpacked, gen=gen):
        settings = _settings_line(unpacked, framework, tmp_path, PYFN_MAX_BODY=value)
    assert settings["max_body"] == used
    assert (settings["severity"] == "WARNING") == warned, settings
    assert ("PYFN_MAX_BODY" in str(settings["message"])) == warned, settings


def test_faults_under_concurrency_cost_only_their_own_request(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Among twenty concurrent requests, one raising gets 500 and one running past the
    timeout gets 504; the eighteen others, sharing the same workers, get 200."""
    with serving(
        unpacked,
        framework,
        tmp_path,
        "mixed",
        PYFN_WORKERS="2",
        PYFN_THREADS="10",
        PYFN_TIMEOUT="2",
    ) as server:
        server.wait_for_workers(2)
        ready = {line.split()[2] for line in server.ready_workers()}
        paths = ["/?do=raise", "/?do=hang&seconds=30"] + ["/?seconds=0.5"] * 18
        answers = _concurrently(server, paths)
        assert answers[0][0] == 500 and b"own failure" not in answers[0][1]
        assert answers[1][0] == 504
        assert [status for status, _ in answers[2:]] == [200] * 18
        # No worker was restarted for the timeout: the two first ones served them all.
        assert {body.split()[1].decode() for _, body in answers[2:]} <= ready
        assert server.get("/")[0] == 200
        entries = server.wait_for_log(lambda e: "answered 504" in str(e.get("message")))
        assert not any("restarting it" in str(e.get("message")) for e in entries)
        assert len(server.ready_workers()) == 2


def test_a_worker_that_dies_fails_exactly_its_requests_in_flight(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Two requests that wait for a release that never comes, and one that crashes the
    worker once all three run: the three get 500, and the log names them."""
    where = tmp_path / "in-flight"
    where.mkdir()
    with serving(
        unpacked,
        framework,
        tmp_path,
        "mixed",
        PYFN_WORKERS="1",
        PYFN_THREADS="4",
    ) as server:
        first = server.get("/")[1].split()[1]
        paths = [f"/?do=crash&of=3&dir={where}"] + [
            f"/?do=hold&dir={where}&tag={tag}&seconds=60" for tag in ("a", "b")
        ]
        answers = _concurrently(server, paths, timeout=120)
        assert answers == [(500, b"Internal Server Error\n")] * 3
        status, body = server.get("/", timeout=30)
        assert status == 200 and body.split()[1] != first  # the replacement serves
        [died] = server.messages("died")
        assert "GET /?do=crash" in died and died.count("GET /?do=hold") == 2, died


def test_a_worker_that_dies_leaves_the_other_workers_requests_alone(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Two workers: a long request on each, then a crash on the first (the least busy
    worker, oldest first). The first worker's two requests get 500; the second's, 200."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked,
        framework,
        tmp_path,
        "mixed",
        PYFN_WORKERS="2",
        PYFN_THREADS="2",
    ) as server:
        server.wait_for_workers(2)
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            first = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=first&seconds=60", 120)
            _wait_for_file(gate / "first", first)  # running on the first worker
            second = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=second&seconds=60", 120)
            _wait_for_file(gate / "second", second)  # and this one on the second
            crashed = pool.submit(server.get, "/?do=crash", 120).result()
            (gate / "release").touch()  # only once the crash was answered
            answers = [first.result(), second.result(), crashed]
        assert [status for status, _ in answers] == [500, 200, 500]
        assert answers[1][1].split()[0] == b"held"
        survivor = answers[1][1].split()[1].decode()
        [died] = server.messages("died")
        assert survivor not in died
        assert died.count("GET /?do=hold") == 1 and "tag=first" in died
        assert "GET /?do=crash" in died


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_beyond_the_queue_requests_get_503_with_retry_after(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """Six requests that each hold their thread until released: one runs, two wait in
    the queue, three are answered 503 at once, while the others are still held."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked,
        framework,
        tmp_path,
        "mixed",
        PYFN_WORKERS="1",
        PYFN_THREADS="1",
        PYFN_QUEUE="2",
        PYFN_WARMUP=warmup,
    ) as server:
        server.get("/")
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            futures = [
                pool.submit(
                    server.request, "GET", f"/?do=hold&dir={gate}&seconds=120", None, None, 150
                )
                for _ in range(6)
            ]
            shed: list[concurrent.futures.Future] = []  # type: ignore[type-arg]
            for _ in range(600):  # bounded: 60 s
                shed = [f for f in futures if f.done()]
                if len(shed) >= 3 and os.listdir(gate):
                    break
                time.sleep(0.1)
            # three refused, while one runs (its file) and two wait behind it in the queue
            assert [f.result()[0] for f in shed] == [503] * 3
            assert len(os.listdir(gate)) == 1
            (gate / "release").touch()
            results = [f.result() for f in futures]
        statuses = sorted(r[0] for r in results)
        assert statuses == [200, 200, 200, 503, 503, 503]  # 1 running + 2 queued
        for status, headers, body, _ in results:
            if status == 503:
                assert headers.get("Retry-After") == "1" and b"retry" in body


def test_beyond_the_default_queue_requests_get_503_at_once(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """PYFN_QUEUE unset, one worker with one thread: the queue holds 64 (its floor). With
    one request running and 64 waiting, every further request is answered 503 with
    `Retry-After: 1` at once, never queued, while the others still wait; then all 65 are
    served."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked, framework, tmp_path, "mixed", PYFN_WORKERS="1", PYFN_THREADS="1"
    ) as server:
        assert _settings_entry(server)["queue"] == 64
        server.get("/")
        with concurrent.futures.ThreadPoolExecutor(max_workers=65) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=held&seconds=120", 150)
            _wait_for_file(gate / "held", held)  # the one thread is taken
            waiting = [pool.submit(server.get, f"/?n={n}", 150) for n in range(64)]
            server.wait_for_event(lambda e: e["event"] == "queued" and e["waiting"] == 64)
            for n in range(3):
                status, headers, body, _ = server.request("GET", f"/?over={n}", timeout=10)
                assert (status, headers.get("Retry-After")) == (503, "1"), (n, body)
                assert b"retry" in body
            assert not held.done() and not any(f.done() for f in waiting)
            (gate / "release").touch()
            assert held.result()[0] == 200
            answers = [f.result() for f in waiting]
            assert [(status, body.split()[0]) for status, body in answers] == [(200, b"ok")] * 64
        over = [e for e in server.events() if str(e["url"]).startswith("/?over=")]
        assert [(e["event"], e["status"]) for e in over] == [("answered", 503)] * 3


def test_the_request_timeout_recorded_by_deploy_applies(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    # what pyfn deploy writes for --function-timeout 2s
    with (
        _manifest_function(unpacked, timeout=2),
        serving(unpacked, framework, tmp_path, "slow", PYFN_WORKERS="1") as server,
    ):
        _times_out_after_two_seconds(server)


@FAULTS_WITH_AND_WITHOUT_WARMUP
@pytest.mark.parametrize("how", ["exit", "segfault", "oom-kill"])
def test_worker_death_is_500_and_next_request_succeeds(
    unpacked: Path, framework: Framework, tmp_path: Path, how: str, warmup: str
) -> None:
    """os._exit, a segfault, and SIGKILL as the kernel's out-of-memory killer sends it."""
    with serving(
        unpacked, framework, tmp_path, "crash", PYFN_WORKERS="1", PYFN_WARMUP=warmup
    ) as server:
        first = server.get("/?how=ok", timeout=30)[1]
        status, body = server.get(f"/?how={how}", timeout=30)
        assert (status, body) == (500, b"Internal Server Error\n")
        status, second = server.get("/?how=ok", timeout=30)
        assert status == 200 and second != first  # served by the replacement worker
        [died] = server.messages("died")
        assert f"GET /?how={how}" in died, died


def test_worker_killed_between_requests_is_replaced(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "pid", PYFN_WORKERS="1") as server:
        first = int(server.get("/")[1])
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        for _ in range(300):  # until the replacement serves: bounded, 30 s
            status, body = server.get("/", timeout=30)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200 and int(body) != first


def test_prints_reach_the_log_not_the_response(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "chatty") as server:
        for _ in range(3):
            assert server.get("/") == (200, b"still fine\n")
        entries = server.wait_for_log(lambda e: e.get("message") == "written to fd 1")
        by_message = {str(e.get("message")): e for e in entries}
        assert by_message["printed to stdout"]["severity"] == "INFO"
        assert by_message["printed to stderr"]["severity"] == "ERROR"
        assert "written to fd 1" in by_message


# --- concurrency and process hygiene ----------------------------------------------


def test_queueing_with_eight_clients_and_two_workers(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """One request holds a thread until the test releases it; seven more are all answered
    meanwhile: none is stuck behind it."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(unpacked, framework, tmp_path, "mixed", PYFN_WORKERS="2") as server:
        server.get("/")
        server.wait_for_workers(2)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=held&seconds=120", 150)
            _wait_for_file(gate / "held", held)  # it runs on a worker now
            fast = [pool.submit(server.get, "/?seconds=0.2", 60) for _ in range(7)]
            results = [f.result() for f in fast]
            assert not held.done()  # the seven were answered while it still held its thread
            (gate / "release").touch()
            assert held.result()[0] == 200 and held.result()[1].split()[0] == b"held"
        assert [status for status, _ in results] == [200] * 7


def test_stopping_node_takes_every_worker(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "pid", PYFN_WORKERS="2") as server:
        server.get("/")
        server.wait_for_workers(2)
        pids = _worker_pids(server)
        assert len(pids) == 2
        assert pids and _pids_alive(pids) == pids
        os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        _until(lambda: not _pids_alive(pids), 10)
        assert _pids_alive(pids) == []


def test_logs_are_json_lines_with_severity(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "boom") as server:
        server.get("/")
        entries = server.wait_for_log(lambda e: "Traceback" in str(e.get("message")))
        assert entries and all("severity" in e and "message" in e for e in entries)


# --- script mode --------------------------------------------------------------------


def test_script_mode_headers(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with serving(
        unpacked,
        framework,
        tmp_path,
        "handler",
        "script",
        script="reflection.py",
        stdin="headers",
    ) as server:
        status, _, body, _ = server.request("GET", "/", headers={"X-Seed": "reflection"})
        assert status == 200
        assert json.loads(body)["x-seed"] == "reflection"
        assert body.startswith(b"{\n  ")  # indented as the script prints it


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [("body", {"a": 1}), ("query", {"q": "1"})],
)
def test_script_mode_inputs(
    unpacked: Path, framework: Framework, tmp_path: Path, stdin: str, expected: object
) -> None:
    with serving(
        unpacked, framework, tmp_path, "handler", "script", script="reflection.py", stdin=stdin
    ) as server:
        status, _, body, _ = server.request(
            "POST", "/?q=1", body=b'{"a": 1}', headers={"Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body) == expected


def test_script_failure_is_500(unpacked: Path, framework: Framework, tmp_path: Path) -> None:
    with serving(
        unpacked, framework, tmp_path, "handler", "script", script="failing.py", stdin="body"
    ) as server:
        status, body = server.get("/")
        assert status == 500 and b"partial output" not in body
        entries = server.wait_for_log(lambda e: e.get("message") == "went wrong")
        assert any(e.get("message") == "went wrong" for e in entries)


# --- pyfn serve, the command ---------------------------------------------------------


def _processes_under(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
    return _pids_alive(found)


def _refuses_within(port: int, seconds: float) -> bool:
    """Whether a connection to ``port`` is refused before ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.1) + 1):
        if time.monotonic() > deadline:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _serve_cache(tmp_path: Path) -> Path:
    """A cache of the test's own for pyfn serve (its unpacked copies land in there, so
    the processes that run from them are found under ``tmp_path``), sharing the tests'
    installed framework."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "node-functions-framework").symlink_to(TEST_CACHE / "node-functions-framework")
    return cache


def _assert_kept_for_reuse(tmp_path: Path, bundle: Path) -> None:
    """The unpacked copy stays in the cache, complete, keyed by the bundle's SHA-256."""
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    served = tmp_path / "cache" / "served"
    assert [p.name for p in served.iterdir() if p.is_dir()] == [digest]
    assert (served / digest / ".complete").is_file()
    assert (served / digest / "bundle" / "index.js").is_file()


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_pyfn_serve_prints_the_url_and_stops_cleanly(
    shim_bundle: Path, framework: Framework, tmp_path: Path, stop_with: signal.Signals
) -> None:
    import subprocess

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    env.update(PYFN_CACHE_DIR=str(_serve_cache(tmp_path)), TMPDIR=str(tmp_path))
    process = pyfn_serve(shim_bundle, port, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert process.stdout is not None
        # The URL line, after any warning (a local Node.js that is not the deploy's).
        shown: list[str] = []
        while len(shown) < 5 and not any(f"http://127.0.0.1:{port}/" in x for x in shown):
            shown.append(process.stdout.readline().decode())
        assert f"http://127.0.0.1:{port}/" in shown[-1], shown
        server = Server(port, tmp_path / "unused.log", process)
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(int(START_TIMEOUT / 0.2) + 1):
            try:
                status, body = server.get("/?name=serve", timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        else:
            raise AssertionError("pyfn serve did not answer")
        assert (status, body) == (200, b"Hello, serve!\n")
        assert _processes_under(str(tmp_path)), "workers run from the unpacked bundle"
        process.send_signal(stop_with)
        assert process.wait(timeout=20) == 0
        _until(lambda: not _processes_under(str(tmp_path)), 10)
        assert _processes_under(str(tmp_path)) == []  # no orphans
        assert not list(tmp_path.glob("pyfn-serve-*"))  # nothing unpacked elsewhere
        _assert_kept_for_reuse(tmp_path, shim_bundle)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_pyfn_serve_killed_with_its_process_group_leaves_nothing(
    shim_bundle: Path, framework: Framework, tmp_path: Path
) -> None:
    """SIGKILL to pyfn serve's process group (as a conformance client stops it): Node,
    which runs in a group of its own, goes too, with its workers and the unpacked bundle."""
    import subprocess

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    env.update(PYFN_CACHE_DIR=str(_serve_cache(tmp_path)), TMPDIR=str(tmp_path))
    process = pyfn_serve(
        shim_bundle,
        port,
        env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        server = Server(port, tmp_path / "unused.log", process)
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(int(START_TIMEOUT / 0.2) + 1):
            try:
                assert server.get("/?name=kill", timeout=30) == (200, b"Hello, kill!\n")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        else:
            raise AssertionError("pyfn serve did not answer")
        assert _processes_under(str(tmp_path)), "node and its workers run"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        _until(lambda: not _processes_under(str(tmp_path)), 20)
        assert _processes_under(str(tmp_path)) == []  # no orphan left
        # A process killed has released its memory (an empty cmdline) a moment before its
        # sockets: the port must refuse soon after, not necessarily at once.
        assert _refuses_within(port, seconds=20), "an orphan still listens on the port"
        assert not list(tmp_path.glob("pyfn-serve-*"))  # nothing unpacked elsewhere
        _assert_kept_for_reuse(tmp_path, shim_bundle)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in _processes_under(str(tmp_path)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- hostile functions: user code costs at most its own worker ----------------------


def _node_cpu(server: Server) -> float:
    """Seconds of CPU that Node (the framework's process, the shim's one thread) has used."""
    pid = server.process.pid  # type: ignore[attr-defined]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Two clock ticks: what /proc's CPU times may be off by, read before and after.
_TICKS = 2 / os.sysconf("SC_CLK_TCK")


def _node_cpu_for(server: Server, work: Callable[[], object]) -> float:
    """Seconds of Node's CPU that `work` cost."""
    before = _node_cpu(server)
    work()
    return _node_cpu(server) - before


def _node_alive(server: Server) -> bool:
    return server.process.poll() is None  # type: ignore[attr-defined]


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_a_malformed_frame_costs_only_its_worker_and_request(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """13 bytes with a non-JSON header, written while another worker serves a request."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="2", PYFN_WARMUP=warmup
    ) as server:
        server.get("/?do=pid", timeout=60)
        server.wait_for_workers(2)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=held&seconds=60", 120)
            _wait_for_file(gate / "held", held)  # on one worker: the frame comes from the other
            status, body = server.get("/?do=frame&kind=garbage&seconds=1", timeout=60)
            assert status == 500 and body == b"Internal Server Error\n"
            (gate / "release").touch()
            assert held.result() == (200, b"held\n")  # the other worker's request is intact
        assert _node_alive(server)
        assert all(server.get("/?do=pid", timeout=30)[0] == 200 for _ in range(4))
        [broke] = server.messages("broke the shim's protocol")
        assert "a frame header that is not a JSON object" in broke, broke


@pytest.mark.parametrize(
    "kinds",
    [
        ["array", "null", "other-id", "bad-shape", "bad-headers"],
        ["long-garbage", "huge-body", "huge-header", "ready", "fatal"],
    ],
)
def test_frames_of_the_wrong_shape_or_size_kill_the_worker_not_the_request(
    unpacked: Path, framework: Framework, tmp_path: Path, kinds: list[str]
) -> None:
    """Valid JSON of the wrong shape, a frame for another request, absurd lengths, an
    unasked-for 'ready': the request is answered 500 at once, the worker is replaced."""
    with serving(
        unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1", PYFN_TIMEOUT="60"
    ) as server:
        pid = server.get("/?do=pid", timeout=60)[1]
        for number, kind in enumerate(kinds, 1):
            # 500, not the 504 the 60 s request timeout would give: the frame was refused
            status, body = server.get(f"/?do=frame&kind={kind}&seconds=0.5", timeout=120)
            assert (status, body) == (500, b"Internal Server Error\n"), kind
            broke = server.messages("broke the shim's protocol")
            assert len(broke) == number and broke[-1].startswith(f"pyfn worker {int(pid)} "), kind
            status, new_pid = server.get("/?do=pid", timeout=30)
            assert status == 200 and new_pid != pid, kind  # served by a replacement
            pid = new_pid
        assert _node_alive(server)


def test_protocol_pipes_are_out_of_reach_of_user_code_and_its_children(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1") as server:
        status, body = server.get("/?do=fds", timeout=60)
        assert status == 200, body
        seen = json.loads(body)
        assert 3 not in seen["own"] and 4 not in seen["own"]  # moved away from 3 and 4
        assert seen["child"] == []  # a child (exec) inherits none of them
        assert seen["forked"] == []  # a forked child (no exec) has them closed
        assert seen["shell"] == ""  # `echo x >&3` fails: fd 3 is closed
        assert server.get("/?do=pid")[0] == 200


def test_a_32_mb_response_costs_node_what_eight_4_mb_ones_cost(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Reading a response is linear in its size: one 32 MiB response costs Node's thread no
    more CPU than eight of 4 MiB (a reader that joins its chunks as they come costs 8 times
    as much; measured against the machine itself, not against a number of seconds)."""
    with serving(unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1") as server:
        server.get("/?do=pid", timeout=60)
        server.get(f"/?do=big&bytes={MiB}")  # Node's own code warmed, as it is for both

        def fetch(size: int) -> None:
            status, _, body, _ = server.request("GET", f"/?do=big&bytes={size}", timeout=120)
            assert status == 200 and len(body) == size and body.count(b"x") == size

        pieces = _node_cpu_for(server, lambda: [fetch(4 * MiB) for _ in range(8)])
        whole = _node_cpu_for(server, lambda: fetch(32 * MiB))
        # linear: about equal (0.1 s each here); the quadratic reader: 5.7 s against 0.7 s
        assert whole < 3 * pieces + _TICKS, (whole, pieces)


TOO_LARGE = re.compile(
    r"response too large: (\d+) bytes of body, (\d+) of headers \(limits: (\d+), (\d+)\)"
)


@FAULTS_WITH_AND_WITHOUT_WARMUP
@pytest.mark.parametrize("part", ["body", "headers"])
def test_responses_above_the_limit_are_500_and_the_worker_stays(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str, part: str
) -> None:
    """A body over 64 MiB, or headers over 1 MiB (10,000 of 100-odd bytes each)."""
    path = {"body": f"/?do=big&bytes={64 * MiB + 1}", "headers": "/?do=many-headers&count=10000"}
    with serving(
        unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1", PYFN_WARMUP=warmup
    ) as server:
        pid = server.get("/?do=pid", timeout=60)[1]
        status, body = server.get(path[part], timeout=60)
        assert (status, body) == (500, b"Internal Server Error\n")
        assert server.get("/?do=pid") == (200, pid)
        [too_large] = server.messages("too large")
        found = TOO_LARGE.fullmatch(too_large)
        assert found, too_large
        body_bytes, header_bytes, body_limit, header_limit = (int(n) for n in found.groups())
        assert (body_limit, header_limit) == (64 * MiB, MiB)
        if part == "body":
            assert body_bytes == 64 * MiB + 1 and header_bytes < MiB, too_large
        else:
            assert body_bytes == len(b"many") and header_bytes > MiB, too_large


def test_header_names_with_underscores_are_dropped(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """WSGI maps `-` and `_` alike: `X_Goog_...` would append to the platform's header."""
    with serving(unpacked, framework, tmp_path, "echo") as server:
        status, _, body, _ = server.request(
            "POST",
            "/",
            body=b'{"a": 1}',
            headers={
                "X-Goog-Authenticated-User-Email": "accounts.google.com:alice@example.com",
                "X-Goog_Authenticated_User_Email": "evil@example.com",
                "Content-Type": "application/json",
                "Content_Type": "text/plain",
                "X_Only_Underscores": "dropped",
            },
        )
        seen = json.loads(body)
        assert status == 200
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert headers["x-goog-authenticated-user-email"] == "accounts.google.com:alice@example.com"
        assert headers["content-type"] == "application/json" and seen["json"] == {"a": 1}
        assert "x-only-underscores" not in headers
        assert "evil" not in body.decode()
        # a second Content-Type does not replace the first, which Node's body parser used
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
                b'{"a": 2}'
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        seen = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert seen["json"] == {"a": 2}, seen["headers"]


def _settings_entry(server: Server) -> dict[str, object]:
    entries = server.wait_for_log(lambda e: str(e.get("message", "")).startswith("pyfn settings"))
    found = [e for e in entries if str(e.get("message", "")).startswith("pyfn settings")]
    assert len(found) == 1, found
    return found[0]


def test_fractional_worker_count_is_refused_and_requests_are_served(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="0.5") as server:
        assert server.get("/?do=called", timeout=30) == (200, b"[]")
        entry = _settings_entry(server)
        assert entry["severity"] == "WARNING" and "PYFN_WORKERS" in str(entry["message"])
        assert isinstance(entry["workers"], int) and entry["workers"] >= 1


@pytest.mark.parametrize(
    ("gen", "value", "used"),
    [(2, "99999999999", 3600), (1, "600", 540), (2, "-5", 60), (2, "abc", 60), (2, "1.5", 60)],
)
def test_request_timeout_is_validated_and_capped_at_the_platform_maximum(
    unpacked: Path, framework: Framework, tmp_path: Path, gen: int, value: str, used: int
) -> None:
    with (
        _manifest_function(unpacked, gen=gen),
        serving(
            unpacked, framework, tmp_path, "hostile", PYFN_TIMEOUT=value, PYFN_WORKERS="1"
        ) as server,
    ):
        # above Node's timer maximum, the timer fired at once: every request was a 504
        assert server.get("/?do=sleep&seconds=0.2", timeout=30) == (200, b"slept\n")
        entry = _settings_entry(server)
        assert entry["severity"] == "WARNING" and "PYFN_TIMEOUT" in str(entry["message"])
        assert entry["timeout"] == used


def test_valid_settings_are_logged_once(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        PYFN_TIMEOUT="30",
        PYFN_LOAD_TIMEOUT="40",
    ) as server:
        assert server.get("/?do=pid", timeout=30)[0] == 200
        entry = _settings_entry(server)
        assert entry["severity"] == "INFO"
        assert (entry["workers"], entry["timeout"], entry["load_timeout"]) == (1, 30, 40)


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_a_function_that_cannot_be_loaded_is_500_and_retried_with_backoff(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """main.py has no such entry point: the waiting request gets a 500 (not the 504 of
    its timeout), and workers are started again, each after a longer pause than the
    last, each a new process that fails to load anew."""
    with serving(
        unpacked,
        framework,
        tmp_path,
        "no_such_function",
        PYFN_WORKERS="1",
        PYFN_TIMEOUT="30",
        PYFN_WARMUP=warmup,
    ) as server:
        status, body = server.get("/", timeout=120)
        assert (status, body) == (500, b"Internal Server Error: the function failed to load\n")
        # No request waits now: the retries go on by themselves, each pause announced.
        entries = server.wait_for_log(lambda e: e.get("retry_ms") == 2000, 120)
        entries = entries[: 1 + next(i for i, e in enumerate(entries) if e.get("retry_ms") == 2000)]
        steps = [
            ("retry", e["retry_ms"])
            if "retry_ms" in e
            else ("failed", int(str(e["message"]).split()[2]))
            for e in entries
            if "retry_ms" in e or "exited while loading the function" in str(e.get("message"))
        ]
        failed = [pid for kind, pid in steps if kind == "failed"]
        # A worker fails, a pause twice as long as the last, a new worker fails...
        assert steps == [
            step
            for pid, pause in zip(failed, (250, 500, 1000, 2000))
            for step in (("failed", pid), ("retry", pause))
        ]
        assert len(set(failed)) == 4
        for pid in failed:  # each one's own traceback: the function is not there
            why = server.wait_for_log(
                lambda e, pid=pid: (
                    e.get("worker") == pid
                    and str(e.get("message")).startswith("cannot load the function")
                )
            )
            [message] = [
                str(e["message"])
                for e in why
                if e.get("worker") == pid and e.get("severity") == "CRITICAL"
            ]
            assert "no_such_function" in message, message


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_a_worker_whose_import_hangs_is_killed_and_replaced(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """The load timeout (3 s) kills the hung worker and answers the waiting request 500,
    long before its request timeout (60 s) would have answered 504."""
    marker = tmp_path / "hung-once"
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        PYFN_LOAD_TIMEOUT="3",
        PYFN_TIMEOUT="60",
        SHIM_TEST_HANG_IMPORT=str(marker),
        PYFN_WARMUP=warmup,
    ) as server:
        status, body = server.get("/?do=pid", timeout=120)  # waits for the hung worker's end
        assert (status, body) == (500, b"Internal Server Error: the function failed to load\n")
        assert marker.exists()
        [killed] = server.messages("did not load")
        assert killed.endswith("within 3 s (PYFN_LOAD_TIMEOUT); killing it"), killed
        _wait_until_dead(int(killed.split()[2]))
        assert server.get("/?do=called", timeout=60) == (200, b"[]")  # its replacement serves


def test_the_request_timeout_counts_from_arrival_not_from_dispatch(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    marker = tmp_path / "hung-once"
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        PYFN_LOAD_TIMEOUT="120",
        PYFN_TIMEOUT="2",
        SHIM_TEST_HANG_IMPORT=str(marker),
    ) as server:
        status, body = server.get("/?do=pid", timeout=120)  # queued behind a hung import
        assert status == 504 and b"timeout" in body
        # Answered by its own timer while it still waited for a worker, never sent to one:
        # the timeout ran from its arrival, not from a dispatch that never came.
        [timed_out] = server.messages("answered 504")
        assert timed_out == "pyfn: GET /?do=pid ran past 2 s waiting for a worker; answered 504"
        assert marker.exists() and not [m for m in _messages(server) if "did not load" in m]


@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_a_worker_dying_while_it_loads_leaves_the_queue_to_the_healthy_one(
    unpacked: Path, framework: Framework, tmp_path: Path, warmup: str
) -> None:
    """One thread per worker: a request waits in the queue for the one healthy worker,
    held busy until every other worker has died while loading; it is then served, not
    answered 500."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="2",
        PYFN_THREADS="1",
        SHIM_TEST_DIE_LOADING=str(tmp_path / "first-loaded"),
        SHIM_TEST_DIE_WHEN=str(tmp_path / "die-now"),
        PYFN_WARMUP=warmup,
    ) as server:
        server.wait_for_workers(1)  # the first is ready; the second dies when told to
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=held&seconds=120", 150)
            _wait_for_file(gate / "held", held)
            queued = pool.submit(server.get, "/?do=called", 150)  # waits for the busy worker
            waiting = server.wait_for_event(
                lambda e: e["event"] == "queued" and e["url"] == "/?do=called"
            )
            (tmp_path / "die-now").touch()
            server.messages("exited while loading", 120)  # the loading worker died meanwhile
            assert not queued.done()
            # still in the queue: neither answered nor sent to a worker yet
            assert [e["event"] for e in server.events() if e["id"] == waiting["id"]] == ["queued"]
            (gate / "release").touch()
            assert held.result() == (200, b"held\n")
            assert queued.result() == (200, b"[]")


@FAULTS_WITH_AND_WITHOUT_WARMUP
@pytest.mark.parametrize("reset", [False, True])
def test_a_client_that_disconnects_cancels_its_queued_request(
    unpacked: Path, framework: Framework, tmp_path: Path, reset: bool, warmup: str
) -> None:
    # One worker with one thread: the second request waits in the queue.
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        PYFN_THREADS="1",
        PYFN_WARMUP=warmup,
    ) as server:
        server.get("/?do=pid", timeout=60)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}&tag=held&seconds=60", 120)
            _wait_for_file(gate / "held", held)  # the worker's one thread is taken
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
            sock.sendall(b"GET /?do=record&tag=gone HTTP/1.1\r\nHost: x\r\n\r\n")
            gone = server.wait_for_event(
                lambda e: e["event"] == "queued" and e["url"] == "/?do=record&tag=gone"
            )
            sock.close()  # while the worker is still held
            withdrawn = server.wait_for_event(
                lambda e: e["event"] == "withdrawn" and e["id"] == gone["id"]
            )
            assert withdrawn["was_queued"] is True
            (gate / "release").touch()
            assert held.result() == (200, b"held\n")
        # after the held request, in the one thread's order: a queued "gone" would run first
        assert server.get("/?do=called") == (200, b"[]")
        assert [e["event"] for e in server.events() if e["id"] == gone["id"]] == [
            "queued",
            "client_gone",
            "withdrawn",
        ]
        # a client that goes while its request runs: the answer is dropped, nothing breaks
        pid = server.get("/?do=pid")[1]
        late = tmp_path / "late"
        late.mkdir()
        path = f"/?do=hold&dir={late}&tag=running&seconds=60"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            running = server.wait_for_event(lambda e: e["event"] == "sent" and e["url"] == path)
        left = server.wait_for_event(
            lambda e: e["event"] == "client_gone" and e["id"] == running["id"]
        )
        assert left["running"] is True
        (late / "release").touch()  # its answer comes only now, to a client gone
        answered = server.wait_for_event(
            lambda e: e["event"] == "answered" and e["id"] == running["id"]
        )
        assert answered["status"] == 200
        assert _node_alive(server)
        assert server.get("/?do=pid") == (200, pid)


@pytest.mark.parametrize(
    "path",
    [
        "/?do=status&code=99",
        "/?do=status&code=100",
        "/?do=status&code=600",
        "/?do=status&code=1000",
        "/?do=bad-header",
        "/?do=bad-header&value=%E2%82%AC",
    ],
)
@FAULTS_WITH_AND_WITHOUT_WARMUP
def test_an_invalid_response_is_a_500_without_the_functions_headers(
    unpacked: Path, framework: Framework, tmp_path: Path, path: str, warmup: str
) -> None:
    with serving(
        unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1", PYFN_WARMUP=warmup
    ) as server:
        status, _, body, raw = server.request("GET", path, timeout=10)
        assert (status, body) == (500, b"Internal Server Error\n")
        names = {k.lower() for k, _ in raw}
        assert "set-cookie" not in names and "x-from-function" not in names and "x-bad" not in names
        assert server.get("/?do=called")[0] == 200


def test_a_log_flood_without_newlines_costs_node_what_its_pieces_cost(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """One 16 MiB line costs Node's thread no more CPU than eight of 2 MiB, and reaches the
    log whole, in entries of 64 Ki characters at most (Cloud Logging takes 256 KB)."""
    with serving(unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1") as server:
        # a JSON line nested too deep for JSON.stringify is logged, as text
        assert server.get("/?do=deep-log", timeout=60) == (200, b"logged\n")

        def flood_sizes() -> list[int]:
            return [len(str(e["message"])) for e in server.logs() if str(e["message"])[:3] == "yyy"]

        def flood(size: int) -> None:
            logged = sum(flood_sizes())
            assert server.get(f"/?do=flood&bytes={size}", timeout=60) == (200, b"flooded\n")
            deadline = time.monotonic() + 60
            for _ in range(600):  # until all of it is in the log: bounded, 60 s
                if sum(flood_sizes()) >= logged + size or time.monotonic() > deadline:
                    break
                time.sleep(0.1)

        flood(MiB)  # Node's own code warmed, as it is for both
        pieces = _node_cpu_for(server, lambda: [flood(2 * MiB) for _ in range(8)])
        whole = _node_cpu_for(server, lambda: flood(16 * MiB))
        assert whole < 3 * pieces + _TICKS, (whole, pieces)
        assert server.get("/?do=called", timeout=30)[0] == 200
        assert _node_alive(server)
        sizes = flood_sizes()
        assert sizes and max(sizes) <= 64 * 1024 and sum(sizes) == 33 * MiB, sizes[:5]
        assert any(
            str(e["message"]).startswith('{"severity": "INFO", "nested"') for e in server.logs()
        )


@FAULTS_WITH_AND_WITHOUT_WARMUP
@pytest.mark.parametrize("how", ["shell", "killpg"])
def test_killing_its_process_group_costs_only_the_worker(
    unpacked: Path, framework: Framework, tmp_path: Path, how: str, warmup: str
) -> None:
    """A script's `kill 0` (or os.killpg) reaches the worker's group, not Node's."""
    with serving(
        unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1", PYFN_WARMUP=warmup
    ) as server:
        pid = server.get("/?do=pid", timeout=60)[1]
        # the worker died with the request in flight: 500, as for any worker's death
        assert server.get(f"/?do=kill-group&how={how}", timeout=30) == (
            500,
            b"Internal Server Error\n",
        )
        assert _node_alive(server)
        status, new_pid = server.get("/?do=pid", timeout=30)
        assert status == 200 and new_pid != pid


def test_a_killed_worker_takes_the_processes_it_started(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    record = tmp_path / "child.pid"
    # One thread: a request past its timeout restarts the worker (see the threads' tests).
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        PYFN_TIMEOUT="2",
        PYFN_THREADS="1",
    ) as server:
        server.get("/?do=pid", timeout=60)
        status, _ = server.get(f"/?do=spawn-and-hang&file={record}", timeout=30)
        assert status == 504
        child = int(record.read_text())
        _until(lambda: not _pids_alive([child]), 10)
        assert _pids_alive([child]) == []


def test_the_out_of_memory_killer_picks_a_worker_before_node(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    with serving(unpacked, framework, tmp_path, "hostile", PYFN_WORKERS="1") as server:
        status, body = server.get("/?do=oom-score", timeout=60)
        assert status == 200
        pid = server.process.pid  # type: ignore[attr-defined]
        node = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
        assert int(body) == 1000 and node < 1000


def test_a_worker_still_loading_dies_with_node(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Its import hangs: it has not answered a request, yet it does not outlive Node."""
    marker = tmp_path / "hung-once"
    with serving(
        unpacked,
        framework,
        tmp_path,
        "hostile",
        PYFN_WORKERS="1",
        SHIM_TEST_HANG_IMPORT=str(marker),
    ) as server:
        _until(lambda: marker.exists(), 30)
        assert marker.exists()
        loading = _processes_under(str(unpacked / "pyfn" / "worker.py"))
        assert len(loading) == 1
        os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        _until(lambda: not _pids_alive(loading), 10)
        assert _pids_alive(loading) == []


def test_workers_serve_when_node_is_pid_1(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """In a container Node may be pid 1: a worker whose parent is pid 1 is not an orphan.
    A worker judges whether it is one before it reads its first request (as it starts,
    and again once it is ready if it could not ask to die with Node at first): a worker
    that took itself for an orphan never answers, so the answers are the event."""
    import subprocess

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    env.update(PYFN_WORKERS="1", PYFN_WARMUP="0", PYFN_SERVE_HOST="127.0.0.1")
    log = tmp_path / "pid1.log"
    with (
        _manifest_function(unpacked, entry_point="hostile", signature="http"),
        log.open("wb") as out,
    ):
        process = subprocess.Popen(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "--pid",
                "--fork",
                "--kill-child",
                framework.node,
                str(framework.launcher),
                "--target=hostile",
                f"--source={unpacked}",
                f"--port={port}",
                "--signature-type=http",
            ],
            cwd=unpacked,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            server = Server(port, log, process)
            deadline = time.monotonic() + START_TIMEOUT
            for _ in range(int(START_TIMEOUT / 0.2) + 1):
                try:
                    first = server.get("/?do=pid", timeout=30)
                    break
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            else:
                raise AssertionError(log.read_text())
            assert first[0] == 200, log.read_text()[-2000:]
            assert [server.get("/?do=pid", timeout=30) for _ in range(3)] == [first] * 3
            # one worker, that stayed: none exited while loading, none died and was replaced
            assert len(server.ready_workers()) == 1, log.read_text()[-2000:]
            assert not [m for m in _messages(server) if "exited" in m or "died" in m]
        finally:
            serve.stop(process)


def test_a_script_killing_its_process_group_fails_only_its_own_request(
    unpacked: Path, framework: Framework, tmp_path: Path
) -> None:
    """Each request's script runs in a process group of its own: a script that kills its
    group (`kill 0`, os.killpg) kills itself and what it started, nothing else. Its request
    gets the 500 of a script that failed, nothing of its output, and the log says how it
    ended; another request's script, running meanwhile, answers 200, and Node serves on."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with serving(
        unpacked, framework, tmp_path, "handler", "script", script="killgroup.py", stdin="query"
    ) as server:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(server.get, f"/?do=hold&dir={gate}", 60)
            _wait_for_file(gate / "held", held)  # another request's script runs
            assert server.get("/?do=kill", timeout=30) == (500, b"Internal Server Error\n")
            (gate / "release").touch()
            assert held.result() == (200, b"held\n")
        assert _node_alive(server)
        assert server.get("/?do=serve", timeout=30) == (200, b"served\n")
        [ended] = server.messages("pyfn: script killgroup.py")
        assert ended == "pyfn: script killgroup.py exited with SIGKILL", ended
