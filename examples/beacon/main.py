"""Browser beacons (page, scroll depth, screen size, user agent, referrer, time) into
Cloud Storage, one object per event.

Each page view carries an id the browser made (``crypto.randomUUID()``), and its event
is written once, to a name derived from that id, with ``if_generation_match=0``: the
object is created only if it does not exist yet. Concurrent beacons never touch each
other's objects, a write costs the same however many events are stored, and a beacon
sent twice is stored once.

Configuration (environment variables of the function):

    BEACON_BUCKET   the bucket the events go to (required)
    BEACON_ORIGINS  the origins whose pages may send beacons, separated by spaces or
                    commas: "https://example.com https://www.example.com"; "*" allows any
    BEACON_PREFIX   object name prefix, "events" by default

Storage is reached with the runtime's service account (Application Default
Credentials): no key file. It needs roles/storage.objectCreator on the bucket.
With STORAGE_EMULATOR_HOST set, the client library talks to that emulator instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import functions_framework
from google.api_core.exceptions import GoogleAPICallError, PreconditionFailed, RetryError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

logger = logging.getLogger("beacon")

BUCKET = os.environ.get("BEACON_BUCKET", "").strip()
ORIGINS = frozenset(
    o.rstrip("/").lower() for o in re.split(r"[\s,]+", os.environ.get("BEACON_ORIGINS", ""))
) - {""}
PREFIX = os.environ.get("BEACON_PREFIX", "events").strip().strip("/")
PREFIX = PREFIX + "/" if PREFIX else ""

if not BUCKET:
    logger.error("BEACON_BUCKET is not set: every beacon will be refused with a 500")
if not ORIGINS:
    logger.warning("BEACON_ORIGINS is not set: browsers' beacons will be refused (403)")

# The bounds of what is accepted. A real beacon is some 300 bytes.
MAX_BODY = 4 * 1024
MAX_URL = 2048
MAX_USER_AGENT = 512
MAX_SCREEN = 16384  # pixels a side
CLOCK_SKEW_MS = 24 * 3600 * 1000  # how far a browser's clock may be from ours
REQUIRED = ("page", "scroll_depth", "screen")
# beacon.js sends these too; a client that leaves them out gets the server's id and
# time and an empty referrer (without its own id, a beacon sent twice is two events).
OPTIONAL = ("id", "referrer", "time")
FIELDS = REQUIRED + OPTIONAL
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# A beacon nobody waits for should fail fast rather than hold an instance: each
# request to Cloud Storage may take 10 s, and retries (safe: the write is
# conditional) stop after 20 s.
STORE_TIMEOUT = 10
STORE_RETRY = DEFAULT_RETRY.with_timeout(20)

PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "7200",  # Chromium's ceiling, in seconds
}
TEXT = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


class Refused(Exception):
    """A request answered with a 4xx and a short message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@functions_framework.http
def beacon(request):
    """Store one beacon: POST a JSON event (text/plain or application/json)."""
    origin = request.headers.get("Origin")
    allowed = origin is not None and ("*" in ORIGINS or origin.lower() in ORIGINS)
    # The answer depends on Origin, so caches must key on it.
    cors = {"Vary": "Origin"}
    if allowed:
        cors["Access-Control-Allow-Origin"] = origin

    if request.method == "OPTIONS":
        # sendBeacon with a text/plain body needs no preflight; fetch() with
        # application/json does, and is answered here.
        if not allowed:
            return text(403, "origin not allowed", cors)
        return "", 204, {**cors, **PREFLIGHT}
    if request.method != "POST":
        return text(405, "only POST is accepted", {**cors, "Allow": "POST, OPTIONS"})
    # Browsers always send Origin with a POST: one from a page not on the list is
    # refused. (This keeps other sites' pages out; it authenticates nobody, since
    # any other client can send whatever Origin it likes.)
    if origin is not None and not allowed:
        return text(403, "origin not allowed", cors)

    try:
        event = read_event(request)
    except Refused as refused:
        return text(refused.status, refused.message, cors)

    if not BUCKET:
        logger.error("BEACON_BUCKET is not set: beacon %s not stored", event["id"])
        return text(500, "the beacon endpoint is not configured", cors)

    # The name is a function of the event alone (its id, and its day by the
    # browser's clock), so the same beacon sent again lands on the same name.
    day = datetime.fromtimestamp(event["time"] / 1000, tz=timezone.utc)
    name = f"{PREFIX}{day:%Y/%m/%d}/{event['id']}.json"
    record = {
        **event,
        "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
        "received": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    try:
        bucket().blob(name).upload_from_string(
            json.dumps(record, separators=(",", ":")),
            content_type="application/json",
            if_generation_match=0,  # create, never overwrite
            timeout=STORE_TIMEOUT,
            retry=STORE_RETRY,
        )
    except PreconditionFailed:
        pass  # already stored: this is the same beacon again
    except GoogleAPICallError as error:  # Cloud Storage answered with an error
        logger.error("storing %s failed: %s", name, error)
        return text(502, "the event could not be stored", cors)
    except RetryError as error:  # transient errors that outlasted STORE_RETRY
        logger.error("storing %s failed: %s", name, error)
        return text(503, "storage is unavailable, try again later", cors)
    except Exception:  # anything else: no credentials, a bug; the log gets the traceback
        logger.exception("storing %s failed", name)
        return text(503, "storage is unavailable, try again later", cors)
    return "", 204, cors


def read_event(request) -> dict:
    """The validated event of a request, or Refused."""
    if request.mimetype not in ("text/plain", "application/json"):
        raise Refused(415, "send JSON as text/plain or application/json")
    # Refuse by the declared length before reading anything, and read no more than
    # the bound either way (a chunked body declares none).
    if (request.content_length or 0) > MAX_BODY:
        raise Refused(413, f"body over {MAX_BODY} bytes")
    body = read_at_most(request.stream, MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused(413, f"body over {MAX_BODY} bytes")
    try:
        payload = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=unique_keys,
            parse_constant=no_constant,  # NaN, Infinity
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Refused(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise Refused(400, f"unknown field: {unknown[0][:40]}")
    for field in REQUIRED:
        if field not in payload:
            raise Refused(400, f"missing field: {field}")
    payload.setdefault("id", str(uuid.uuid4()))
    payload.setdefault("referrer", "")
    now = time.time_ns() // 1_000_000
    payload.setdefault("time", now)

    if not isinstance(payload["id"], str) or not UUID4.fullmatch(payload["id"]):
        raise Refused(400, "id: not a lowercase UUID v4")
    if not is_url(payload["page"]):
        raise Refused(400, f"page: not an http(s) URL of at most {MAX_URL} characters")
    if payload["referrer"] != "" and not is_url(payload["referrer"]):
        raise Refused(400, "referrer: neither empty nor an http(s) URL")
    if not is_int(payload["scroll_depth"], 0, 100):
        raise Refused(400, "scroll_depth: not an integer from 0 to 100")
    screen = payload["screen"]
    if not (
        isinstance(screen, dict)
        and set(screen) == {"width", "height"}
        and is_int(screen["width"], 1, MAX_SCREEN)
        and is_int(screen["height"], 1, MAX_SCREEN)
    ):
        raise Refused(400, f"screen: not {{width, height}} in pixels, 1 to {MAX_SCREEN}")
    if not is_int(payload["time"], now - CLOCK_SKEW_MS, now + CLOCK_SKEW_MS):
        raise Refused(400, "time: not milliseconds since the epoch within a day of now")
    return payload


def read_at_most(stream, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream``: a read may return less than asked."""
    chunks = []
    left = limit
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def is_int(value: object, low: int, high: int) -> bool:
    # JSON's true and false arrive as Python bools, which are ints too.
    return type(value) is int and low <= value <= high


def is_url(value: object) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL:
        return False
    try:
        url = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.netloc)


def unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def text(status: int, message: str, headers: dict) -> tuple:
    """A short plain-text answer: what was wrong, never a traceback."""
    return message + "\n", status, {**headers, **TEXT}


_client = None
_client_lock = threading.Lock()


def bucket() -> storage.Bucket:
    """The bucket, through one client per instance, made on first use.

    storage.Client() finds Application Default Credentials: on Cloud Functions, the
    runtime service account's, from the metadata server.
    """
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = storage.Client()
    return _client.bucket(BUCKET)
