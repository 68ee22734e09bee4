"""What is deployed runs the Node.js Functions Framework that was tested.

A bundle declares the framework (package.json) with the lockfile of its whole tree,
``npm ci`` in the unpacked bundle installs exactly that, ``pyfn serve`` runs the
version the bundle declares, and the framework behaves as the shim relies on. npm
runs offline from tests/.npm-cache, filled by tests/prepare.py: nothing leaves
loopback.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import select
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import REPO, Served, build_args, hermetic_env, pyfn
from support.servers import free_port, pyfn_serve

from pyfn_action.bundle.nodepackage import PACKAGE, NodePackage, pinned
from pyfn_action.flows import nodeframework, serve, served

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "functions" / "shim"
CONTRACT = Path(__file__).parent / "functions" / "node-contract"
TEST_CACHE = REPO / "tests" / ".cache"
NPM_CACHE = REPO / "tests" / ".npm-cache"
OTHER = "5.0.2"  # tests/prepare.py puts it in npm's cache
START_TIMEOUT = 60.0


def npm_env(cache: Path) -> dict[str, str]:
    """pyfn's environment with npm offline, reading the cache tests/prepare.py filled."""
    if not NPM_CACHE.is_dir():
        pytest.fail("tests/.npm-cache is missing: run `python tests/prepare.py` (CI does)")
    return hermetic_env(cache, npm_config_cache=str(NPM_CACHE), npm_config_offline="true")


def build(out: Path, served_pypy: Served, index_url: str, cache: Path, *flags: str) -> Path:
    args = build_args(APP, out, served_pypy, index_url, "--entry-point", "hello", *flags)
    result = pyfn(args, npm_env(cache))
    assert result.code == 0, result.stderr
    return out / "bundle.zip"


def declared(bundle: Path) -> tuple[dict[str, object], bytes, dict[str, object], object]:
    with zipfile.ZipFile(bundle) as zf:
        package_json = json.loads(zf.read("package.json"))
        lock = zf.read("package-lock.json")
        manifest = json.loads(zf.read("pyfn/manifest.json"))
    report = json.loads((bundle.parent / "report.json").read_text())
    return package_json, lock, manifest, report["node_framework"]


def installed_version(root: Path) -> str:
    data = json.loads((root / "node_modules" / PACKAGE / "package.json").read_text())
    return str(data["version"])


def test_a_bundle_declares_the_pinned_framework_and_npm_ci_installs_exactly_it(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    bundle = build(tmp_path / "out", served_pypy, index_url, session_cache)
    package_json, lock, manifest, reported = declared(bundle)
    version = pinned().version
    assert package_json["dependencies"] == {PACKAGE: version}
    assert lock == pinned().lock
    assert manifest["node_framework"] == reported == version
    # As the platform's build does: npm ci in the unpacked bundle.
    root = tmp_path / "unpacked"
    served.unpack_bundle(bundle, root)
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH (CI installs it)")
    result = subprocess.run(
        [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"],
        cwd=root,
        env=npm_env(session_cache),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert installed_version(root) == version
    # Every package npm installed is the one the lockfile names.
    locked = json.loads(lock)["packages"]
    for name, entry in locked.items():
        if name and not entry.get("dev"):
            got = json.loads((root / name / "package.json").read_text())["version"]
            assert got == entry["version"], name


def _lines_until(process: subprocess.Popen[bytes], wanted: str, seconds: float) -> list[str]:
    """Output lines up to and including the first that holds ``wanted`` (bounded)."""
    assert process.stdout is not None
    lines: list[str] = []
    buffer = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(lines) < 200:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines.append(line.decode(errors="replace"))
            if wanted in lines[-1]:
                return lines
    raise AssertionError(f"no line with {wanted!r} within {seconds} s: {lines}")


def _get(port: int, path: str) -> tuple[int, bytes]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()
        except OSError:
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.2)


def test_serve_runs_the_version_the_bundle_declares(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    bundle = build(
        tmp_path / "out", served_pypy, index_url, session_cache, "--node-framework", OTHER
    )
    package_json, lock, manifest, reported = declared(bundle)
    assert package_json["dependencies"] == {PACKAGE: OTHER}
    assert json.loads(lock)["packages"][f"node_modules/{PACKAGE}"]["version"] == OTHER
    assert manifest["node_framework"] == reported == OTHER

    cache = tmp_path / "serve-cache"  # a cold cache: serve installs what the bundle declares
    port = free_port()
    env = npm_env(cache)
    env["TMPDIR"] = str(tmp_path)
    process = pyfn_serve(bundle, port, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = _lines_until(process, "Serving", START_TIMEOUT * 4)
        assert f"Node.js Functions Framework {OTHER}" in lines[-1]
        assert _get(port, "/?name=other") == (200, b"Hello, other!\n")
        homes = list((cache / "node-functions-framework").glob("*/node_modules"))
        assert [installed_version(home.parent) for home in homes] == [OTHER]
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- what the shim relies on in the framework ------------------------------------------


@pytest.fixture(scope="module")
def contract() -> Iterator[int]:
    """A plain Node.js function under the declared framework, on a free loopback port."""
    package: NodePackage = pinned()  # what every bundle declares unless told otherwise
    framework = nodeframework.ensure_framework(TEST_CACHE, dict(os.environ), package)
    assert nodeframework.installed_version(framework.home) == (PACKAGE, package.version)
    port = free_port()
    process = serve.start(
        framework,
        CONTRACT,
        entry_point="contract",
        host="127.0.0.1",
        port=port,
        env=dict(os.environ),
        output=subprocess.DEVNULL,
    )
    try:
        _get(port, "/state")
        yield port
    finally:
        serve.stop(process)


def _post(port: int, body: bytes, content_type: str, **headers: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/", body=body, headers={"Content-Type": content_type, **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _calls(port: int) -> int:
    return int(json.loads(_get(port, "/state")[1])["calls"])


def test_the_module_is_loaded_before_the_server_listens(contract: int) -> None:
    state = json.loads(_get(contract, "/state")[1])
    assert state["listenCallsSeenByTheModule"] == 1
    # One HTTP server, made with http.createServer after the module loaded.
    assert state["createServerCallsSeenByTheModule"] == 1


@pytest.mark.parametrize(
    ("content_type", "body", "parsed"),
    [
        ("application/json", b'{ "a" :1,\n"b": [1, 2] }', "object"),
        ("application/cloudevents+json", b'{"specversion": "1.0", "id": "1"}', "object"),
        ("text/plain; charset=utf-8", "héllo\r\nwörld".encode(), "string"),
        ("application/x-www-form-urlencoded", b"a=1&b=%20two&a=3", "object"),
        ("application/octet-stream", bytes(range(256)) * 4, "buffer"),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\xff", "buffer"),
    ],
)
def test_the_raw_body_is_kept_byte_for_byte(
    contract: int, content_type: str, body: bytes, parsed: str
) -> None:
    status, data = _post(contract, body, content_type)
    assert status == 200, data
    seen = json.loads(data)
    assert base64.b64decode(seen["rawBody"]) == body
    assert seen["bodyType"] == parsed


def test_a_gzip_body_arrives_inflated(contract: int) -> None:
    body = json.dumps({"k": "v" * 1000}).encode()
    status, data = _post(
        contract, gzip.compress(body), "application/json", **{"Content-Encoding": "gzip"}
    )
    assert status == 200
    assert base64.b64decode(json.loads(data)["rawBody"]) == body


def test_bodies_beyond_the_platforms_32_mb_are_parsed(contract: int) -> None:
    body = b"x" * (33 * 1024 * 1024)
    status, data = _post(contract, body, "application/octet-stream")
    assert status == 200
    assert json.loads(data)["rawBodyLength"] == len(body)


def test_json_that_does_not_parse_is_answered_400_before_the_function(contract: int) -> None:
    before = _calls(contract)
    status, _ = _post(contract, b'{"a": ', "application/json")
    assert status == 400
    assert _calls(contract) == before


def test_more_than_1000_urlencoded_parameters_is_413_before_the_function(contract: int) -> None:
    at_limit = urlencode({f"p{i}": i for i in range(1000)}).encode()
    status, data = _post(contract, at_limit, "application/x-www-form-urlencoded")
    assert status == 200 and json.loads(data)["parameters"] == 1000
    before = _calls(contract)
    over = urlencode({f"p{i}": i for i in range(1001)}).encode()
    status, _ = _post(contract, over, "application/x-www-form-urlencoded")
    assert status == 413
    assert _calls(contract) == before
