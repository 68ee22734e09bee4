"""A loopback contract fake of the GitHub REST API (issue comments and pull requests).

Every request is matched against GitHub's own OpenAPI description, installed
by ``cd tests/node && npm ci`` (the ``@octokit/openapi`` package): the path
template and method must exist, path and query parameters must fit their
schemas (plus GitHub's documented ``per_page`` maximum of 100), a JSON body
must fit the operation's request body schema, and the headers must be what
GitHub expects of an Action (a token, a User-Agent, a GitHub media type, a
supported API version). Every problem is appended to ``fake.violations`` and
answered the way GitHub words it, so a test ends with
``assert fake.violations == []``.

The fake keeps issue comments and pull requests in memory and implements what
a sticky-comment Action calls: list (paginated, with GitHub's ``Link``
header), create, get, update and delete issue comments, get a pull request,
and say who the token is: ``GET /user`` answers a user's token, and refuses an
app's installation token (``login`` ending in ``[bot]``) with 403 as GitHub
does, whose account GraphQL's ``query { viewer { login } }`` names instead
(``POST /graphql``, the one GraphQL query the fake knows). Its own answers are
validated against the operation's response schema for that status, so the fake
cannot drift from GitHub's shapes unnoticed. Faults: ``fail_next`` answers the
next matching request with an error, ``read_only`` plays a fork's token.

OpenAPI 3.0 is translated to JSON Schema draft 4 (its base): ``nullable: true``
admits null, ``$ref`` is resolved in the document through a ``referencing``
registry, ``example`` and ``x-*`` keywords are dropped, and the
``x-github-breaking-changes`` patches are applied for API version 2026-03-10.
"""

from __future__ import annotations

import base64
import copy
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

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT4

from .servers import JsonHandler, running

SPEC = (
    Path(__file__).resolve().parents[1]
    / "node"
    / "node_modules"
    / "@octokit"
    / "openapi"
    / "generated"
    / "api.github.com.json"
)
TOKEN = "ghs_test-token"  # noqa: S105 - a test double's token
API_VERSIONS = ("2022-11-28", "2026-03-10")  # what api.github.com accepts
DEFAULT_API_VERSION = "2022-11-28"  # what GitHub uses when the header is absent
MAX_PER_PAGE = 100  # documented in prose only: the schema has no maximum
MAX_COMMENT_LENGTH = 65536
DOCS = "https://docs.github.com/rest"
BOT = "github-actions[bot]"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
GRAPHQL_PATH = "/graphql"

_URI = "urn:github-openapi"  # the registry's name for the document
_DROPPED = frozenset({"example", "examples", "nullable", "discriminator", "externalDocs", "xml"})
_KNOWN_USERS = {BOT: 41898282, "octocat": 583231}


class OpenAPIMissing(RuntimeError):
    """GitHub's OpenAPI description is not installed."""


def load_document(path: Path) -> dict[str, Any]:
    """Read an OpenAPI document, telling how to install it when it is missing."""
    if not path.is_file():
        raise OpenAPIMissing(
            f"GitHub's OpenAPI description {path} is missing: run `cd tests/node && npm ci` "
            "(it installs @octokit/openapi)"
        )
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The api.github.com description, read once per process (13 MB)."""
    return load_document(SPEC)


@functools.cache
def github_api(version: str = DEFAULT_API_VERSION) -> GitHubAPI:
    """The description as seen with ``X-GitHub-Api-Version: version``, built once per process."""
    if version not in API_VERSIONS:
        raise ValueError(f"API version {version!r} is not one of {API_VERSIONS}")
    return GitHubAPI(openapi_document(), version)


# --- OpenAPI 3.0 → JSON Schema draft 4 ------------------------------------------------


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902, the operations the description uses: add, remove, replace."""
    result = copy.deepcopy(target)
    for operation in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]
        ]
        node = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = operation["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind in ("remove", "replace"):
                del node[index]
            if kind in ("add", "replace"):
                node.insert(index, operation["value"])
        elif kind == "remove":
            del node[last]
        elif kind in ("add", "replace"):
            node[last] = operation["value"]
        else:
            raise ValueError(f"JSON Patch operation {kind!r} is not supported")
    return result


def _at_version(node: dict[str, Any], version: str) -> dict[str, Any]:
    """``node`` with its own ``x-github-breaking-changes`` up to ``version`` applied.

    The description writes these patches both as JSON Merge Patches (objects) and
    as JSON Patches (lists of operations).
    """
    changes = node.get("x-github-breaking-changes")
    if not changes:
        return node
    for change in sorted(changes, key=lambda c: str(c.get("version", ""))):
        if str(change.get("version", "")) <= version:
            patch = change.get("patch", {})
            if isinstance(patch, list):
                node = _json_patch(node, patch)
            else:
                node = _merge_patch(node, patch)
    return node


def _deep_at_version(node: Any, version: str) -> Any:
    if isinstance(node, list):
        return [_deep_at_version(item, version) for item in node]
    if not isinstance(node, dict):
        return node
    node = _at_version(node, version)
    return {key: _deep_at_version(value, version) for key, value in node.items()}


def translate(schema: Any, version: str = DEFAULT_API_VERSION) -> Any:
    """An OpenAPI 3.0 schema object as a JSON Schema draft 4 schema for ``jsonschema``."""
    if not isinstance(schema, dict):
        return schema
    schema = _at_version(schema, version)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or key.startswith("x-"):
            continue
        if key == "$ref":
            out[key] = _URI + value if value.startswith("#") else value
        elif key == "properties":
            out[key] = {name: translate(sub, version) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = translate(value, version)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [translate(sub, version) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


def _unwrap_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    branches = schema.get("anyOf")
    if (
        len(schema) == 1
        and isinstance(branches, list)
        and len(branches) == 2
        and branches[0] == {"type": "null"}
    ):
        inner: dict[str, Any] = branches[1]
        return inner
    return schema


_FORMATS = FormatChecker(formats=())
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.fullmatch(value))


def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\d{4}-\d\d-\d\d", value))


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme == "mailto")


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


for _name, _check in [
    ("date-time", _is_date_time),
    ("date", _is_date),
    ("uri", _is_uri),
    ("int32", _is_int32),
    ("int64", _is_int64),
]:
    _FORMATS.checks(_name)(_check)


def _deepest(error: ValidationError) -> ValidationError:
    """The most specific reason, descending into anyOf/oneOf branches.

    A nullable schema is ``anyOf: [null, X]``: for a value that is not null, the
    reason lies in X, not in "is not of type 'null'".
    """
    for _ in range(50):
        if not error.context:
            break
        branches = [
            e for e in error.context if not (e.validator == "type" and e.validator_value == "null")
        ]
        error = best_match(branches or error.context)
    return error


# --- the description ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One path template of the description, as a regular expression."""

    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    rank: tuple[int, ...]  # literal segments before parameters, like GitHub's router
    item: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str
    spec: dict[str, Any] = field(repr=False)  # the operation object at the fake's API version

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", ""))

    @property
    def documentation_url(self) -> str:
        return str(self.spec.get("externalDocs", {}).get("url", DOCS))


class GitHubAPI:
    """GitHub's REST API description at one API version: routing and validation."""

    def __init__(self, doc: dict[str, Any], version: str = DEFAULT_API_VERSION) -> None:
        self.doc = doc
        self.version = version
        schemas = {
            name: translate(schema, version)
            for name, schema in doc["components"]["schemas"].items()
        }
        resource = DRAFT4.create_resource({"components": {"schemas": schemas}})
        self.registry: Registry[Any] = Registry().with_resource(_URI, resource)
        self.routes = sorted(
            (self._route(template, item) for template, item in doc["paths"].items()),
            key=lambda route: (route.rank, route.template),
        )

    def _route(self, template: str, item: dict[str, Any]) -> Route:
        multi = set()
        for method, op in item.items():
            if isinstance(op, dict) and method != "parameters":
                for param in op.get("parameters", []):
                    param = self.resolve(param)
                    if param.get("in") == "path" and param.get("x-multi-segment"):
                        multi.add(param["name"])
        parts, names, rank = [], [], []
        for segment in template.strip("/").split("/"):
            m = re.fullmatch(r"\{([^}]+)\}", segment)
            if m:
                names.append(m[1])
                wide = m[1] in multi
                parts.append("(.+)" if wide else "([^/]+)")
                rank.append(2 if wide else 1)
            else:
                # a segment may mix text and a parameter, e.g. {base}...{head}; keep it literal
                parts.append(
                    re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(segment))
                    if "{" in segment
                    else re.escape(segment)
                )
                names += re.findall(r"\{([^}]+)\}", segment)
                rank.append(0 if "{" not in segment else 1)
        pattern = re.compile("/" + "/".join(parts))
        return Route(template, pattern, tuple(names), tuple(rank), item)

    # -- lookups --

    def resolve(self, obj: Any) -> Any:
        """Follow OpenAPI ``$ref``s (parameters, responses, request bodies) in the document."""
        hops = 0
        while isinstance(obj, dict) and "$ref" in obj and hops < 20:
            node: Any = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
            hops += 1
        return obj

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request path (percent-encoded, without query) and its parameters."""
        for route in self.routes:
            m = route.pattern.fullmatch(path)
            if m:
                values = [urllib.parse.unquote(v) for v in m.groups()]
                return route, dict(zip(route.names, values))
        return None

    def operation(self, route: Route, method: str) -> Operation | None:
        item = _at_version(route.item, self.version)
        spec = item.get(method.lower())
        if not isinstance(spec, dict) or method.lower() == "parameters":
            return None
        return Operation(method.upper(), route.template, _deep_at_version(spec, self.version))

    def methods(self, route: Route) -> list[str]:
        return sorted(
            m.upper() for m, op in route.item.items() if m != "parameters" and isinstance(op, dict)
        )

    def parameters(self, op: Operation) -> list[dict[str, Any]]:
        return [self.resolve(p) for p in op.spec.get("parameters", [])]

    # -- validation --

    def schema_errors(self, schema: Any, value: Any, where: str) -> list[str]:
        """Problems of ``value`` against a translated schema, one line each."""
        validator = Draft4Validator(schema, registry=self.registry, format_checker=_FORMATS)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        problems = []
        for error in errors:
            deepest = _deepest(error)
            message = str(deepest.message)
            if len(message) > 300:
                message = message[:297] + "..."
            problems.append(f"{where}{_json_path(deepest)}: {message}")
        return problems

    def unknown_fields(self, schema: Any, value: Any, where: str, depth: int = 0) -> list[str]:
        """Fields of ``value`` that its object schemas do not name (GitHub ignores them)."""
        if depth > 20 or not isinstance(schema, dict):
            return []
        hops = 0
        while "$ref" in schema and hops < 20:
            schema = self.registry.resolver().lookup(schema["$ref"]).contents
            hops += 1
        schema = _unwrap_nullable(schema)
        if any(k in schema for k in ("allOf", "anyOf", "oneOf", "additionalProperties")):
            return []
        problems: list[str] = []
        if isinstance(value, dict) and "properties" in schema:
            props = schema["properties"]
            for key, item in value.items():
                if key not in props:
                    problems.append(
                        f"{where}.{key}: unknown field, not in the schema (GitHub would "
                        "silently ignore it)"
                    )
                else:
                    problems += self.unknown_fields(props[key], item, f"{where}.{key}", depth + 1)
        elif isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                problems += self.unknown_fields(schema["items"], item, f"{where}[{i}]", depth + 1)
        return problems

    def request_body(self, op: Operation) -> tuple[Any, bool] | None:
        """The translated JSON request body schema and whether a body is required."""
        body = self.resolve(op.spec.get("requestBody"))
        if not body:
            return None
        content = body.get("content", {})
        media: dict[str, Any] = content.get("application/json") or next(iter(content.values()), {})
        return translate(media.get("schema", {}), self.version), bool(body.get("required"))

    def response_schema(self, op: Operation, status: int) -> tuple[Any, bool]:
        """(translated schema or None, whether the status is documented for the operation)."""
        responses = op.spec.get("responses", {})
        response = self.resolve(responses.get(str(status)) or responses.get("default"))
        if response is None:
            return None, False
        content = response.get("content")
        if not content:
            return None, True
        media: dict[str, Any] = content.get("application/json") or next(iter(content.values()), {})
        return translate(media.get("schema", {}), self.version), True

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Problems of a response body for ``method path`` with ``status``, as the fake checks."""
        found = self.match(path)
        op = self.operation(found[0], method) if found else None
        if op is None:
            return self.error_errors(status, body, f"{method} {path}")
        return self.operation_response_errors(op, status, body)

    def operation_response_errors(self, op: Operation, status: int, body: Any) -> list[str]:
        schema, documented = self.response_schema(op, status)
        where = f"response {status} to {op.operation_id}"
        if not documented:
            if status >= 400:  # GitHub documents only some error statuses per operation
                return self.error_errors(status, body, where)
            return [f"{where}: status {status} is not documented for {op.operation_id}"]
        if schema is None:
            return [] if body is None else [f"{where}: the documented response has no body"]
        if body is None:
            return [f"{where}: a JSON body is documented, none was sent"]
        if status >= 400:  # some error schemas require nothing; GitHub always sends a message
            return self.error_errors(status, body, where) + self.schema_errors(schema, body, where)
        return self.schema_errors(schema, body, where)

    def error_errors(self, status: int, body: Any, where: str) -> list[str]:
        """An error answer must at least be GitHub's basic-error object with a message."""
        basic = {"$ref": f"{_URI}#/components/schemas/basic-error"}
        problems = self.schema_errors({"allOf": [basic, {"required": ["message"]}]}, body, where)
        if status < 400:
            problems.append(f"{where}: error body with success status {status}")
        return problems


def _json_path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# --- the fake -------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON, or None
    status: int = 0  # the status the fake answered


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path_regex`` with an error."""

    method: str
    path_regex: str
    status: int
    message: str
    documentation_url: str | None = None
    errors: list[dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Problem:
    status: int
    message: str
    violation: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_body(
    status: int, message: str, documentation_url: str = DOCS, **extra: Any
) -> dict[str, Any]:
    """An error object as GitHub writes it."""
    return {
        "message": message,
        "documentation_url": documentation_url,
        **extra,
        "status": str(status),
    }


@dataclass
class FakeGitHub:
    token: str = TOKEN
    read_only: bool = False  # every POST/PATCH/PUT/DELETE → 403, like a fork's token
    strict_fields: bool = True  # unknown body fields are violations, though GitHub ignores them
    login: str = BOT  # who the token acts as: the author of comments it creates
    base: str = ""
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # A test hook: rewrite each answer's body before it is validated and sent.
    tamper: Callable[[Recorded, Any], Any] | None = None
    clock: Callable[[], datetime] = _now
    _comments: dict[tuple[str, str, int], list[dict[str, Any]]] = field(default_factory=dict)
    _pulls: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    _comment_ids: Iterator[int] = field(default_factory=lambda: itertools.count(2_000_000_001))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(100_001))
    _users: dict[str, int] = field(default_factory=lambda: dict(_KNOWN_USERS))
    _repos: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- for tests --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        message: str = "Resource not accessible by integration",
        *,
        documentation_url: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> Fault:
        """Answer the next ``times`` matching requests (``re.search`` on the path) with an error."""
        fault = Fault(
            method.upper(),
            path_regex,
            status,
            message,
            documentation_url,
            errors,
            dict(headers or {}),
            times,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def add_comment(
        self,
        owner: str,
        repo: str,
        issue_number: int,
        body: str,
        user: str = "octocat",
        association: str = "NONE",
    ) -> dict[str, Any]:
        """Seed a comment, as if ``user`` had written it; returns a copy of it."""
        with self._lock:
            comment = self._create(owner, repo, issue_number, body, user, association)
            return copy.deepcopy(comment)

    def add_pull(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        head_sha: str,
        base_sha: str,
        head_repo: str | None = None,
        head_ref: str = "feature",
        base_ref: str = "main",
        state: str = "open",
        user: str = "octocat",
        title: str = "A change",
    ) -> dict[str, Any]:
        """Add a pull request; ``head_repo`` is OWNER/NAME, another one for a fork."""
        with self._lock:
            pull = self._pull(
                owner,
                repo,
                number,
                head_sha,
                base_sha,
                head_repo or f"{owner}/{repo}",
                head_ref,
                base_ref,
                state,
                user,
                title,
            )
            self._pulls[(owner.lower(), repo.lower(), number)] = pull
            return copy.deepcopy(pull)

    def comments(self, owner: str, repo: str, issue_number: int) -> list[dict[str, Any]]:
        """Copies of the issue's comments, oldest first (``id``, ``body``, ``user`` ...)."""
        with self._lock:
            found = self._comments.get((owner.lower(), repo.lower(), issue_number), [])
            return copy.deepcopy(found)

    def bodies(self, owner: str, repo: str, issue_number: int) -> list[str]:
        return [c["body"] for c in self.comments(owner, repo, issue_number)]

    def changes(self) -> list[Recorded]:
        """The requests that change something (a GraphQL query changes nothing)."""
        return [r for r in self.requests if r.method in WRITE_METHODS and r.path != GRAPHQL_PATH]

    # --- the HTTP layer ---------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request (``target`` is the request line's path and query)."""
        url = urllib.parse.urlsplit(target)
        pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        with self._lock:
            body: Any = None
            parse_problem = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    parse_problem = f"the request body is not JSON: {exc}"
            recorded = Recorded(method, url.path, dict(pairs), dict(headers), body)
            self.requests.append(recorded)
            if url.path == GRAPHQL_PATH:
                reply = self._graphql(method, headers, body, parse_problem)
                recorded.status = reply.status
                return reply
            version = headers.get("x-github-api-version", DEFAULT_API_VERSION)
            api = github_api(version if version in API_VERSIONS else DEFAULT_API_VERSION)
            reply, op = self._answer(
                api, method, url.path, pairs, headers, raw, body, parse_problem
            )
            if self.tamper is not None:
                reply.body = self.tamper(recorded, reply.body)
            if op is not None:
                problems = api.operation_response_errors(op, reply.status, reply.body)
            else:
                problems = api.error_errors(reply.status, reply.body, f"{method} {url.path}")
            self.violations += [f"the fake's own answer is wrong: {p}" for p in problems]
            recorded.status = reply.status
            reply.headers.setdefault("X-GitHub-Api-Version-Selected", api.version)
            return reply

    def _answer(
        self,
        api: GitHubAPI,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        raw: bytes,
        body: Any,
        parse_problem: str | None,
    ) -> tuple[Reply, Operation | None]:
        what = f"{method} {path}"
        problems = self._header_problems(headers)
        for problem in problems:
            problem.violation = f"{what}: {problem.violation}"
        found = api.match(path)
        op = api.operation(found[0], method) if found else None
        if found is None:
            problems.append(
                _Problem(404, "Not Found", f"{what}: no such path in GitHub's REST API")
            )
        elif op is None:
            allowed = ", ".join(api.methods(found[0]))
            # GitHub answers an unsupported method with 404, not 405
            problems.append(
                _Problem(
                    404,
                    "Not Found",
                    f"{what}: {found[0].template} has no {method} (only {allowed})",
                )
            )
        else:
            problems += self._request_problems(
                api, op, found[1], pairs, headers, raw, body, parse_problem
            )
        doc_url = op.documentation_url if op else DOCS
        if problems:
            self.violations += [p.violation for p in problems]
            first = problems[0]
            return Reply(first.status, error_body(first.status, first.message, doc_url)), op
        assert op is not None and found is not None
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == method
                and re.search(fault.path_regex, path) is not None
            ):
                fault.times -= 1
                extra = {"errors": fault.errors} if fault.errors is not None else {}
                answer = error_body(
                    fault.status, fault.message, fault.documentation_url or doc_url, **extra
                )
                return Reply(fault.status, answer, dict(fault.headers)), op
        if self.read_only and method in WRITE_METHODS:
            message = "Resource not accessible by integration"
            return Reply(403, error_body(403, message, doc_url)), op
        params = dict(found[1])
        query = dict(pairs)
        return self._dispatch(op, params, query, body, path), op

    def _header_problems(self, headers: dict[str, str]) -> list[_Problem]:
        problems = []
        if not headers.get("user-agent", "").strip():
            problems.append(
                _Problem(
                    403,
                    "Request forbidden by administrative rules. Please make sure your request has "
                    "a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-"
                    "the-rest-api#user-agent-required). Check https://developer.github.com for "
                    "other possible causes.",
                    "no User-Agent header: GitHub refuses such requests with 403",
                )
            )
        auth = headers.get("authorization")
        if auth is None:
            problems.append(_Problem(401, "Requires authentication", "no Authorization header"))
        else:
            scheme, _, credential = auth.strip().partition(" ")
            if scheme.lower() not in ("bearer", "token") or credential.strip() != self.token:
                shown = scheme if scheme.lower() in ("bearer", "token") else auth[:12] + "…"
                problems.append(
                    _Problem(
                        401,
                        "Bad credentials",
                        f"Authorization is not 'Bearer <the token>' or "
                        f"'token <the token>' (got {shown} …)",
                    )
                )
        accept = headers.get("accept")
        types = [t.split(";")[0].strip().lower() for t in (accept or "").split(",")]
        if not any(
            t == "application/json" or t.startswith("application/vnd.github") for t in types
        ):
            problems.append(
                _Problem(
                    415,
                    f"Unsupported 'Accept' header: {accept!r}. Must accept 'application/json'.",
                    f"Accept is {accept!r}: send application/vnd.github+json",
                )
            )
        version = headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            supported = ", ".join(f'"{v}"' for v in API_VERSIONS)
            problems.append(
                _Problem(
                    400,
                    f'The version you specified in the "X-GitHub-Api-Version" request header, '
                    f'"{version}", is not a supported version. The following versions are '
                    f"currently supported: {supported}.",
                    f"X-GitHub-Api-Version {version!r} is not one of {', '.join(API_VERSIONS)}",
                )
            )
        return problems

    def _request_problems(
        self,
        api: GitHubAPI,
        op: Operation,
        path_params: dict[str, str],
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        raw: bytes,
        body: Any,
        parse_problem: str | None,
    ) -> list[_Problem]:
        what = f"{op.method} {op.template} ({op.operation_id})"
        problems: list[_Problem] = []
        given: dict[str, list[str]] = {}
        for key, value in pairs:
            given.setdefault(key, []).append(value)
        declared = {(str(p.get("in")), str(p.get("name"))): p for p in api.parameters(op)}
        for (where, name), param in declared.items():
            if where == "path":
                for problem in _parameter_errors(api, param, [path_params.get(name, "")]):
                    problems.append(_Problem(404, "Not Found", f"{what}: path {problem}"))
            elif where == "query":
                if name in given:
                    for problem in _parameter_errors(api, param, given[name]):
                        problems.append(
                            _Problem(
                                400,
                                f"Invalid query parameter: {problem}",
                                f"{what}: query {problem}",
                            )
                        )
                elif param.get("required"):
                    problems.append(
                        _Problem(
                            400,
                            f"Missing query parameter {name}",
                            f"{what}: query parameter {name} is missing",
                        )
                    )
        for name in given:
            if ("query", name) not in declared:
                known = sorted(n for (w, n) in declared if w == "query")
                problems.append(
                    _Problem(
                        400,
                        f"Unknown query parameter {name}",
                        f"{what}: unknown query parameter {name!r} (the operation takes {known})",
                    )
                )
        body_spec = api.request_body(op)
        if raw:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                problems.append(
                    _Problem(
                        415,
                        "Unsupported Media Type",
                        f"{what}: a body sent with Content-Type {kind!r}, not application/json",
                    )
                )
            if parse_problem is not None:
                problems.append(_Problem(400, "Problems parsing JSON", f"{what}: {parse_problem}"))
            elif body_spec is None:
                problems.append(
                    _Problem(
                        400,
                        "This endpoint takes no request body",
                        f"{what}: a body sent, the operation takes none",
                    )
                )
        if body_spec is not None and parse_problem is None:
            schema, required = body_spec
            if not raw:
                if required:
                    problems.append(
                        _Problem(
                            422,
                            "Invalid request.\n\nNo body was supplied.",
                            f"{what}: the request body is required",
                        )
                    )
            else:
                found = api.schema_errors(schema, body, "request body")
                if self.strict_fields:
                    found += api.unknown_fields(schema, body, "request body")
                if found:
                    message = "Invalid request.\n\n" + "\n".join(found)
                    problems += [_Problem(422, message, f"{what}: {p}") for p in found]
        return problems

    # --- the endpoints ----------------------------------------------------------------

    def _dispatch(
        self, op: Operation, params: dict[str, str], query: dict[str, str], body: Any, path: str
    ) -> Reply:
        owner, repo = params.get("owner", ""), params.get("repo", "")
        not_found = Reply(404, error_body(404, "Not Found", op.documentation_url))
        if op.operation_id == "issues/list-comments":
            return self._list(owner, repo, int(params["issue_number"]), query, path)
        if op.operation_id == "issues/create-comment":
            text = body["body"]
            if len(text) > MAX_COMMENT_LENGTH:
                return self._too_long(op, len(text))
            comment = self._create(
                owner, repo, int(params["issue_number"]), text, self.login, "NONE"
            )
            return Reply(201, comment, {"Location": comment["url"]})
        comment_id = int(params["comment_id"]) if "comment_id" in params else None
        found = self._find(owner, repo, comment_id) if comment_id is not None else None
        if op.operation_id == "issues/get-comment":
            return Reply(200, found[1]) if found else not_found
        if op.operation_id == "issues/update-comment":
            if found is None:
                return not_found
            text = body["body"]
            if len(text) > MAX_COMMENT_LENGTH:
                return self._too_long(op, len(text))
            found[1]["body"] = text
            found[1]["updated_at"] = _stamp(self.clock())
            return Reply(200, found[1])
        if op.operation_id == "issues/delete-comment":
            if found is None:
                return not_found
            found[0].remove(found[1])
            return Reply(204, None)
        if op.operation_id == "users/get-authenticated":
            if self.login.endswith("[bot]"):  # an installation token has no user
                message = "Resource not accessible by integration"
                return Reply(403, error_body(403, message, op.documentation_url))
            return Reply(200, self._public_user(self.login))
        if op.operation_id == "pulls/get":
            pull = self._pulls.get((owner.lower(), repo.lower(), int(params["pull_number"])))
            return Reply(200, pull) if pull else not_found
        self.violations.append(
            f"{op.method} {path}: {op.operation_id} is not implemented by the fake"
        )
        return Reply(501, error_body(501, f"{op.operation_id} is not implemented by the fake"))

    def _too_long(self, op: Operation, length: int) -> Reply:
        self.violations.append(
            f"{op.operation_id}: the comment body has {length} characters, "
            f"more than GitHub's {MAX_COMMENT_LENGTH}"
        )
        too_long = f"body is too long (maximum is {MAX_COMMENT_LENGTH} characters)"
        errors = [
            {"resource": "IssueComment", "code": "custom", "field": "body", "message": too_long}
        ]
        return Reply(422, error_body(422, "Validation Failed", op.documentation_url, errors=errors))

    def _list(self, owner: str, repo: str, number: int, query: dict[str, str], path: str) -> Reply:
        items = self._comments.get((owner.lower(), repo.lower(), number), [])
        since = query.get("since")
        if since:
            cutoff = _parse_time(since)
            items = [c for c in items if _parse_time(c["updated_at"]) >= cutoff]
        per_page = int(query.get("per_page", 30))
        if per_page < 1:
            per_page = 30
        per_page = min(per_page, MAX_PER_PAGE)
        page = max(int(query.get("page", 1)), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if last > 1 or page > 1:
            headers["Link"] = _link_header(f"{self.base}{path}", query, page, last)
        return Reply(200, chunk, headers)

    def _find(
        self, owner: str, repo: str, comment_id: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        for (o, r, _), items in self._comments.items():
            if (o, r) != (owner.lower(), repo.lower()):
                continue
            for comment in items:
                if comment["id"] == comment_id:
                    return items, comment
        return None

    def _create(
        self, owner: str, repo: str, number: int, body: str, login: str, association: str
    ) -> dict[str, Any]:
        cid = next(self._comment_ids)
        stamp = _stamp(self.clock())
        api = f"{self.base}/repos/{owner}/{repo}"
        kind = "pull" if (owner.lower(), repo.lower(), number) in self._pulls else "issues"
        comment = {
            "id": cid,
            "node_id": "IC_kwDO" + base64.b64encode(f"IssueComment{cid}".encode()).decode()[:14],
            "url": f"{api}/issues/comments/{cid}",
            "html_url": f"https://github.com/{owner}/{repo}/{kind}/{number}#issuecomment-{cid}",
            "issue_url": f"{api}/issues/{number}",
            "body": body,
            "user": self._user(login),
            "created_at": stamp,
            "updated_at": stamp,
            "author_association": association,
            "performed_via_github_app": None,
            "reactions": {
                "url": f"{api}/issues/comments/{cid}/reactions",
                "total_count": 0,
                "+1": 0,
                "-1": 0,
                "laugh": 0,
                "hooray": 0,
                "confused": 0,
                "heart": 0,
                "rocket": 0,
                "eyes": 0,
            },
        }
        self._comments.setdefault((owner.lower(), repo.lower(), number), []).append(comment)
        return comment

    def _user(self, login: str) -> dict[str, Any]:
        uid = self._users.setdefault(login, next(self._ids))
        bot = login.endswith("[bot]")
        api = f"{self.base}/users/{urllib.parse.quote(login)}"
        prefix = "BOT_kgDO" if bot else "U_kgDO"
        return {
            "login": login,
            "id": uid,
            "node_id": prefix + base64.b64encode(str(uid).encode()).decode().rstrip("="),
            "avatar_url": (
                "https://avatars.githubusercontent.com/in/15368?v=4"
                if login == BOT
                else f"https://avatars.githubusercontent.com/u/{uid}?v=4"
            ),
            "gravatar_id": "",
            "url": api,
            "html_url": (
                f"https://github.com/apps/{login.removesuffix('[bot]')}"
                if bot
                else f"https://github.com/{login}"
            ),
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "Bot" if bot else "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def _public_user(self, login: str) -> dict[str, Any]:
        stamp = _stamp(self.clock())
        profile = {
            "name": None,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "public_repos": 1,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        return {**self._user(login), **profile}

    def _graphql(
        self, method: str, headers: dict[str, str], body: Any, parse_problem: str | None
    ) -> Reply:
        """GraphQL's endpoint, for the one query a sticky comment needs: who am I."""
        auth = headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or credential.strip() != self.token:
            self.violations.append("POST /graphql: no valid Authorization header")
            return Reply(
                401,
                {
                    "message": "This endpoint requires you to be authenticated.",
                    "documentation_url": DOCS,
                },
            )
        query = body.get("query") if isinstance(body, dict) else None
        if method != "POST" or parse_problem or not isinstance(query, str):
            self.violations.append(f"{method} /graphql: not a POST of a JSON {{query}} body")
            return Reply(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        if " ".join(query.split()) != "query { viewer { login } }":
            self.violations.append(f"POST /graphql: a query the fake does not know: {query!r}")
            return Reply(200, {"errors": [{"message": "the fake knows one query only"}]})
        return Reply(200, {"data": {"viewer": {"login": self.login}}})

    def _repository(self, full_name: str) -> dict[str, Any]:
        owner, _, name = full_name.partition("/")
        rid = self._repos.setdefault(full_name.lower(), next(self._ids))
        api = f"{self.base}/repos/{full_name}"
        stamp = _stamp(self.clock())
        templates = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        return {
            "id": rid,
            "node_id": "R_kgDO" + base64.b64encode(str(rid).encode()).decode().rstrip("="),
            "name": name,
            "full_name": full_name,
            "owner": self._user(owner),
            "private": False,
            "html_url": f"https://github.com/{full_name}",
            "description": None,
            "fork": False,
            "url": api,
            **{key: api + suffix for key, suffix in templates.items()},
            "git_url": f"git://github.com/{full_name}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "clone_url": f"https://github.com/{full_name}.git",
            "svn_url": f"https://github.com/{full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "size": 108,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "forks_count": 0,
            "forks": 0,
            "open_issues_count": 1,
            "open_issues": 1,
            "default_branch": "main",
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "archived": False,
            "disabled": False,
            "visibility": "public",
            "license": None,
            "topics": [],
            "pushed_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
        }

    def _pull(
        self,
        owner: str,
        repo: str,
        number: int,
        head_sha: str,
        base_sha: str,
        head_repo: str,
        head_ref: str,
        base_ref: str,
        state: str,
        user: str,
        title: str,
    ) -> dict[str, Any]:
        full = f"{owner}/{repo}"
        api = f"{self.base}/repos/{full}"
        html = f"https://github.com/{full}/pull/{number}"
        stamp = _stamp(self.clock())
        base_repo = self._repository(full)
        head = self._repository(head_repo)
        if head_repo.lower() != full.lower():
            head["fork"] = True
        pid = next(self._ids)
        links = {
            "self": f"{api}/pulls/{number}",
            "html": html,
            "issue": f"{api}/issues/{number}",
            "comments": f"{api}/issues/{number}/comments",
            "review_comments": f"{api}/pulls/{number}/comments",
            "review_comment": f"{api}/pulls/comments{{/number}}",
            "commits": f"{api}/pulls/{number}/commits",
            "statuses": f"{api}/statuses/{head_sha}",
        }
        return {
            "url": links["self"],
            "id": pid,
            "node_id": "PR_kwDO" + base64.b64encode(str(pid).encode()).decode().rstrip("="),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": links["issue"],
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": number,
            "state": state,
            "locked": False,
            "title": title,
            "user": self._user(user),
            "body": None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": None if state == "open" else stamp,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{head['owner']['login']}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": head["owner"],
                "repo": head,
            },
            "base": {
                "label": f"{owner}:{base_ref}",
                "ref": base_ref,
                "sha": base_sha,
                "user": base_repo["owner"],
                "repo": base_repo,
            },
            "_links": {key: {"href": href} for key, href in links.items()},
            "author_association": "CONTRIBUTOR",
            "auto_merge": None,
            "draft": False,
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }


def _parameter_errors(api: GitHubAPI, param: dict[str, Any], raw: list[str]) -> list[str]:
    """Problems of a path or query parameter's string values against its schema."""
    name = str(param.get("name"))
    schema = param.get("schema", {})
    plain = api.resolve(schema)
    kind = plain.get("type") if isinstance(plain, dict) else None
    if kind == "array":
        item_kind = api.resolve(plain.get("items", {})).get("type")
        value: Any = [_coerce(v, item_kind) for r in raw for v in r.split(",")]
    else:
        if len(raw) > 1:
            return [f"{name} given {len(raw)} times"]
        value = _coerce(raw[0], kind)
    problems = api.schema_errors(translate(schema, api.version), value, name)
    problems = [p.replace(f"{name}: ", f"{name}={raw[-1]!r}: ", 1) for p in problems]
    if name == "per_page" and isinstance(value, int) and value > MAX_PER_PAGE:
        problems.append(f"per_page={value} is above GitHub's maximum of {MAX_PER_PAGE}")
    return problems


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text))


def _coerce(text: str, kind: Any) -> Any:
    if kind == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
        return float(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _link_header(url: str, query: dict[str, str], page: int, last: int) -> str:
    """GitHub's Link header: prev, next, last, first, each with the request's other parameters."""

    def at(number: int) -> str:
        params = [(k, v) for k, v in query.items() if k != "page"] + [("page", str(number))]
        return f"<{url}?{urllib.parse.urlencode(params)}>"

    links = []
    if page > 1:
        links.append(f'{at(min(page - 1, last))}; rel="prev"')
    if page < last:
        links.append(f'{at(page + 1)}; rel="next"')
        links.append(f'{at(last)}; rel="last"')
    if page > 1:
        links.append(f'{at(1)}; rel="first"')
    return ", ".join(links)


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _serve(self) -> None:
            raw = self.body()
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake.handle(self.command, self.path, headers, raw)
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


@contextmanager
def fake_github(**kwargs: Any) -> Iterator[FakeGitHub]:
    """A FakeGitHub on a free loopback port; ``fake.base`` is what GITHUB_API_URL should be."""
    github_api()  # load the description before the server answers (and fail early if missing)
    fake = FakeGitHub(**kwargs)
    with running(_handler(fake)) as base:
        fake.base = base
        yield fake
