"""Request bodies: one builder per Cloud Functions API version, behind one interface.

The generation's data (``[gen.N.api]`` in ``data/targets.toml``) names the API
version it speaks, which picks the builder (:func:`body_builder`), and the
field each deploy setting goes to, which the builder writes. What is left in
a builder is the shape of its API's resource: where the source goes, how
memory and timeouts are written, what a trigger looks like.

* ``v1`` (``projects.locations.functions``, 1st gen): a ``CloudFunction`` whose
  source is ``sourceArchiveUrl``, which v1 cannot pin to an object generation
  (the object name is the bundle's SHA-256, so it names one content all the same).
* ``v2`` (2nd gen): a ``Function`` whose source is
  ``buildConfig.source.storageSource``, pinned to the uploaded object's generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pyfn_action.bundle.nodepackage import node_options
from pyfn_action.cloud.names import check_topic
from pyfn_action.cloud.rules import SETTINGS, Checked, FunctionAddress
from pyfn_action.cloud.upload import Uploaded
from pyfn_action.runtime.targets import Generation

INGRESS_ENUM = {
    "all": "ALLOW_ALL",
    "internal-only": "ALLOW_INTERNAL_ONLY",
    "internal-and-gclb": "ALLOW_INTERNAL_AND_GCLB",
}


@dataclass
class Body:
    """A function resource as the API's JSON, the update mask, and notes for the user."""

    body: dict[str, Any]
    update_mask: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, path: str, value: Any) -> None:
        """Set the field at the dotted ``path`` and add it to the update mask."""
        *parents, leaf = path.split(".")
        holder = self.body
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[leaf] = value
        self.update_mask.append(path)


class FunctionBody(Protocol):
    """What every API version's body builder offers."""

    def build(self, checked: Checked, address: FunctionAddress, *, entry_point: str) -> Body:
        """The function as the API's JSON, without a source yet, and its update mask."""
        ...

    def with_source(self, body: dict[str, Any], source: Uploaded) -> dict[str, Any]:
        """``body`` with the uploaded bundle as its source."""
        ...

    def staged(self, body: dict[str, Any], bucket: str, key: str) -> tuple[dict[str, Any], str]:
        """``body`` naming the object a dry run would upload to, and a note saying so."""
        ...

    def create_query(self, address: FunctionAddress) -> dict[str, str]:
        """The query of the request that creates the function."""
        ...


class _Builder:
    """What both API versions share: the settings written at the data's field paths."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        self.fields = generation.fields

    def build(self, checked: Checked, address: FunctionAddress, *, entry_point: str) -> Body:
        s = checked.settings
        out = Body({"name": address.path})
        out.put(self.fields["runtime"], s.node_runtime)
        out.put(self.fields["entry_point"], entry_point)
        self._source(out)
        for setting in SETTINGS:
            value = getattr(s, setting)
            if value is not None and setting in self.fields:
                out.put(self.fields[setting], self._value(setting, value))
        if (
            self.generation.has_setting("cpu")
            and s.cpu is None
            and s.concurrency is not None
            and s.concurrency > 1
        ):
            out.notes.append("concurrency above 1 needs 1 vCPU: cpu set to 1")
            out.put(self.fields["cpu"], "1")
        if checked.secrets is not None:
            env, volumes = _secrets(checked, address.project)
            out.put(self.fields["secret_env_vars"], env)
            out.put(self.fields["secret_volumes"], volumes)
        event = self._event_trigger(checked, address)
        if event is not None:
            # Enums only where they change something: without one, events are not retried.
            if s.retry:
                self._retry(event)
            out.put(self.fields["event_trigger"], event)
        else:
            self._http_trigger(out.body)
        return out

    def _event_trigger(self, checked: Checked, address: FunctionAddress) -> dict[str, Any] | None:
        s = checked.settings
        if checked.trigger == "topic":
            assert s.trigger_topic
            return self._topic(check_topic(s.trigger_topic, address.project))
        if checked.trigger == "bucket":
            assert checked.trigger_bucket
            event_type = self.generation.storage_events[s.trigger_event]
            return self._bucket(event_type, checked.trigger_bucket)
        return None

    def _value(self, setting: str, value: Any) -> Any:
        if setting == "memory":
            return self._memory(value)
        if setting == "function_timeout":
            return self._timeout(value)
        if setting == "env_vars":
            # The variables configured, and NODE_OPTIONS, which has Node load the bundle's
            # index.js (and start its workers) first. Without any configured, the plan
            # adds NODE_OPTIONS to what the function has (Plan.with_environment).
            variables = dict(value)
            variables["NODE_OPTIONS"] = node_options(variables.get("NODE_OPTIONS"))
            return variables
        if setting == "labels":
            return dict(value)
        if setting == "ingress":
            return INGRESS_ENUM[value]
        return value

    # What each API version writes in its own way.

    def _source(self, out: Body) -> None:
        raise NotImplementedError

    def _memory(self, mib: int) -> Any:
        raise NotImplementedError

    def _timeout(self, seconds: int) -> Any:
        raise NotImplementedError

    def _topic(self, topic: str) -> dict[str, Any]:
        raise NotImplementedError

    def _bucket(self, event_type: str, bucket: str) -> dict[str, Any]:
        raise NotImplementedError

    def _retry(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def _http_trigger(self, body: dict[str, Any]) -> None:
        raise NotImplementedError


class V1Body(_Builder):
    """Cloud Functions v1: ``projects.locations.functions``, a ``CloudFunction``."""

    def _source(self, out: Body) -> None:
        out.update_mask.append("sourceArchiveUrl")  # set once uploaded

    def with_source(self, body: dict[str, Any], source: Uploaded) -> dict[str, Any]:
        body["sourceArchiveUrl"] = source.uri
        return body

    def staged(self, body: dict[str, Any], bucket: str, key: str) -> tuple[dict[str, Any], str]:
        body["sourceArchiveUrl"] = f"gs://{bucket}/{key}"
        return body, "sourceArchiveUrl: the uploaded object"

    def create_query(self, address: FunctionAddress) -> dict[str, str]:
        return {}  # v1 names the new function in the body only

    def _memory(self, mib: int) -> Any:
        return mib

    def _timeout(self, seconds: int) -> Any:
        return f"{seconds}s"

    def _topic(self, topic: str) -> dict[str, Any]:
        return {"eventType": self.generation.pubsub_event, "resource": topic}

    def _bucket(self, event_type: str, bucket: str) -> dict[str, Any]:
        return {"eventType": event_type, "resource": f"projects/_/buckets/{bucket}"}

    def _retry(self, event: dict[str, Any]) -> None:
        event["failurePolicy"] = {"retry": {}}

    def _http_trigger(self, body: dict[str, Any]) -> None:
        # Only on create: an update leaves the trigger (and its security level) alone.
        body["httpsTrigger"] = {"securityLevel": "SECURE_ALWAYS"}


class V2Body(_Builder):
    """Cloud Functions v2: a ``Function`` with its build and service configuration."""

    def _source(self, out: Body) -> None:
        out.put("buildConfig.source", {"storageSource": {}})

    def with_source(self, body: dict[str, Any], source: Uploaded) -> dict[str, Any]:
        body["buildConfig"]["source"]["storageSource"] = {
            "bucket": source.bucket,
            "object": source.object,
            "generation": str(source.generation),
        }
        return body

    def staged(self, body: dict[str, Any], bucket: str, key: str) -> tuple[dict[str, Any], str]:
        body["buildConfig"]["source"]["storageSource"] = {"bucket": bucket, "object": key}
        return body, "storageSource.generation: pinned to the uploaded object's generation"

    def create_query(self, address: FunctionAddress) -> dict[str, str]:
        return {"functionId": address.name}

    def _memory(self, mib: int) -> Any:
        return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"

    def _timeout(self, seconds: int) -> Any:
        return seconds

    def _topic(self, topic: str) -> dict[str, Any]:
        return {"eventType": self.generation.pubsub_event, "pubsubTopic": topic}

    def _bucket(self, event_type: str, bucket: str) -> dict[str, Any]:
        return {"eventType": event_type, "eventFilters": [{"attribute": "bucket", "value": bucket}]}

    def _retry(self, event: dict[str, Any]) -> None:
        event["retryPolicy"] = "RETRY_POLICY_RETRY"

    def _http_trigger(self, body: dict[str, Any]) -> None:
        pass  # 2nd gen functions without an event trigger answer HTTP


BUILDERS: dict[str, type[V1Body] | type[V2Body]] = {"v1": V1Body, "v2": V2Body}


def body_builder(generation: Generation) -> FunctionBody:
    """The body builder of the API version ``generation`` speaks."""
    try:
        return BUILDERS[generation.api_version](generation)
    except KeyError:
        raise RuntimeError(
            f"targets.toml [gen.{generation.gen}.api] names version "
            f"{generation.api_version!r}, which no body builder speaks"
        ) from None


def _secrets(checked: Checked, project: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The secret references as environment variables and mounted volumes."""
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for ref in checked.secrets or ():
        owner = ref.owner or project
        if ref.key.startswith("/"):
            mount, _, path = ref.key.rstrip("/").rpartition("/")
            volumes.append(
                {
                    "mountPath": mount,
                    "projectId": owner,
                    "secret": ref.secret,
                    "versions": [{"version": ref.version, "path": path}],
                }
            )
        else:
            env.append(
                {"key": ref.key, "projectId": owner, "secret": ref.secret, "version": ref.version}
            )
    return env, volumes
