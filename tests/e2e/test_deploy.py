"""`pyfn deploy` end to end: a real build, an upload to gcp-storage-emulator (behind the
precondition-enforcing proxy), and the Cloud Functions API played by a loopback contract
fake that checks every request against the API's discovery document."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, PROJECT, Cloud, Outcome, build_args, pyfn
from support.functions_api import TOKEN, Injected
from support.gcs import object_meta

pytestmark = pytest.mark.e2e
MAIN_PY = """import functions_framework


@functions_framework.http
def hello(request):
    return "Hello from PyPy!\\n"
"""
EVENT_PY = """import functions_framework


@functions_framework.cloud_event
def on_upload(event):
    print(event["id"])
"""


def function(tmp_path: Path, name: str = "hello", code: str = MAIN_PY) -> Path:
    src = tmp_path / name
    src.mkdir()
    (src / "main.py").write_text(code)
    return src


def kept(cloud: Cloud) -> None:
    """Neither fake saw a request that breaks its API's contract: whatever the deploy did
    or failed at, it was not a malformed request answered with a 400 (or a 401, a 404 for
    a URL that is no method...) by a fake."""
    assert cloud.fake.violations == [], cloud.fake.violations
    assert cloud.proxy.refused == [], cloud.proxy.refused


def deploy_in_a_shell(
    cloud: Cloud,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    src: Path,
    *more: str,
) -> Outcome:
    """`pyfn deploy` as a shell runs it (``cli.main``, in this process): what it says while
    it works (the build stages, warnings) is on stderr, as a user sees it."""
    from pyfn_action import cli

    for name in list(os.environ):
        if name not in cloud.env:
            monkeypatch.delenv(name)
    for name, value in cloud.env.items():
        monkeypatch.setenv(name, value)
    args = build_args(
        src,
        src.parent / f"dist-{src.name}",
        cloud.served,
        cloud.index_url,
        "--region",
        "asia-northeast1",
        "--bucket",
        BUCKET,
        *more,
        command="deploy",
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()
    try:
        code = cli.main(args)  # its logging goes to this test's captured stderr
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def said(stderr: str, level: str = "INFO") -> list[str]:
    """What pyfn logged at ``level``, line by line, without its prefix."""
    prefix = f"pyfn: {level}: "
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def test_deploy_creates_then_updates_only_what_is_set(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    first = cloud.deploy(src, "--memory", "512Mi", "--env-vars", "MODE=prod")
    assert first.code == 0, first.stderr
    kept(cloud)
    url = "https://asia-northeast1-demo-proj.cloudfunctions.net/hello"
    assert first.stdout.splitlines()[:2] == [
        "created projects/demo-proj/locations/asia-northeast1/functions/hello: ACTIVE",
        f"url: {url}",
    ]
    [create] = cloud.fake.changes()
    assert (create.method, create.query["functionId"]) == ("POST", "hello")
    storage = create.body["buildConfig"]["source"]["storageSource"]
    meta = object_meta(cloud.proxy.upstream, BUCKET, storage["object"])
    assert meta is not None and str(meta["generation"]) == storage["generation"]
    assert storage["object"].startswith("pyfn/hello/") and storage["object"].endswith(".zip")
    assert create.body["serviceConfig"]["environmentVariables"] == {
        "MODE": "prod",
        "NODE_OPTIONS": "--require ./index.js",
    }
    assert f"source: gs://{BUCKET}/{storage['object']}#{storage['generation']}" in first.stdout
    assert cloud.uploads() == 1
    # The secret material never reaches the output.
    for out in (first.stdout, first.stderr):
        assert TOKEN not in out and "PRIVATE KEY" not in out

    # Settings made elsewhere (the console, gcloud) survive a deploy that does not set them.
    stored = cloud.fake.functions["v2"][create.body["name"]]
    stored["labels"] = {"owner": "ops"}
    stored["serviceConfig"]["maxInstanceCount"] = 7
    second = cloud.deploy(src, "--memory", "1Gi", "--json")
    assert second.code == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["deploy"]["action"] == "update" and out["deploy"]["url"] == url
    assert out["upload"]["skipped"] is True  # same bundle: nothing sent again
    assert cloud.uploads() == 1
    patch = cloud.fake.changes()[-1]
    assert patch.method == "PATCH"
    assert patch.query["updateMask"].split(",") == [
        "buildConfig.runtime",
        "buildConfig.entryPoint",
        "buildConfig.source",
        "serviceConfig.availableMemory",
    ]
    stored = cloud.fake.functions["v2"][create.body["name"]]
    assert stored["labels"] == {"owner": "ops"}
    assert stored["serviceConfig"]["maxInstanceCount"] == 7
    assert stored["serviceConfig"]["availableMemory"] == "1Gi"
    assert stored["serviceConfig"]["environmentVariables"] == {
        "MODE": "prod",
        "NODE_OPTIONS": "--require ./index.js",
    }
    kept(cloud)

    # Variables set elsewhere that lost the preload: kept, and the preload comes back.
    stored["serviceConfig"]["environmentVariables"] = {"FROM_CONSOLE": "1"}
    third = cloud.deploy(src, "--memory", "1Gi")
    assert third.code == 0, third.stderr
    patch = cloud.fake.changes()[-1]
    assert "serviceConfig.environmentVariables" in patch.query["updateMask"].split(",")
    stored = cloud.fake.functions["v2"][create.body["name"]]
    assert stored["serviceConfig"]["environmentVariables"] == {
        "FROM_CONSOLE": "1",
        "NODE_OPTIONS": "--require ./index.js",
    }
    kept(cloud)


def test_dry_run_prints_the_request_and_mask_and_changes_nothing(
    cloud: Cloud, tmp_path: Path
) -> None:
    src = function(tmp_path)
    out = cloud.deploy(src, "--dry-run", "--env-vars", "API_TOKEN=s3cret", "--max-instances", "3")
    assert out.code == 0, out.stderr
    assert cloud.fake.changes() == [] and cloud.proxy.log == []
    assert not (tmp_path / "dist-hello").exists()
    assert (
        "update mask: buildConfig.runtime,buildConfig.entryPoint,buildConfig.source," in out.stdout
    )
    assert "serviceConfig.maxInstanceCount" in out.stdout
    assert (
        "create: POST /v2/projects/demo-proj/locations/asia-northeast1/functions?functionId=hello"
        in out.stdout
    )
    assert "s3cret" not in out.stdout + out.stderr and "API_TOKEN" in out.stdout
    as_json = json.loads(cloud.deploy(src, "--dry-run", "--json").stdout)
    assert as_json["action"] == "create"  # the function was read, not changed
    sha = as_json["upload"]["sha256"]
    assert as_json["upload"]["object"] == f"gs://{BUCKET}/pyfn/hello/{sha}.zip"
    body = as_json["requests"]["create"]["body"]
    assert body["buildConfig"]["entryPoint"] == "hello"
    # The object is known before the upload; its generation is not.
    assert body["buildConfig"]["source"]["storageSource"] == {
        "bucket": BUCKET,
        "object": f"pyfn/hello/{sha}.zip",
    }
    assert any("generation" in note for note in as_json["notes"])
    assert cloud.fake.changes() == []
    kept(cloud)  # the function was read with a request the API takes


def test_first_gen_deploy_uses_the_archive_url(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path, "legacy_fn")
    out = cloud.deploy(src, "--gen", "1", "--entry-point", "hello", "--function-timeout", "90s")
    assert out.code == 0, out.stderr
    kept(cloud)
    [create] = cloud.fake.changes()
    assert create.path == "/v1/projects/demo-proj/locations/asia-northeast1/functions"
    assert create.body["sourceArchiveUrl"].startswith(f"gs://{BUCKET}/pyfn/legacy_fn/")
    assert create.body["timeout"] == "90s"
    assert "url: https://asia-northeast1-demo-proj.cloudfunctions.net/legacy_fn" in out.stdout


def test_event_triggered_function(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path, "on-upload", EVENT_PY)
    out = cloud.deploy(
        src,
        "--entry-point",
        "on_upload",
        "--signature",
        "cloudevent",
        "--trigger-bucket",
        "user-uploads",
    )
    assert out.code == 0, out.stderr
    [create] = cloud.fake.changes()
    assert create.body["eventTrigger"]["eventFilters"] == [
        {"attribute": "bucket", "value": "user-uploads"}
    ]
    kept(cloud)


def test_the_wait_prints_each_build_stage_as_it_changes(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/deploy.md: the operation is polled "printing each build stage as it changes":
    the stages the operation reports in its metadata (here an event function's build,
    service and trigger, moving on one per poll), from the first to the last."""
    cloud.fake.polls_to_finish = 3
    src = function(tmp_path, "on-upload", EVENT_PY)
    out = deploy_in_a_shell(
        cloud,
        monkeypatch,
        capsys,
        src,
        "--entry-point",
        "on_upload",
        "--signature",
        "cloudevent",
        "--trigger-bucket",
        "user-uploads",
    )
    assert out.code == 0, out.stderr
    lines = said(out.stderr)
    started = next(i for i, line in enumerate(lines) if line.startswith("Operation "))
    assert lines[started + 1 :] == [
        "  build: in progress (Building the function)",
        "  service: not started",
        "  trigger: not started",
        "  build: complete",
        "  service: in progress (Creating Cloud Run service)",
        "  service: complete",
        "  trigger: in progress (Creating Eventarc trigger)",
        "  trigger: complete",
    ]
    assert out.stdout.startswith(
        f"created projects/{PROJECT}/locations/asia-northeast1/functions/on-upload: ACTIVE\n"
    )
    kept(cloud)


def test_a_function_failed_by_an_earlier_deployment_is_updated_and_says_why(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/deploy.md, a function in a failed state: one that an earlier deployment left
    FAILED is updated (a deployment is how it is repaired), with a warning that quotes
    why it failed; unlike one DEPLOYING, it is not left alone."""
    name = f"projects/{PROJECT}/locations/asia-northeast1/functions/hello"
    cloud.fake.functions["v2"] = {
        name: {
            "name": name,
            "state": "FAILED",
            "environment": "GEN_2",
            "buildConfig": {"runtime": "nodejs22", "entryPoint": "hello"},
            "serviceConfig": {},
            "stateMessages": [
                {
                    "severity": "ERROR",
                    "type": "BuildFailed",
                    "message": "Build failed: npm ERR! missing script: start",
                }
            ],
        }
    }
    out = deploy_in_a_shell(cloud, monkeypatch, capsys, function(tmp_path))
    assert out.code == 0, out.stderr
    assert said(out.stderr, "WARNING") == [
        "Function hello is FAILED from an earlier deployment (ERROR Build failed: npm ERR! "
        "missing script: start); this deployment updates it, which repairs it if it succeeds"
    ]
    [patch] = cloud.fake.changes()
    assert patch.method == "PATCH" and patch.path == f"/v2/{name}"
    assert out.stdout.startswith(f"updated {name}: ACTIVE\n")
    assert cloud.fake.functions["v2"][name]["state"] == "ACTIVE"
    kept(cloud)


def test_a_failed_operation_reports_its_messages(cloud: Cloud, tmp_path: Path) -> None:
    cloud.fake.outcome = "fail"
    out = cloud.deploy(function(tmp_path))
    assert out.code == 15
    assert "The deployment of hello failed" in out.stderr
    assert "Build failed with status: FAILURE" in out.stderr
    assert "npm ERR! missing script: start" in out.stderr
    assert "Traceback" not in out.stderr
    kept(cloud)  # the build failed; no request did


def test_an_operation_that_never_finishes_hits_the_timeout(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait runs on the deploy's own clock (as in tests/unit/test_deploy_plan.py),
    here one that only its sleeps move: it gives up at --timeout exactly, after polls
    spaced by the backoff, however long the build before it took."""
    from pyfn_action.cloud import apply

    now = [0.0]
    naps: list[tuple[float, int]] = []  # each sleep, and how many polls came before it

    def operation_polls() -> list[object]:
        return [r for r in cloud.fake.requests if "/operations/" in r.path]

    def sleep(seconds: float) -> None:
        naps.append((seconds, len(operation_polls())))
        now[0] += seconds

    real_apply = apply.apply

    def on_the_fake_clock(*args: Any, **kwargs: Any) -> Any:
        polling = apply.Polling(clock=lambda: now[0], sleep=sleep)
        return real_apply(*args, polling=polling, **kwargs)

    monkeypatch.setattr(apply, "apply", on_the_fake_clock)
    cloud.fake.outcome = "never"
    out = cloud.deploy(function(tmp_path), "--timeout", "3s")
    assert out.code == 16, out.stderr
    assert "did not finish within the wait timeout" in out.stderr
    assert (
        "gcloud functions describe hello --region asia-northeast1 --project demo-proj" in out.stderr
    )
    # A poll, then a sleep growing by half (the last one cut at the deadline), in turn;
    # one last poll after the last sleep, then the timeout.
    assert naps == [(1.0, 1), (1.5, 2), (0.5, 3)]
    assert now[0] == 3.0
    assert len(operation_polls()) == 4
    kept(cloud)


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ({"state": "DEPLOYING"}, "DEPLOYING: another operation is running on it"),
        ({"state": "ACTIVE", "environment": "GEN_1"}, "exists as a 1st gen function"),
    ],
)
def test_a_function_busy_or_of_the_other_generation_is_left_alone(
    cloud: Cloud, tmp_path: Path, existing: dict[str, str], message: str
) -> None:
    name = f"projects/{PROJECT}/locations/asia-northeast1/functions/hello"
    cloud.fake.functions["v2"] = {name: {"name": name, **existing}}
    out = cloud.deploy(function(tmp_path))
    assert out.code == 15
    assert message in out.stderr
    assert cloud.fake.changes() == []
    kept(cloud)


def test_missing_credentials_say_what_to_do(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    env = {k: v for k, v in cloud.env.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    out = cloud.deploy(function(tmp_path), env=env)
    assert out.code == 13
    assert "No Google Cloud credentials found to deploy" in out.stderr
    assert "google-github-actions/auth" in out.stderr
    assert "gcloud auth application-default login" in out.stderr
    assert "roles/cloudfunctions.developer" in out.stderr
    assert "roles/iam.serviceAccountUser" in out.stderr
    assert "Traceback" not in out.stderr
    assert cloud.fake.requests == [] and cloud.proxy.log == []
    kept(cloud)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            Injected(
                "GET",
                "/functions/",
                403,
                "PERMISSION_DENIED",
                "Cloud Functions API has not been used in project demo-proj before or it is "
                "disabled.",
                reason="SERVICE_DISABLED",
            ),
            [
                "not enabled in project demo-proj",
                "gcloud services enable cloudfunctions.googleapis.com cloudbuild.googleapis.com "
                "artifactregistry.googleapis.com run.googleapis.com --project demo-proj",
            ],
        ),
        (
            Injected(
                "POST",
                "/functions",
                403,
                "PERMISSION_DENIED",
                "Permission 'cloudfunctions.functions.create' denied on resource",
            ),
            [
                "Permission denied while creating function hello",
                "roles/cloudfunctions.developer",
                "roles/iam.serviceAccountUser",
            ],
        ),
        (
            Injected(
                "POST",
                "/functions",
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Write requests'",
                times=1,
            ),
            ["Quota exceeded while creating function hello", "ask for more quota"],
        ),
    ],
)
def test_api_errors_become_advice(
    cloud: Cloud, tmp_path: Path, fault: Injected, expected: list[str]
) -> None:
    cloud.fake.inject.append(fault)
    out = cloud.deploy(function(tmp_path))
    assert out.code == 15, out.stderr
    for text in expected:
        assert text in out.stderr
    assert "Traceback" not in out.stderr
    assert fault.times == 0  # the error is the injected one...
    kept(cloud)  # ... not a fake's answer to a malformed request


def test_a_region_the_api_does_not_know(cloud: Cloud, tmp_path: Path) -> None:
    args = build_args(
        function(tmp_path),
        tmp_path / "dist",
        cloud.served,
        cloud.index_url,
        "--region",
        "us-nowhere1",
        "--bucket",
        BUCKET,
        command="deploy",
    )
    out = pyfn(args, cloud.env)
    assert out.code == 15
    assert "Region 'us-nowhere1' is not available to Cloud Functions" in out.stderr
    assert "gcloud functions regions list" in out.stderr
    assert cloud.fake.changes() == []
    kept(cloud)  # the API's own 404 for the location, not a malformed request


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "My_Function"], "is not a valid Cloud Functions name"),
        (["--bucket=goog-stage"], "not a valid Cloud Storage bucket name"),
        (["--region", "Tokyo"], "is not a Cloud Functions region"),
        (["--project", "My Project"], "is not a Google Cloud project ID"),
        (["--memory", "64Mi"], "128 MiB minimum"),
        # docs/deploy.md: "environment variable names (PORT, K_SERVICE, X_GOOGLE_* are
        # reserved)": Cloud Functions sets K_SERVICE itself, to the function's name.
        (["--env-vars", "K_SERVICE=mine"], "'K_SERVICE' is reserved by Cloud Functions"),
        (["--secrets", "K_SERVICE=svc-name:1"], "'K_SERVICE' is reserved by Cloud Functions"),
    ],
)
def test_bad_input_is_refused_before_any_call(
    cloud: Cloud, tmp_path: Path, args: list[str], message: str
) -> None:
    out = cloud.deploy(function(tmp_path), *args)
    assert out.code == 2, out.stderr
    assert message in out.stderr
    assert cloud.fake.requests == [] and cloud.proxy.log == []
    assert not (tmp_path / "dist-hello").exists()  # not even built
    kept(cloud)


def test_the_bundle_carries_the_functions_request_timeout(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    bundle = tmp_path / "dist-hello" / "bundle.zip"

    def manifest_timeout() -> object:
        with zipfile.ZipFile(bundle) as zf:
            return json.loads(zf.read("pyfn/manifest.json"))["function"].get("timeout")

    first = cloud.deploy(src, "--function-timeout", "2m")
    assert first.code == 0, first.stderr
    assert manifest_timeout() == 120
    # Changed elsewhere: the next deploy does not set it, but the shim must follow it.
    [create] = cloud.fake.changes()
    cloud.fake.functions["v2"][create.body["name"]]["serviceConfig"]["timeoutSeconds"] = 300
    second = cloud.deploy(src)
    assert second.code == 0, second.stderr
    assert manifest_timeout() == 300
    patch = cloud.fake.changes()[-1]
    assert "serviceConfig.timeoutSeconds" not in patch.query["updateMask"]
    kept(cloud)


def test_transient_errors_while_waiting_are_ridden_out(cloud: Cloud, tmp_path: Path) -> None:
    """500s, which the client library does not retry itself (it retries a poll's 503 for
    10 s on its own): the wait rides them out."""
    cloud.fake.inject.append(
        Injected("GET", "/operations/", 500, "INTERNAL", "Internal error encountered.", times=2)
    )
    out = cloud.deploy(function(tmp_path))
    assert out.code == 0, out.stderr
    assert cloud.fake.inject[0].times == 0  # both were met
    assert "ACTIVE" in out.stdout
    kept(cloud)


def test_a_missing_staging_bucket_says_how_to_create_it(cloud: Cloud, tmp_path: Path) -> None:
    out = cloud.deploy(function(tmp_path), "--bucket", "no-such-staging")
    assert out.code == 14
    assert "Bucket gs://no-such-staging does not exist" in out.stderr
    assert (
        "gcloud storage buckets create gs://no-such-staging --location asia-northeast1"
        in out.stderr
    )
    assert cloud.fake.changes() == []
    kept(cloud)  # the emulator's 404 for the bucket, not the proxy refusing a request
