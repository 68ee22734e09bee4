"""examples/cloud-button end to end: built with ``pyfn build``, served with ``pyfn serve``
(the real Node Functions Framework, PyPy workers), talking to a loopback contract fake
of the Compute Engine API through google-auth with a service account key, and used
from a headless browser as a phone would."""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO, Answer, Built, Running, serving
from selenium.common.exceptions import JavascriptException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from support.browser import chromium
from support.compute_api import FakeCompute, Injected, fake_compute
from support.oauth import service_account_file

pytestmark = pytest.mark.e2e

PROJECT = "demo-proj"
ZONE = "asia-northeast1-b"
TOKEN = "fake-button-token-7c1e9a0d4b2f"  # noqa: S105 - the test's own secret
INSTANCES = {
    "ci-runner": {"status": "RUNNING", "ip": "35.200.4.7"},
    "db-1": {"status": "TERMINATED", "ip": "34.85.10.2"},
    "web-1": {"status": "RUNNING", "ip": "34.85.10.1"},
}
INSTANCES_PATH = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances"
ARTIFACTS = REPO / "tests" / ".artifacts"
PNG = b"\x89PNG\r\n\x1a\n"


# --- HTTP without following redirects: the 303s are what is asserted ------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send(
    url: str,
    method: str = "GET",
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request; a form is sent urlencoded, as the page's forms are."""
    sent = dict(headers or {})
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with _OPENER.open(request, timeout=60) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def header(answer: Answer, name: str) -> str:
    return next((v for k, v in answer.headers.items() if k.lower() == name.lower()), "")


def brief(answer: Answer, status: int) -> None:
    """A refusal: the status, a short text message, no traceback."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert header(answer, "Content-Type").startswith("text/plain"), answer.headers
    assert b"Traceback" not in answer.body and b'File "' not in answer.body
    assert 0 < len(answer.body) < 300, answer.body


# --- the example, served against the fake --------------------------------------------


@dataclass
class Button:
    base: str
    fake: FakeCompute
    running: Running
    built: Built

    def bearer(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def login(self) -> tuple[dict[str, str], str]:
        """Sign in through the page's form: the Cookie header and the page's CSRF token."""
        answer = send(self.base + "/", "POST", {"action": "login", "token": TOKEN})
        assert answer.status == 303, answer.body
        cookie = header(answer, "Set-Cookie").split(";", 1)[0]
        page = send(self.base + "/", headers={"Cookie": cookie})
        assert page.status == 200, page.body
        tokens = set(re.findall(r'name="csrf" value="([^"]*)"', page.text))
        assert len(tokens) == 1, tokens  # one CSRF token, in every form of the page
        return {"Cookie": cookie}, tokens.pop()


def _env(fake: FakeCompute, key: Path, **more: str) -> dict[str, str]:
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "CLOUDSDK_CONFIG": str(key.parent / "gcloud"),  # no gcloud credentials of the machine
        "NO_GCE_CHECK": "True",  # never ask a metadata server
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "COMPUTE_API_ENDPOINT": fake.base,
        "COMPUTE_ZONE": ZONE,
        "K_SERVICE": "cloud-button",  # as Cloud Functions sets it
        **more,
    }


@pytest.fixture(scope="module")
def served(
    build_example: Callable[[str], Built],
    serve_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Button]:
    built = build_example("cloud-button")
    tmp = tmp_path_factory.mktemp("cloud-button")
    with fake_compute(project=PROJECT, zone=ZONE) as fake:
        key = service_account_file(tmp / "button-sa.json", PROJECT, f"{fake.base}/token")
        env = _env(fake, key, BUTTON_TOKEN=TOKEN)
        with serving(built.bundle, serve_cache, tmp / "serve.log", env) as running:
            yield Button(running.base, fake, running, built)


@pytest.fixture
def button(served: Button) -> Iterator[Button]:
    """The served example with the fake's instances as INSTANCES and nothing recorded."""
    served.fake.reset(INSTANCES)
    yield served
    assert served.fake.violations == [], served.fake.violations
    assert "Traceback" not in served.running.output()


def statuses(fake: FakeCompute) -> dict[str, str]:
    return {name: fake.status(name) for name in fake.instances}


def actions(fake: FakeCompute) -> list[str]:
    return [r.path.removeprefix(INSTANCES_PATH) for r in fake.changes()]


# --- the bundle and the home-screen assets ------------------------------------------


def test_it_builds_with_its_icon(build_example: Callable[[str], Built]) -> None:
    built = build_example("cloud-button")
    function = built.report["function"]
    assert (function["name"], function["entry_point"], function["signature"]) == (
        "cloud-button",
        "button",
        "http",
    )
    assert built.bundle.stat().st_size == built.report["bundle"]["compressed_bytes"]
    names = {c["name"] for c in built.report["components"]}
    assert {"functions-framework", "google-auth", "requests"} <= names
    assert "google-api-python-client" not in names  # three REST calls need no client library
    with zipfile.ZipFile(built.bundle) as bundle:
        icon = bundle.read("app/apple-touch-icon.png")
        assert "app/README.md" not in bundle.namelist()  # .gcloudignore
    assert icon == (EXAMPLES / "cloud-button" / "apple-touch-icon.png").read_bytes()


def test_the_page_links_an_icon_and_a_manifest_it_serves(button: Button) -> None:
    icon = send(button.base + "/apple-touch-icon.png")
    assert icon.status == 200 and header(icon, "Content-Type") == "image/png"
    assert icon.body.startswith(PNG) and icon.body[12:16] == b"IHDR"
    assert struct.unpack(">II", icon.body[16:24]) == (180, 180)
    assert len(icon.body) < 4096

    answer = send(button.base + "/manifest.webmanifest")
    assert answer.status == 200
    assert header(answer, "Content-Type").startswith("application/manifest+json")
    manifest = answer.json()
    assert manifest["display"] == "standalone" and manifest["short_name"] and manifest["name"]
    assert manifest["start_url"]
    assert [i["src"] for i in manifest["icons"]] == ["apple-touch-icon.png"]

    page = send(button.base + "/").text  # the sign-in page links them too
    assert '<link rel="apple-touch-icon" href="apple-touch-icon.png">' in page
    assert '<link rel="manifest" href="manifest.webmanifest">' in page
    # At https://REGION-PROJECT.cloudfunctions.net/cloud-button the function sees "/", and
    # a relative link would leave it: there the links carry its name.
    host = {"Host": "asia-northeast1-demo-proj.cloudfunctions.net"}
    page = send(button.base + "/", headers=host).text
    assert '<link rel="apple-touch-icon" href="/cloud-button/apple-touch-icon.png">' in page
    assert '<link rel="manifest" href="/cloud-button/manifest.webmanifest">' in page
    assert button.fake.requests == []


# --- no token: 403 and no API call ----------------------------------------------------


def test_without_the_token_nothing_reaches_the_api(button: Button) -> None:
    url = button.base + "/"
    page = send(url)
    assert page.status == 403
    assert 'name="token"' in page.text and 'type="password"' in page.text
    assert "web-1" not in page.text and 'name="csrf"' not in page.text
    assert header(page, "Content-Security-Policy").count("frame-ancestors 'none'") == 1

    stop = {"action": "stop", "instance": "web-1"}
    forged = f"{int(time.time())}.{'0' * 64}"
    refused = [
        send(url + "?action=stop&instance=web-1"),
        send(url, "POST", stop),
        send(url, "POST", {**stop, "csrf": "0" * 64}),
        send(url, "POST", stop, button.bearer("wrong-token-of-the-same-length")),
        send(url, "POST", stop, button.bearer(TOKEN[:-1])),
        send(url, "POST", stop, button.bearer("t\u00f6ken-not-ascii")),
        send(url, "POST", stop, {"Authorization": f"Basic {TOKEN}"}),
        send(url, "POST", stop, {"Cookie": f"button-session={TOKEN}"}),
        send(url, "POST", stop, {"Cookie": f"button-session={forged}"}),
        send(url, headers={"Cookie": f"button-session={forged}"}),
    ]
    for answer in refused:
        assert answer.status == 403, (answer.status, answer.body[:200])
        assert b"Traceback" not in answer.body

    wrong = send(url, "POST", {"action": "login", "token": TOKEN + "x"})
    assert wrong.status == 403 and "Wrong token." in wrong.text
    assert header(wrong, "Set-Cookie") == ""
    assert button.fake.requests == []  # not even a list
    assert statuses(button.fake) == {n: s["status"] for n, s in INSTANCES.items()}


# --- GET never changes state --------------------------------------------------------------


def test_a_get_lists_and_never_changes_state(button: Button) -> None:
    cookie, csrf = button.login()
    url = button.base + "/"
    queries = ("", "?stop=web-1", "?action=stop&instance=web-1", f"?start=db-1&csrf={csrf}")
    for query in queries:
        for auth in (cookie, button.bearer()):
            page = send(url + query, headers=auth)
            assert page.status == 200, page.body
            assert header(page, "Cache-Control") == "no-store"
    head = send(url + "?action=stop&instance=ci-runner", "HEAD", headers=cookie)
    assert head.status == 200
    assert button.fake.changes() == []
    assert statuses(button.fake) == {n: s["status"] for n, s in INSTANCES.items()}
    assert {(r.method, r.path) for r in button.fake.requests} == {("GET", INSTANCES_PATH)}
    assert all(
        r.authorization.startswith("Bearer ya29.compute-fake-") for r in button.fake.requests
    )


def test_the_page_shows_each_state_and_external_ip(button: Button) -> None:
    page = send(button.base + "/", headers=button.bearer()).text
    rows = re.findall(
        r'<span class="name">([^<]*)</span>\s*<span class="status (\w+)">(\w+)</span>\s*'
        r'<small class="ip">([^<]*)</small>',
        page,
    )
    assert rows == [
        ("ci-runner", "RUNNING", "RUNNING", "35.200.4.7"),
        ("db-1", "TERMINATED", "TERMINATED", "no external IP"),  # ephemeral IP gone while off
        ("web-1", "RUNNING", "RUNNING", "34.85.10.1"),
    ]
    assert re.findall(r'<button name="action" value="(\w+)">', page) == ["stop", "start", "stop"]


def test_names_from_the_api_are_escaped(button: Button) -> None:
    button.fake.reset({'<img src=x onerror="alert(1)">': {"status": "RUNNING", "ip": "1.2.3.4"}})
    page = send(button.base + "/", headers=button.bearer()).text
    assert "<img" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


# --- POST with the token: exactly the instance asked for -------------------------------


def test_a_post_with_the_token_acts_on_exactly_that_instance(button: Button) -> None:
    url = button.base + "/"
    stopped = send(url, "POST", {"action": "stop", "instance": "web-1"}, button.bearer())
    assert stopped.status == 303 and header(stopped, "Location") == "?stop=web-1"
    assert actions(button.fake) == ["/web-1/stop"]
    assert statuses(button.fake) == {
        "ci-runner": "RUNNING",
        "db-1": "TERMINATED",
        "web-1": "TERMINATED",
    }

    started = send(url, "POST", {"action": "start", "instance": "db-1"}, button.bearer())
    assert started.status == 303
    assert actions(button.fake) == ["/web-1/stop", "/db-1/start"]
    assert statuses(button.fake) == {
        "ci-runner": "RUNNING",
        "db-1": "RUNNING",
        "web-1": "TERMINATED",
    }
    assert all(r.body is None for r in button.fake.changes())  # start and stop take no body


def test_the_session_cookie_and_the_csrf_token(button: Button) -> None:
    url = button.base + "/"
    signed_in = send(url, "POST", {"action": "login", "token": TOKEN})
    assert signed_in.status == 303 and header(signed_in, "Location") == "?signed-in"
    cookie = header(signed_in, "Set-Cookie")
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie
    assert "secure" not in attributes  # plain http on loopback: `pyfn serve`
    name, _, value = cookie.split(";", 1)[0].partition("=")
    assert name == "button-session" and TOKEN not in value and len(value) > 32

    deployed = send(
        url,
        "POST",
        {"action": "login", "token": TOKEN},
        {"Host": "asia-northeast1-demo-proj.cloudfunctions.net"},
    )
    cookie = header(deployed, "Set-Cookie")
    assert cookie.startswith("__Host-session=") and "; Secure;" in cookie, cookie

    auth, csrf = button.login()
    stop = {"action": "stop", "instance": "web-1"}
    other = csrf[:-1] + ("1" if csrf.endswith("0") else "0")
    for form in (stop, {**stop, "csrf": ""}, {**stop, "csrf": other}, {**stop, "csrf": value}):
        brief(send(url, "POST", form, auth), 403)
    assert button.fake.requests == [r for r in button.fake.requests if r.method == "GET"]
    assert button.fake.changes() == []

    done = send(url, "POST", {**stop, "csrf": csrf}, auth)
    assert done.status == 303
    assert actions(button.fake) == ["/web-1/stop"]

    signed_out = send(url, "POST", {"action": "logout", "csrf": csrf}, auth)
    assert signed_out.status == 303 and "Max-Age=0" in header(signed_out, "Set-Cookie")


# --- bad input: a short 4xx, never a 500 or a traceback ----------------------------------


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"action": "reboot", "instance": "web-1"}, 400),
        ({"action": "delete", "instance": "web-1"}, 400),
        ({"instance": "web-1"}, 400),
        ({"action": "stop"}, 400),
        ({"action": "stop", "instance": ""}, 400),
        ({"action": "stop", "instance": "Web-1"}, 400),
        ({"action": "stop", "instance": "../../zones/other/instances/web-1"}, 400),
        ({"action": "stop", "instance": "web-1/stop"}, 400),
        ({"action": "stop", "instance": "web-1?requestId=x"}, 400),
        ({"action": "stop", "instance": "a" * 64}, 400),
        ({"action": "stop", "instance": "web-\u00e9"}, 400),
    ],
)
def test_bad_forms_are_a_short_400_without_an_api_call(
    button: Button, form: dict[str, str], status: int
) -> None:
    brief(send(button.base + "/", "POST", form, button.bearer()), status)
    assert button.fake.requests == []


def test_an_instance_the_zone_lacks_is_a_404(button: Button) -> None:
    answer = send(
        button.base + "/", "POST", {"action": "start", "instance": "ghost"}, button.bearer()
    )
    brief(answer, 404)
    assert b"ghost" in answer.body
    assert button.fake.changes() == []  # only the list that showed it is not there


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("PUT", "/", b"action=stop&instance=web-1", {}, 405),
        ("DELETE", "/", None, {}, 405),
        ("GET", "/apple-touch-icon-precomposed.png", None, {}, 404),
        ("GET", "/instances/web-1/stop", None, {}, 404),
        (
            "POST",
            "/",
            b"action=stop&instance=web-1&pad=" + b"x" * 10_000,
            {"Content-Type": "application/x-www-form-urlencoded"},
            413,
        ),
        (
            "POST",
            "/",
            b'{"action": "stop", "instance": "web-1"}',
            {"Content-Type": "application/json"},
            400,
        ),
        ("POST", "/", b"--x\r\nbroken", {"Content-Type": "multipart/form-data; boundary=x"}, 400),
        ("POST", "/", b"action=stop&instance=web-1", {"Content-Type": "multipart/form-data"}, 400),
        (
            "POST",
            "/",
            b"action=%ff%fe&instance=web-1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            400,
        ),
    ],
)
def test_bad_requests_are_a_short_4xx(
    button: Button,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    answer = send(button.base + path, method, headers={**button.bearer(), **headers}, body=body)
    brief(answer, status)
    assert button.fake.changes() == []


# --- the API refuses: a short 502 -------------------------------------------------------


def test_api_errors_are_a_short_502(button: Button) -> None:
    denied = "Required 'compute.instances.list' permission for 'projects/demo-proj'"
    button.fake.inject.append(Injected("list", 403, denied))
    answer = send(button.base + "/", headers=button.bearer())
    brief(answer, 502)
    assert denied.encode() in answer.body

    button.fake.inject.append(Injected("stop", 403, "Required 'compute.instances.stop'"))
    answer = send(
        button.base + "/", "POST", {"action": "stop", "instance": "web-1"}, button.bearer()
    )
    brief(answer, 502)
    assert statuses(button.fake)["web-1"] == "RUNNING"


def test_without_a_configured_token_everything_is_refused(
    build_example: Callable[[str], Built],
    serve_cache: Path,
    tmp_path: Path,
) -> None:
    built = build_example("cloud-button")
    with fake_compute(project=PROJECT, zone=ZONE) as fake:
        fake.reset(INSTANCES)
        key = service_account_file(tmp_path / "button-sa.json", PROJECT, f"{fake.base}/token")
        for token in ("", "short"):
            env = _env(fake, key, BUTTON_TOKEN=token)
            with serving(built.bundle, serve_cache, tmp_path / "serve.log", env) as running:
                url = running.base + "/"
                brief(send(url), 503)
                brief(send(url, "POST", {"action": "login", "token": token}), 503)
                brief(
                    send(
                        url,
                        "POST",
                        {"action": "stop", "instance": "web-1"},
                        {"Authorization": f"Bearer {token}"},
                    ),
                    503,
                )
        assert fake.requests == []


# --- a real browser, as on the phone ----------------------------------------------------


STATUS_OF = """
for (const li of document.querySelectorAll("li")) {
  const name = li.querySelector("span.name");
  if (name && name.textContent.trim() === arguments[0]) {
    const status = li.querySelector(".status");
    return status ? status.textContent.trim() : null;
  }
}
return null;
"""


def test_in_a_browser_the_button_stops_the_machine(button: Button) -> None:
    def row(driver: WebDriver, name: str) -> WebElement:
        return driver.find_element(By.XPATH, f"//li[span[@class='name' and text()='{name}']]")

    def status(driver: WebDriver, name: str) -> str:
        # Read in one script run in the page: an element held across a reload can go
        # stale (or, in Chromium, "does not belong to the document") between two calls.
        found = driver.execute_script(STATUS_OF, name)
        return str(found) if found is not None else ""

    with chromium() as driver:
        driver.set_window_size(430, 932)  # a phone's screen
        driver.get(button.base + "/")
        driver.find_element(By.NAME, "token").send_keys(TOKEN)
        driver.find_element(By.XPATH, "//button[normalize-space()='Unlock']").click()
        # Bounded: 30 s, 150 polls. A row found just before the page reloads goes stale:
        # that is "not yet", as an element not found is.
        wait = WebDriverWait(
            driver,
            30,
            poll_frequency=0.2,
            ignored_exceptions=(StaleElementReferenceException, JavascriptException),
        )
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li .status"))
        assert button.fake.changes() == []

        shown = {
            name: (status(driver, name), row(driver, name).find_element(By.CLASS_NAME, "ip").text)
            for name in INSTANCES
        }
        assert shown == {
            "ci-runner": ("RUNNING", "35.200.4.7"),
            "db-1": ("TERMINATED", "no external IP"),
            "web-1": ("RUNNING", "34.85.10.1"),
        }

        row(driver, "web-1").find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: status(d, "web-1") == "TERMINATED")
        assert actions(button.fake) == ["/web-1/stop"]  # that one, once
        assert driver.find_element(By.CLASS_NAME, "sent").text == "Stop requested: web-1."
        assert row(driver, "web-1").find_element(By.TAG_NAME, "button").text == "Start"
        assert status(driver, "ci-runner") == "RUNNING"

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "cloud-button.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(PNG)
    assert statuses(button.fake) == {
        "ci-runner": "RUNNING",
        "db-1": "TERMINATED",
        "web-1": "TERMINATED",
    }


# --- the fake itself: it holds callers to the discovery document ------------------------


def test_the_fake_refuses_what_the_compute_api_would(tmp_path: Path) -> None:
    import google.auth.transport.requests
    from google.oauth2 import service_account

    def jwt(claims: dict[str, str]) -> str:
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"e30.{part}.c2ln"  # claims the fake would read, under no signature

    with fake_compute(project=PROJECT, zone=ZONE) as fake:
        fake.reset(INSTANCES)
        key = service_account_file(tmp_path / "sa.json", PROJECT, f"{fake.base}/token")

        def token(scope: str) -> str:
            """A token for ``scope``, granted for an assertion google-auth signed."""
            creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(key), scopes=[scope]
            )
            creds.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            return str(creds.token)

        compute = "https://www.googleapis.com/auth/compute"
        forged = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt({"scope": compute}),
        }
        assert send(f"{fake.base}/token", "POST", forged).status == 400  # signed by no key
        good = {"Authorization": f"Bearer {token(compute)}"}
        narrow = {"Authorization": f"Bearer {token('https://www.googleapis.com/auth/devstorage')}"}
        url = fake.base + INSTANCES_PATH
        assert send(url, headers=good).json()["kind"] == "compute#instanceList"
        assert send(url + "?maxResults=500&fields=items(name)", headers=good).status == 200
        assert send(url).status == 401
        assert send(url, headers={"Authorization": "Bearer ya29.made-up"}).status == 401
        assert send(url, headers=narrow).status == 403
        assert fake.violations == []
        refused = [
            (send(url + "?maxResults=ten", headers=good), 400),
            (send(url + "?bogus=1", headers=good), 400),
            (send(url + "/web-1/stop?discardLocalSsd=maybe", "POST", headers=good), 400),
            (send(url + "/Web_1/stop", "POST", headers=good), 400),
            (send(url + "/web-1/stop", "POST", headers=good, body=b'{"force": true}'), 400),
            (send(url + "/web-1/stop", headers=good), 404),  # stop is a POST
            (send(url + "/web-1", "DELETE", headers=good), 404),  # not one of the three
            (send(url + "/web-1/reset", "POST", headers=good), 404),
        ]
        for answer, status in refused:
            assert answer.status == status, (status, answer.body)
            assert answer.json()["error"]["code"] == status
        assert len(fake.violations) == len(refused)
        assert statuses(fake) == {n: s["status"] for n, s in INSTANCES.items()}  # none acted

        other_zone = url.replace(ZONE, "europe-west1-b")
        assert send(other_zone + "/web-1/stop", "POST", headers=good).status == 404
        assert send(url + "/ghost/start", "POST", headers=good).status == 404
        operation = send(url + "/db-1/start", "POST", headers=good).json()
        assert operation["kind"] == "compute#operation" and operation["operationType"] == "start"
        assert operation["targetLink"].endswith(f"/zones/{ZONE}/instances/db-1")
        assert fake.status("db-1") == "RUNNING"
        assert len(fake.violations) == len(refused)  # the rest kept the contract
