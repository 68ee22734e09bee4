"""Names checked before any call to Google Cloud: bucket, function, region, project,
topic, environment variables, labels and service accounts, each with the rule it
breaks and how to fix it. Nothing here talks to the network."""

from __future__ import annotations

import ipaddress
import logging
import re

from pyfn_action.errors import ConfigError
from pyfn_action.runtime.targets import generation, generations

log = logging.getLogger(__name__)


# --- names, checked before any call ------------------------------------------------

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_TOPIC = re.compile(r"^[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
RESERVED_ENV = frozenset(
    {
        "FUNCTION_TARGET",
        "FUNCTION_SIGNATURE_TYPE",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "PORT",
    }
)

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
