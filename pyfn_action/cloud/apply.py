"""Apply a deploy plan through the Cloud Functions API, and wait, bounded.

:func:`apply` reads the function, creates it if absent or patches the masked
fields otherwise, then polls the long-running operation until it ends or the
wait timeout fires. Errors become advice (:func:`pyfn_action.cloud.api_errors.api_error`).

Both API versions go through Google's client library (``google-cloud-functions``)
over its REST transport; what differs between them (the client, the resource's
message, how a function is created and how its state reads) is one class per
API version, picked by the generation's ``api.version`` from ``targets.toml``.
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
from dataclasses import asdict, dataclass
from typing import Any

from pyfn_action.cloud.api_errors import api_error, is_bad_location
from pyfn_action.cloud.plan import Plan
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.errors import DeployError, DeployTimeout, PyfnError
from pyfn_action.runtime.targets import Generation, generation

log = logging.getLogger(__name__)

POLL_FIRST = 1.0
POLL_MAX = 10.0


@dataclass(frozen=True)
class Polling:
    """How an operation is waited for: the clock and the sleep that keep its time (a
    test gives its own), the first pause between polls, and the longest (each pause is
    half as long again as the one before)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    first: float = POLL_FIRST
    longest: float = POLL_MAX


POLLING = Polling()


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


class _V1:
    """Cloud Functions v1 (``CloudFunctionsServiceClient``, ``CloudFunction``)."""

    busy = ("DEPLOY_IN_PROGRESS", "DELETE_IN_PROGRESS")

    def client(self, credentials: Any, options: Any) -> Any:
        from google.cloud import functions_v1

        return functions_v1.CloudFunctionsServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )

    def message(self, body: Mapping[str, Any]) -> Any:
        from google.cloud import functions_v1

        return functions_v1.CloudFunction.from_json(json.dumps(body))

    def create(self, api: Any, address: FunctionAddress, function: Any) -> Any:
        return api.create_function(request={"location": address.parent, "function": function})

    def state(self, function: Any) -> str:
        return _enum_name(function.status)

    def other_generation(self, function: Any) -> int | None:
        return None  # v1 lists 1st gen functions only

    def url(self, function: Any) -> str | None:
        return function.https_trigger.url or None

    def request_timeout(self, function: Any) -> int:
        duration = function.timeout  # a datetime.timedelta in proto-plus, or None
        return int(duration.total_seconds()) if duration else 0

    def request_concurrency(self, function: Any) -> int:
        return 1  # 1st gen: one request per instance at a time

    def environment(self, function: Any) -> Mapping[str, str]:
        return function.environment_variables or {}

    def source(self, body: Mapping[str, Any]) -> str:
        return str(body.get("sourceArchiveUrl"))


class _V2:
    """Cloud Functions v2 (``FunctionServiceClient``, ``Function``)."""

    busy = ("DEPLOYING", "DELETING")

    def client(self, credentials: Any, options: Any) -> Any:
        from google.cloud import functions_v2

        return functions_v2.FunctionServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )

    def message(self, body: Mapping[str, Any]) -> Any:
        from google.cloud import functions_v2

        return functions_v2.Function.from_json(json.dumps(body))

    def create(self, api: Any, address: FunctionAddress, function: Any) -> Any:
        return api.create_function(
            request={"parent": address.parent, "function": function, "function_id": address.name}
        )

    def state(self, function: Any) -> str:
        return _enum_name(function.state)

    def other_generation(self, function: Any) -> int | None:
        """The generation a function v2 lists is, from its environment (``GEN_1``…)."""
        environment = _enum_name(function.environment)
        number = environment.removeprefix("GEN_")
        return int(number) if environment.startswith("GEN_") and number.isdigit() else None

    def url(self, function: Any) -> str | None:
        return function.url or function.service_config.uri or None

    def request_timeout(self, function: Any) -> int:
        return int(function.service_config.timeout_seconds or 0)

    def request_concurrency(self, function: Any) -> int:
        return int(function.service_config.max_instance_request_concurrency or 0)

    def environment(self, function: Any) -> Mapping[str, str]:
        return function.service_config.environment_variables or {}

    def source(self, body: Mapping[str, Any]) -> str:
        storage = body["buildConfig"]["source"]["storageSource"]
        return f"gs://{storage.get('bucket')}/{storage.get('object')}#{storage.get('generation')}"


VERSIONS: dict[str, _V1 | _V2] = {"v1": _V1(), "v2": _V2()}


def _version(gen: Generation) -> _V1 | _V2:
    try:
        return VERSIONS[gen.api_version]
    except KeyError:
        raise RuntimeError(
            f"targets.toml [gen.{gen.gen}.api] names version {gen.api_version!r}, "
            "which no client speaks"
        ) from None


def client(gen: Generation, credentials: Any, env: Mapping[str, str]) -> Any:
    """The Cloud Functions client of the API version ``gen`` speaks, over REST."""
    from google.api_core.client_options import ClientOptions

    endpoint = (
        env.get("PYFN_FUNCTIONS_ENDPOINT")
        or env.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS")  # gcloud's own override
        or ""
    ).rstrip("/") or None
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return _version(gen).client(credentials, options)


def read_function(api: Any, address: FunctionAddress, gen: Generation) -> Any:
    """The deployed function, or ``None`` if there is none (a bad region is an error)."""
    from google.api_core import exceptions as gexc

    try:
        return api.get_function(request={"name": address.path})
    except gexc.NotFound as exc:
        if is_bad_location(exc):
            raise _error(exc, f"reading function {address.name}", address, gen) from None
        return None
    except Exception as exc:
        raise _error(exc, f"reading function {address.name}", address, gen) from None


def request_timeout(function: Any, gen: Generation) -> int | None:
    """A deployed function's request timeout in seconds, if it has one set."""
    if function is None:
        return None
    return _version(gen).request_timeout(function) or None


def environment(function: Any, gen: Generation) -> dict[str, str] | None:
    """A deployed function's runtime environment variables (None: no function)."""
    if function is None:
        return None
    return {str(k): str(v) for k, v in _version(gen).environment(function).items()}


def request_concurrency(setting: int | None, function: Any, gen: Generation) -> int:
    """How many requests one instance is sent at once: what the deploy sets, else what the
    deployed function has, else the platform's default (one)."""
    if "concurrency" not in gen.fields:
        return 1  # a generation without the setting: one request per instance at a time
    if setting is not None:
        return setting
    if function is not None:
        return _version(gen).request_concurrency(function) or 1
    return 1


def apply(
    the_plan: Plan,
    api: Any,
    *,
    timeout: float,
    say: Callable[[str], None] = log.info,
    polling: Polling = POLLING,
) -> Deployed:
    """Create or update the function, then wait for the operation, at most ``timeout`` s."""
    t, gen = the_plan.address, the_plan.generation
    version = _version(gen)
    deadline = polling.clock() + timeout
    existing = read_function(api, t, gen)
    if existing is not None:
        _check_existing(existing, t, gen)
    action = "update" if existing is not None else "create"
    function = version.message(the_plan.body)
    say(f"{'Updating' if existing is not None else 'Creating'} {t.path} ({gen.gen} gen)")
    try:
        if existing is not None:
            from google.protobuf import field_mask_pb2

            mask = field_mask_pb2.FieldMask(paths=[_snake(p) for p in the_plan.update_mask])
            operation = api.update_function(request={"function": function, "update_mask": mask})
        else:
            operation = version.create(api, t, function)
    except Exception as exc:
        doing = f"{'updating' if existing is not None else 'creating'} function {t.name}"
        raise _error(exc, doing, t, gen) from None
    left = max(deadline - polling.clock(), 0.0)
    result = wait_for(operation, t, gen, timeout=left, say=say, polling=polling)
    url, state = version.url(result), version.state(result)
    if state not in ("ACTIVE",):
        raise DeployError(
            f"Function {t.name} is {state} after the deployment",
            why=_state_messages(result) or "Cloud Functions gave no reason",
            fix=f"Correct what the messages name and deploy again (a deployment repairs a "
            f"failed function); {_describe(t, gen)} shows its state",
        )
    return Deployed(
        name=t.path,
        url=url,
        state=state,
        action=action,
        operation=operation.operation.name,
        source=version.source(the_plan.body),
    )


def wait_for(
    operation: Any,
    t: FunctionAddress,
    gen: Generation,
    *,
    timeout: float,
    say: Callable[[str], None] = log.info,
    polling: Polling = POLLING,
    verb: str = "deployment",
) -> Any:
    """Wait for a long-running operation on function ``t``, at most ``timeout`` s, saying
    each stage as it changes; its result (the function, or nothing for a deletion)."""
    name = operation.operation.name
    say(f"Operation {name} started; waiting up to {_duration(timeout)}")
    try:
        _wait(operation, t, gen, polling.clock() + timeout, say=say, polling=polling, verb=verb)
    except KeyboardInterrupt:
        say(
            f"Stopped waiting; operation {name} goes on in Google Cloud: follow it with "
            + _describe(t, gen)
        )
        raise
    return _finished(operation, t, gen, verb)


def _check_existing(existing: Any, t: FunctionAddress, gen: Generation) -> None:
    version = _version(gen)
    other = version.other_generation(existing)
    if other is not None and other != gen.gen:
        raise DeployError(
            f"Function {t.name} exists as a {generation(other).label} function",
            fix=f"Deploy it with --gen {other}, or choose another --name",
        )
    state = version.state(existing)
    if state in version.busy:
        raise DeployError(
            f"Function {t.name} is {state}: another operation is running on it",
            fix="Wait for it to finish (" + _describe(t, gen) + "), then run again",
        )
    if state == "FAILED":
        # An update is how a failed function is repaired: it goes ahead, and says so.
        log.warning(
            "Function %s is FAILED from an earlier deployment (%s); this deployment updates "
            "it, which repairs it if it succeeds",
            t.name,
            _state_messages(existing) or "Cloud Functions gave no reason",
        )


def _wait(
    operation: Any,
    t: FunctionAddress,
    gen: Generation,
    deadline: float,
    *,
    say: Callable[[str], None],
    polling: Polling,
    verb: str,
) -> None:
    from google.api_core import exceptions as gexc

    delay = polling.first
    shown: dict[str, str] = {}
    transient = 0

    def show_stages() -> None:
        """Say each stage whose line changed since it was last said."""
        for stage, line in _stages(operation):
            if shown.get(stage) != line:
                shown[stage] = line
                say(line)

    show_stages()  # as the operation started
    while True:
        finished = False
        try:
            finished = operation.done(retry=None)
            transient = 0
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            transient += 1
            if transient > 5:
                raise _error(exc, f"waiting for {operation.operation.name}", t, gen) from None
        except Exception as exc:
            raise _error(exc, f"waiting for {operation.operation.name}", t, gen) from None
        show_stages()
        if finished:
            return
        left = deadline - polling.clock()
        if left <= 0:
            raise DeployTimeout(
                f"The {verb} of {t.name} did not finish within the wait timeout",
                why=f"operation {operation.operation.name} is still running; it goes on in "
                "Google Cloud",
                fix="Follow it with " + _describe(t, gen) + ", or wait longer with --timeout",
            )
        polling.sleep(min(delay, left))
        delay = min(delay * 1.5, polling.longest)


def _operation_stages(operation: Any) -> list[Any]:
    """The stages an operation reports (build, service…); a v1 operation reports none."""
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


def _finished(operation: Any, t: FunctionAddress, gen: Generation, verb: str) -> Any:
    raw = operation.operation
    if raw.HasField("error") and raw.error.code:
        details = _operation_messages(operation)
        raise DeployError(
            f"The {verb} of {t.name} failed",
            why=(raw.error.message or f"error code {raw.error.code}")
            + (f" ({details})" if details else ""),
            fix="Read the messages above; " + _describe(t, gen) + " shows the function's state",
        )
    try:
        return operation.result(timeout=0, retry=None)
    except Exception as exc:
        raise _error(exc, f"reading the result of {raw.name}", t, gen) from None


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


def _describe(t: FunctionAddress, gen: Generation) -> str:
    return (
        f"gcloud functions describe {t.name} --region {t.region} --project {t.project}"
        + gen.describe_flags
    )


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _snake(path: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def _error(exc: BaseException, doing: str, t: FunctionAddress, gen: Generation) -> PyfnError:
    return api_error(
        exc, doing=doing, kind=DeployError, project=t.project, region=t.region, gen=gen.gen
    )
