"""What every call to Google Cloud shares: names checked before any call,
Application Default Credentials, and API errors turned into advice.

Nothing here talks to the network except :func:`credentials`, which asks
google-auth for Application Default Credentials (what
google-github-actions/auth sets up in CI, or ``gcloud auth
application-default login`` on a workstation). No key file is ever read from
a function's source or bundle.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyfn_action.errors import CloudCredentialsError, CloudError, ConfigError, PyfnError
from pyfn_action.runtime.targets import generation, generations

log = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Where google-github-actions/auth and gcloud put the project, in the order they win.
PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_PROJECT",
                     "GCLOUD_PROJECT")  # fmt: skip

DEPLOY_ROLES = (
    "roles/cloudfunctions.developer on the project",
    "roles/iam.serviceAccountUser on the function's runtime service account",
)
UPLOAD_ROLES = ("object write on the bucket (roles/storage.objectUser: get and create)",)

# --- names, checked before any call ------------------------------------------------

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_TOPIC = re.compile(r"^[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_HTTP_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")
_BAD_LOCATION = re.compile(
    r"\blocation\b.*\b(not found|not supported|unsupported|invalid|not valid)", re.IGNORECASE
)
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
RESERVED_ENV = frozenset(
    {"FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "K_SERVICE", "K_REVISION",
     "K_CONFIGURATION", "PORT"}
)  # fmt: skip

BUCKET_RULE = (
    "bucket names are 3-63 characters (up to 222 with dots, 63 between dots) of lowercase "
    "letters, digits, '-', '_' and '.', start and end with a letter or digit, are not an IP "
    "address, do not start with 'goog' and do not contain 'google'"
)


def check_bucket(name: str | None) -> str:
    """A bucket name that Cloud Storage accepts, or a ConfigError quoting the rule."""
    if not name:
        raise ConfigError(
            "No staging bucket given",
            fix="Pass --bucket NAME (or PYFN_BUCKET, or bucket in pyfn.toml)",
        )
    name = name.removeprefix("gs://").rstrip("/")
    parts = name.split(".")
    problem = ""
    if not _BUCKET_CHARS.match(name):
        problem = "it has a character that is not allowed, or starts or ends with one"
    elif len(name) < 3 or len(name) > (222 if "." in name else 63):
        problem = f"it is {len(name)} characters long"
    elif any(len(p) == 0 or len(p) > 63 for p in parts):
        problem = "a part between dots is empty or longer than 63 characters"
    elif name.startswith("goog") or _GOOGLE_LIKE.search(name):
        problem = "it starts with 'goog' or contains 'google' (or a look-alike)"
    else:
        try:
            ipaddress.ip_address(name)
            problem = "it is an IP address"
        except ValueError:
            pass
    if problem:
        raise ConfigError(
            f"{name!r} is not a valid Cloud Storage bucket name",
            why=f"{problem}; {BUCKET_RULE}",
            fix="Pass the name of an existing bucket with --bucket (without gs://)",
        )
    return name


def check_function_name(name: str, gen: int) -> str:
    """A function ID that generation ``gen`` accepts, by its rule in ``targets.toml``.

    A refused name comes with a suggestion that every generation accepts.
    """
    rules = generation(gen)
    if len(name) > rules.name_max_length or not rules.name_pattern.match(name):
        hint = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        fix = f"Set --name, e.g. --name {hint}" if hint and _valid_everywhere(hint) else ""
        raise ConfigError(
            f"{name!r} is not a valid Cloud Functions name",
            why=rules.name_rule,
            fix=fix or "Set --name",
        )
    return name


def _valid_everywhere(name: str) -> bool:
    """Whether ``name`` follows every generation's pattern (its length is judged apart)."""
    return all(g.name_pattern.match(name) for g in generations())


def check_region(region: str | None) -> str:
    if not region:
        raise ConfigError(
            "No region given",
            fix="Pass --region (e.g. us-central1), set PYFN_REGION, or region in pyfn.toml; "
            "gcloud functions regions list shows the regions",
        )
    if not _REGION.match(region):
        raise ConfigError(
            f"{region!r} is not a Cloud Functions region",
            why="regions look like us-central1 or asia-northeast1",
            fix="gcloud functions regions list shows the regions",
        )
    return region


def check_project(project: str | None) -> str:
    if not project:
        raise ConfigError(
            "No Google Cloud project given, and the credentials name none",
            fix="Pass --project, set PYFN_PROJECT or GOOGLE_CLOUD_PROJECT, or project in pyfn.toml",
        )
    if not _PROJECT.match(project):
        raise ConfigError(
            f"{project!r} is not a Google Cloud project ID",
            why="project IDs are 6-30 lowercase letters, digits and '-', starting with a letter "
            "(the ID, not the display name or number)",
            fix="gcloud projects list shows the IDs",
        )
    return project


def topic_ref(topic: str) -> tuple[str | None, str]:
    """A Pub/Sub topic's project (``None``: not named) and name, the name judged."""
    m = re.match(r"^projects/([^/]+)/topics/([^/]+)$", topic)
    owner, name = (m.group(1), m.group(2)) if m else (None, topic)
    if not _TOPIC.match(name) or name.startswith("goog"):
        raise ConfigError(
            f"{topic!r} is not a Pub/Sub topic",
            why="topic names are 3-255 letters, digits and -_.~+%, start with a letter and do "
            "not start with 'goog'",
        )
    return owner, name


def check_topic(topic: str, project: str) -> str:
    """``projects/P/topics/T`` for a topic name or full path."""
    owner, name = topic_ref(topic)
    return f"projects/{owner or project}/topics/{name}"


def check_env_vars(pairs: tuple[tuple[str, str], ...], what: str = "environment variable") -> None:
    for key, _ in pairs:
        if not _ENV_KEY.match(key):
            raise ConfigError(
                f"{key!r} is not a valid {what} name",
                why="names are letters, digits and '_', not starting with a digit",
            )
        if key in RESERVED_ENV or key.startswith("X_GOOGLE_"):
            raise ConfigError(
                f"{key!r} is reserved by Cloud Functions",
                why="the platform sets FUNCTION_TARGET, K_SERVICE, PORT and X_GOOGLE_* itself",
                fix="Rename the variable",
            )


def check_labels(pairs: tuple[tuple[str, str], ...]) -> None:
    for key, value in pairs:
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise ConfigError(
                f"Label {key}={value!r} is not valid",
                why="label keys are 1-63 lowercase letters, digits, '-' and '_' starting with a "
                "letter; values are up to 63 of the same",
            )


def check_email(email: str) -> str:
    if not _EMAIL.match(email):
        raise ConfigError(
            f"{email!r} is not a service account email",
            why="it looks like NAME@PROJECT.iam.gserviceaccount.com",
        )
    return email


# --- credentials ------------------------------------------------------------------


def credentials(
    env: Mapping[str, str], source: Path | None = None, *, needed_for: str = "deploy"
) -> tuple[Any, str | None]:
    """Application Default Credentials and the project they name.

    A credentials file inside the function's source is refused: it would be a
    key file next to code that is about to be bundled.
    """
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and source is not None:
        try:
            inside = Path(path).resolve().is_relative_to(source.resolve())
        except OSError:
            inside = False
        if inside:
            log.warning(
                "GOOGLE_APPLICATION_CREDENTIALS points inside the function's source (%s); "
                "it is used to call Google Cloud but never bundled",
                path,
            )
    try:
        # google-auth reads its variables (GOOGLE_APPLICATION_CREDENTIALS and the
        # gcloud configuration) from the process environment, as every Google tool does.
        creds, project = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        raise CloudCredentialsError(
            f"No Google Cloud credentials found to {needed_for}",
            why=first_line(str(exc)),
            fix="In GitHub Actions, run google-github-actions/auth before this step; on a "
            "workstation, run gcloud auth application-default login. The account needs "
            + _roles(needed_for),
        ) from None
    return creds, project_from_env(env) or project


def project_from_env(env: Mapping[str, str]) -> str | None:
    return next((env[name] for name in PROJECT_VARIABLES if env.get(name)), None)


def _roles(needed_for: str) -> str:
    roles = UPLOAD_ROLES if needed_for == "upload" else DEPLOY_ROLES + UPLOAD_ROLES
    return "; ".join(roles)


def first_line(text: str) -> str:
    """The first non-empty line of an error text: the rest is a server's detail or a URL."""
    return text.strip().splitlines()[0] if text.strip() else ""


# --- errors -------------------------------------------------------------------------


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
        last = api_error(exc.cause, doing=doing, kind=kind, project=project, region=region,
                         bucket=bucket, gen=gen)  # fmt: skip
        last.why = "; ".join(p for p in (last.why, "retried until the retry budget ran out") if p)
        last.args = (last.message,)
        return last
    if isinstance(exc, (RefreshError, TransportError)) or (
        isinstance(exc, GoogleAuthError) and not isinstance(exc, gexc.GoogleAPIError)
    ):
        return CloudCredentialsError(
            f"The Google Cloud credentials could not be used for {doing}",
            why=first_line(str(exc)),
            fix="Check the credentials (google-github-actions/auth in CI, gcloud auth "
            "application-default login locally); the account needs "
            + _roles("upload" if "upload" in doing else "deploy"),
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
        needed = _roles("upload" if bucket and "upload" in doing else "deploy")
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
