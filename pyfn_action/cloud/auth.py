"""Application Default Credentials, the project they name, and the roles each job needs.

:func:`credentials` asks google-auth for Application Default Credentials (what
google-github-actions/auth sets up in CI, or ``gcloud auth application-default
login`` on a workstation). No key file is ever read from a function's source or
bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyfn_action.errors import CloudCredentialsError, ConfigError

log = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Where google-github-actions/auth and gcloud put the project, in the order they win.
PROJECT_VARIABLES = (
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_PROJECT",
    "GCLOUD_PROJECT",
)

DEPLOY_ROLES = (
    "roles/cloudfunctions.developer on the project",
    "roles/iam.serviceAccountUser on the function's runtime service account",
)
UPLOAD_ROLES = ("object write on the bucket (roles/storage.objectUser: get and create)",)


DEPLOY_EXTRA = "pyfn-action[deploy]"


def require_client_libraries(needed_for: str) -> None:
    """Google's client libraries are there (``pyfn-action[deploy]``), or a clear error."""
    import importlib.util

    missing = [
        name
        for name in ("google.auth", "google.cloud.storage", "google_crc32c")
        if _absent(importlib.util, name)
    ]
    if missing:
        from pyfn_action import __version__

        raise ConfigError(
            f"Cannot {needed_for}: Google's client libraries are not installed",
            why=f"{', '.join(missing)} cannot be imported; they come with the deploy extra",
            fix=f'pip install "{DEPLOY_EXTRA}=={__version__}"',
        )


def _absent(util: Any, name: str) -> bool:
    try:
        return util.find_spec(name) is None
    except ModuleNotFoundError:  # its parent package is missing
        return True


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
            + roles(needed_for),
        ) from None
    return creds, project_from_env(env) or project


def project_from_env(env: Mapping[str, str]) -> str | None:
    return next((env[name] for name in PROJECT_VARIABLES if env.get(name)), None)


def roles(needed_for: str) -> str:
    roles = UPLOAD_ROLES if needed_for == "upload" else DEPLOY_ROLES + UPLOAD_ROLES
    return "; ".join(roles)


def first_line(text: str) -> str:
    """The first non-empty line of an error text: the rest is a server's detail or a URL."""
    return text.strip().splitlines()[0] if text.strip() else ""
