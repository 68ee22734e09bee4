"""Deploy settings judged against a generation's rules, before any call.

:func:`check` judges the settings against the generation's rules from
``data/targets.toml`` (request timeout limits, memory sizes, the settings it
has a field for, the function name rule) and the rules every generation shares,
and parses what a request body is made of (the trigger, secret references).
It needs no project, so it runs before the credentials are read: a mistake in
any setting stops a deploy before anything is read, built or uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyfn_action.cloud.names import (
    check_bucket,
    check_email,
    check_env_vars,
    check_function_name,
    check_labels,
    topic_ref,
)
from pyfn_action.config import DeploySettings
from pyfn_action.errors import ConfigError
from pyfn_action.runtime.targets import Generation, generations

# The deploy settings that map to one field of the function, in the update mask's order.
SETTINGS = (
    "memory",
    "cpu",
    "function_timeout",
    "min_instances",
    "max_instances",
    "concurrency",
    "env_vars",
    "service_account",
    "ingress",
    "labels",
)


@dataclass(frozen=True)
class FunctionAddress:
    """Where a function lives: its project, region and name."""

    project: str
    region: str
    name: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def path(self) -> str:
        return f"{self.parent}/functions/{self.name}"


@dataclass(frozen=True)
class SecretRef:
    """One Secret Manager reference: an environment variable, or a file in a mounted volume."""

    key: str  # ENV, or /mount/path/file
    owner: str | None  # the secret's project; None: the function's own
    secret: str
    version: str  # a number, or "latest"


@dataclass(frozen=True)
class Checked:
    """Deploy settings that passed a generation's rules, with what the body is made of."""

    settings: DeploySettings
    generation: Generation
    trigger: str  # "http", "topic" or "bucket"
    secrets: tuple[SecretRef, ...] | None
    trigger_bucket: str | None  # the trigger's bucket name, checked


def check(
    settings: DeploySettings, generation: Generation, *, name: str, signature: str
) -> Checked:
    """Every deploy setting judged against ``generation``'s rules, before any call."""
    check_function_name(name, generation.gen)
    trigger = _trigger_kind(settings)
    _check(settings, generation, signature, trigger)
    secrets = (
        None if settings.secrets is None else tuple(_secret(k, r) for k, r in settings.secrets)
    )
    bucket = None
    if trigger == "topic":
        assert settings.trigger_topic
        topic_ref(settings.trigger_topic)
    elif trigger == "bucket":
        bucket = check_bucket(settings.trigger_bucket)
    return Checked(
        settings=settings,
        generation=generation,
        trigger=trigger,
        secrets=secrets,
        trigger_bucket=bucket,
    )


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


def _check(settings: DeploySettings, generation: Generation, signature: str, trigger: str) -> None:
    kind = "http" if trigger == "http" else "event"
    if kind == "event" and signature not in ("cloudevent", "event"):
        raise ConfigError(
            f"A {trigger} trigger needs an event function, but signature is {signature!r}",
            fix='Set signature = "cloudevent" and decorate the function with '
            '@functions_framework.cloud_event, or signature = "event" for a legacy '
            "def handler(data, context)",
        )
    if kind == "http" and settings.retry:
        raise ConfigError(
            "retry is set but the function has no event trigger",
            why="only event-driven functions are retried; an HTTP caller retries itself",
            fix="Drop --retry, or set --trigger-topic or --trigger-bucket",
        )
    if kind == "http" and signature in ("cloudevent", "event"):
        raise ConfigError(
            f"signature is {signature!r} but no event trigger is set",
            fix="Set --trigger-topic or --trigger-bucket, or use an HTTP function",
        )
    if settings.function_timeout is not None:
        limit = generation.max_timeout_seconds[kind]
        if settings.function_timeout > limit:
            raise ConfigError(
                f"function_timeout {settings.function_timeout}s is over the limit",
                why=f"{generation.label} {kind} functions run at most {limit} s",
                fix=f"Set function_timeout to {limit}s or less",
            )
    sizes = generation.memory_mib
    if settings.memory is not None and sizes is not None and settings.memory not in sizes:
        raise ConfigError(
            f"memory {settings.memory}Mi is not a {generation.label} size",
            why=f"{generation.label} takes " + ", ".join(f"{m}Mi" for m in sizes),
        )
    for key in SETTINGS:
        if getattr(settings, key) is not None and not generation.has_setting(key):
            raise _missing_setting(key)
    if settings.concurrency is not None and not 1 <= settings.concurrency <= 1000:
        raise ConfigError("concurrency must be 1 to 1000", why=f"it is {settings.concurrency}")
    if (
        settings.concurrency is not None
        and settings.concurrency > 1
        and settings.cpu is not None
        and cpu_count(settings.cpu) < 1
    ):
        raise ConfigError(
            f"concurrency {settings.concurrency} needs at least 1 vCPU, cpu is {settings.cpu}",
            fix="Set --cpu 1 (or more), or --concurrency 1",
        )
    if settings.cpu is not None:
        cpu_count(settings.cpu)
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


def _missing_setting(key: str) -> ConfigError:
    """The error for a setting this generation has no field for, naming those that have."""
    having = [g for g in generations() if g.has_setting(key)]
    if not having:
        return ConfigError(f"{key} is not a setting Cloud Functions has", fix=f"Drop --{key}")
    labels = " or ".join(g.label for g in having)
    return ConfigError(
        f"{key} is a {labels} setting", fix=f"Drop --{key}, or deploy with --gen {having[0].gen}"
    )


def cpu_count(text: str) -> float:
    """The number of vCPUs ``text`` asks for, or a ConfigError."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"cpu {text!r} is not a number of vCPUs", fix="Use e.g. 0.583, 1, 2 or 4"
        ) from None
    if value <= 0:
        raise ConfigError(f"cpu {text!r} is not a positive number of vCPUs")
    return value


def _secret(key: str, ref: str) -> SecretRef:
    """``ENV=secret[:version]`` or ``/mount/file=secret[:version]``, judged."""
    parts = ref.strip().split("/")
    owner: str | None
    if len(parts) in (4, 6) and parts[0] == "projects" and parts[2] == "secrets":
        owner, secret = parts[1], parts[3]
        version = parts[5] if len(parts) == 6 and parts[4] == "versions" else "latest"
    elif len(parts) == 1:
        owner = None
        secret, _, version = parts[0].partition(":")
        version = version or "latest"
    else:
        owner = secret = version = ""
    if not secret or owner == "" or not (version == "latest" or version.isdigit()):
        raise ConfigError(
            f"Secret {key}={ref!r} is not a Secret Manager reference",
            why="it should be SECRET, SECRET:VERSION or projects/P/secrets/S/versions/V, "
            "VERSION a number or latest",
        )
    if key.startswith("/"):
        mount, _, path = key.rstrip("/").rpartition("/")
        if not mount or not path:
            raise ConfigError(
                f"Secret mount {key!r} needs a directory and a file name",
                fix="Use e.g. /etc/secrets/api-key=api-key:latest",
            )
    else:
        check_env_vars(((key, ""),), "secret environment variable")
    return SecretRef(key=key, owner=owner, secret=secret, version=version)
