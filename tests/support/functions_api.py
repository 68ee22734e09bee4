"""A loopback contract fake of the Cloud Functions REST API (v1 and v2).

Every request is matched against the methods of the discovery document that
ships with google-api-python-client, and its body checked against the
document's schemas: unknown fields, wrong types, values outside an enum,
malformed ``int64``/``google-duration``/``google-datetime``/``byte`` strings
and output-only fields are contract violations, recorded and answered with
400. Update masks are checked path by path against the same schema; query
parameters against the method's. A URL that is no method of the API (or one
the fake does not play), a project other than the fake's, and a poll of an
operation the fake never started are recorded violations too. Requests need a
bearer token the fake's own ``/token`` endpoint issued (401, recorded, if not).

The fake keeps functions in memory and plays the long-running operation: it
finishes after a few polls, fails with state messages, or never finishes. A v2
operation reports its stages in its metadata as the real API does
(``GoogleCloudFunctionsV2OperationMetadata.stages``: ``BUILD``, ``SERVICE``, and
``TRIGGER`` for an event function, each ``NOT_STARTED``, ``IN_PROGRESS`` or
``COMPLETE``), moving on stage by stage as the operation is polled. It can also
answer the next matching request with an error as the real API words it (API
not enabled, permission denied, quota exceeded).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from pyfn_action.cloud.upload import Uploaded

from .oauth import TokenEndpoint
from .servers import JsonHandler, running

HOST = "127.0.0.1"
# Every token the fake's /token issues starts with this (then "-1", "-2", ...).
TOKEN = "ya29.fake-access-token-for-loopback-tests"  # noqa: S105 - a test double's token
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The methods the fake plays, by discovery id without the "cloudfunctions." prefix.
PLAYED = {
    "projects.locations.functions.get",
    "projects.locations.functions.create",
    "projects.locations.functions.patch",
    "operations.get",  # v1
    "projects.locations.operations.get",  # v2
}
# System parameters Google's client libraries send beside the discovery document's.
SYSTEM_PARAMETERS = {"$alt", "$fields", "$prettyPrint"}
RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
_FIELD = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
FIELD_MASK = re.compile(f"(?:{_FIELD}(?:,{_FIELD})*)?")
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2}")
# A bundle as `pyfn upload` leaves it in the staging bucket, for plans made without one.
STAGED = Uploaded(
    bucket="stage",
    object="pyfn/hello/" + "a" * 64 + ".zip",
    generation=1712345678901234,
    size=10,
    sha256="a" * 64,
    md5="md5",
    crc32c="crc",
    skipped=False,
)


def discovery_document(version: str) -> dict[str, Any]:
    import googleapiclient

    path = (
        Path(googleapiclient.__file__).parent
        / "discovery_cache"
        / "documents"
        / f"cloudfunctions.{version}.json"
    )
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


class Schema:
    """Validation of JSON values against one discovery document's schemas."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.doc = discovery_document(version)
        self.schemas: dict[str, Any] = self.doc["schemas"]

    def validate(self, ref: str, value: Any, where: str = "") -> list[str]:
        return self._check(self.schemas[ref], value, where or ref, top=True)

    def _check(
        self, schema: dict[str, Any], value: Any, where: str, top: bool = False
    ) -> list[str]:
        if "$ref" in schema:
            return self._check(self.schemas[schema["$ref"]], value, where)
        kind = schema.get("type")
        errors: list[str] = []
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {value!r}"]
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if props is not None and key in props:
                    spec = props[key]
                    if spec.get("readOnly"):
                        errors.append(f"{where}.{key}: output-only field set in a request")
                    errors += self._check(spec, item, f"{where}.{key}")
                elif extra is not None:
                    errors += self._check(extra, item, f"{where}[{key!r}]")
                else:
                    errors.append(f"{where}.{key}: unknown field")
            return errors
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {value!r}"]
            for i, item in enumerate(value):
                errors += self._check(schema["items"], item, f"{where}[{i}]")
            return errors
        if kind == "string":
            enum = schema.get("enum")
            if enum is not None:
                # Google's REST clients may send enums as numbers ($alt=json;enum-encoding=int).
                if isinstance(value, int) and not isinstance(value, bool):
                    if not 0 <= value < len(enum):
                        return [f"{where}: enum number {value} out of range"]
                    return []
                if value not in enum:
                    return [f"{where}: {value!r} is not one of {enum}"]
                return []
            if not isinstance(value, str):
                return [f"{where}: expected a string, got {value!r}"]
            return _format_errors(schema.get("format"), value, where)
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return [f"{where}: expected an integer, got {value!r}"]
            if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
                return [f"{where}: {value} does not fit int32"]
            return []
        if kind == "boolean":
            return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
        if kind == "number":
            return [] if isinstance(value, (int, float)) else [f"{where}: expected a number"]
        if kind == "any":
            return []
        return [f"{where}: schema type {kind!r} not understood by the fake"]

    def method(self, http_method: str, path: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The discovery method ``http_method path`` calls (None: no method of the API), and
        the other methods that take that path."""
        others = []
        for spec in _methods(self.doc):
            pattern = re.sub(r"\\\{(\w+)\\\}", r"[^/:]+", re.escape(spec["flatPath"]))
            if re.fullmatch("/" + pattern, path):
                if spec["httpMethod"] == http_method:
                    return spec, []
                others.append(spec["httpMethod"])
        return None, others

    def mask_errors(self, ref: str, mask: str) -> list[str]:
        errors = []
        for path in filter(None, mask.split(",")):
            schema = self.schemas[ref]
            for part in path.split("."):
                while "$ref" in schema:
                    schema = self.schemas[schema["$ref"]]
                props = schema.get("properties", {})
                if part not in props:
                    errors.append(f"updateMask: {path!r} is not a field of {ref}")
                    break
                if props[part].get("readOnly"):
                    errors.append(f"updateMask: {path!r} is output-only")
                    break
                schema = props[part]
        return errors


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str


@dataclass
class Injected:
    """Answer the next ``times`` requests whose method and path match with this error."""

    method: str
    path_contains: str
    status: int
    status_name: str
    message: str
    reason: str | None = None
    times: int = 1


@dataclass
class FakeFunctions:
    project: str = "demo-proj"
    regions: tuple[str, ...] = ("us-central1", "asia-northeast1", "europe-west1")
    outcome: str = "succeed"  # "succeed", "fail" or "never"
    polls_to_finish: int = 2
    functions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # by version
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    inject: list[Injected] = field(default_factory=list)
    oauth: TokenEndpoint = field(default_factory=lambda: TokenEndpoint(TOKEN))
    # (bucket, object, generation) → does that object exist? Checks the deploy's source.
    source_exists: Callable[[str, str, str | None], bool] | None = None
    base: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _polls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def changes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in ("POST", "PATCH", "DELETE")]

    # --- the API ------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        for fault in self.inject:
            if fault.times > 0 and fault.method == method and fault.path_contains in path:
                fault.times -= 1
                return _error(fault.status, fault.status_name, fault.message, fault.reason)
        m = re.fullmatch(r"/(v1|v2)/(.*)", path)
        if not m:
            return self._violation(f"{method} {path} is no method of the Cloud Functions API",
                                   status=404, name="NOT_FOUND")  # fmt: skip
        version, rest = m.groups()
        schema = schema_of(version)
        spec, others = schema.method(method, path)
        if spec is None:
            takes = f" (that path takes {sorted(set(others))})" if others else ""
            return self._violation(
                f"{method} {path} is no method of the Cloud Functions {version} API{takes}",
                status=404,
                name="NOT_FOUND",
            )
        if spec["id"].removeprefix("cloudfunctions.") not in PLAYED:
            return self._violation(f"{method} {path} calls {spec['id']}, which the fake does "
                                   "not play", status=501, name="UNIMPLEMENTED")  # fmt: skip
        problems = _query_errors(schema, spec, query)
        if "request" not in spec and body is not None:
            problems.append(f"{spec['id']} takes no request body")
        if problems:
            return self._violation(*problems)
        project = rest.split("/")[1] if rest.startswith("projects/") else self.project
        if project != self.project:
            return self._violation(
                f"{path}: project {project!r} is not the fake's project {self.project!r}",
                status=403,
                name="PERMISSION_DENIED",
            )
        if spec["id"].endswith("operations.get"):
            return self._operation(rest, version)
        fm = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/functions(?:/([^/]+))?", rest)
        if not fm:
            return _error(404, "NOT_FOUND", f"no such resource {rest}")
        project, region, name = fm.groups()
        if region not in self.regions:
            return _error(404, "NOT_FOUND",
                          f"Location projects/{project}/locations/{region} is not found or "
                          "access is unauthorized.")  # fmt: skip
        full = f"projects/{project}/locations/{region}/functions/{name}"
        ref = "Function" if version == "v2" else "CloudFunction"
        functions = self.functions.setdefault(version, {})
        if method == "GET" and name:
            found = functions.get(full)
            if found is None:
                return _error(404, "NOT_FOUND", f"Resource '{full}' was not found")
            return 200, found
        if method == "POST" and not name:
            if version == "v2":
                fid = query.get("functionId")
                if not fid:
                    return self._violation("create: functionId query parameter missing")
                full = f"projects/{project}/locations/{region}/functions/{fid}"
            else:
                full = body.get("name", "") if isinstance(body, dict) else ""
                parent = f"projects/{project}/locations/{region}/functions/"
                if not re.fullmatch(re.escape(parent) + r"[^/]+", str(full)):
                    return self._violation(f"create: name {full!r} is not a function of {parent}")
            problems = schema.validate(ref, body)
            problems += self._contract(version, body, full)
            if problems:
                return self._violation(*problems)
            if full in functions:
                return _error(409, "ALREADY_EXISTS", f"Function {full} already exists")
            return self._start(version, full, dict(body), "create")
        if method == "PATCH" and name:
            mask = query.get("updateMask", "")
            problems = schema.validate(ref, body) + schema.mask_errors(ref, mask)
            if not mask:
                problems.append("update without an updateMask would replace every field")
            problems += self._contract(version, body, full)
            if problems:
                return self._violation(*problems)
            if full not in functions:
                return _error(404, "NOT_FOUND", f"Resource '{full}' was not found")
            merged = json.loads(json.dumps(functions[full]))
            for path in mask.split(","):
                _copy_path(body, merged, path.split("."))
            return self._start(version, full, merged, "update")
        raise AssertionError(f"{spec['id']} is played but not handled")

    def _contract(self, version: str, body: Any, full: str) -> list[str]:
        """What the API needs beyond the schema, for the fields a deploy must send."""
        if not isinstance(body, dict):
            return ["body is not an object"]
        problems = []
        # A PATCH carries the name in its path; REST transcoding may drop it from the body.
        if body.get("name", full) != full:
            problems.append(f"name {body.get('name')!r} does not match {full!r}")
        if version == "v2":
            storage = (body.get("buildConfig") or {}).get("source", {}).get("storageSource", {})
            for key in ("bucket", "object", "generation"):
                if not storage.get(key):
                    problems.append(f"buildConfig.source.storageSource.{key} missing")
            exists = self.source_exists
            if (
                not problems
                and exists is not None
                and not exists(storage["bucket"], storage["object"], storage["generation"])
            ):
                problems.append("the source object at that generation does not exist")
        else:
            url = body.get("sourceArchiveUrl", "")
            m = re.fullmatch(r"gs://([^/]+)/(.+)", url)
            if not m:
                problems.append(f"sourceArchiveUrl {url!r} is not gs://BUCKET/OBJECT")
            elif self.source_exists is not None and not self.source_exists(m[1], m[2], None):
                problems.append("the source object does not exist")
        return problems

    def _violation(
        self, *problems: str, status: int = 400, name: str = "INVALID_ARGUMENT"
    ) -> tuple[int, Any]:
        self.violations.extend(problems)
        return _error(status, name, "; ".join(problems))

    def authorized(self, authorization: str) -> bool:
        """A bearer token this fake's /token issued, or a self-signed JWT of one of its keys
        for the Cloud Functions API."""
        access = self.oauth.access(authorization)
        return access is not None and (
            CLOUD_PLATFORM in access.scopes
            or access.audience.startswith("https://cloudfunctions.googleapis.com")
        )

    def _start(
        self, version: str, full: str, function: dict[str, Any], verb: str
    ) -> tuple[int, Any]:
        function = json.loads(json.dumps(function))
        if version == "v2":
            function["state"] = "DEPLOYING"
            function.setdefault("environment", "GEN_2")
            op_name = f"{full.rsplit('/functions/', 1)[0]}/operations/operation-{next(self._ids)}"
        else:
            function["status"] = "DEPLOY_IN_PROGRESS"
            op_name = f"operations/op-{next(self._ids)}"
        self.functions.setdefault(version, {})[full] = function
        stages = _stage_names(function)
        operation = {
            "name": op_name,
            "done": False,
            "metadata": _metadata(version, full, verb, _progress(stages, 0, self.polls_to_finish)),
        }
        self.operations[op_name] = {"op": operation, "function": full, "version": version,
                                    "verb": verb, "stages": stages}  # fmt: skip
        self._polls[op_name] = 0
        return 200, operation

    def _operation(self, name: str, version: str) -> tuple[int, Any]:
        entry = self.operations.get(name)
        if entry is None or entry["version"] != version:
            return self._violation(f"poll of {version} operation {name}, which the fake never "
                                   "started", status=404, name="NOT_FOUND")  # fmt: skip
        op, version, full = entry["op"], entry["version"], entry["function"]
        if op["done"] or self.outcome == "never":
            return 200, op
        self._polls[name] += 1
        verb, stages = entry["verb"], entry["stages"]
        if self._polls[name] < self.polls_to_finish:
            # A failing operation fails in its build: no stage after it starts.
            polls = 0 if self.outcome == "fail" else self._polls[name]
            op["metadata"] = _metadata(version, full, verb,
                                       _progress(stages, polls, self.polls_to_finish))  # fmt: skip
            return 200, op
        function = self.functions[version][full]
        if self.outcome == "fail":
            messages = [
                {
                    "severity": "ERROR",
                    "type": "BuildFailed",
                    "message": "Build failed: npm ERR! missing script: start",
                },
            ]
            if version == "v2":
                function["state"] = "FAILED"
                function["stateMessages"] = messages
            else:
                function["status"] = "OFFLINE"
            progress = _progress(stages, 0, self.polls_to_finish)
            progress[0] = {**progress[0], "state": "COMPLETE", "stateMessages": messages}
            op["metadata"] = _metadata(version, full, verb, progress)
            op["error"] = {"code": 3, "message": "Build failed with status: FAILURE"}
        else:
            fname = full.rsplit("/", 1)[1]
            region = full.split("/")[3]
            url = f"https://{region}-{self.project}.cloudfunctions.net/{fname}"
            if version == "v2":
                function["state"] = "ACTIVE"
                function.pop("stateMessages", None)  # an earlier failure's, now repaired
                function["url"] = url
                function.setdefault("serviceConfig", {})["uri"] = f"https://{fname}-x.a.run.app"
                type_url = "type.googleapis.com/google.cloud.functions.v2.Function"
            else:
                function["status"] = "ACTIVE"
                if "eventTrigger" not in function:
                    function["httpsTrigger"] = {"url": url, "securityLevel": "SECURE_ALWAYS"}
                type_url = "type.googleapis.com/google.cloud.functions.v1.CloudFunction"
            op["metadata"] = _metadata(version, full, verb, _progress(stages, 1, 1))
            op["response"] = {"@type": type_url, **function}
        op["done"] = True
        return 200, op


@functools.cache
def schema_of(version: str) -> Schema:
    return Schema(version)


def _methods(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every method of a discovery document (or one of its resources)."""
    yield from resource.get("methods", {}).values()
    for sub in resource.get("resources", {}).values():
        yield from _methods(sub)


def _format_errors(fmt: str | None, value: str, where: str) -> list[str]:
    """A string field's value against its discovery ``format``."""
    if fmt in ("int64", "uint64", "int32", "uint32"):
        low, high = (0, 2**64) if fmt == "uint64" else (-(2**63), 2**63)
        if fmt.endswith("32"):
            low, high = (0, 2**32) if fmt == "uint32" else (-(2**31), 2**31)
        if not re.fullmatch(r"-?\d+", value) or not low <= int(value) < high:
            return [f"{where}: {value!r} is not an {fmt} string"]
    elif fmt == "google-duration":
        if not re.fullmatch(r"-?\d+(\.\d{1,9})?s", value):
            return [f"{where}: {value!r} is not a duration like 60s"]
    elif fmt == "google-datetime":
        m = RFC3339.fullmatch(value)
        try:
            if m is None:
                raise ValueError(value)
            datetime.fromisoformat(f"{m[1]}T{m[2]}{'+00:00' if m[4] == 'Z' else m[4]}")
        except ValueError:
            return [f"{where}: {value!r} is not an RFC 3339 timestamp like "
                    "2024-05-01T12:00:00Z"]  # fmt: skip
    elif fmt == "byte":
        padded = value.rstrip("=")
        if (
            not BASE64.fullmatch(value)
            or len(padded) % 4 == 1
            or (padded != value and len(value) % 4)
        ):
            return [f"{where}: {value!r} is not base64"]
    elif fmt == "google-fieldmask" and not FIELD_MASK.fullmatch(value):
        return [f"{where}: {value!r} is not a field mask"]
    return []


def _query_errors(schema: Schema, spec: dict[str, Any], query: dict[str, str]) -> list[str]:
    """The query parameters against the method's (and the API's) declarations."""
    problems = []
    for key, value in query.items():
        declared = spec.get("parameters", {}).get(key) or schema.doc["parameters"].get(key)
        if key in SYSTEM_PARAMETERS:
            continue
        if declared is None or declared.get("location") != "query":
            problems.append(f'Unknown name "{key}": Cannot bind query parameter.')
            continue
        if declared.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
            problems.append(f"Invalid value for {key}: {value!r} is not an integer")
        elif "enum" in declared and value not in declared["enum"]:
            problems.append(f"Invalid value for {key}: {value!r} is not one of "
                            f"{declared['enum']}")  # fmt: skip
        else:
            problems += _format_errors(declared.get("format"), value, key)
    return problems


# What each stage says while it runs, by verb (the wording is the fake's: pyfn shows
# whatever message a stage has).
STAGE_MESSAGES = {
    ("BUILD", "create"): "Building the function",
    ("BUILD", "update"): "Building the function",
    ("SERVICE", "create"): "Creating Cloud Run service",
    ("SERVICE", "update"): "Updating Cloud Run service",
    ("TRIGGER", "create"): "Creating Eventarc trigger",
    ("TRIGGER", "update"): "Updating Eventarc trigger",
}


def _stage_names(function: dict[str, Any]) -> list[str]:
    """The stages a v2 deployment of ``function`` goes through, in order."""
    return ["BUILD", "SERVICE"] + (["TRIGGER"] if "eventTrigger" in function else [])


def _progress(names: list[str], polls: int, total: int) -> list[dict[str, Any]]:
    """The stages after ``polls`` of the ``total`` polls that finish the operation: those
    before the running one are ``COMPLETE``, the ones after it ``NOT_STARTED``."""
    if polls >= total:
        return [{"name": n, "state": "COMPLETE"} for n in names]
    running = polls * len(names) // max(total, 1)
    return [{"name": n, "state": "COMPLETE"} if i < running
            else {"name": n, "state": "IN_PROGRESS"} if i == running
            else {"name": n, "state": "NOT_STARTED"}
            for i, n in enumerate(names)]  # fmt: skip


def _metadata(version: str, target: str, verb: str,
              stages: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """An operation's metadata: ``OperationMetadataV1`` (which has no stages) for v1,
    ``GoogleCloudFunctionsV2OperationMetadata`` with ``stages`` for v2."""
    if version == "v1":
        kind = {"create": "CREATE_FUNCTION", "update": "UPDATE_FUNCTION"}.get(verb, verb)
        return {
            "@type": "type.googleapis.com/google.cloud.functions.v1.OperationMetadataV1",
            "target": target,
            "type": kind,
        }
    project, region, name = target.split("/")[1], target.split("/")[3], target.split("/")[-1]
    resources = {
        "BUILD": (f"projects/{project}/locations/{region}/builds/{name}-build",
                  f"https://console.cloud.google.com/cloud-build/builds;region={region}/"
                  f"{name}-build?project={project}"),
        "SERVICE": (f"projects/{project}/locations/{region}/services/{name}",
                    f"https://console.cloud.google.com/run/detail/{region}/{name}"
                    f"?project={project}"),
        "TRIGGER": (f"projects/{project}/locations/{region}/triggers/{name}-trigger",
                    f"https://console.cloud.google.com/eventarc/triggers/{region}/"
                    f"{name}-trigger?project={project}"),
    }  # fmt: skip
    shown = []
    for stage in stages:
        stage = dict(stage)
        if stage["state"] != "NOT_STARTED":
            stage["resource"], stage["resourceUri"] = resources[stage["name"]]
        if stage["state"] == "IN_PROGRESS":
            stage["message"] = STAGE_MESSAGES[(stage["name"], verb)]
        shown.append(stage)
    return {
        "@type": "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
        "target": target,
        "verb": verb,
        "apiVersion": "v2",
        "operationType": {"create": "CREATE_FUNCTION", "update": "UPDATE_FUNCTION"}[verb],
        "stages": shown,
    }


def _copy_path(src: Any, dst: dict[str, Any], parts: list[str]) -> None:
    head, *rest = parts
    if not isinstance(src, dict) or head not in src:
        dst.pop(head, None)  # a masked field absent from the body is cleared
        return
    if not rest:
        dst[head] = src[head]
        return
    _copy_path(src[head], dst.setdefault(head, {}), rest)


def _error(status: int, name: str, message: str, reason: str | None = None) -> tuple[int, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "cloudfunctions.googleapis.com"},
            }
        ]
    return status, {"error": error}


def _handler(fake: FakeFunctions) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            raw = self.body()
            auth = self.headers.get("Authorization", "")
            with fake._lock:
                if url.path == "/token" and self.command == "POST":
                    # OAuth token exchange, for the service account keys the tests write.
                    self.send_json(*fake.oauth.grant(raw))
                    return
                try:
                    body = json.loads(raw) if raw.strip() else None
                    not_json = False
                except ValueError:
                    body, not_json = raw.decode(errors="replace"), True
                fake.requests.append(Recorded(self.command, url.path, query, body, auth))
                if not fake.authorized(auth):
                    fake.violations.append(f"{self.command} {url.path}: no bearer token that "
                                           "the fake's /token issued")  # fmt: skip
                    status, answer = _error(401, "UNAUTHENTICATED",
                                            "Request had invalid authentication credentials. "
                                            "Expected OAuth 2 access token.")  # fmt: skip
                elif not_json:
                    status, answer = fake._violation(f"{self.command} {url.path}: the body is "
                                                     "not JSON")  # fmt: skip
                else:
                    status, answer = fake.handle(self.command, url.path, query, body)
            self.send_json(status, answer)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    return Handler


@contextmanager
def fake_functions(**kwargs: Any) -> Iterator[FakeFunctions]:
    fake = FakeFunctions(**kwargs)
    with running(_handler(fake)) as base, fake.oauth.at(base):
        fake.base = base
        yield fake
