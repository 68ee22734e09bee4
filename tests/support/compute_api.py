"""A loopback contract fake of the Compute Engine API: instances of one zone, listed,
started and stopped.

Every request is checked against the ``compute.v1`` discovery document that ships
with google-api-python-client: the method and path must be those of
``instances.list``, ``instances.start`` or ``instances.stop``, each path parameter
must match its pattern, each query parameter must be one the method (or the API)
declares, of its type, and a method without a request body gets none. Anything
else is a recorded violation, answered as Google answers it (404 for a URL that
is no method, 400 for a bad parameter). Requests need a bearer token that the
fake's own ``/token`` endpoint issued (for an assertion signed by a key the test wrote
with :func:`support.oauth.service_account_file`), for a scope the method accepts. The fake's
own answers are checked against the document's ``InstanceList`` and
``Operation`` schemas too. Every API request is recorded.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .functions_api import Recorded, Schema
from .oauth import TokenEndpoint
from .servers import JsonHandler, running

METHODS = ("list", "start", "stop")
ANSWERS = {"list": "InstanceList", "start": "Operation", "stop": "Operation"}


def compute_document() -> dict[str, Any]:
    import googleapiclient

    path = Path(googleapiclient.__file__).parent / "discovery_cache/documents/compute.v1.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


class ComputeSchema(Schema):
    """The Cloud Functions fake's schema validation, over the compute.v1 document."""

    def __init__(self) -> None:
        self.version = "v1"
        self.doc = compute_document()
        self.schemas = self.doc["schemas"]

    def check_answer(self, ref: str, value: Any) -> list[str]:
        # Output-only fields belong in answers; Schema flags them for requests.
        return [e for e in self.validate(ref, value) if not e.endswith("set in a request")]


@dataclass
class Route:
    """One discovery method, as a matcher of request paths."""

    name: str
    http_method: str
    path: re.Pattern[str]
    spec: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any], name: str) -> Route:
        spec = doc["resources"]["instances"]["methods"][name]
        service = "/" + doc["servicePath"]  # "/compute/v1/"
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(spec["flatPath"]))
        return cls(name, spec["httpMethod"], re.compile(re.escape(service) + pattern), spec)


def _param_errors(spec: dict[str, Any], name: str, value: str) -> list[str]:
    """A query or path parameter's value against its discovery declaration."""
    kind, fmt = spec.get("type"), spec.get("format")
    if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
        return [
            f"Invalid value for field '{name}': '{value}'. Must be a match of regex "
            f"'{spec['pattern']}'"
        ]
    if kind == "boolean" and value not in ("true", "false"):
        return [f"Invalid value for field '{name}': '{value}'. Not a boolean."]
    if kind == "integer" or fmt in ("int32", "uint32", "int64", "uint64"):
        if not re.fullmatch(r"-?\d+", value):
            return [f"Invalid value for field '{name}': '{value}'. Not an integer."]
        low, high = spec.get("minimum"), spec.get("maximum")
        if fmt and fmt.startswith("u") and int(value) < 0:
            return [f"Invalid value for field '{name}': '{value}'. Must be non-negative."]
        if (low is not None and int(value) < int(low)) or (
            high is not None and int(value) > int(high)
        ):
            return [f"Invalid value for field '{name}': '{value}'. Out of range."]
    if "enum" in spec and value not in spec["enum"]:
        return [f"Invalid value for field '{name}': '{value}'. Not one of {spec['enum']}."]
    return []


@dataclass
class Injected:
    """Answer the next ``times`` calls of method ``name`` with this Compute error."""

    name: str
    status: int
    message: str
    reason: str = "forbidden"
    times: int = 1


@dataclass
class FakeCompute:
    project: str = "demo-proj"
    zone: str = "asia-northeast1-b"
    # name → {"status": "RUNNING" | "TERMINATED", "ip": external IP while running or None}
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    inject: list[Injected] = field(default_factory=list)
    oauth: TokenEndpoint = field(default_factory=lambda: TokenEndpoint("ya29.compute-fake"))
    base: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.schema = ComputeSchema()
        self.routes = [Route.of(self.schema.doc, name) for name in METHODS]

    def reset(self, instances: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self.instances = json.loads(json.dumps(instances))
            self.requests.clear()
            self.violations.clear()
            self.inject.clear()

    def changes(self) -> list[Recorded]:
        """The requests that would change something: start and stop."""
        return [r for r in self.requests if r.method != "GET"]

    def status(self, name: str) -> str:
        return str(self.instances[name]["status"])

    # --- the API ------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes, auth: str
    ) -> tuple[int, Any]:
        access = self.oauth.access(auth)
        if access is None:
            return _error(
                401,
                "Request is missing required authentication credential. "
                "Expected OAuth 2 access token.",
                "authError",
            )
        candidates = [r for r in self.routes if r.path.fullmatch(path)]
        route = next((r for r in candidates if r.http_method == method), None)
        if route is None:
            takes = f" (that path takes {sorted({r.http_method for r in candidates})})"
            return self._violation(
                404,
                f"{method} {path} is no instances.list/start/stop "
                f"method{takes if candidates else ''}",
            )
        spec = route.spec
        if not set(spec["scopes"]) & access.scopes:
            return _error(
                403,
                "Request had insufficient authentication scopes.",
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            )
        params = route.path.fullmatch(path).groupdict()  # type: ignore[union-attr]
        problems = []
        for name, value in params.items():
            problems += _param_errors(spec["parameters"][name], name, urllib.parse.unquote(value))
        for name, values in query.items():
            declared = spec["parameters"].get(name) or self.schema.doc["parameters"].get(name)
            if declared is None or declared.get("location") != "query":
                problems.append(f'Unknown name "{name}": Cannot bind query parameter.')
                continue
            if len(values) > 1 and not declared.get("repeated"):
                problems.append(f"Query parameter '{name}' given {len(values)} times.")
            for value in values:
                problems += _param_errors(declared, name, value)
        if "request" not in spec and raw.strip():
            problems.append(f"compute.instances.{route.name} takes no request body")
        if problems:
            return self._violation(400, *problems)
        for fault in self.inject:
            if fault.times > 0 and fault.name == route.name:
                fault.times -= 1
                return _error(fault.status, fault.message, fault.reason)
        zone_path = f"projects/{params['project']}/zones/{params['zone']}"
        if params["project"] != self.project or params["zone"] != self.zone:
            return _error(404, f"The resource '{zone_path}' was not found", "notFound")
        answer: dict[str, Any] | None
        if route.name == "list":
            if not query.get("pageToken", ["0"])[-1].isdigit():
                return _error(400, "Invalid value for field 'pageToken'.", "invalid")
            answer = self._list(query)
        else:
            answer = self._act(route.name, params["instance"])
            if answer is None:
                return _error(
                    404,
                    f"The resource '{zone_path}/instances/{params['instance']}' was not found",
                    "notFound",
                )
        # The fake keeps its own side of the contract too.
        problems = self.schema.check_answer(ANSWERS[route.name], answer)
        if problems:
            self.violations.extend(f"fake's answer: {p}" for p in problems)
        return 200, answer

    def _link(self, *parts: str) -> str:
        return "/".join(
            (
                f"https://www.googleapis.com/compute/v1/projects/{self.project}",
                "zones",
                self.zone,
                *parts,
            )
        )

    def _instance(self, name: str) -> dict[str, Any]:
        state = self.instances[name]
        access: dict[str, Any] = {
            "kind": "compute#accessConfig",
            "type": "ONE_TO_ONE_NAT",
            "name": "External NAT",
            "networkTier": "PREMIUM",
        }
        if state["status"] == "RUNNING" and state.get("ip"):
            access["natIP"] = state["ip"]  # an ephemeral IP goes while the instance is off
        return {
            "kind": "compute#instance",
            "id": str(abs(hash(name)) % 10**18),
            "name": name,
            "zone": self._link(),
            "status": state["status"],
            "machineType": self._link("machineTypes", "e2-small"),
            "networkInterfaces": [
                {
                    "kind": "compute#networkInterface",
                    "name": "nic0",
                    "network": f"https://www.googleapis.com/compute/v1/projects/{self.project}"
                    "/global/networks/default",
                    "networkIP": "10.146.0.2",
                    "accessConfigs": [access] if state.get("ip") else [],
                }
            ],
            "selfLink": self._link("instances", name),
        }

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        names = sorted(self.instances)
        size = int(query.get("maxResults", ["500"])[-1]) or 500
        start = int(query.get("pageToken", ["0"])[-1] or 0)
        answer: dict[str, Any] = {
            "kind": "compute#instanceList",
            "id": f"projects/{self.project}/zones/{self.zone}/instances",
            "items": [self._instance(n) for n in names[start : start + size]],
            "selfLink": self._link("instances"),
        }
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        return answer

    def _act(self, verb: str, name: str) -> dict[str, Any] | None:
        if name not in self.instances:
            return None
        self.instances[name]["status"] = "RUNNING" if verb == "start" else "TERMINATED"
        number = next(self._ids)
        return {
            "kind": "compute#operation",
            "id": str(7000000000000000000 + number),
            "name": f"operation-{number}",
            "zone": self._link(),
            "operationType": verb,
            "targetLink": self._link("instances", name),
            "targetId": str(abs(hash(name)) % 10**18),
            "status": "RUNNING",
            "user": f"button@{self.project}.iam.gserviceaccount.com",
            "progress": 0,
            "insertTime": "2026-01-01T00:00:00.000-08:00",
            "startTime": "2026-01-01T00:00:00.000-08:00",
            "selfLink": self._link("operations", f"operation-{number}"),
        }

    def _violation(self, status: int, *problems: str) -> tuple[int, Any]:
        self.violations.extend(problems)
        reason = "notFound" if status == 404 else "invalid"
        return _error(status, "; ".join(problems), reason)


def _error(status: int, message: str, reason: str) -> tuple[int, Any]:
    """Compute's error shape: the legacy ``errors`` list beside code and message."""
    return status, {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }


def _handler(fake: FakeCompute) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            raw = self.body()
            auth = self.headers.get("Authorization", "")
            with fake._lock:
                if url.path == "/token" and self.command == "POST":
                    status, answer = fake.oauth.grant(raw)
                else:
                    try:
                        body = json.loads(raw) if raw.strip() else None
                    except ValueError:
                        body = raw.decode(errors="replace")
                    flat = {k: v[-1] for k, v in query.items()}
                    fake.requests.append(Recorded(self.command, url.path, flat, body, auth))
                    status, answer = fake.handle(self.command, url.path, query, raw, auth)
            self.send_json(status, answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


@contextmanager
def fake_compute(**kwargs: Any) -> Iterator[FakeCompute]:
    fake = FakeCompute(**kwargs)
    with running(_handler(fake)) as base, fake.oauth.at(base):
        fake.base = base
        yield fake
