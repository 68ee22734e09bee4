"""Who may call a function: ``allUsers`` as an invoker, granted or taken away.

What ``gcloud functions deploy --allow-unauthenticated`` does, and where: a 1st gen
function's invokers are its own IAM policy (``roles/cloudfunctions.invoker``); a
2nd gen function is served by a Cloud Run service, whose policy says who may call
it (``roles/run.invoker``), so that policy is the one changed, through Cloud Run's
client (``google-cloud-run``). A policy is read, changed and written back with the
``etag`` it was read with; a concurrent change (409) is read again, a few times.
``PYFN_RUN_ENDPOINT`` (or gcloud's ``CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN``)
overrides Cloud Run's endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pyfn_action.cloud.api_errors import api_error
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.errors import DeployError
from pyfn_action.runtime.targets import Generation

log = logging.getLogger(__name__)

EVERYONE = "allUsers"
ROLES = {"v1": "roles/cloudfunctions.invoker", "v2": "roles/run.invoker"}
ATTEMPTS = 3


def set_public(
    public: bool,
    function: Any,
    address: FunctionAddress,
    gen: Generation,
    *,
    api: Any,
    credentials: Any,
    env: Mapping[str, str],
) -> bool:
    """Grant ``allUsers`` the invoker role (``public``) or take it away; whether the
    policy changed. ``function`` is the deployed function, as the API returned it."""
    from google.api_core import exceptions as gexc

    role = ROLES[gen.api_version]
    if gen.api_version == "v1":
        client, resource = api, address.path
    else:
        resource = str(function.service_config.service or "")
        if not resource:
            raise DeployError(
                f"Cloud Functions did not say which Cloud Run service serves {address.name}",
                fix="Run again; gcloud functions describe shows the function's service",
            )
        client = run_client(credentials, env)
    doing = f"{'granting' if public else 'removing'} {EVERYONE} {role} on {address.name}"
    for attempt in range(ATTEMPTS):
        try:
            policy = client.get_iam_policy(request={"resource": resource})
            if not _change(policy, role, public):
                return False
            client.set_iam_policy(request={"resource": resource, "policy": policy})
            return True
        except (gexc.Aborted, gexc.Conflict):  # changed since it was read: read it again
            if attempt + 1 == ATTEMPTS:
                raise DeployError(
                    f"Could not change who may call {address.name}",
                    why="its IAM policy kept changing while pyfn wrote it",
                    fix="Run again",
                ) from None
        except Exception as exc:
            raise api_error(
                exc,
                doing=doing,
                kind=DeployError,
                project=address.project,
                region=address.region,
                gen=gen.gen,
            ) from None
    return False


def _change(policy: Any, role: str, public: bool) -> bool:
    """Add ``allUsers`` to ``role``'s binding, or take it out; whether anything changed."""
    bindings = [b for b in policy.bindings if b.role == role and not b.condition.expression]
    has = any(EVERYONE in b.members for b in bindings)
    if has == public:
        return False
    if public:
        if bindings:
            bindings[0].members.append(EVERYONE)
        else:
            policy.bindings.add(role=role, members=[EVERYONE])
        return True
    for binding in bindings:
        kept = [m for m in binding.members if m != EVERYONE]
        del binding.members[:]
        binding.members.extend(kept)
    empty = [b for b in policy.bindings if not b.members]
    for binding in empty:
        policy.bindings.remove(binding)
    return True


def run_client(credentials: Any, env: Mapping[str, str]) -> Any:
    """Cloud Run's services client, over REST."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import run_v2

    endpoint = (
        env.get("PYFN_RUN_ENDPOINT") or env.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN") or ""
    ).rstrip("/") or None
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)
