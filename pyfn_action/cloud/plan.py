"""The deploy plan: what would be sent to the Cloud Functions API, made once per deploy.

A deploy is planned in two steps, so that every setting is refused before the
first call to Google Cloud and the plan is still made only once:
:func:`pyfn_action.cloud.rules.check` judges the settings (it needs no
project), then :func:`make_plan` turns them into the request body and the
update mask listing only what the user set, through the body builder of the
generation's API version (:mod:`pyfn_action.cloud.bodies`).

The plan names no bundle yet: :meth:`Plan.with_source` pins the uploaded
object, :meth:`Plan.staged` names the object a dry run would upload to, so
``--dry-run`` prints exactly what would be sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyfn_action.bundle.nodepackage import PRELOAD_OPTION, node_options
from pyfn_action.cloud.bodies import Body, body_builder
from pyfn_action.cloud.rules import Checked, FunctionAddress, check
from pyfn_action.cloud.upload import Uploaded
from pyfn_action.config import DeploySettings
from pyfn_action.runtime.targets import Generation


@dataclass(frozen=True)
class Plan:
    """What would be sent: the function as the API's JSON, and the update mask."""

    address: FunctionAddress
    generation: Generation
    body: dict[str, Any]
    update_mask: list[str]  # camelCase paths, as the REST API takes them
    notes: list[str] = field(default_factory=list)

    def with_source(self, source: Uploaded) -> Plan:
        """The plan with the uploaded bundle as the function's source, pinned where the
        API version can pin it."""
        body = body_builder(self.generation).with_source(_copy(self.body), source)
        return Plan(
            address=self.address,
            generation=self.generation,
            body=body,
            update_mask=self.update_mask,
            notes=list(self.notes),
        )

    def with_environment(self, deployed: Mapping[str, str] | None, exists: bool | None) -> Plan:
        """The plan with ``NODE_OPTIONS`` preloading the bundle's ``index.js``, where the
        deploy sets no environment of its own: on a new function, the one variable; on an
        existing one whose variables (``deployed``) lack it, theirs and it (the variables
        are one field: all of them are sent); else nothing. Whether the function exists
        unknown (a dry run without credentials): a note says what will happen."""
        path = self.generation.fields["env_vars"]
        if path in self.update_mask:
            return self  # configured: the builder added NODE_OPTIONS
        if exists is None:
            note = (
                f"NODE_OPTIONS={PRELOAD_OPTION} will be added to the function's "
                "environment variables, which are kept"
            )
            return Plan(
                address=self.address,
                generation=self.generation,
                body=self.body,
                update_mask=self.update_mask,
                notes=[*self.notes, note],
            )
        env = dict(deployed or {}) if exists else {}
        options = node_options(env.get("NODE_OPTIONS"))
        if exists and env.get("NODE_OPTIONS") == options:
            return self
        env["NODE_OPTIONS"] = options
        built = Body(_copy(self.body), list(self.update_mask))
        built.put(path, env)
        return Plan(
            address=self.address,
            generation=self.generation,
            body=built.body,
            update_mask=built.update_mask,
            notes=list(self.notes),
        )

    @property
    def node_runtime(self) -> str:
        """The Node.js runtime the body asks for (``nodejs22``), read where the API has it."""
        holder: Any = self.body
        for part in self.generation.fields["runtime"].split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        return holder if isinstance(holder, str) else ""

    def staged(self, bucket: str, key: str) -> Plan:
        """For a dry run: the object the bundle would be uploaded to, its generation unknown."""
        body, note = body_builder(self.generation).staged(_copy(self.body), bucket, key)
        return Plan(
            address=self.address,
            generation=self.generation,
            body=body,
            update_mask=self.update_mask,
            notes=[*self.notes, note],
        )

    def requests(self) -> dict[str, Any]:
        """Both requests: ``create`` if the function is absent, ``update`` if it exists.

        Environment variable values are hidden: plans end up in CI logs.
        """
        body = redacted(self.body, self.generation)
        version = self.generation.api_version
        create = {
            "method": "POST",
            "path": f"/{version}/{self.address.parent}/functions",
            "query": body_builder(self.generation).create_query(self.address),
            "body": body,
        }
        update = {
            "method": "PATCH",
            "path": f"/{version}/{self.address.path}",
            "query": {"updateMask": ",".join(self.update_mask)},
            "body": body,
        }
        return {"create": create, "update": update}


def plan(
    settings: DeploySettings,
    address: FunctionAddress,
    generation: Generation,
    *,
    entry_point: str,
    signature: str,
) -> Plan:
    """:func:`check` and :func:`make_plan` in one: the plan for ``settings``."""
    checked = check(settings, generation, name=address.name, signature=signature)
    return make_plan(checked, address, entry_point=entry_point)


def make_plan(checked: Checked, address: FunctionAddress, *, entry_point: str) -> Plan:
    """The request body and update mask for settings :func:`check` accepted."""
    built = body_builder(checked.generation).build(checked, address, entry_point=entry_point)
    return Plan(
        address=address,
        generation=checked.generation,
        body=built.body,
        update_mask=built.update_mask,
        notes=built.notes,
    )


# --- showing a plan ----------------------------------------------------------------


def redacted(body: Mapping[str, Any], generation: Generation) -> dict[str, Any]:
    """The body with environment variable values hidden: plans end up in CI logs."""
    out = _copy(body)
    *parents, leaf = generation.fields["env_vars"].split(".")
    holder: Any = out
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
    env = holder.get(leaf) if isinstance(holder, dict) else None
    if isinstance(env, dict):
        holder[leaf] = {k: "<redacted>" for k in env}
    return out


def _copy(body: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(body))
    return copied
