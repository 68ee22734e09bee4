"""Errors from Google's API clients turned into advice: what failed, why (the API's
own reason, without URLs or a server's detail), and what to do, naming the service
to enable, the role to grant or the location to choose."""

from __future__ import annotations

import re
from typing import Any

from pyfn_action.cloud.auth import first_line, roles
from pyfn_action.errors import CloudCredentialsError, CloudError, PyfnError
from pyfn_action.runtime.targets import generation

_HTTP_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")
_BAD_LOCATION = re.compile(
    r"\blocation\b.*\b(not found|not supported|unsupported|invalid|not valid)", re.IGNORECASE
)


def api_error(
    exc: BaseException,
    *,
    doing: str,
    kind: type[CloudError] = CloudError,
    project: str | None = None,
    region: str | None = None,
    bucket: str | None = None,
    gen: int = 2,
) -> PyfnError:
    """The advice for an exception raised by a Google client library.

    ``doing`` completes "while …", e.g. "uploading gs://b/o".
    """
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError

    what = f"Google Cloud refused {doing}"
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        # Retries ran out: judge by the last error, and say that it was retried.
        last = api_error(
            exc.cause,
            doing=doing,
            kind=kind,
            project=project,
            region=region,
            bucket=bucket,
            gen=gen,
        )
        retried = "; ".join(p for p in (last.why, "retried until the retry budget ran out") if p)
        return type(last)(last.what, why=retried, fix=last.fix)
    if isinstance(exc, (RefreshError, TransportError)) or (
        isinstance(exc, GoogleAuthError) and not isinstance(exc, gexc.GoogleAPIError)
    ):
        return CloudCredentialsError(
            f"The Google Cloud credentials could not be used for {doing}",
            why=first_line(str(exc)),
            fix="Check the credentials (google-github-actions/auth in CI, gcloud auth "
            "application-default login locally); the account needs "
            + roles("upload" if "upload" in doing else "deploy"),
        )
    if not isinstance(exc, gexc.GoogleAPICallError):
        if _is_network(exc):
            return kind(
                f"Could not reach Google Cloud while {doing}",
                why=first_line(str(exc)) or type(exc).__name__,
                fix="Check the network or proxy settings and run again; nothing was changed "
                "that a rerun cannot finish",
            )
        return kind(f"{doing} failed", why=f"{type(exc).__name__}: {first_line(str(exc))}")
    # HTTP errors start with "METHOD URL: "; the URL says nothing the user needs.
    message = _HTTP_PREFIX.sub("", first_line(exc.message or "")) or str(exc.code)
    bad_region = region is not None and bool(_BAD_LOCATION.search(message))
    reason = getattr(exc, "reason", None) or ""
    services = " ".join(generation(gen).services)
    if reason in ("SERVICE_DISABLED", "ACCESS_NOT_CONFIGURED") or (
        isinstance(exc, gexc.Forbidden)
        and ("has not been used" in message or "is disabled" in message)
    ):
        return kind(
            f"A Google Cloud API is not enabled in project {project or '(unknown)'}",
            why=message,
            fix=f"Enable it: gcloud services enable {services}"
            + (f" --project {project}" if project else ""),
        )
    if isinstance(exc, gexc.Unauthorized):  # 401 UNAUTHENTICATED
        return CloudCredentialsError(
            f"Google Cloud did not accept the credentials while {doing}",
            why=message,
            fix="Refresh them (gcloud auth application-default login, or check the "
            "google-github-actions/auth step)",
        )
    if isinstance(exc, gexc.Forbidden):  # 403 PERMISSION_DENIED
        needed = roles("upload" if bucket and "upload" in doing else "deploy")
        return kind(
            f"Permission denied while {doing}",
            why=message,
            fix=f"Grant the account {needed}",
        )
    if isinstance(exc, gexc.TooManyRequests):  # 429 RESOURCE_EXHAUSTED
        return kind(
            f"Quota exceeded while {doing}",
            why=message,
            fix="Wait and run again, or ask for more quota in the console (IAM & Admin → Quotas)",
        )
    if isinstance(exc, gexc.NotFound):
        if bucket is not None:
            return kind(
                f"Bucket gs://{bucket} does not exist (or the account cannot see it)",
                why=message,
                fix=f"Create it: gcloud storage buckets create gs://{bucket}"
                + (f" --location {region}" if region else "")
                + ", or pass an existing one with --bucket",
            )
        if bad_region:
            return kind(
                f"Region {region!r} is not available to Cloud Functions",
                why=message,
                fix="Pick one from gcloud functions regions list",
            )
        return kind(f"Not found while {doing}", why=message)
    if isinstance(exc, gexc.Conflict):  # 409 ABORTED / ALREADY_EXISTS
        return kind(
            f"Another change is in progress while {doing}",
            why=message,
            fix="Wait for the other deployment to finish, then run again",
        )
    if isinstance(exc, gexc.BadRequest):  # 400 INVALID_ARGUMENT / FAILED_PRECONDITION
        if bad_region:
            return kind(
                f"Region {region!r} is not available to Cloud Functions",
                why=message,
                fix="Pick one from gcloud functions regions list",
            )
        details = "; ".join(_violations(exc))
        return kind(
            f"{what}: the request is invalid",
            why=message + (f" ({details})" if details else ""),
            fix="Correct the setting it names",
        )
    return kind(
        f"{what}: HTTP {exc.code}",
        why=message,
        fix="Transient errors were retried; run again later",
    )


def is_bad_location(exc: Any) -> bool:
    """Whether a NotFound or BadRequest is about the region rather than the resource."""
    message = _HTTP_PREFIX.sub("", first_line(getattr(exc, "message", "") or ""))
    return bool(_BAD_LOCATION.search(message))


def _violations(exc: Any) -> list[str]:
    out: list[str] = []
    for detail in getattr(exc, "details", None) or []:
        for violation in getattr(detail, "field_violations", None) or []:
            out.append(f"{violation.field}: {violation.description}")
    return out


def _is_network(exc: BaseException) -> bool:
    import requests

    return isinstance(
        exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
    )
