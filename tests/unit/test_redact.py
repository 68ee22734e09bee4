"""URLs as pyfn shows them: no user info, password, query or fragment, in its own
messages (redact_url) or in those of the libraries it calls (scrub)."""

from __future__ import annotations

import pytest

from pyfn_action.redact import MALFORMED, is_malformed, redact_url, scrub, url_parts, url_scheme

PASSWORD = "p%40ss-w0rd"  # noqa: S105 (a test secret, to be kept out of output)


@pytest.mark.parametrize(
    ("location", "scheme"),
    [
        ("https://host/a", "https"),
        ("HTTP://host/a", "HTTP"),
        ("\thttps://ho\nst/a ", "https"),  # urllib strips and drops these too
        ("git+ssh://host/r.git", "git+ssh"),
        ("/srv/pypy.tar.bz2", None),
        ("host/a", None),
        ("c:\\pypy.tar.bz2", None),
    ],
)
def test_url_scheme_reads_a_location_as_urllib_does(location: str, scheme: str | None) -> None:
    assert url_scheme(location) == scheme


def test_url_parts_leave_out_the_query_and_fragment() -> None:
    url = f"https://u:{PASSWORD}@host:8443/a/b.tar.gz?sig=1#frag"
    assert url_parts(url) == ("https", f"u:{PASSWORD}", "host:8443", "/a/b.tar.gz")
    assert url_parts("file:///srv/b.tar.gz") == ("file", "", "", "/srv/b.tar.gz")
    assert url_parts("/srv/b.tar.gz") is None


@pytest.mark.parametrize(
    ("url", "malformed"),
    [
        ("https://host.example:8443/a", False),
        ("https://[::1]:8080/a", False),
        ("file:///srv/a", False),
        ("http://u:pa/ss@host/a", True),  # the password's '/' ends the host part early
        ("http://[::1/a", True),
        ("https://host/a b", True),  # urllib would drop the space: fetch no such URL
        ("https://host/a\tb", True),
        ("/srv/a", True),  # no URL at all
    ],
)
def test_is_malformed(url: str, malformed: bool) -> None:
    assert is_malformed(url) is malformed


def test_a_malformed_host_is_never_shown() -> None:
    assert redact_url("http://u:pa/ss@host/a") == f"http://{MALFORMED}"


def test_scrub_takes_every_secret_of_the_url_out_of_a_message() -> None:
    url = f"https://robot:{PASSWORD}@host/a?token=abc123#frag"
    message = f"HTTP Error 401 for robot:{PASSWORD}@host (as robot:p@ss-w0rd), token=abc123, #frag"
    scrubbed = scrub(message, url)
    for secret in ("robot", PASSWORD, "p@ss-w0rd", "token=abc123", "frag"):
        assert secret not in scrubbed, secret
    assert scrubbed.startswith("HTTP Error 401 for ***@host")


def test_scrub_leaves_a_message_about_a_path_alone() -> None:
    assert scrub("cannot read /srv/a: denied", "/srv/a") == "cannot read /srv/a: denied"
