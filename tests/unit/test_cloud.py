"""Name rules checked before any call, and Google API errors turned into advice."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import RefreshError

from pyfn_action.cloud.api_errors import api_error
from pyfn_action.cloud.names import check_bucket, check_project, check_region
from pyfn_action.errors import CloudCredentialsError, ConfigError, DeployError, UploadError


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("my-staging", True),
        ("a_b.c-d", True),
        ("abc", True),
        ("a" * 63, True),
        ("gs://my-staging/", True),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("-start", False),
        ("end-", False),
        ("has space", False),
        ("goog-x", False),
        ("my-google", False),
        ("my-g00gle", False),
        ("10.0.0.1", False),
        ("a..b", False),
        (".".join(["a" * 63] * 3), True),
        ("a" * 64 + ".com", False),
    ],
)
def test_bucket_names(name: str, ok: bool) -> None:
    if ok:
        assert check_bucket(name) == name.removeprefix("gs://").rstrip("/")
    else:
        with pytest.raises(ConfigError) as caught:
            check_bucket(name)
        assert "3-63 characters" in caught.value.message


@pytest.mark.parametrize(
    ("region", "ok"),
    [
        ("us-central1", True),
        ("northamerica-northeast2", True),
        ("Tokyo", False),
        ("us-central", False),
        ("", False),
    ],
)
def test_regions(region: str, ok: bool) -> None:
    if ok:
        assert check_region(region) == region
    else:
        with pytest.raises(ConfigError):
            check_region(region)


@pytest.mark.parametrize(
    ("project", "ok"),
    [
        ("demo-proj", True),
        ("example.com:my-proj", True),
        ("ab", False),
        ("My-Proj", False),
        ("proj-", False),
        ("123456", False),
    ],
)
def test_project_ids(project: str, ok: bool) -> None:
    if ok:
        assert check_project(project) == project
    else:
        with pytest.raises(ConfigError):
            check_project(project)


def _http(
    cls: type[gexc.GoogleAPICallError], message: str, **kw: object
) -> gexc.GoogleAPICallError:
    # As api_core words errors from an HTTP response.
    return cls(f"PATCH https://cloudfunctions.googleapis.com/v2/x: {message}", **kw)  # type: ignore[arg-type]


def test_retry_exhaustion_is_judged_by_its_last_error() -> None:
    last = requests.ConnectionError("Connection aborted.")
    exc = gexc.RetryError("Timeout of 300.0s exceeded", cause=last)
    error = api_error(exc, doing="uploading b.zip", kind=UploadError, bucket="b")
    assert isinstance(error, UploadError)
    assert "Could not reach Google Cloud while uploading b.zip" in error.message
    assert "retried until the retry budget ran out" in error.message


def test_refresh_and_401_are_credential_errors() -> None:
    assert isinstance(api_error(RefreshError("invalid_grant"), doing="x"), CloudCredentialsError)
    error = api_error(_http(gexc.Unauthorized, "Request had invalid credentials"), doing="x")
    assert isinstance(error, CloudCredentialsError)
    assert error.exit_code == 13


def test_conflict_and_bad_request_name_what_to_do() -> None:
    error = api_error(
        _http(gexc.Conflict, "An operation is in progress"), doing="updating f", kind=DeployError
    )
    assert "Another change is in progress" in error.message and error.exit_code == 15
    bad = api_error(
        _http(gexc.BadRequest, "Invalid value for maxInstanceCount"),
        doing="updating f",
        kind=DeployError,
    )
    assert "the request is invalid" in bad.message
    assert "Invalid value for maxInstanceCount" in bad.message
    assert "https://" not in bad.message  # the request URL is noise to a user


def test_a_location_error_is_told_apart_from_a_missing_resource() -> None:
    region = api_error(
        _http(gexc.NotFound, "Location projects/p/locations/xx-nowhere1 is not found"),
        doing="reading f",
        kind=DeployError,
        region="xx-nowhere1",
    )
    assert "Region 'xx-nowhere1' is not available" in region.message
    name = "projects/p/locations/us-central1/functions/f"
    missing = api_error(
        _http(gexc.NotFound, f"Resource '{name}' was not found"),
        doing="reading f",
        kind=DeployError,
        region="us-central1",
    )
    assert "Not found while reading f" in missing.message


def test_other_exceptions_keep_their_kind_and_say_what_happened() -> None:
    error = api_error(ValueError("odd"), doing="uploading z", kind=UploadError)
    assert isinstance(error, UploadError)
    assert "ValueError: odd" in error.message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "from-credentials"),
        ({"GCLOUD_PROJECT": "gcloud-p"}, "gcloud-p"),
        ({"GCLOUD_PROJECT": "gcloud-p", "CLOUDSDK_PROJECT": "sdk-p"}, "sdk-p"),
        ({"CLOUDSDK_PROJECT": "sdk-p", "CLOUDSDK_CORE_PROJECT": "core-p"}, "core-p"),
        ({"CLOUDSDK_CORE_PROJECT": "core-p", "GOOGLE_CLOUD_PROJECT": "google-p"}, "google-p"),
        ({"GOOGLE_CLOUD_PROJECT": "", "CLOUDSDK_CORE_PROJECT": "core-p"}, "core-p"),
    ],
)
def test_the_project_is_the_environments_before_the_credentials(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """docs/deploy.md: --project, else GOOGLE_CLOUD_PROJECT (or CLOUDSDK_CORE_PROJECT, ...),
    else the credentials' own project."""
    import google.auth

    from pyfn_action.cloud.auth import credentials

    monkeypatch.setattr(google.auth, "default", lambda **kwargs: (object(), "from-credentials"))
    assert credentials(env)[1] == expected


def test_the_project_flag_comes_before_the_environment(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run with no credentials: the plan's project is the flag's, over the variables."""
    from pathlib import Path

    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from pyfn_action.config import resolve, resolve_deploy
    from pyfn_action.flows.jobs import prepare_deploy

    def no_credentials(**kwargs: object) -> None:
        raise DefaultCredentialsError("none here")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    src = Path(str(tmp_path))
    (src / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    env = {"GOOGLE_CLOUD_PROJECT": "google-p", "PYFN_TODAY": "2026-12-07"}
    config = resolve(src, env=env, flags={"name": "hello"})
    for flags, expected in (({"project": "flag-p"}, "flag-p"), ({}, "google-p")):
        settings = resolve_deploy(
            src, env=env, flags={**flags, "region": "us-central1", "bucket": "stage"}
        )
        prepared = prepare_deploy(config, settings, env, dry_run=True)
        assert prepared.plan.address.project == expected


def test_without_googles_client_libraries_upload_and_deploy_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from pyfn_action import __version__
    from pyfn_action.cloud import auth

    auth.require_client_libraries("deploy")  # installed here (the test extra has them)
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name.startswith("google") else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match="Cannot deploy: Google's client libraries") as raised:
        auth.require_client_libraries("deploy")
    assert raised.value.fix == f'pip install "pyfn-action[deploy]=={__version__}"'
