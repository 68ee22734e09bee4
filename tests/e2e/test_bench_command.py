"""`pyfn bench` end to end: a real bundle under the Node.js Functions Framework against
the same source on CPython with the Python Functions Framework under gunicorn, both on
loopback; answers compared before any timing, the verdict's exit codes, the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TEST_CACHE, Outcome, Served, build_args, hermetic_env, pyfn

pytestmark = pytest.mark.e2e

MAIN_PY = """import json
import platform

import functions_framework


@functions_framework.http
def handler(request):
    if request.path == "/which":
        return platform.python_implementation()
    if request.path == "/fails-on-pypy" and platform.python_implementation() == "PyPy":
        raise RuntimeError("only here")
    if request.method == "POST":
        data = request.get_json()
        return json.dumps({"total": sum(data["values"])}, sort_keys=True)
    return "Hello!\\n"
"""
QUICK = (
    "--duration",
    "0.3",
    "--warmup",
    "0.2",
    "--cold-starts",
    "1",
    "--settle",
    "0.2",
    "--clients",
    "2",
)


def function(tmp_path: Path, requests: str) -> Path:
    src = tmp_path / "fn"
    (src / "bench").mkdir(parents=True)
    (src / "main.py").write_text(MAIN_PY)
    (src / "requirements.txt").write_text("functions-framework==3.10.2\n")
    (src / "bench" / "sum.json").write_text(json.dumps({"values": list(range(100))}))
    (src / "pyfn.toml").write_text('name = "fn"\nentry_point = "handler"\n' + requests)
    return src


@pytest.fixture(scope="module")
def cache(session_cache: Path) -> Path:
    """The run's cache, with the tests' installed Node.js Functions Framework in it."""
    framework = session_cache / "node-functions-framework"
    if not framework.exists():
        framework.symlink_to(TEST_CACHE / "node-functions-framework")
    return session_cache


@pytest.fixture(scope="module")
def bundle(
    tmp_path_factory: pytest.TempPathFactory, served_pypy: Served, index_url: str, cache: Path
) -> Path:
    """MAIN_PY built once: each test measures it against its own [[bench]] requests, which
    are read from the source given, not from the bundle."""
    src = function(tmp_path_factory.mktemp("bundle"), "")
    out = src.parent / "dist"
    built = pyfn(build_args(src, out, served_pypy, index_url), hermetic_env(cache))
    assert built.code == 0, built.stderr
    return out / "bundle.zip"


def bench(src: Path, served_pypy: Served, index_url: str, cache: Path, *more: str) -> Outcome:
    args = build_args(
        src, src.parent / "dist", served_pypy, index_url, *QUICK, *more, command="bench"
    )
    return pyfn(args, hermetic_env(cache))


SUM = """
[[bench]]
name = "sum"
method = "POST"
path = "/sum"
headers = { "Content-Type" = "application/json" }
body_file = "bench/sum.json"

[[bench]]
path = "/"
"""


def test_both_runtimes_measured_and_the_verdicts(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    cache: Path,
    bundle: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="pyfn_action")
    src = function(tmp_path, SUM)
    passed = bench(src, served_pypy, index_url, cache, "--json", "--min-speedup", "0.01")
    assert passed.code == 0, passed.stderr
    result = json.loads(passed.stdout)
    assert [m["name"] for m in result["measured"]] == ["sum", "GET /"]
    for m in result["measured"]:
        for side in ("native", "pyfn"):
            figures = m[side]
            assert figures["wrong"] == 0 and figures["requests"] > 0
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] and figures["rps"] > 0
        assert m["speedup"] == pytest.approx(m["native"]["p50_ms"] / m["pyfn"]["p50_ms"], 0.01)
    assert result["differences"] == [] and result["too_slow"] == []
    assert set(result["cold_start_ms"]) == {"native", "pyfn"}
    assert all(v > 10 for v in result["idle_rss_mb"].values())
    assert result["cpython"].startswith("3.") and result["clients"] == 2
    # progress is said as it happens (on stderr, from the command)
    assert "sum: one client on native, 0.3 s" in caplog.text

    failed = bench(
        src, served_pypy, index_url, cache, "--min-speedup", "1000", "--bundle", str(bundle)
    )
    assert failed.code == 19, failed.stderr
    assert "below min_speedup 1000: sum" in failed.stdout  # the table, all the same
    assert "better on Cloud Functions' Python runtime" in failed.stderr
    assert "p50 one client" in failed.stderr or "on the native runtime (p50" in failed.stderr


def test_answers_that_differ_are_reported_before_any_timing(
    tmp_path: Path, served_pypy: Served, index_url: str, cache: Path, bundle: Path
) -> None:
    src = function(
        tmp_path,
        """
[[bench]]
path = "/which"

[[bench]]
path = "/fails-on-pypy"

[[bench]]
path = "/"
""",
    )
    outcome = bench(src, served_pypy, index_url, cache, "--json", "--bundle", str(bundle))
    assert outcome.code == 18, outcome.stderr
    result = json.loads(outcome.stdout)
    differs = {d["name"]: d for d in result["differences"]}
    assert set(differs) == {"GET /which", "GET /fails-on-pypy"}
    assert differs["GET /which"]["native"] == "200: 'CPython'"
    assert differs["GET /which"]["pyfn"] == "200: 'PyPy'"
    assert differs["GET /fails-on-pypy"]["why"] == "status 200 on the native runtime, 500 on pyfn"
    assert [m["name"] for m in result["measured"]] == ["GET /"]  # only the one answered alike
    assert "answer 2 request(s) differently" in outcome.stderr


def test_bad_requests_are_refused_before_anything_is_built(
    tmp_path: Path, served_pypy: Served, index_url: str, cache: Path
) -> None:
    src = function(tmp_path, '[[bench]]\nbody_file = "bench/missing.json"\n')
    outcome = bench(src, served_pypy, index_url, cache)
    assert outcome.code == 2 and "does not exist" in outcome.stderr
    assert not (src.parent / "dist").exists()
    none = function(tmp_path / "none", "")
    assert bench(none, served_pypy, index_url, cache).code == 2


def test_requirements_are_judged_before_cpython_installs_them(
    tmp_path: Path, served_pypy: Served, index_url: str, cache: Path, bundle: Path
) -> None:
    """With --bundle nothing is built, so the native side's install judges the file itself:
    an include out of the source tree is refused, never handed to uv."""
    src = function(tmp_path, '[[bench]]\npath = "/"\n')
    (tmp_path / "outside.txt").write_text("functions-framework==3.10.2\n")
    (src / "requirements.txt").write_text("-r ../outside.txt\n")
    outcome = bench(src, served_pypy, index_url, cache, "--bundle", str(bundle))
    assert outcome.code == 5, outcome.stderr
    assert "outside.txt" in outcome.stderr
