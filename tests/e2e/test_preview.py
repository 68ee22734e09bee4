"""`pyfn preview` end to end: a real build, an upload to the storage emulator, and the
Cloud Functions (and Cloud Run IAM) API played by the loopback contract fake: a preview
is created, labelled and updated in place, listed with its age, made public or private,
and deleted by its labels; a function that is not the preview is never touched."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import BUCKET, PROJECT, Cloud, Outcome, build_args, pyfn
from test_deploy import EVENT_PY, function, kept

from pyfn_action.cloud.previews import preview_labels

pytestmark = pytest.mark.e2e
REPO = "octo/app"
REGION = "asia-northeast1"


def _path(name: str, region: str = REGION) -> str:
    return f"projects/{PROJECT}/locations/{region}/functions/{name}"


def preview(cloud: Cloud, src: Path, *more: str) -> Outcome:
    args = build_args(
        src,
        src.parent / f"dist-{src.name}",
        cloud.served,
        cloud.index_url,
        "--region",
        REGION,
        "--bucket",
        BUCKET,
        "--repo",
        REPO,
        *more,
        command="preview",
    )
    return pyfn(["preview", "deploy", *args[1:]], cloud.env)


def command(cloud: Cloud, *args: str) -> Outcome:
    return pyfn(["preview", *args], cloud.env)


def test_a_preview_is_created_labelled_then_updated_in_place(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    (src / "pyfn.toml").write_text(
        'max_instances = 300\nmin_instances = 2\nlabels = { team = "web" }\n'
    )
    first = preview(cloud, src, "--pr", "42")
    assert first.code == 0, first.stderr
    kept(cloud)
    [create] = cloud.fake.changes()
    assert (create.method, create.query["functionId"]) == ("POST", "hello-pr-42")
    service = create.body["serviceConfig"]
    # the file's instance counts are not the preview's: the command line's are
    # proto3 JSON leaves a zero out: absent is none kept warm
    assert (service.get("minInstanceCount", 0), service["maxInstanceCount"]) == (0, 1)
    assert create.body["labels"] == {"team": "web", **preview_labels(REPO, 42, "hello")}
    url = f"https://{REGION}-{PROJECT}.cloudfunctions.net/hello-pr-42"
    assert f"url: {url}" in first.stdout
    assert "gcloud auth print-identity-token" in first.stdout  # private: how to call it
    assert not any(r.path.endswith(":setIamPolicy") for r in cloud.fake.requests)

    (src / "main.py").write_text((src / "main.py").read_text().replace("PyPy", "a preview"))
    second = preview(cloud, src, "--pr", "42", "--max-instances", "2", "--json")
    assert second.code == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["name"] == "hello-pr-42" and out["action"] == "update" and out["url"] == url
    patch = cloud.fake.changes()[-1]
    assert patch.method == "PATCH" and patch.path.endswith("/functions/hello-pr-42")
    mask = patch.query["updateMask"].split(",")
    assert "serviceConfig.maxInstanceCount" in mask and "labels" in mask
    assert "serviceConfig.availableMemory" not in mask  # not set: left as it is
    stored = cloud.fake.functions["v2"][_path("hello-pr-42")]
    assert stored["serviceConfig"]["maxInstanceCount"] == 2
    assert out["sha256"] in stored["buildConfig"]["source"]["storageSource"]["object"]
    assert len(cloud.fake.functions["v2"]) == 1
    kept(cloud)


def test_a_function_of_that_name_that_is_no_preview_is_never_touched(
    cloud: Cloud, tmp_path: Path
) -> None:
    src = function(tmp_path)
    real = cloud.deploy(src, "--name", "hello-pr-7", "--entry-point", "hello")
    assert real.code == 0, real.stderr
    before = json.dumps(cloud.fake.functions["v2"][_path("hello-pr-7")], sort_keys=True)
    changes = len(cloud.fake.changes())
    refused = preview(cloud, src, "--pr", "7")
    assert refused.code == 15, refused.stderr
    assert "exists and is not this pull request's preview" in refused.stderr
    assert "not a preview" in refused.stderr
    assert len(cloud.fake.changes()) == changes
    after = json.dumps(cloud.fake.functions["v2"][_path("hello-pr-7")], sort_keys=True)
    assert after == before
    # and a delete of that pull request's previews does not see it either
    gone = command(cloud, "delete", "--pr", "7", "--repo", REPO)
    assert gone.code == 0 and gone.stdout == "no preview to delete\n", gone.stderr
    assert _path("hello-pr-7") in cloud.fake.functions["v2"]
    kept(cloud)


def test_list_delete_by_pull_request_and_idempotent(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    for pull in ("1", "2"):
        assert preview(cloud, src, "--pr", pull).code == 0
    listed = command(cloud, "list", "--json")
    assert listed.code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["pull_request"], r["region"]) for r in rows] == [
        ("hello-pr-1", 1, REGION),
        ("hello-pr-2", 2, REGION),
    ]
    assert all(0 <= r["age_seconds"] < 600 for r in rows)
    text = command(cloud, "list").stdout
    assert text.splitlines()[0].split()[:6] == ["NAME", "REGION", "GEN", "PR", "REPOSITORY", "AGE"]
    assert "hello-pr-1" in text and "#2" in text

    first = command(cloud, "delete", "--pr", "1", "--repo", REPO)
    assert first.code == 0, first.stderr
    assert first.stdout == f"deleted {_path('hello-pr-1')}\n"
    assert sorted(cloud.fake.functions["v2"]) == [_path("hello-pr-2")]
    again = command(cloud, "delete", "--pr", "1", "--repo", REPO)
    assert (again.code, again.stdout) == (0, "no preview to delete\n")
    kept(cloud)


def test_older_than_deletes_only_the_stale_previews(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    for pull in ("3", "4"):
        assert preview(cloud, src, "--pr", pull).code == 0
    cloud.fake.set_updated(_path("hello-pr-3"), datetime.now(timezone.utc) - timedelta(days=8))
    dry = command(cloud, "delete", "--older-than", "7d", "--dry-run")
    assert (dry.code, dry.stdout) == (0, f"would delete {_path('hello-pr-3')}\n")
    assert len(cloud.fake.functions["v2"]) == 2
    done = command(cloud, "delete", "--older-than", "7d", "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["previews"] == [
        {"name": "hello-pr-3", "function": _path("hello-pr-3"), "deleted": True, "error": None}
    ]
    assert sorted(cloud.fake.functions["v2"]) == [_path("hello-pr-4")]
    ages = command(cloud, "list", "--json")
    assert [r["name"] for r in json.loads(ages.stdout)] == ["hello-pr-4"]
    bad = command(cloud, "delete", "--older-than", "a week")
    assert bad.code == 2 and "30m, 12h, 7d or 2w" in bad.stderr
    neither = command(cloud, "delete")
    assert neither.code == 2 and "--older-than" in neither.stderr
    kept(cloud)


def test_a_failed_delete_is_reported_and_fails(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path)
    assert preview(cloud, src, "--pr", "5").code == 0
    cloud.fake.delete_outcome = "fail"
    failed = command(cloud, "delete", "--pr", "5", "--repo", REPO)
    assert failed.code == 15, failed.stderr
    assert "1 of 1 preview(s) could not be deleted: hello-pr-5" in failed.stderr
    assert failed.stdout == f"failed {_path('hello-pr-5')}\n"
    cloud.fake.delete_outcome = "succeed"
    assert command(cloud, "delete", "--pr", "5", "--repo", REPO).code == 0
    assert cloud.fake.functions["v2"] == {}


@pytest.mark.parametrize(
    ("gen", "role"), [("2", "roles/run.invoker"), ("1", "roles/cloudfunctions.invoker")]
)
def test_allow_unauthenticated_makes_it_public_and_leaving_it_out_private_again(
    cloud: Cloud, tmp_path: Path, gen: str, role: str
) -> None:
    src = function(tmp_path)
    version = f"v{gen}"
    public = preview(cloud, src, "--pr", "8", "--gen", gen, "--allow-unauthenticated")
    assert public.code == 0, public.stderr
    assert "print-identity-token" not in public.stdout
    path = _path("hello-pr-8")
    assert path in cloud.fake.functions[version]
    bindings = cloud.fake.policy(path).get("bindings", [])
    assert {"role": role, "members": ["allUsers"]} in bindings
    private = preview(cloud, src, "--pr", "8", "--gen", gen)
    assert private.code == 0, private.stderr
    bindings = cloud.fake.policy(path).get("bindings", [])
    assert not any("allUsers" in b.get("members", []) for b in bindings)
    assert "print-identity-token" in private.stdout
    gone = command(cloud, "delete", "--pr", "8", "--repo", REPO)
    assert gone.code == 0 and gone.stdout == f"deleted {path}\n", gone.stderr
    assert cloud.fake.functions[version] == {}
    kept(cloud)


def test_an_event_function_gets_no_preview(cloud: Cloud, tmp_path: Path) -> None:
    src = function(tmp_path, "ev", EVENT_PY)
    refused = preview(
        cloud,
        src,
        "--pr",
        "9",
        "--signature",
        "cloudevent",
        "--entry-point",
        "on_upload",
        "--trigger-topic",
        "uploads",
    )
    assert refused.code == 2 and "gets no preview" in refused.stderr
    assert cloud.fake.changes() == []
