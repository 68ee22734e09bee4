"""Deploy an uploaded bundle through the Cloud Functions API, and wait, bounded.

:func:`plan` turns the settings into the API's own JSON (the body of the
request, and the update mask listing only what the user set), so ``--dry-run``
prints exactly what would be sent. :func:`apply` reads the function, creates it
if absent or patches the masked fields otherwise, then polls the long-running
operation until it ends or the wait timeout fires.

Both generations go through Google's client library (``google-cloud-functions``)
over its REST transport: ``functions_v2`` for 2nd gen (source pinned as
``buildConfig.source.storageSource`` with its generation), ``functions_v1`` for
1st gen (``sourceArchiveUrl``, which v1 cannot pin to a generation; the object
name is the bundle's SHA-256, so it names one content all the same).
``PYFN_FUNCTIONS_ENDPOINT`` (or gcloud's
``CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS``) overrides the API endpoint
(Private Service Connect, or a test double).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pyfn_action.cloud.names import (
    api_error,
    check_email,
    check_env_vars,
    check_function_name,
    check_labels,
    check_topic,
    is_bad_location,
)
from pyfn_action.cloud.upload import Uploaded
from pyfn_action.config import DeploySettings
from pyfn_action.errors import ConfigError, DeployError, DeployTimeout, PyfnError

log = logging.getLogger(__name__)

GEN1_MEMORY = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
INGRESS_ENUM = {
    "all": "ALLOW_ALL",
    "internal-only": "ALLOW_INTERNAL_ONLY",
    "internal-and-gclb": "ALLOW_INTERNAL_AND_GCLB",
}
STORAGE_EVENT_TYPES = {
    2: {
        "finalized": "google.cloud.storage.object.v1.finalized",
        "deleted": "google.cloud.storage.object.v1.deleted",
        "archived": "google.cloud.storage.object.v1.archived",
        "metadata-updated": "google.cloud.storage.object.v1.metadataUpdated",
    },
    1: {
        "finalized": "google.storage.object.finalize",
        "deleted": "google.storage.object.delete",
        "archived": "google.storage.object.archive",
        "metadata-updated": "google.storage.object.metadataUpdate",
    },
}
PUBSUB_EVENT_TYPE = {
    2: "google.cloud.pubsub.topic.v1.messagePublished",
    1: "google.pubsub.topic.publish",
}
MAX_TIMEOUT = {(1, "http"): 540, (1, "event"): 540, (2, "http"): 3600, (2, "event"): 540}
POLL_FIRST = 1.0
POLL_MAX = 10.0


@dataclass(frozen=True)
class Target:
    project: str
    region: str
    name: str
    gen: int

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def path(self) -> str:
        return f"{self.parent}/functions/{self.name}"


@dataclass(frozen=True)
class Plan:
    """What would be sent: the function as the API's JSON, and the update mask."""

    target: Target
    body: dict[str, Any]
    update_mask: list[str]  # camelCase paths, as the REST API takes them
    notes: list[str] = field(default_factory=list)

    def staged(self, bucket: str, key: str) -> Plan:
        """For a dry run: the object the bundle would be uploaded to, its generation unknown."""
        body = json.loads(json.dumps(self.body))
        if self.target.gen == 2:
            body["buildConfig"]["source"]["storageSource"] = {"bucket": bucket, "object": key}
            note = "storageSource.generation: pinned to the uploaded object's generation"
        else:
            body["sourceArchiveUrl"] = f"gs://{bucket}/{key}"
            note = "sourceArchiveUrl: the uploaded object"
        return Plan(self.target, body, self.update_mask, [*self.notes, note])

    def requests(self) -> dict[str, Any]:
        """Both requests: ``create`` if the function is absent, ``update`` if it exists.

        Environment variable values are hidden: plans end up in CI logs.
        """
        body = _redacted(self.body)
        version = f"v{self.target.gen}"
        create = {
            "method": "POST",
            "path": f"/{version}/{self.target.parent}/functions",
            # 2nd gen names the new function in the query; 1st gen in the body only.
            "query": {"functionId": self.target.name} if self.target.gen == 2 else {},
            "body": body,
        }
        update = {
            "method": "PATCH",
            "path": f"/{version}/{self.target.path}",
            "query": {"updateMask": ",".join(self.update_mask)},
            "body": body,
        }
        return {"create": create, "update": update}


@dataclass(frozen=True)
class Deployed:
    name: str
    url: str | None
    state: str
    action: str  # "create" or "update"
    operation: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the plan -------------------------------------------------------------------


def plan(
    settings: DeploySettings,
    target: Target,
    *,
    entry_point: str,
    signature: str,
    source: Uploaded | None,
) -> Plan:
    """The request body and update mask for ``settings``; checks every value first.

    ``source`` is ``None`` in a dry run, where nothing is uploaded: the object
    is then named by the bundle's SHA-256 elsewhere and left out of the body.
    """
    gen = target.gen
    check_function_name(target.name, gen)
    trigger = _trigger_kind(settings)
    _check(settings, gen, signature, trigger)
    notes: list[str] = []
    body, mask = _body(settings, target, entry_point, source, trigger, notes)
    return Plan(target=target, body=body, update_mask=mask, notes=notes)


def _trigger_kind(settings: DeploySettings) -> str:
    if settings.trigger_topic and settings.trigger_bucket:
        raise ConfigError(
            "Both trigger_topic and trigger_bucket are set",
            why="a function has one trigger",
            fix="Keep one of --trigger-topic and --trigger-bucket",
        )
    if settings.trigger_topic:
        return "topic"
    if settings.trigger_bucket:
        return "bucket"
    return "http"


def _check(settings: DeploySettings, gen: int, signature: str, trigger: str) -> None:
    kind = "http" if trigger == "http" else "event"
    if kind == "event" and signature != "cloudevent":
        raise ConfigError(
            f"A {trigger} trigger needs a CloudEvent function, but signature is {signature!r}",
            fix='Set signature = "cloudevent" and decorate the function with '
            "@functions_framework.cloud_event",
        )
    if kind == "http" and settings.retry:
        raise ConfigError(
            "retry is set but the function has no event trigger",
            why="only event-driven functions are retried; an HTTP caller retries itself",
            fix="Drop --retry, or set --trigger-topic or --trigger-bucket",
        )
    if kind == "http" and signature == "cloudevent":
        raise ConfigError(
            "signature is 'cloudevent' but no event trigger is set",
            fix="Set --trigger-topic or --trigger-bucket, or use an HTTP function",
        )
    if settings.function_timeout is not None:
        limit = MAX_TIMEOUT[(gen, kind)]
        if settings.function_timeout > limit:
            raise ConfigError(
                f"function_timeout {settings.function_timeout}s is over the limit",
                why=f"{'1st' if gen == 1 else '2nd'} gen {kind} functions run at most {limit} s",
                fix=f"Set function_timeout to {limit}s or less",
            )
    if settings.memory is not None and gen == 1 and settings.memory not in GEN1_MEMORY:
        raise ConfigError(
            f"memory {settings.memory}Mi is not a 1st gen size",
            why="1st gen takes " + ", ".join(f"{m}Mi" for m in GEN1_MEMORY),
        )
    if gen == 1:
        for key in ("cpu", "concurrency"):
            if getattr(settings, key) is not None:
                raise ConfigError(
                    f"{key} is a 2nd gen setting", fix=f"Drop --{key}, or deploy with --gen 2"
                )
    if settings.concurrency is not None and not 1 <= settings.concurrency <= 1000:
        raise ConfigError("concurrency must be 1 to 1000", why=f"it is {settings.concurrency}")
    if (
        settings.concurrency is not None
        and settings.concurrency > 1
        and settings.cpu is not None
        and _cpu(settings.cpu) < 1
    ):
        raise ConfigError(
            f"concurrency {settings.concurrency} needs at least 1 vCPU, cpu is {settings.cpu}",
            fix="Set --cpu 1 (or more), or --concurrency 1",
        )
    if settings.cpu is not None:
        _cpu(settings.cpu)
    if (
        settings.min_instances is not None
        and settings.max_instances is not None
        and settings.max_instances > 0
        and settings.min_instances > settings.max_instances
    ):
        raise ConfigError(
            f"min_instances {settings.min_instances} is above max_instances "
            f"{settings.max_instances}"
        )
    if settings.env_vars:
        check_env_vars(settings.env_vars)
    if settings.labels:
        check_labels(settings.labels)
    if settings.service_account:
        check_email(settings.service_account)


def _cpu(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"cpu {text!r} is not a number of vCPUs", fix="Use e.g. 0.583, 1, 2 or 4"
        ) from None
    if value <= 0:
        raise ConfigError(f"cpu {text!r} is not a positive number of vCPUs")
    return value


def _memory_v2(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _secrets(
    pairs: tuple[tuple[str, str], ...], project: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``ENV=secret[:version]`` and ``/mount/file=secret[:version]`` → env and volume refs."""
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for key, ref in pairs:
        owner, secret, version = _secret_ref(key, ref, project)
        if key.startswith("/"):
            mount, _, path = key.rstrip("/").rpartition("/")
            if not mount or not path:
                raise ConfigError(
                    f"Secret mount {key!r} needs a directory and a file name",
                    fix="Use e.g. /etc/secrets/api-key=api-key:latest",
                )
            volumes.append(
                {
                    "mountPath": mount,
                    "projectId": owner,
                    "secret": secret,
                    "versions": [{"version": version, "path": path}],
                }
            )
        else:
            check_env_vars(((key, ""),), "secret environment variable")
            env.append({"key": key, "projectId": owner, "secret": secret, "version": version})
    return env, volumes


def _secret_ref(key: str, ref: str, project: str) -> tuple[str, str, str]:
    parts = ref.strip().split("/")
    if len(parts) in (4, 6) and parts[0] == "projects" and parts[2] == "secrets":
        owner, secret = parts[1], parts[3]
        version = parts[5] if len(parts) == 6 and parts[4] == "versions" else "latest"
    elif len(parts) == 1:
        owner = project
        secret, _, version = parts[0].partition(":")
        version = version or "latest"
    else:
        owner = secret = version = ""
    if not secret or not owner or not (version == "latest" or version.isdigit()):
        raise ConfigError(
            f"Secret {key}={ref!r} is not a Secret Manager reference",
            why="it should be SECRET, SECRET:VERSION or projects/P/secrets/S/versions/V, "
            "VERSION a number or latest",
        )
    return owner, secret, version


# Each setting's field in the 2nd gen Function and the 1st gen CloudFunction
# (None: that generation has no such setting; _check refuses it first).
FIELDS: tuple[tuple[str, str, str | None], ...] = (
    ("memory", "serviceConfig.availableMemory", "availableMemoryMb"),
    ("cpu", "serviceConfig.availableCpu", None),
    ("function_timeout", "serviceConfig.timeoutSeconds", "timeout"),
    ("min_instances", "serviceConfig.minInstanceCount", "minInstances"),
    ("max_instances", "serviceConfig.maxInstanceCount", "maxInstances"),
    ("concurrency", "serviceConfig.maxInstanceRequestConcurrency", None),
    ("env_vars", "serviceConfig.environmentVariables", "environmentVariables"),
    ("service_account", "serviceConfig.serviceAccountEmail", "serviceAccountEmail"),
    ("ingress", "serviceConfig.ingressSettings", "ingressSettings"),
    ("labels", "labels", "labels"),
)


def _api_value(setting: str, value: Any, gen: int) -> Any:
    if setting == "memory":
        return _memory_v2(value) if gen == 2 else value
    if setting == "function_timeout":
        return value if gen == 2 else f"{value}s"
    if setting in ("env_vars", "labels"):
        return dict(value)
    if setting == "ingress":
        return INGRESS_ENUM[value]
    return value


def _put(body: dict[str, Any], mask: list[str], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    holder = body
    for part in parents:
        holder = holder.setdefault(part, {})
    holder[leaf] = value
    mask.append(path)


def _body(
    s: DeploySettings,
    t: Target,
    entry_point: str,
    source: Uploaded | None,
    trigger: str,
    notes: list[str],
) -> tuple[dict[str, Any], list[str]]:
    gen = t.gen
    body: dict[str, Any] = {"name": t.path}
    mask: list[str] = []
    if gen == 2:
        storage: dict[str, Any] = {}
        if source is not None:
            storage = {
                "bucket": source.bucket,
                "object": source.object,
                "generation": str(source.generation),
            }
        _put(body, mask, "buildConfig.runtime", s.node_runtime)
        _put(body, mask, "buildConfig.entryPoint", entry_point)
        _put(body, mask, "buildConfig.source", {"storageSource": storage})
    else:
        _put(body, mask, "runtime", s.node_runtime)
        _put(body, mask, "entryPoint", entry_point)
        mask.append("sourceArchiveUrl")
        if source is not None:
            body["sourceArchiveUrl"] = source.uri
    for setting, v2, v1 in FIELDS:
        value = getattr(s, setting)
        path = v2 if gen == 2 else v1
        if value is not None and path is not None:
            _put(body, mask, path, _api_value(setting, value, gen))
    if gen == 2 and s.cpu is None and s.concurrency is not None and s.concurrency > 1:
        notes.append("concurrency above 1 needs 1 vCPU: cpu set to 1")
        _put(body, mask, "serviceConfig.availableCpu", "1")
    if s.secrets is not None:
        env, volumes = _secrets(s.secrets, t.project)
        where = "serviceConfig." if gen == 2 else ""
        _put(body, mask, where + "secretEnvironmentVariables", env)
        _put(body, mask, where + "secretVolumes", volumes)
    event = _event_trigger(s, t, trigger)
    if event is not None:
        _put(body, mask, "eventTrigger", event)
    elif gen == 1:
        # Only on create: an update leaves the trigger (and its security level) alone.
        body["httpsTrigger"] = {"securityLevel": "SECURE_ALWAYS"}
    return body, mask


def _event_trigger(s: DeploySettings, t: Target, trigger: str) -> dict[str, Any] | None:
    from pyfn_action.cloud.names import check_bucket

    event: dict[str, Any]
    if trigger == "topic":
        assert s.trigger_topic
        topic = check_topic(s.trigger_topic, t.project)
        if t.gen == 1:
            event = {"eventType": PUBSUB_EVENT_TYPE[1], "resource": topic}
        else:
            event = {"eventType": PUBSUB_EVENT_TYPE[2], "pubsubTopic": topic}
    elif trigger == "bucket":
        assert s.trigger_bucket
        bucket = check_bucket(s.trigger_bucket)
        if t.gen == 1:
            event = {
                "eventType": STORAGE_EVENT_TYPES[1][s.trigger_event],
                "resource": f"projects/_/buckets/{bucket}",
            }
        else:
            event = {
                "eventType": STORAGE_EVENT_TYPES[2][s.trigger_event],
                "eventFilters": [{"attribute": "bucket", "value": bucket}],
            }
    else:
        return None
    # Enums only where they change something: without one, events are not retried.
    if s.retry and t.gen == 2:
        event["retryPolicy"] = "RETRY_POLICY_RETRY"
    elif s.retry:
        event["failurePolicy"] = {"retry": {}}
    return event


def _redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with environment variable values hidden: plans end up in CI logs."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    for holder in (out, out.get("serviceConfig") or {}):
        env = holder.get("environmentVariables")
        if isinstance(env, dict):
            holder["environmentVariables"] = {k: "<redacted>" for k in env}
    return out


# --- applying it ------------------------------------------------------------------


def client(gen: int, credentials: Any, env: Mapping[str, str]) -> Any:
    """The Cloud Functions client of generation ``gen``, over REST."""
    from google.api_core.client_options import ClientOptions

    endpoint = (
        env.get("PYFN_FUNCTIONS_ENDPOINT")
        or env.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS")  # gcloud's own override
        or ""
    ).rstrip("/") or None
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    if gen == 2:
        from google.cloud import functions_v2

        return functions_v2.FunctionServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )
    from google.cloud import functions_v1

    return functions_v1.CloudFunctionsServiceClient(
        credentials=credentials, transport="rest", client_options=options
    )


def read_function(api: Any, t: Target) -> Any:
    """The deployed function, or ``None`` if there is none (a bad region is an error)."""
    from google.api_core import exceptions as gexc

    ctx = {"project": t.project, "region": t.region, "gen": t.gen}
    try:
        return api.get_function(request={"name": t.path})
    except gexc.NotFound as exc:
        if is_bad_location(exc):
            raise _error(exc, f"reading function {t.name}", **ctx) from None
        return None
    except Exception as exc:
        raise _error(exc, f"reading function {t.name}", **ctx) from None


def request_timeout(function: Any, gen: int) -> int | None:
    """A deployed function's request timeout in seconds, if it has one set."""
    if function is None:
        return None
    if gen == 2:
        seconds = int(function.service_config.timeout_seconds or 0)
    else:
        duration = function.timeout  # a datetime.timedelta in proto-plus, or None
        seconds = int(duration.total_seconds()) if duration else 0
    return seconds or None


def apply(
    the_plan: Plan,
    api: Any,
    *,
    timeout: float,
    say: Callable[[str], None] = log.info,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_first: float = POLL_FIRST,
    poll_max: float = POLL_MAX,
) -> Deployed:
    """Create or update the function, then wait for the operation, at most ``timeout`` s."""

    t = the_plan.target
    deadline = clock() + timeout
    ctx = {"project": t.project, "region": t.region, "gen": t.gen}
    existing = read_function(api, t)
    if existing is not None:
        _check_existing(existing, t)
    action = "update" if existing is not None else "create"
    function = _message(t.gen, the_plan.body)
    say(f"{'Updating' if existing is not None else 'Creating'} {t.path} ({t.gen} gen)")
    try:
        if existing is not None:
            from google.protobuf import field_mask_pb2

            mask = field_mask_pb2.FieldMask(paths=[_snake(p) for p in the_plan.update_mask])
            operation = api.update_function(request={"function": function, "update_mask": mask})
        elif t.gen == 2:
            operation = api.create_function(
                request={"parent": t.parent, "function": function, "function_id": t.name}
            )
        else:
            operation = api.create_function(request={"location": t.parent, "function": function})
    except Exception as exc:
        raise _error(exc, f"{'updating' if existing is not None else 'creating'} function "
                     f"{t.name}", **ctx) from None  # fmt: skip
    name = operation.operation.name
    say(f"Operation {name} started; waiting up to {_duration(timeout)}")
    try:
        _wait(operation, t, deadline, say=say, clock=clock, sleep=sleep,
              poll_first=poll_first, poll_max=poll_max)  # fmt: skip
    except KeyboardInterrupt:
        say(f"Stopped waiting; operation {name} goes on in Google Cloud: follow it with "
            + _describe(t))  # fmt: skip
        raise
    result = _finished(operation, t)
    url, state = _url_state(result, t.gen)
    if state not in ("ACTIVE",):
        raise DeployError(
            f"Function {t.name} is {state} after the deployment",
            why=_state_messages(result) or "Cloud Functions gave no reason",
            fix=_describe(t),
        )
    source = (
        the_plan.body.get("sourceArchiveUrl")
        if t.gen == 1
        else _storage_uri(the_plan.body["buildConfig"]["source"]["storageSource"])
    )
    return Deployed(
        name=t.path, url=url, state=state, action=action, operation=name, source=str(source)
    )


def _storage_uri(storage: Mapping[str, Any]) -> str:
    return f"gs://{storage.get('bucket')}/{storage.get('object')}#{storage.get('generation')}"


def _check_existing(existing: Any, t: Target) -> None:
    if t.gen == 2:
        environment = _enum_name(existing.environment)
        if environment == "GEN_1":
            raise DeployError(
                f"Function {t.name} exists as a 1st gen function",
                fix="Deploy it with --gen 1, or choose another --name",
            )
        state = _enum_name(existing.state)
        busy = state in ("DEPLOYING", "DELETING")
    else:
        state = _enum_name(existing.status)
        busy = state in ("DEPLOY_IN_PROGRESS", "DELETE_IN_PROGRESS")
    if busy:
        raise DeployError(
            f"Function {t.name} is {state}: another operation is running on it",
            fix="Wait for it to finish (" + _describe(t) + "), then run again",
        )
    if state == "FAILED":
        log.warning("function %s is FAILED from an earlier deployment; updating it", t.name)


def _wait(
    operation: Any,
    t: Target,
    deadline: float,
    *,
    say: Callable[[str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_first: float,
    poll_max: float,
) -> None:
    from google.api_core import exceptions as gexc

    delay = poll_first
    shown: dict[str, str] = {}
    transient = 0
    while True:
        try:
            if operation.done(retry=None):
                return
            transient = 0
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            transient += 1
            if transient > 5:
                raise _error(exc, f"waiting for {operation.operation.name}", project=t.project,
                             region=t.region, gen=t.gen) from None  # fmt: skip
        except Exception as exc:
            raise _error(exc, f"waiting for {operation.operation.name}", project=t.project,
                         region=t.region, gen=t.gen) from None  # fmt: skip
        for stage, line in _stages(operation):
            if shown.get(stage) != line:
                shown[stage] = line
                say(line)
        left = deadline - clock()
        if left <= 0:
            raise DeployTimeout(
                f"The deployment of {t.name} did not finish within the wait timeout",
                why=f"operation {operation.operation.name} is still running; it goes on in "
                "Google Cloud",
                fix="Follow it with " + _describe(t) + ", or wait longer with --timeout",
            )
        sleep(min(delay, left))
        delay = min(delay * 1.5, poll_max)


def _operation_stages(operation: Any) -> list[Any]:
    """The stages a 2nd gen operation reports (build, service…); 1st gen reports none."""
    try:
        metadata = operation.metadata
    except Exception:  # an operation without readable metadata still finishes
        return []
    return list(getattr(metadata, "stages", None) or [])


def _enum_name(value: Any) -> str:
    """An enum's name; a value newer than this client library arrives as a number."""
    return str(getattr(value, "name", value))


def _stages(operation: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for stage in _operation_stages(operation):
        name = _enum_name(stage.name)
        text = f"  {name.lower()}: {_enum_name(stage.state).lower().replace('_', ' ')}"
        if stage.message:
            text += f" ({stage.message})"
        out.append((name, text))
    return out


def _finished(operation: Any, t: Target) -> Any:
    raw = operation.operation
    if raw.HasField("error") and raw.error.code:
        details = _operation_messages(operation)
        raise DeployError(
            f"The deployment of {t.name} failed",
            why=(raw.error.message or f"error code {raw.error.code}")
            + (f" ({details})" if details else ""),
            fix="Read the messages above; " + _describe(t) + " shows the function's state",
        )
    try:
        return operation.result(timeout=0, retry=None)
    except Exception as exc:
        raise _error(exc, f"reading the result of {raw.name}", project=t.project,
                     region=t.region, gen=t.gen) from None  # fmt: skip


def _operation_messages(operation: Any) -> str:
    out: list[str] = []
    for stage in _operation_stages(operation):
        name = _enum_name(stage.name).lower()
        for message in stage.state_messages:
            out.append(f"{name}: {_enum_name(message.severity)} {message.message}")
        if stage.message and not stage.state_messages:
            out.append(f"{name}: {stage.message}")
    return "; ".join(out)


def _state_messages(function: Any) -> str:
    messages = getattr(function, "state_messages", None) or []
    return "; ".join(f"{_enum_name(m.severity)} {m.message}" for m in messages)


def _url_state(function: Any, gen: int) -> tuple[str | None, str]:
    if gen == 2:
        url = function.url or function.service_config.uri or None
        return url, _enum_name(function.state)
    url = function.https_trigger.url or None
    return url, _enum_name(function.status)


def _describe(t: Target) -> str:
    flag = " --gen2" if t.gen == 2 else ""
    return f"gcloud functions describe {t.name} --region {t.region} --project {t.project}{flag}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _snake(path: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def _message(gen: int, body: Mapping[str, Any]) -> Any:
    if gen == 2:
        from google.cloud import functions_v2

        return functions_v2.Function.from_json(json.dumps(body))
    from google.cloud import functions_v1

    return functions_v1.CloudFunction.from_json(json.dumps(body))


def _error(exc: BaseException, doing: str, **ctx: Any) -> PyfnError:
    return api_error(exc, doing=doing, kind=DeployError, **ctx)
