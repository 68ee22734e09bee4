"""A home-screen button for the Compute Engine instances of one zone.

GET shows each instance with its state and external IP, and a Start or Stop
button; POST (from the page's own form, or with ``Authorization: Bearer``)
starts or stops one instance, then redirects back to the page. Nothing happens
without the secret token: the page asks for it once and then keeps a signed,
HttpOnly session cookie, never the token itself.

Settings (environment):
  BUTTON_TOKEN          the secret (16+ characters); best from Secret Manager
  COMPUTE_ZONE          the zone whose instances the page lists, e.g. us-central1-a
  GOOGLE_CLOUD_PROJECT  the project (default: the runtime credentials' project)
  COMPUTE_API_ENDPOINT  default https://compute.googleapis.com (tests use a fake)
"""

import functools
import hashlib
import hmac
import json
import os
import re
import sys
import time
from pathlib import Path

import functions_framework
import google.auth
import requests
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from jinja2 import Environment
from werkzeug.exceptions import HTTPException

SCOPES = ["https://www.googleapis.com/auth/compute"]
FIELDS = "items(name,status,networkInterfaces/accessConfigs/natIP),nextPageToken"  # all we show
# Name syntax from the Compute API's discovery document (a zone name has the same form).
NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
SESSION_DAYS = 30
MAX_BODY = 4096  # the page's forms are a few hundred bytes
ICON = (Path(__file__).parent / "apple-touch-icon.png").read_bytes()
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}

# No scripts at all; forms post only to this page; no other site may frame it
# (a framed button invites clickjacking).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

PAGE = Environment(autoescape=True).from_string(  # autoescape: names and IPs come from the API
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="apple-mobile-web-app-capable" content="yes">
<title>Cloud button</title>
<link rel="apple-touch-icon" href="{{ base }}apple-touch-icon.png">
<link rel="manifest" href="{{ base }}manifest.webmanifest">
<style>
  body { font: 17px system-ui, sans-serif; margin: 1.5em auto; max-width: 34em; padding: 0 1em; }
  li { list-style: none; display: flex; align-items: center; gap: .8em; padding: .6em 0;
       border-bottom: 1px solid #ddd; }
  .name { flex: 1; font-weight: 600; }
  .RUNNING { color: #188038; } .TERMINATED { color: #a50e0e; }
  button { font: inherit; padding: .45em 1.1em; border-radius: .5em; border: 0;
           background: #1a73e8; color: #fff; }
  button.quiet { background: #e8eaed; color: #202124; }
  ul { padding: 0; } .error { color: #a50e0e; } small, .sent { color: #666; }
</style>
</head>
<body>
<h1>{{ zone or "Cloud button" }}</h1>
{% if instances is none %}
  <form method="post">
    <input type="hidden" name="action" value="login">
    {% if wrong %}<p class="error">Wrong token.</p>{% endif %}
    <p>Enter the button's token:</p>
    <p><input type="password" name="token" autocomplete="current-password" required autofocus>
       <button>Unlock</button></p>
  </form>
{% else %}
  {% if sent %}<p class="sent">{{ sent[0]|capitalize }} requested: {{ sent[1] }}.</p>{% endif %}
  <ul>
  {% for i in instances %}
    <li><span class="name">{{ i.name }}</span>
      <span class="status {{ i.status }}">{{ i.status }}</span>
      <small class="ip">{{ i.ip or "no external IP" }}</small>
      {% if i.status in ("RUNNING", "TERMINATED") %}{# others are on their way #}
      <form method="post">
        <input type="hidden" name="csrf" value="{{ csrf }}">
        <input type="hidden" name="instance" value="{{ i.name }}">
        <button name="action" value="{{ "stop" if i.status == "RUNNING" else "start" }}">
          {{- "Stop" if i.status == "RUNNING" else "Start" }}</button>
      </form>
      {% endif %}
    </li>
  {% else %}
    <li>No instances in this zone.</li>
  {% endfor %}
  </ul>
  {% if csrf %}
  <form method="post"><input type="hidden" name="csrf" value="{{ csrf }}">
    <button name="action" value="logout" class="quiet">Sign out</button></form>
  {% endif %}
{% endif %}
</body>
</html>
"""
)


class Refused(Exception):
    """A request answered with a short message and a 4xx/5xx status."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def text(status, message, headers=None):
    return message + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}


# --- the secret, the session cookie and the CSRF token ---------------------------------


def secret():
    token = os.environ.get("BUTTON_TOKEN", "")
    if len(token) < 16:
        raise Refused(503, "Not configured: set BUTTON_TOKEN to a secret of 16+ characters.")
    return token


def mac(key, message):
    # Derived values, never the token itself, go into cookies and pages. Changing
    # BUTTON_TOKEN signs everyone out.
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def same(a, b):
    """Constant-time comparison; bytes, because compare_digest refuses non-ASCII str."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def cookie_name(request):
    # Browsers drop Secure cookies on plain http; only `pyfn serve` on loopback is that.
    # Deployed, the page is https only and the cookie gets the strict __Host- prefix.
    return "button-session" if request.host.rsplit(":", 1)[0] in LOOPBACK else "__Host-session"


def new_session(key):
    issued = str(int(time.time()))
    return f"{issued}.{mac(key, 'session ' + issued)}"


def valid_session(key, value):
    issued, _, signature = value.partition(".")
    if not issued.isdigit() or not same(signature, mac(key, "session " + issued)):
        return False
    return 0 <= time.time() - int(issued) < SESSION_DAYS * 86400


def set_cookie(request, value, max_age):
    secure = "" if cookie_name(request) == "button-session" else " Secure;"
    return {
        "Set-Cookie": f"{cookie_name(request)}={value}; Max-Age={max_age}; Path=/;"
        f"{secure} HttpOnly; SameSite=Strict"
    }


def base_path(request):
    """Where the function's own files are, relative to the page.

    At https://REGION-PROJECT.cloudfunctions.net/cloud-button the function sees "/" but
    the browser resolves "icon.png" to the host's root, outside the function: there,
    links need the function's name. On its run.app URL and under `pyfn serve` it is
    the root.
    """
    name = os.environ.get("K_SERVICE", "")
    return f"/{name}/" if name and request.host.endswith(".cloudfunctions.net") else ""


def redirect_home(query, headers=None):
    # Post/Redirect/Get, to a query-only reference: the same page whatever its URL. (On a
    # 1st gen URL, .../cloud-button, the function sees the path "/", so "/" would leave it.)
    return "", 303, {"Location": "?" + query, **PAGE_HEADERS, **(headers or {})}


# --- the Compute Engine API ------------------------------------------------------------
# google-auth and requests only: three REST calls do not need the weight of a client
# library, and on Cloud Functions google.auth.default() finds the runtime's service account.


@functools.lru_cache(maxsize=1)
def compute():
    """An authorized session (one per instance: it reuses connections and the token)."""
    credentials, project = google.auth.default(scopes=SCOPES)
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or project
    endpoint = os.environ.get("COMPUTE_API_ENDPOINT", "https://compute.googleapis.com")
    zone = os.environ.get("COMPUTE_ZONE", "")
    if not project or not NAME.fullmatch(zone):
        raise Refused(503, "Not configured: set COMPUTE_ZONE (and GOOGLE_CLOUD_PROJECT).")
    base = f"{endpoint.rstrip('/')}/compute/v1/projects/{project}/zones/{zone}/instances"
    return AuthorizedSession(credentials), base, zone


def call(method, path="", **params):
    try:
        session, base, _ = compute()
        response = session.request(method, base + path, params=params, timeout=20)
    except GoogleAuthError as error:
        print(f"cloud-button: credentials: {error}", file=sys.stderr)
        raise Refused(502, "No usable credentials for the Compute Engine API.") from None
    except requests.RequestException as error:
        print(f"cloud-button: {method} {path}: {error}", file=sys.stderr)
        raise Refused(502, "The Compute Engine API could not be reached.") from None
    if response.status_code >= 400:
        try:
            reason = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            reason = f"HTTP {response.status_code}"
        print(f"cloud-button: {method} {path}: {reason}", file=sys.stderr)
        raise Refused(502, f"The Compute Engine API refused: {reason}"[:300])
    return response.json()


def list_instances():
    """Name, status and external IP of each instance in the zone, by name."""
    found, page = [], None
    for _ in range(20):  # 500 a page: 10,000 instances is more than a button wants
        params = {"fields": FIELDS, "maxResults": 500}
        if page:
            params["pageToken"] = page
        answer = call("GET", **params)
        for item in answer.get("items", []):
            ips = [
                config["natIP"]
                for nic in item.get("networkInterfaces", [])
                for config in nic.get("accessConfigs", [])
                if config.get("natIP")
            ]
            found.append({"name": item["name"], "status": item["status"], "ip": ", ".join(ips)})
        page = answer.get("nextPageToken")
        if not page:
            break
    return sorted(found, key=lambda i: i["name"])


# --- the function ----------------------------------------------------------------------


def manifest():
    return {
        "name": "Cloud button",
        "short_name": "Button",
        "start_url": ".",
        "scope": ".",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1a73e8",
        "icons": [{"src": "apple-touch-icon.png", "sizes": "180x180", "type": "image/png"}],
    }


@functions_framework.http
def button(request):
    """GET: the page. POST: login, logout, start or stop (form fields `action`, `instance`)."""
    try:
        return handle(request)
    except Refused as refusal:
        return text(refusal.status, refusal.message, refusal.headers)
    except HTTPException as error:  # malformed forms and the like, as werkzeug judges them
        return text(error.code or 400, error.name)


def handle(request):
    token = secret()
    key = hmac.new(token.encode(), b"cloud-button v1", hashlib.sha256).digest()
    if request.path == "/manifest.webmanifest":
        body = json.dumps(manifest())
        return body, 200, {"Content-Type": "application/manifest+json"}
    if request.path == "/apple-touch-icon.png":
        return ICON, 200, {"Content-Type": "image/png", "Cache-Control": "max-age=86400"}
    if request.path != "/":
        raise Refused(404, "Not found.")
    if request.method not in ("GET", "HEAD", "POST"):
        raise Refused(405, "Method not allowed.", {"Allow": "GET, HEAD, POST"})

    # Who is asking: a script with the token itself, or a browser with a session cookie.
    # A bearer request needs no CSRF token: browsers never add an Authorization header
    # to a cross-site request on their own, and a page that tried to set one would need
    # a CORS preflight this function never grants.
    auth = request.headers.get("Authorization", "")
    bearer = auth[:7].lower() == "bearer " and same(auth[7:].strip(), token)
    session = request.cookies.get(cookie_name(request), "")
    signed_in = bearer or valid_session(key, session)
    csrf = mac(key, "csrf " + session) if signed_in and not bearer else ""

    if request.method == "POST":
        if (request.content_length or 0) > MAX_BODY:
            raise Refused(413, "Request too large.")
        form = request.form
        action = form.get("action", "")
        if action == "login":
            if not same(form.get("token", ""), token):
                return login(request, 403, wrong=True)
            cookie = set_cookie(request, new_session(key), SESSION_DAYS * 86400)
            return redirect_home("signed-in", cookie)
        if not signed_in:
            return login(request, 403)
        if not bearer and not same(form.get("csrf", ""), csrf):
            raise Refused(403, "Stale or missing form token: reload the page and try again.")
        if action == "logout":
            return redirect_home("signed-out", set_cookie(request, "", 0))
        if action not in ("start", "stop"):
            raise Refused(400, "Unknown action: use start or stop.")
        name = form.get("instance", "")
        if not NAME.fullmatch(name):
            raise Refused(400, "Not an instance name.")
        # Act only on an instance this zone really has, as the page showed it.
        if name not in {i["name"] for i in list_instances()}:
            raise Refused(404, f"No instance {name} in this zone.")
        call("POST", f"/{name}/{action}")
        return redirect_home(f"{action}={name}")  # the page says what was asked

    # GET and HEAD only ever read.
    if not signed_in:
        return login(request, 403)
    instances = list_instances()
    # After a start or stop, say what was asked: the status takes a while to change.
    names = {i["name"] for i in instances}
    sent = next(
        ((a, n) for a, n in request.args.items() if a in ("start", "stop") and n in names), None
    )
    page = PAGE.render(
        zone=compute()[2], instances=instances, csrf=csrf, sent=sent, base=base_path(request)
    )
    return page, 200, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}


def login(request, status, wrong=False):
    """The page without instances: the token form. No Compute API call is made."""
    page = PAGE.render(zone=None, instances=None, wrong=wrong, base=base_path(request))
    return page, status, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}
