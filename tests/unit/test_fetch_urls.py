"""Runtime URLs carry secrets (signed URLs, user:password@): they fetch, but are never
recorded, printed or used as file names."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from support.servers import Routes, running, serve
from support.tarballs import fake_runtime

from pyfn_action import fetch
from pyfn_action.errors import ChecksumMismatch, PyfnError, RuntimeFetchError
from pyfn_action.redact import redact_url
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime

NAME = "pypy3.9-v7.3.11-linux64.tar.gz"
SIGNATURE = "X-Goog-Signature=" + "5ec7e7" * 100  # 600 characters: more than NAME_MAX
SIGNED = f"?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=robot%40p.iam&{SIGNATURE}"
PASSWORD = "s3cr3t-p4ss"  # noqa: S105 (a test secret, to be kept out of output)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[bytes, str]:
    path = tmp_path / NAME
    sha = fake_runtime(path)
    return path.read_bytes(), sha


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert "5ec7e7" not in text
        assert "Signature" not in text and "Credential" not in text
        assert PASSWORD not in text


def _cache_text(cache: Path) -> str:
    """Every name and every JSON record in the cache."""
    parts = [str(p) for p in cache.rglob("*")]
    parts += [p.read_text() for p in cache.rglob("*.json")]
    return "\n".join(parts)


def test_signed_url_fetches_and_is_recorded_without_its_query(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    data, sha = archive
    routes = Routes(files={f"/bucket/{NAME}": data})
    cache = tmp_path / "cache"
    with serve(routes) as base:
        runtime = resolve_runtime(
            RuntimeRequest(archive=f"{base}/bucket/{NAME}{SIGNED}", sha256=sha), cache
        )
        again = resolve_runtime(
            RuntimeRequest(archive=f"{base}/bucket/{NAME}{SIGNED}", sha256=sha), cache
        )
    assert routes.hits == [f"/bucket/{NAME}"]
    assert runtime == again
    assert runtime.source == f"{base}/bucket/{NAME}"
    assert runtime.pypy_version == "7.3.11"
    assert (cache / "archives" / sha / NAME).read_bytes() == data
    _no_secret(_cache_text(cache))


def _auth_handler(data: bytes, seen: list[str]) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"robot@example:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def auth_server(archive: tuple[bytes, str]) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with running(_auth_handler(archive[0], seen)) as base:
        yield base, seen


def test_user_and_password_in_the_url_authenticate_and_are_not_recorded(
    tmp_path: Path, archive: tuple[bytes, str], auth_server: tuple[str, list[str]]
) -> None:
    _, sha = archive
    base, seen = auth_server
    url = base.replace("://", f"://robot%40example:{PASSWORD}@") + f"/{NAME}"
    runtime = resolve_runtime(RuntimeRequest(archive=url, sha256=sha), tmp_path / "cache")
    assert seen and seen[-1].startswith("Basic ")
    assert runtime.source == f"{base}/{NAME}"
    _no_secret(_cache_text(tmp_path / "cache"))


def _redirect_handler(to: str, seen: list[str]) -> type[BaseHTTPRequestHandler]:
    """Answers every request, with or without credentials, with a redirect to ``to``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(302)
            self.send_header("Location", to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _open_handler(data: bytes, seen: list[str]) -> type[BaseHTTPRequestHandler]:
    """Serves ``data`` to anyone, recording the Authorization header each request carried."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def test_credentials_go_to_their_own_host_only_never_through_a_redirect(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    """A mirror that redirects to another host (a CDN, or someone else's server): the
    download goes on, the archive is verified, and the other host never sees the password."""
    data, sha = archive
    elsewhere_saw: list[str] = []
    mirror_saw: list[str] = []
    with running(_open_handler(data, elsewhere_saw)) as elsewhere:
        with running(_redirect_handler(elsewhere, mirror_saw)) as mirror:
            url = mirror.replace("://", f"://robot%40example:{PASSWORD}@") + f"/{NAME}"
            runtime = resolve_runtime(RuntimeRequest(archive=url, sha256=sha), tmp_path / "c")
    assert runtime.sha256 == sha
    expected = "Basic " + base64.b64encode(f"robot@example:{PASSWORD}".encode()).decode()
    assert mirror_saw == [expected]  # sent first, to the URL's own host
    assert elsewhere_saw == [""]  # not a credential, after the redirect


def test_wrong_password_is_an_error_without_the_password(
    tmp_path: Path, archive: tuple[bytes, str], auth_server: tuple[str, list[str]]
) -> None:
    _, sha = archive
    base, _ = auth_server
    url = base.replace("://", f"://robot:{PASSWORD}@") + f"/{NAME}"
    with pytest.raises(RuntimeFetchError, match="HTTP 401") as caught:
        resolve_runtime(RuntimeRequest(archive=url, sha256=sha), tmp_path / "cache")
    _no_secret(caught.value.message)


@pytest.mark.parametrize(
    "url",
    [
        f"http://robot:{PASSWORD}@127.0.0.1:99999/{NAME}",  # port out of range
        f"http://robot:{PASSWORD}@127.0.0.1:port/{NAME}",  # not a port
        f"http://[::1/{NAME}?{SIGNATURE}",  # unbalanced IPv6 bracket
        f"http://robot:{PASSWORD}@exa mple.invalid/{NAME}",  # a space in the host
        f"http://robot:{PASSWORD}@{'x' * 70}.invalid/{NAME}",  # a DNS label too long
        f"ftp://robot:{PASSWORD}@127.0.0.1/{NAME}",  # a scheme pyfn does not fetch
        f" http://robot:{PASSWORD}@127.0.0.1:1/{NAME}",  # a space before: urllib strips it
        f"http://robot:{PASSWORD}\n@127.0.0.1:1/{NAME}",  # urllib drops line breaks
        f"http://robot:{PASSWORD}@127.0.0.1:1/{NAME}?sig=a b",  # http.client quotes the path
    ],
)
def test_malformed_urls_are_errors_without_secrets(tmp_path: Path, url: str) -> None:
    with pytest.raises(PyfnError) as caught:
        resolve_runtime(RuntimeRequest(archive=url, sha256="1" * 64), tmp_path / "cache")
    _no_secret(caught.value.message)


def test_errors_name_the_url_without_its_query(tmp_path: Path, archive: tuple[bytes, str]) -> None:
    data, sha = archive
    routes = Routes(files={f"/{NAME}": data}, cut_after={f"/{NAME}": len(data) // 2})
    with serve(routes) as base:
        for request, error in [
            (RuntimeRequest(archive=f"{base}/missing.tar.gz{SIGNED}", sha256=sha), "HTTP 404"),
            (RuntimeRequest(archive=f"{base}/{NAME}{SIGNED}", sha256=sha), "cut off"),
        ]:
            with pytest.raises(RuntimeFetchError, match=error) as caught:
                resolve_runtime(request, tmp_path / "cache")
            assert f"{base}/" in caught.value.message
            _no_secret(caught.value.message)
    with serve(Routes(files={f"/{NAME}": data})) as base:
        signed = RuntimeRequest(archive=f"{base}/{NAME}{SIGNED}", sha256="0" * 64)
        with pytest.raises(ChecksumMismatch) as mismatch:
            resolve_runtime(signed, tmp_path / "cache")
    _no_secret(mismatch.value.message)


def test_mirror_with_credentials_and_token(tmp_path: Path) -> None:
    name = "pypy3.10-v7.3.19-linux64.tar.bz2"
    routes = Routes(files={f"/m/{name}": b"not the official bytes"})
    with serve(routes) as base:
        mirror = base.replace("://", f"://robot:{PASSWORD}@") + f"/m/?token={SIGNATURE}"
        with pytest.raises(ChecksumMismatch) as caught:
            resolve_runtime(RuntimeRequest("pypy3.10", mirror=mirror), tmp_path / "c")
    assert routes.hits == [f"/m/{name}"]  # the file name joins the path, not the query
    assert f"{base}/m/{name}" in caught.value.message
    _no_secret(caught.value.message)


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (
            f"https://u:{PASSWORD}@host.example:8443/a/{NAME}{SIGNED}#frag",
            f"https://host.example:8443/a/{NAME}",
        ),
        (f"https://host.example/a/{NAME}", f"https://host.example/a/{NAME}"),
        (f"file:///srv/{NAME}", f"file:///srv/{NAME}"),
        (f"/srv/{NAME}", f"/srv/{NAME}"),
        (f" https://u:{PASSWORD}\t@host/{NAME}?{SIGNATURE}", f"https://host/{NAME}"),
        (f"http://[::1/{NAME}?{SIGNATURE}", "http://<a malformed address>"),
        (f"http://u:pa/ss@host/{NAME}", "http://<a malformed address>"),
    ],
)
def test_redact_url(location: str, shown: str) -> None:
    assert redact_url(location) == shown


@pytest.mark.parametrize(
    ("location", "name"),
    [
        (f"https://host/a/{NAME}{SIGNED}", NAME),
        (f"https://host/a/{NAME}/", NAME),
        ("https://host/", "pypy-archive"),
        ("https://host/a/%2E%2E", "pypy-archive"),
        ("https://host/a/x%2Fy%00z.tar.gz", "x_y_z.tar.gz"),
        ("https://host/a/" + "p" * 400 + ".tar.bz2", None),
        (f"/srv/{NAME}", NAME),
    ],
)
def test_cache_file_names_come_from_the_path_and_are_safe(location: str, name: str | None) -> None:
    got = fetch.url_filename(location)
    if name is not None:
        assert got == name
    assert 0 < len(got.encode()) <= 120 and "/" not in got and not got.startswith(".")
    assert got.endswith(".tar.bz2") or name is not None


def test_record_from_an_older_pyfn_is_shown_without_secrets(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    """A cache entry written before this fix kept the full URL; it is redacted on read."""
    _, sha = archive
    cache = tmp_path / "cache"
    local = tmp_path / NAME
    resolve_runtime(RuntimeRequest(archive=str(local), sha256=sha), cache)
    record = cache / "runtimes" / f"{sha}.json"
    old = json.loads(record.read_text())
    old["source"] = f"https://robot:{PASSWORD}@host.example/{NAME}{SIGNED}"
    record.write_text(json.dumps(old))
    runtime = resolve_runtime(RuntimeRequest(archive=str(local), sha256=sha), cache)
    assert runtime.source == f"https://host.example/{NAME}"


def test_manifest_never_records_a_urls_secrets(tmp_path: Path) -> None:
    """Whatever made the Runtime, the manifest's and report's record of it is redacted."""
    from pyfn_action.report.manifest import runtime_record
    from pyfn_action.runtime.pypy import Runtime

    runtime = Runtime(
        root=tmp_path,
        python_version="3.9",
        pypy_version="7.3.11",
        arch="x86_64",
        pp_tag="73",
        sha256="a" * 64,
        source=f"https://robot:{PASSWORD}@host.example/{NAME}{SIGNED}",
    )
    from pyfn_action.runtime.noderuntimes import choose

    node_runtime = choose(2, "nodejs22", date(2026, 12, 7))
    recorded = runtime_record(runtime, runtime.target((2, 17)), node_runtime)
    assert recorded["source"] == f"https://host.example/{NAME}"
