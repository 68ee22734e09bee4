"""A loopback contract fake of the Cloud Functions REST API (v1 and v2), with the IAM
methods of the Cloud Run Admin API (v2) that a 2nd gen function's invokers need.

Every request is matched against the methods of the discovery document that
ships with google-api-python-client, and its body checked against the
document's schemas: unknown fields, wrong types, values outside an enum,
malformed ``int64``/``google-duration``/``google-datetime``/``byte`` strings
and output-only fields are contract violations, recorded and answered with
400. Update masks are checked path by path against the same schema; query
parameters against the method's. A URL that is no method of the API (or one
the fake does not play), a project other than the fake's, a poll of an
operation the fake never started and a page token it never issued (for that
list) are recorded violations too. Requests need a bearer token the fake's own ``/token`` endpoint
issued (401, recorded, if not).

What it plays: ``get``, ``list``, ``create``, ``patch`` and ``delete`` of functions
(v1 and v2) and the polls of their operations (``operations.get``), and v1's
``getIamPolicy``/``setIamPolicy`` of a function. ``list`` takes ``-`` for every
region, pages by ``pageSize`` and the opaque ``pageToken``s the fake issues, in
the order of the functions' names; v2's ``filter`` is understood for labels only
(``labels.KEY="VALUE"``, terms joined by ``AND``), and ``orderBy`` is not played.
Each version lists its own functions (the real v2 also lists 1st gen ones, with
``environment`` ``GEN_1``: a test puts such a one among the fake's v2 functions).

The fake keeps functions in memory and plays the long-running operation: it
finishes after a few polls, fails with state messages, or never finishes. A v2
operation reports its stages in its metadata as the real API does
(``GoogleCloudFunctionsV2OperationMetadata.stages``: ``BUILD``, ``SERVICE``, and
``TRIGGER`` for an event function, each ``NOT_STARTED``, ``IN_PROGRESS`` or
``COMPLETE``), moving on stage by stage as the operation is polled. A create or
patch stamps the function's ``updateTime`` (and a v2 create its ``createTime``)
from the fake's ``clock``, and ``set_updated`` backdates it; a deployed v2
function names its Cloud Run service (``serviceConfig.service``). A delete shows
the function ``DELETE_IN_PROGRESS`` (v1) or ``DELETING`` (v2) until its operation
finishes, then it is gone with its policy (or, with ``delete_outcome = "fail"``,
the operation fails and the function stays as it was); one while another
operation on the function runs is refused (409). Deleting a function that is not
there is a 404, as the real API answers it, not a violation. The fake can also
answer the next matching request with an error as the real API words it (API not
enabled, permission denied, quota exceeded).

IAM policies are kept per function (v1) and per Cloud Run service (v2), each new
one empty (``{"version": 1, "etag": "ACAB"}``); every set gives a new ``etag``, and a
set carrying an etag other than the current one is answered 409 ``ABORTED`` as IAM
does (one without an etag overwrites). A role the resource does not take (say
``roles/run.invoker`` on a 1st gen function) or a member that is no principal is a
violation. The Cloud Run part listens on a second loopback port (``run_base``),
plays ``projects.locations.services.getIamPolicy``/``setIamPolicy`` of run.v2 only,
checked the same way, with the same tokens; a service exists exactly while a v2
function of its id does, in its project and region. Its requests are recorded in
the same ``requests`` list (``Recorded.api == "run"``; ``changes()`` is the Cloud
Functions API's, ``changes("run")`` Cloud Run's), its violations in the same
``violations``; ``Injected(..., api="run")`` injects its errors. ``policy(name)``
is the policy now of a function (v1) or of its service (v2).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
# The methods the fake plays, by API version, by discovery id without the API's prefix.
_FUNCTIONS = {
    "projects.locations.functions.get",
    "projects.locations.functions.list",
    "projects.locations.functions.create",
    "projects.locations.functions.patch",
    "projects.locations.functions.delete",
}
PLAYED = {
    "v1": _FUNCTIONS
    | {
        "operations.get",
        "projects.locations.functions.getIamPolicy",
        "projects.locations.functions.setIamPolicy",
    },
    "v2": _FUNCTIONS | {"projects.locations.operations.get"},
}
# Cloud Run Admin API v2: the IAM of the services that serve 2nd gen functions.
RUN_PLAYED = {
    "projects.locations.services.getIamPolicy",
    "projects.locations.services.setIamPolicy",
}
# What each API is called in messages, and the audience of self-signed JWTs for it.
API_NAMES = {"cloudfunctions": "Cloud Functions", "run": "Cloud Run Admin"}
AUDIENCES = {
    "cloudfunctions": "https://cloudfunctions.googleapis.com",
    "run": "https://run.googleapis.com",
}
# The roles a resource's policy may grant, beside the basic ones and custom roles.
ROLE_PREFIXES = {"cloudfunctions": "roles/cloudfunctions.", "run": "roles/run."}
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
CUSTOM_ROLE = re.compile(r"(?:projects|organizations)/[^/]+/roles/[\w.]+")
PRINCIPAL = re.compile(
    r"allUsers|allAuthenticatedUsers|(?:deleted:)?(?:user|serviceAccount|group):[^:\s]+"
    r"|domain:[^:\s]+|principal(?:Set)?://\S+"
)
EMPTY_POLICY = {"version": 1, "etag": "ACAB"}  # what IAM answers for a policy never set
CONCURRENT = (
    "There were concurrent policy changes. Please retry the whole read-modify-write "
    "with exponential backoff."
)
# The largest page a list answers (and what it answers without pageSize).
MAX_PAGE = 1000
# A v2 list filter the fake understands: labels, equal to a value, terms joined by AND.
LABEL_TERM = re.compile(r'labels\.([\w-]+)\s*=\s*(?:"([^"]*)"|([^\s"]+))')
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


def discovery_document(version: str, api: str = "cloudfunctions") -> dict[str, Any]:
    import googleapiclient

    path = (
        Path(googleapiclient.__file__).parent
        / "discovery_cache"
        / "documents"
        / f"{api}.{version}.json"
    )
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


class Schema:
    """Validation of JSON values against one discovery document's schemas."""

    def __init__(self, version: str, api: str = "cloudfunctions") -> None:
        self.version = version
        self.doc = discovery_document(version, api)
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
    api: str = "cloudfunctions"  # or "run": the Cloud Run Admin API's port


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
    api: str = "cloudfunctions"  # or "run": requests to the Cloud Run Admin API's port


@dataclass
class FakeFunctions:
    project: str = "demo-proj"
    regions: tuple[str, ...] = ("us-central1", "asia-northeast1", "europe-west1")
    outcome: str = "succeed"  # "succeed", "fail" or "never": of creates and patches
    delete_outcome: str = "succeed"  # "succeed", "fail" or "never": of deletes
    polls_to_finish: int = 2
    functions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # by version
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # IAM policies: a v1 function's by its name, a v2 function's Cloud Run service's by its.
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    inject: list[Injected] = field(default_factory=list)
    oauth: TokenEndpoint = field(default_factory=lambda: TokenEndpoint(TOKEN))
    # (bucket, object, generation) → does that object exist? Checks the deploy's source.
    source_exists: Callable[[str, str, str | None], bool] | None = None
    # The time of the fake's updateTime/createTime stamps (UTC; a naive one is taken as UTC).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    base: str = ""
    run_base: str = ""  # the Cloud Run Admin API's port
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _etags: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _pages: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # Each page token issued: (version, parent, filter) it continues, and the last name given.
    _page_tokens: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    _polls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def changes(self, api: str = "cloudfunctions") -> list[Recorded]:
        """The requests to one API (the Cloud Functions API's, or ``run``'s) that would
        change something."""
        return [
            r for r in self.requests if r.api == api and r.method in ("POST", "PATCH", "DELETE")
        ]

    # --- for tests ------------------------------------------------------------------

    def policy(self, full_name: str) -> dict[str, Any]:
        """The IAM policy now of the function ``full_name``: a v1 function's own, a v2
        function's Cloud Run service's (who may call it: ``roles/cloudfunctions.invoker``
        and ``roles/run.invoker`` respectively)."""
        with self._lock:
            return self._policy(self._iam_resource(self._find(full_name), full_name))

    def set_updated(self, full_name: str, when: datetime) -> None:
        """Rewrite the stored function's ``updateTime`` (v1 or v2), as if it was last
        changed ``when``."""
        with self._lock:
            version = self._find(full_name)
            self.functions[version][full_name]["updateTime"] = _rfc3339(when)

    def _find(self, full_name: str) -> str:
        """The API version whose functions hold ``full_name``."""
        found = [v for v, functions in self.functions.items() if full_name in functions]
        if len(found) != 1:
            where = "both v1 and v2" if found else "neither v1 nor v2"
            raise KeyError(f"{full_name} is in {where} of the fake's functions")
        return found[0]

    # --- the API ------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        for fault in self.inject:
            if (
                fault.times > 0
                and fault.api == "cloudfunctions"
                and fault.method == method
                and fault.path_contains in path
            ):
                fault.times -= 1
                return _error(fault.status, fault.status_name, fault.message, fault.reason)
        m = re.fullmatch(r"/(v1|v2)/(.*)", path)
        if not m:
            return self._violation(
                f"{method} {path} is no method of the Cloud Functions API",
                status=404,
                name="NOT_FOUND",
            )
        version, rest = m.groups()
        schema = schema_of(version)
        checked = self._method(schema, PLAYED[version], "cloudfunctions", method, path, query, body)
        if isinstance(checked, tuple):
            return checked
        spec = checked
        verb = spec["id"].rsplit(".", 1)[1]
        project = rest.split("/")[1] if rest.startswith("projects/") else self.project
        if project != self.project:
            return self._violation(
                f"{path}: project {project!r} is not the fake's project {self.project!r}",
                status=403,
                name="PERMISSION_DENIED",
            )
        if spec["id"].endswith("operations.get"):
            return self._operation(rest, version)
        fm = re.fullmatch(
            r"projects/([^/]+)/locations/([^/]+)/functions(?:/([^/:]+))?(?::\w+)?", rest
        )
        if not fm:
            return _error(404, "NOT_FOUND", f"no such resource {rest}")
        project, region, name = fm.groups()
        if region not in self.regions and not (region == "-" and verb == "list"):
            return _error(
                404,
                "NOT_FOUND",
                f"Location projects/{project}/locations/{region} is not found or "
                "access is unauthorized.",
            )
        full = f"projects/{project}/locations/{region}/functions/{name}"
        ref = "Function" if version == "v2" else "CloudFunction"
        functions = self.functions.setdefault(version, {})
        if verb == "list":
            return self._list(version, f"projects/{project}/locations/{region}", query)
        if verb == "get":
            found = functions.get(full)
            if found is None:
                return _error(404, "NOT_FOUND", f"Resource '{full}' was not found")
            return 200, found
        if verb == "create":
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
            function = dict(body)
            # A new function's policy is empty, whatever one of that name had before.
            self.policies.pop(self._iam_resource(version, full, function), None)
            return self._start(version, full, function, "create")
        if verb == "patch":
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
        if verb == "delete":
            if full not in functions:
                return _error(404, "NOT_FOUND", f"Resource '{full}' was not found")
            if self._running(version, full):
                return _error(
                    409,
                    "ABORTED",
                    f"An operation on function {full} is already "
                    "in progress. Please try again later.",
                )
            return self._start(version, full, functions[full], "delete")
        if verb in ("getIamPolicy", "setIamPolicy"):
            if full not in functions:
                return _error(404, "NOT_FOUND", f"Resource '{full}' was not found")
            return self._iam(schema, "cloudfunctions", full, verb, query, body)
        raise AssertionError(f"{spec['id']} is played but not handled")

    def handle_run(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        """A request to the Cloud Run Admin API's port: the IAM of services only."""
        for fault in self.inject:
            if (
                fault.times > 0
                and fault.api == "run"
                and fault.method == method
                and fault.path_contains in path
            ):
                fault.times -= 1
                return _error(
                    fault.status,
                    fault.status_name,
                    fault.message,
                    fault.reason,
                    service="run.googleapis.com",
                )
        schema = schema_of("v2", "run")
        checked = self._method(schema, RUN_PLAYED, "run", method, path, query, body)
        if isinstance(checked, tuple):
            return checked
        m = re.fullmatch(r"/v2/(projects/([^/]+)/locations/[^/]+/services/[^/:]+):(\w+)", path)
        assert m is not None, f"{path} matched {checked['id']}"
        service, project, verb = m.groups()
        if project != self.project:
            return self._violation(
                f"{path}: project {project!r} is not the fake's project {self.project!r}",
                status=403,
                name="PERMISSION_DENIED",
            )
        if self._service_function(service) is None:
            return _error(
                404,
                "NOT_FOUND",
                f"Resource '{service}' was not found",
                service="run.googleapis.com",
            )
        return self._iam(schema, "run", service, verb, query, body)

    def _method(
        self,
        schema: Schema,
        played: set[str],
        api: str,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
    ) -> dict[str, Any] | tuple[int, Any]:
        """The discovery method a request calls, or the violation it is."""
        spec, others = schema.method(method, path)
        title = f"{API_NAMES[api]} {schema.version} API"
        if spec is None:
            takes = f" (that path takes {sorted(set(others))})" if others else ""
            return self._violation(
                f"{method} {path} is no method of the {title}{takes}", status=404, name="NOT_FOUND"
            )
        if spec["id"].removeprefix(f"{api}.") not in played:
            return self._violation(
                f"{method} {path} calls {spec['id']}, which the fake does not play",
                status=501,
                name="UNIMPLEMENTED",
            )
        problems = _query_errors(schema, spec, query)
        if "request" not in spec and body is not None:
            problems.append(f"{spec['id']} takes no request body")
        if problems:
            return self._violation(*problems)
        return spec

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

    def authorized(self, authorization: str, api: str = "cloudfunctions") -> bool:
        """A bearer token this fake's /token issued, or a self-signed JWT of one of its keys
        for the API (``cloudfunctions`` or ``run``)."""
        access = self.oauth.access(authorization)
        return access is not None and (
            CLOUD_PLATFORM in access.scopes or access.audience.startswith(AUDIENCES[api])
        )

    # --- list -----------------------------------------------------------------------

    def _list(self, version: str, parent: str, query: dict[str, str]) -> tuple[int, Any]:
        """A page of the functions under ``parent`` (region ``-``: every region), by name."""
        size = int(query.get("pageSize") or 0)
        if size < 0:
            return self._violation(f"list: pageSize {size} is negative")
        if "orderBy" in query:
            return self._violation(
                f"list: orderBy {query['orderBy']!r} is not played by the fake",
                status=501,
                name="UNIMPLEMENTED",
            )
        wanted = query.get("filter", "")
        labels = _label_filter(wanted)
        if labels is None:
            return self._violation(
                f"list: filter {wanted!r} is not played by the fake (only "
                'labels.KEY="VALUE" terms joined by AND)',
                status=501,
                name="UNIMPLEMENTED",
            )
        after = ""
        token = query.get("pageToken", "")
        if token:
            issued = self._page_tokens.get(token)
            if issued is None or issued[:3] != (version, parent, wanted):
                why = "never issued" if issued is None else "issued for another list"
                return self._violation(
                    f"list: page token {token!r} was {why} ({version} {parent}, filter {wanted!r})"
                )
            after = issued[3]
        project, region = parent.split("/")[1], parent.split("/")[3]
        pattern = (
            re.escape(f"projects/{project}/locations/")
            + (r"[^/]+" if region == "-" else re.escape(region))
            + r"/functions/[^/]+"
        )
        functions = self.functions.get(version, {})
        names = sorted(
            name
            for name, function in functions.items()
            if re.fullmatch(pattern, name)
            and name > after
            and all((function.get("labels") or {}).get(k) == v for k, v in labels.items())
        )
        page = names[: min(size or MAX_PAGE, MAX_PAGE)]
        answer: dict[str, Any] = {}
        if page:  # an empty list is left out, as proto3 JSON leaves it
            answer["functions"] = [json.loads(json.dumps(functions[n])) for n in page]
        if len(names) > len(page):
            token = base64.urlsafe_b64encode(f"{version}:{next(self._pages)}".encode()).decode()
            self._page_tokens[token] = (version, parent, wanted, page[-1])
            answer["nextPageToken"] = token
        return 200, answer

    # --- IAM ------------------------------------------------------------------------

    def _iam_resource(self, version: str, full: str, function: Any = None) -> str:
        """Whose IAM policy says who may call the function ``full``: a v1 function's own, a
        v2 function's Cloud Run service's."""
        if version == "v1":
            return full
        if function is None:
            function = self.functions.get(version, {}).get(full)
        service = ((function or {}).get("serviceConfig") or {}).get("service")
        return str(service or full.replace("/functions/", "/services/"))

    def _service_function(self, service: str) -> str | None:
        """The v2 function the Cloud Run service ``service`` serves, if there is one."""
        for full, function in self.functions.get("v2", {}).items():
            if self._iam_resource("v2", full, function) == service:
                return full
        return None

    def _policy(self, resource: str) -> dict[str, Any]:
        """The policy of ``resource``: the one last set, else an empty one (kept once set)."""
        policy: dict[str, Any] = json.loads(json.dumps(self.policies.get(resource, EMPTY_POLICY)))
        return policy

    def _iam(
        self, schema: Schema, api: str, resource: str, verb: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        """``getIamPolicy`` or ``setIamPolicy`` of ``resource``, whose policy takes the
        roles of ``api`` (and the basic and custom ones)."""
        run = api == "run"
        if verb == "getIamPolicy":
            asked = query.get("options.requestedPolicyVersion")
            if asked is not None and asked not in ("0", "1", "3"):
                return self._violation(
                    f"getIamPolicy: options.requestedPolicyVersion {asked} is not 0, 1 or 3"
                )
            return 200, self._policy(resource)
        ref = "GoogleIamV1SetIamPolicyRequest" if run else "SetIamPolicyRequest"
        problems = schema.validate(ref, body)
        if problems:
            return self._violation(*problems)
        policy, mask = body.get("policy"), body.get("updateMask", "")
        if policy is None:
            return self._violation("setIamPolicy: policy missing")
        problems = schema.mask_errors("GoogleIamV1Policy" if run else "Policy", mask)
        problems += _binding_errors(policy.get("bindings", []), ROLE_PREFIXES[api])
        if problems:
            return self._violation(*problems)
        new = self._policy(resource)
        etag = policy.get("etag")
        if etag and etag != new["etag"]:
            return _error(409, "ABORTED", CONCURRENT)
        for key in filter(None, (mask or "bindings,etag").split(",")):
            if key == "etag":
                continue  # IAM's own: a new one below
            if key in policy:
                new[key] = policy[key]
            else:
                new.pop(key, None)
        bindings = _merged(new.pop("bindings", []))
        if bindings:
            new["bindings"] = bindings
        new["version"] = 3 if any("condition" in b for b in bindings) else 1
        # Eight bytes, as IAM's are (BwX...=): the client decodes them and sends them back.
        tag = b"\x07\x06" + next(self._etags).to_bytes(6, "big")
        new["etag"] = base64.b64encode(tag).decode()
        self.policies[resource] = new
        return 200, json.loads(json.dumps(new))

    # --- operations -------------------------------------------------------------------

    def _running(self, version: str, full: str) -> bool:
        """Whether an operation the fake started on ``full`` has not finished."""
        return any(
            e["version"] == version and e["function"] == full and not e["op"]["done"]
            for e in self.operations.values()
        )

    def _start(
        self, version: str, full: str, function: dict[str, Any], verb: str
    ) -> tuple[int, Any]:
        function = json.loads(json.dumps(function))
        # What a failed delete leaves the function as: as it was.
        before = {k: function[k] for k in ("state", "status") if k in function}
        if verb == "delete":
            stages: list[str] = []  # the fake's deletes report no stages
            if version == "v2":
                function["state"] = "DELETING"
            else:
                function["status"] = "DELETE_IN_PROGRESS"
        else:
            now = _rfc3339(self.clock())
            function["updateTime"] = now
            if version == "v2" and verb == "create":
                function["createTime"] = now
            if version == "v2":
                function["state"] = "DEPLOYING"
                function.setdefault("environment", "GEN_2")
            else:
                function["status"] = "DEPLOY_IN_PROGRESS"
            stages = _stage_names(function)
        if version == "v2":
            op_name = f"{full.rsplit('/functions/', 1)[0]}/operations/operation-{next(self._ids)}"
        else:
            op_name = f"operations/op-{next(self._ids)}"
        self.functions.setdefault(version, {})[full] = function
        operation = {
            "name": op_name,
            "done": False,
            "metadata": _metadata(version, full, verb, _progress(stages, 0, self.polls_to_finish)),
        }
        self.operations[op_name] = {
            "op": operation,
            "function": full,
            "version": version,
            "verb": verb,
            "stages": stages,
            "before": before,
        }
        self._polls[op_name] = 0
        return 200, operation

    def _operation(self, name: str, version: str) -> tuple[int, Any]:
        entry = self.operations.get(name)
        if entry is None or entry["version"] != version:
            return self._violation(
                f"poll of {version} operation {name}, which the fake never started",
                status=404,
                name="NOT_FOUND",
            )
        op, version, full = entry["op"], entry["version"], entry["function"]
        verb, stages = entry["verb"], entry["stages"]
        outcome = self.delete_outcome if verb == "delete" else self.outcome
        if op["done"] or outcome == "never":
            return 200, op
        self._polls[name] += 1
        if self._polls[name] < self.polls_to_finish:
            # A failing operation fails in its build: no stage after it starts.
            polls = 0 if outcome == "fail" else self._polls[name]
            op["metadata"] = _metadata(
                version, full, verb, _progress(stages, polls, self.polls_to_finish)
            )
            return 200, op
        if verb == "delete":
            return self._deleted(entry, outcome)
        function = self.functions[version][full]
        if outcome == "fail":
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
                service = function.setdefault("serviceConfig", {})
                service["uri"] = f"https://{fname}-x.a.run.app"
                service["service"] = full.replace("/functions/", "/services/")
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

    def _deleted(self, entry: dict[str, Any], outcome: str) -> tuple[int, Any]:
        """The end of a delete: the function and its policy gone, or (``fail``) the function
        as it was before."""
        op, version, full = entry["op"], entry["version"], entry["function"]
        functions = self.functions.setdefault(version, {})
        if outcome == "fail":
            function = functions.get(full)
            if function is not None:
                function.pop("state" if version == "v2" else "status", None)
                function.update(entry["before"])
            op["error"] = {
                "code": 13,
                "message": f"Failed to delete function {full}: an "
                "internal error occurred; the function was not deleted",
            }
        else:
            function = functions.pop(full, None)
            self.policies.pop(self._iam_resource(version, full, function), None)
            op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
        op["metadata"] = _metadata(version, full, "delete", [])
        op["done"] = True
        return 200, op


@functools.cache
def schema_of(version: str, api: str = "cloudfunctions") -> Schema:
    return Schema(version, api)


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
            return [f"{where}: {value!r} is not an RFC 3339 timestamp like 2024-05-01T12:00:00Z"]
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
            problems.append(f"Invalid value for {key}: {value!r} is not one of {declared['enum']}")
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


OPERATION_TYPES = {
    "create": "CREATE_FUNCTION",
    "update": "UPDATE_FUNCTION",
    "delete": "DELETE_FUNCTION",
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
    return [
        {"name": n, "state": "COMPLETE"}
        if i < running
        else {"name": n, "state": "IN_PROGRESS"}
        if i == running
        else {"name": n, "state": "NOT_STARTED"}
        for i, n in enumerate(names)
    ]


def _metadata(version: str, target: str, verb: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """An operation's metadata: ``OperationMetadataV1`` (which has no stages) for v1,
    ``GoogleCloudFunctionsV2OperationMetadata`` with ``stages`` for v2."""
    if version == "v1":
        kind = OPERATION_TYPES.get(verb, verb)
        return {
            "@type": "type.googleapis.com/google.cloud.functions.v1.OperationMetadataV1",
            "target": target,
            "type": kind,
        }
    project, region, name = target.split("/")[1], target.split("/")[3], target.split("/")[-1]
    resources = {
        "BUILD": (
            f"projects/{project}/locations/{region}/builds/{name}-build",
            f"https://console.cloud.google.com/cloud-build/builds;region={region}/"
            f"{name}-build?project={project}",
        ),
        "SERVICE": (
            f"projects/{project}/locations/{region}/services/{name}",
            f"https://console.cloud.google.com/run/detail/{region}/{name}?project={project}",
        ),
        "TRIGGER": (
            f"projects/{project}/locations/{region}/triggers/{name}-trigger",
            f"https://console.cloud.google.com/eventarc/triggers/{region}/"
            f"{name}-trigger?project={project}",
        ),
    }
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
        "operationType": OPERATION_TYPES[verb],
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


def _error(
    status: int,
    name: str,
    message: str,
    reason: str | None = None,
    service: str = "cloudfunctions.googleapis.com",
) -> tuple[int, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": service},
            }
        ]
    return status, {"error": error}


def _rfc3339(when: datetime) -> str:
    """``when`` as the API writes timestamps: UTC, microseconds, ``Z`` (naive is UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _label_filter(text: str) -> dict[str, str] | None:
    """The labels a v2 list filter asks for (``labels.KEY="VALUE"`` terms joined by
    ``AND``); None for a filter the fake does not understand."""
    labels: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in re.split(r"\s+AND\s+", text.strip()))):
        m = LABEL_TERM.fullmatch(term)
        if m is None:
            return None
        labels[m[1]] = m[2] if m[2] is not None else m[3]
    return labels


def _binding_errors(bindings: list[dict[str, Any]], prefix: str) -> list[str]:
    """A policy's bindings against what the resource takes: roles of its own service
    (``prefix``), basic or custom ones; members that are principals."""
    problems = []
    for i, binding in enumerate(bindings):
        role = binding.get("role", "")
        if not (role.startswith(prefix) or role in BASIC_ROLES or CUSTOM_ROLE.fullmatch(role)):
            problems.append(
                f"policy.bindings[{i}]: Role {role} is not supported for this resource."
            )
        for member in binding.get("members", []):
            if not PRINCIPAL.fullmatch(member):
                problems.append(
                    f"policy.bindings[{i}]: {member!r} is no principal (allUsers, "
                    "allAuthenticatedUsers, user:, serviceAccount:, group:, "
                    "domain:, ...)"
                )
    return problems


def _merged(bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bindings as IAM keeps them: one per role and condition, each member once, none
    without members."""
    merged: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        key = json.dumps([binding.get("role"), binding.get("condition")], sort_keys=True)
        into = merged.setdefault(key, {**binding, "members": []})
        for member in binding.get("members", []):
            if member not in into["members"]:
                into["members"].append(member)
    return [b for b in merged.values() if b["members"]]


def _handler(fake: FakeFunctions, api: str) -> type[BaseHTTPRequestHandler]:
    """The handler of one of the fake's ports: ``cloudfunctions`` (with ``/token``) or
    ``run``."""
    handle = fake.handle if api == "cloudfunctions" else fake.handle_run

    class Handler(JsonHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            raw = self.body()
            auth = self.headers.get("Authorization", "")
            with fake._lock:
                if api == "cloudfunctions" and url.path == "/token" and self.command == "POST":
                    # OAuth token exchange, for the service account keys the tests write.
                    self.send_json(*fake.oauth.grant(raw))
                    return
                try:
                    body = json.loads(raw) if raw.strip() else None
                    not_json = False
                except ValueError:
                    body, not_json = raw.decode(errors="replace"), True
                fake.requests.append(Recorded(self.command, url.path, query, body, auth, api))
                if not fake.authorized(auth, api):
                    fake.violations.append(
                        f"{self.command} {url.path}: no bearer token that the fake's /token issued"
                    )
                    status, answer = _error(
                        401,
                        "UNAUTHENTICATED",
                        "Request had invalid authentication credentials. "
                        "Expected OAuth 2 access token.",
                    )
                elif not_json:
                    status, answer = fake._violation(
                        f"{self.command} {url.path}: the body is not JSON"
                    )
                else:
                    status, answer = handle(self.command, url.path, query, body)
            self.send_json(status, answer)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    return Handler


@contextmanager
def fake_functions(**kwargs: Any) -> Iterator[FakeFunctions]:
    """The fake, listening: the Cloud Functions API (and ``/token``) at ``fake.base``, the
    Cloud Run Admin API's IAM at ``fake.run_base``."""
    fake = FakeFunctions(**kwargs)
    with running(_handler(fake, "cloudfunctions")) as base, fake.oauth.at(base):
        with running(_handler(fake, "run")) as run_base:
            fake.base, fake.run_base = base, run_base
            yield fake
