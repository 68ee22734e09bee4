"""The Cloud Functions fake says no: each rule it claims to enforce is shown refusing a
request that breaks it (and recording the violation), beside a control it accepts.

The fake is an in-process server on loopback; pyfn's own client (over REST, with a
service account key whose token endpoint is the fake) is the control that must pass."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from support.functions_api import (
    CLOUD_PLATFORM,
    STAGED,
    TOKEN,
    FakeFunctions,
    Injected,
    Schema,
    fake_functions,
)
from support.oauth import service_account_file

from pyfn_action.cloud import apply, auth
from pyfn_action.cloud.plan import plan
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.config import resolve_deploy
from pyfn_action.runtime.targets import generation

PROJECT = "demo-proj"
REGION = "asia-northeast1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
V2_BODY: dict[str, Any] = {
    "name": f"{PARENT}/functions/hello",
    "buildConfig": {
        "runtime": "nodejs20",
        "entryPoint": "hello",
        "source": {"storageSource": {"bucket": "stage", "object": "a.zip", "generation": "7"}},
    },
    "serviceConfig": {"availableMemory": "256Mi"},
}


# --- the schema, value by value --------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "ref", "value"),
    [
        ("v2", "Function", V2_BODY),
        ("v2", "ServiceConfig", {"ingressSettings": "ALLOW_ALL", "maxInstanceCount": 5}),
        ("v2", "ServiceConfig", {"ingressSettings": 1}),  # enum-encoding=int
        ("v2", "StorageSource", {"generation": "9223372036854775807"}),
        ("v1", "CloudFunction", {"timeout": "90s"}),
        ("v1", "CloudFunction", {"timeout": "0.5s"}),
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"createTime": "2024-05-01T12:00:00Z"}),
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"createTime": "2024-05-01T12:00:00.123456789+09:00"},
        ),
        ("v2", "Policy", {"etag": "BwXhqDsG6x0="}),
        ("v2", "Policy", {"etag": "BwXhqDsG6x0"}),  # unpadded
        ("v2", "Policy", {"etag": "-_8="}),  # URL-safe
    ],
)
def test_the_schema_accepts_what_the_api_does(version: str, ref: str, value: Any) -> None:
    assert Schema(version).validate(ref, value) == []


@pytest.mark.parametrize(
    ("version", "ref", "value", "says"),
    [
        # unknown field, at the top and nested
        ("v2", "Function", {**V2_BODY, "runtime": "nodejs20"}, "Function.runtime: unknown field"),
        ("v2", "Function", {"serviceConfig": {"memory": "1Gi"}}, "serviceConfig.memory: unknown"),
        # output-only fields
        ("v2", "Function", {**V2_BODY, "state": "ACTIVE"}, "state: output-only"),
        ("v2", "Function", {"serviceConfig": {"uri": "https://x"}}, "uri: output-only"),
        ("v1", "CloudFunction", {"updateTime": "2024-05-01T12:00:00Z"}, "output-only"),
        # wrong types
        ("v2", "ServiceConfig", {"maxInstanceCount": "5"}, "expected an integer"),
        ("v2", "ServiceConfig", {"maxInstanceCount": True}, "expected an integer"),
        ("v2", "ServiceConfig", {"maxInstanceCount": 2**31}, "does not fit int32"),
        ("v2", "BuildConfig", {"entryPoint": 5}, "expected a string"),
        ("v2", "Function", {"labels": ["team=web"]}, "expected an object"),
        ("v2", "Function", {"labels": {"team": 1}}, "expected a string"),
        ("v2", "ServiceConfig", {"secretEnvironmentVariables": {}}, "expected an array"),
        ("v2", "ServiceConfig", {"allTrafficOnLatestRevision": "yes"}, "expected a boolean"),
        ("v2", "Function", "hello", "expected an object"),
        # enums
        ("v2", "ServiceConfig", {"ingressSettings": "ALLOW_SOME"}, "is not one of"),
        ("v2", "ServiceConfig", {"ingressSettings": 99}, "enum number 99 out of range"),
        # int64 strings
        ("v2", "StorageSource", {"generation": "12a"}, "is not an int64 string"),
        ("v2", "StorageSource", {"generation": "9223372036854775808"}, "is not an int64"),
        ("v2", "StorageSource", {"generation": 7}, "expected a string"),
        # durations
        ("v1", "CloudFunction", {"timeout": "90"}, "is not a duration"),
        ("v1", "CloudFunction", {"timeout": "1m"}, "is not a duration"),
        ("v1", "CloudFunction", {"timeout": "1.5 s"}, "is not a duration"),
        # google-datetime (RFC 3339)
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"createTime": "2024-13-01T00:00:00Z"},
            "is not an RFC 3339 timestamp",
        ),
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"endTime": "2024-05-01 12:00:00Z"},
            "is not an RFC 3339 timestamp",
        ),
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"endTime": "2024-05-01T12:00:00"},
            "is not an RFC 3339 timestamp",
        ),
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"endTime": "2024-02-30T12:00:00Z"},
            "is not an RFC 3339 timestamp",
        ),
        (
            "v2",
            "GoogleCloudFunctionsV2OperationMetadata",
            {"endTime": "1714564800"},
            "is not an RFC 3339 timestamp",
        ),
        ("v1", "OperationMetadataV1", {"updateTime": "yesterday"}, "is not an RFC 3339"),
        # byte (base64)
        ("v2", "Policy", {"etag": "not base64!"}, "is not base64"),
        ("v2", "Policy", {"etag": "abc=="}, "is not base64"),
        ("v2", "Policy", {"etag": "a"}, "is not base64"),
        ("v1", "Policy", {"etag": "Bw+_"}, "is not base64"),  # two alphabets mixed
    ],
)
def test_the_schema_refuses_what_the_api_would(
    version: str, ref: str, value: Any, says: str
) -> None:
    errors = Schema(version).validate(ref, value)
    assert len(errors) == 1 and says in errors[0], errors


@pytest.mark.parametrize(
    ("mask", "says"),
    [
        ("buildConfig.nosuch", "is not a field of Function"),
        ("runtime", "is not a field of Function"),
        ("state", "is output-only"),
        ("serviceConfig.uri", "is output-only"),
        ("buildConfig.runtime.major", "is not a field of Function"),  # through a string
        ("serviceConfig..availableMemory", "is not a field of Function"),
    ],
)
def test_update_masks_name_writable_fields_only(mask: str, says: str) -> None:
    schema = Schema("v2")
    good = "buildConfig.runtime,serviceConfig.availableMemory,labels"
    assert schema.mask_errors("Function", good) == []
    errors = schema.mask_errors("Function", f"{good},{mask}")
    assert len(errors) == 1 and says in errors[0], errors


# --- over HTTP: who may call, what may be called ---------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeFunctions]:
    with fake_functions(project=PROJECT) as fake:
        yield fake


def issued_token(fake: FakeFunctions, tmp_path: Path) -> str:
    """A token from the fake's /token, for a key written for it (google-auth's grant)."""
    import google.auth.transport.requests
    from google.oauth2 import service_account

    key = service_account_file(tmp_path / "key.json", PROJECT, f"{fake.base}/token")
    creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(key), scopes=[CLOUD_PLATFORM]
    )
    creds.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    token: str = creds.token
    assert token in fake.oauth.tokens
    return token


def send(
    fake: FakeFunctions,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
    base: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    url = (base or fake.base) + path
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def create_v2(fake: FakeFunctions, token: str, name: str = "hello") -> dict[str, Any]:
    body = {**V2_BODY, "name": f"{PARENT}/functions/{name}"}
    status, answer = send(fake, "POST", f"/v2/{PARENT}/functions?functionId={name}", body, token)
    assert status == 200, answer
    return dict(answer)


def test_a_valid_create_and_poll_pass_without_violations(
    fake: FakeFunctions, tmp_path: Path
) -> None:
    token = issued_token(fake, tmp_path)
    operation = create_v2(fake, token)
    for _ in range(fake.polls_to_finish):
        status, answer = send(fake, "GET", f"/v2/{operation['name']}", token=token)
        assert status == 200, answer
    assert answer["done"] is True
    status, _ = send(fake, "GET", f"/v2/{PARENT}/functions/hello?%24alt=json", token=token)
    assert status == 200
    assert fake.violations == []


@pytest.mark.parametrize(
    ("outcome", "trigger", "states"),
    [
        (
            "succeed",
            False,
            [
                ["IN_PROGRESS", "NOT_STARTED"],
                ["IN_PROGRESS", "NOT_STARTED"],
                ["COMPLETE", "IN_PROGRESS"],
                ["COMPLETE", "COMPLETE"],
            ],
        ),
        (
            "succeed",
            True,
            [
                ["IN_PROGRESS", "NOT_STARTED", "NOT_STARTED"],
                ["COMPLETE", "IN_PROGRESS", "NOT_STARTED"],
                ["COMPLETE", "COMPLETE", "IN_PROGRESS"],
                ["COMPLETE", "COMPLETE", "COMPLETE"],
            ],
        ),
        (
            "fail",
            False,
            [
                ["IN_PROGRESS", "NOT_STARTED"],
                ["IN_PROGRESS", "NOT_STARTED"],
                ["IN_PROGRESS", "NOT_STARTED"],
                ["COMPLETE", "NOT_STARTED"],
            ],
        ),
    ],
)
def test_a_v2_operation_reports_its_stages_as_the_api_does(
    fake: FakeFunctions, tmp_path: Path, outcome: str, trigger: bool, states: list[list[str]]
) -> None:
    """The operation the fake answers (the create's, then each poll's) has the metadata the
    discovery document describes, its stages (BUILD, SERVICE, and TRIGGER for an event
    function) moving on as it is polled: pyfn's output of the stages is judged by these."""
    fake.outcome, fake.polls_to_finish = outcome, 3
    token = issued_token(fake, tmp_path)
    body = {**V2_BODY, "name": f"{PARENT}/functions/hello"}
    if trigger:
        body["eventTrigger"] = {
            "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
            "pubsubTopic": f"projects/{PROJECT}/topics/orders",
        }
    status, operation = send(fake, "POST", f"/v2/{PARENT}/functions?functionId=hello", body, token)
    assert status == 200, operation
    seen = [operation]
    while not seen[-1]["done"]:
        status, answer = send(fake, "GET", f"/v2/{operation['name']}", token=token)
        assert status == 200, answer
        seen.append(answer)
    schema = Schema("v2")
    for answer in seen:
        assert schema.validate("Operation", {**answer, "metadata": {}}) == []
        metadata = dict(answer["metadata"])
        assert metadata.pop("@type") == (
            "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
        )
        assert schema.validate("GoogleCloudFunctionsV2OperationMetadata", metadata) == []
    names = ["BUILD", "SERVICE"] + (["TRIGGER"] if trigger else [])
    assert [[s["name"] for s in a["metadata"]["stages"]] for a in seen] == [names] * len(seen)
    assert [[s["state"] for s in a["metadata"]["stages"]] for a in seen] == states
    build = seen[-1]["metadata"]["stages"][0]
    if outcome == "fail":  # the build failed: its messages say why
        assert [m["severity"] for m in build["stateMessages"]] == ["ERROR"]
        assert "error" in seen[-1]
    else:
        assert "stateMessages" not in build and "response" in seen[-1]
    assert fake.violations == []


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"runtime": "nodejs20"}, "unknown field"),
        ({"state": "ACTIVE"}, "output-only"),
        ({"serviceConfig": {"maxInstanceCount": "3"}}, "expected an integer"),
        ({"serviceConfig": {"ingressSettings": "ALLOW_SOME"}}, "is not one of"),
        (
            {
                "buildConfig": {
                    **V2_BODY["buildConfig"],
                    "source": {
                        "storageSource": {
                            "bucket": "stage",
                            "object": "a.zip",
                            "generation": "latest",
                        }
                    },
                }
            },
            "int64",
        ),
    ],
)
def test_a_create_that_breaks_the_schema_is_refused_and_recorded(
    fake: FakeFunctions, tmp_path: Path, bad: dict[str, Any], says: str
) -> None:
    token = issued_token(fake, tmp_path)
    status, answer = send(
        fake, "POST", f"/v2/{PARENT}/functions?functionId=hello", {**V2_BODY, **bad}, token
    )
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert len(fake.violations) == 1 and says in fake.violations[0], fake.violations
    assert fake.functions.get("v2", {}) == {} and fake.operations == {}


def test_a_patch_with_a_bad_mask_is_refused_and_recorded(
    fake: FakeFunctions, tmp_path: Path
) -> None:
    token = issued_token(fake, tmp_path)
    create_v2(fake, token)
    path = f"/v2/{PARENT}/functions/hello?updateMask="
    status, _ = send(fake, "PATCH", path + "serviceConfig.availableMemory", V2_BODY, token)
    assert status == 200 and fake.violations == []
    status, answer = send(fake, "PATCH", path + "serviceConfig.memory", V2_BODY, token)
    assert status == 400, answer
    assert fake.violations == ["updateMask: 'serviceConfig.memory' is not a field of Function"]
    status, _ = send(fake, "PATCH", path + "state", V2_BODY, token)
    assert status == 400 and fake.violations[-1] == "updateMask: 'state' is output-only"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2/projects/other-proj/locations/asia-northeast1/functions/hello", None),
        (
            "POST",
            "/v2/projects/other-proj/locations/asia-northeast1/functions?functionId=hello",
            {**V2_BODY, "name": "projects/other-proj/locations/asia-northeast1/functions/hello"},
        ),
        ("GET", "/v2/projects/other-proj/locations/asia-northeast1/operations/operation-1", None),
    ],
)
def test_a_project_other_than_the_fakes_is_refused_and_recorded(
    fake: FakeFunctions, tmp_path: Path, method: str, path: str, body: Any
) -> None:
    token = issued_token(fake, tmp_path)
    create_v2(fake, token)  # operation-1 exists, in the fake's project
    status, answer = send(fake, method, path, body, token)
    assert status == 403 and answer["error"]["status"] == "PERMISSION_DENIED"
    assert len(fake.violations) == 1 and "'other-proj'" in fake.violations[0]


def test_a_v1_create_naming_a_function_outside_its_path_is_refused(
    fake: FakeFunctions, tmp_path: Path
) -> None:
    token = issued_token(fake, tmp_path)
    body = {
        "name": "projects/other-proj/locations/asia-northeast1/functions/hello",
        "entryPoint": "hello",
        "runtime": "nodejs20",
        "httpsTrigger": {},
        "sourceArchiveUrl": "gs://stage/a.zip",
    }
    status, _ = send(fake, "POST", f"/v1/{PARENT}/functions", body, token)
    assert status == 400
    assert len(fake.violations) == 1 and "is not a function of" in fake.violations[0]
    body["name"] = f"{PARENT}/functions/hello"
    status, answer = send(fake, "POST", f"/v1/{PARENT}/functions", body, token)
    assert status == 200 and len(fake.violations) == 1, answer


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v2/projects/demo-proj/locations/asia-northeast1/operations/operation-999", 404),
        ("/v1/operations/op-999", 404),
        ("/v1/operations/operation-1", 404),  # a v2 operation's id, asked of v1
        ("/v1/projects/demo-proj/locations/asia-northeast1/operations/operation-1", 404),
        ("/v2/operations/operation-1", 404),
        ("/v1/operations/", 404),
        ("/v1/operations/op-1/more", 404),
        ("/v2/projects/demo-proj/locations/asia-northeast1/operations/", 404),
        ("/v2/projects/demo-proj/locations/asia-northeast1/operations", 501),  # list
    ],
)
def test_a_poll_of_an_operation_the_fake_never_started_is_a_violation(
    fake: FakeFunctions, tmp_path: Path, path: str, status: int
) -> None:
    token = issued_token(fake, tmp_path)
    operation = create_v2(fake, token)
    assert operation["name"] == f"{PARENT}/operations/operation-1"
    assert send(fake, "GET", f"/v2/{operation['name']}", token=token)[0] == 200
    assert fake.violations == []
    answer = send(fake, "GET", path, token=token)
    assert answer[0] == status, answer
    assert len(fake.violations) == 1, fake.violations


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/v3/projects/demo-proj/locations/asia-northeast1/functions/hello", 404),
        ("GET", "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello/more", 404),
        ("GET", "/v2/projects/demo-proj/functions/hello", 404),
        ("POST", "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello:frob", 404),
        ("PUT", "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello", 404),
        ("POST", "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello", 404),
        (
            "GET",
            "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello:getIamPolicy",
            501,
        ),  # v2's own IAM: a 2nd gen function's invokers are its Cloud Run service's
        (
            "POST",
            "/v1/projects/demo-proj/locations/asia-northeast1/functions/hello:testIamPermissions",
            501,
        ),
        ("GET", "/v1/operations", 501),  # operations.list
        (
            "POST",
            "/v1/projects/demo-proj/locations/asia-northeast1/functions:generateUploadUrl",
            501,
        ),
    ],
)
def test_an_endpoint_the_fake_does_not_play_is_a_violation(
    fake: FakeFunctions, tmp_path: Path, method: str, path: str, status: int
) -> None:
    token = issued_token(fake, tmp_path)
    answer = send(fake, method, path, token=token)
    assert answer[0] == status, answer
    assert len(fake.violations) == 1, fake.violations


@pytest.mark.parametrize(
    "query",
    ["nosuch=1", "updateMask=buildConfig.runtime", "pageSize=ten", "$alt=json&functionId=x"],
)
def test_query_parameters_the_method_does_not_take_are_violations(
    fake: FakeFunctions, tmp_path: Path, query: str
) -> None:
    token = issued_token(fake, tmp_path)
    path = f"/v2/{PARENT}/functions/hello"
    assert send(fake, "GET", f"{path}?%24alt=json%3Benum-encoding%3Dint", token=token)[0] == 404
    assert fake.violations == []  # the function is not there: no violation
    status, _ = send(fake, "GET", f"{path}?{query}", token=token)
    assert status == 400 and len(fake.violations) == 1, fake.violations


def test_a_body_that_is_not_json_is_a_violation(fake: FakeFunctions, tmp_path: Path) -> None:
    token = issued_token(fake, tmp_path)
    path = f"/v2/{PARENT}/functions?functionId=hello"
    status, _ = send(fake, "POST", path, token=token, raw=b"{not json")
    assert status == 400 and fake.violations == [
        f"POST /v2/{PARENT}/functions: the body is not JSON"
    ]


# --- tokens ----------------------------------------------------------------------------


def _jwt(claims: dict[str, Any], kid: str, key: Any) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing}.{b64(signature)}"


def _key(path: Path) -> tuple[dict[str, Any], Any]:
    from cryptography.hazmat.primitives import serialization

    info = json.loads(path.read_text())
    return info, serialization.load_pem_private_key(info["private_key"].encode(), None)


def test_only_tokens_of_the_fakes_own_keys_are_let_in(fake: FakeFunctions, tmp_path: Path) -> None:
    import time

    path = f"/v2/{PARENT}/functions/hello"
    issued = issued_token(fake, tmp_path)
    info, key = _key(tmp_path / "key.json")
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "sub": info["client_email"],
        "iat": now,
        "exp": now + 3600,
        "scope": CLOUD_PLATFORM,
    }
    self_signed = _jwt(claims, info["private_key_id"], key)
    for good in (issued, self_signed):
        assert send(fake, "GET", path, token=good)[0] == 404  # let in: no such function
    assert fake.violations == []

    # A key written for another endpoint: the fake never saw its public key.
    stranger = service_account_file(tmp_path / "other.json", PROJECT, "http://127.0.0.1:9/token")
    other_info, other_key = _key(stranger)
    other = {**claims, "iss": other_info["client_email"], "sub": other_info["client_email"]}
    forged = [
        TOKEN,  # the prefix every issued token has, but not issued
        f"{TOKEN}-999",
        issued + "x",
        _jwt(other, other_info["private_key_id"], other_key),
        _jwt(claims, info["private_key_id"], other_key),  # right key id, wrong signature
        _jwt(
            {**claims, "iss": "someone@else.iam.gserviceaccount.com"}, info["private_key_id"], key
        ),
        _jwt({**claims, "exp": now - 60, "iat": now - 3660}, info["private_key_id"], key),
        _jwt(
            {**claims, "scope": "https://www.googleapis.com/auth/devstorage.read_only"},
            info["private_key_id"],
            key,
        ),
        self_signed.rsplit(".", 1)[0] + ".",  # signature cut off
    ]
    for n, token in enumerate(forged, 1):
        status, answer = send(fake, "GET", path, token=token)
        assert status == 401 and answer["error"]["status"] == "UNAUTHENTICATED", token
        assert len(fake.violations) == n, (token, fake.violations)
    assert send(fake, "GET", path)[0] == 401  # no Authorization header at all
    assert len(fake.violations) == len(forged) + 1
    assert "no bearer token that the fake's /token issued" in fake.violations[-1]


def test_the_token_endpoint_grants_only_assertions_of_its_keys(
    fake: FakeFunctions, tmp_path: Path
) -> None:
    import time

    issued_token(fake, tmp_path)
    info, key = _key(tmp_path / "key.json")
    stranger = service_account_file(tmp_path / "other.json", PROJECT, "http://127.0.0.1:9/token")
    other_info, other_key = _key(stranger)
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "aud": f"{fake.base}/token",
        "iat": now,
        "exp": now + 3600,
        "scope": CLOUD_PLATFORM,
    }
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def exchange(assertion: str, grant_type: str = grant) -> int:
        form = urllib.parse.urlencode({"grant_type": grant_type, "assertion": assertion})
        request = urllib.request.Request(f"{fake.base}/token", data=form.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert exchange(_jwt(claims, info["private_key_id"], key)) == 200
    assert len(fake.oauth.tokens) == 2
    refused = [
        exchange(_jwt(claims, info["private_key_id"], key), "client_credentials"),
        exchange(
            _jwt(
                {**claims, "iss": other_info["client_email"]},
                other_info["private_key_id"],
                other_key,
            )
        ),
        exchange(_jwt({**claims, "aud": "https://example.com/token"}, info["private_key_id"], key)),
        exchange("a.b.c"),
    ]
    assert refused == [400] * 4
    assert len(fake.oauth.tokens) == 2


# --- the control: pyfn's own client passes, both generations, create then update -------


@pytest.mark.parametrize("gen", [1, 2])
def test_pyfn_deploys_through_the_fake_without_a_violation(
    fake: FakeFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gen: int
) -> None:
    key = service_account_file(tmp_path / "deployer.json", PROJECT, f"{fake.base}/token")
    for name, value in {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "NO_GCE_CHECK": "True",
        "GCE_METADATA_HOST": "127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    credentials, _ = auth.credentials({})
    api = apply.client(generation(gen), credentials, {"PYFN_FUNCTIONS_ENDPOINT": fake.base})
    address = FunctionAddress(project=PROJECT, region=REGION, name="hello")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for expected, memory in (("create", "256Mi"), ("update", "512Mi")):
        settings = resolve_deploy(None, env={}, flags={"memory": memory})
        the_plan = plan(
            settings, address, generation(gen), entry_point="hello", signature="http"
        ).with_source(STAGED)
        deployed = apply.apply(
            the_plan,
            api,
            timeout=60,
            polling=apply.Polling(clock=lambda: now[0], sleep=sleep),
            say=lambda _: None,
        )
        assert (deployed.action, deployed.state) == (expected, "ACTIVE")
    assert fake.violations == []
    paths = [(r.method, r.path.split("/")[-2]) for r in fake.requests]
    assert ("PATCH", "functions") in paths and ("GET", "operations") in paths


# --- through Google's client libraries (over REST): list, delete, timestamps, IAM ------

ACAB = base64.b64decode("ACAB")  # the etag of a policy never set
INVOKERS = {"v1": "roles/cloudfunctions.invoker", "v2": "roles/run.invoker"}
EVERYWHERE = f"projects/{PROJECT}/locations/-"
SEEDED = [
    "us-central1/web-a",
    "asia-northeast1/web-b",
    "europe-west1/data-c",
    "asia-northeast1/data-d",
    "us-central1/data-e",
]


@dataclass
class Clients:
    """Google's clients of the fake over REST, with a key whose token endpoint is the fake."""

    v1: Any  # functions_v1.CloudFunctionsServiceClient
    v2: Any  # functions_v2.FunctionServiceClient
    run: Any  # run_v2.ServicesClient, at fake.run_base

    def of(self, version: str) -> Any:
        return self.v1 if version == "v1" else self.v2


@pytest.fixture
def clients(fake: FakeFunctions, tmp_path: Path) -> Clients:
    from google.api_core.client_options import ClientOptions
    from google.cloud import functions_v1, functions_v2, run_v2
    from google.oauth2 import service_account

    key = service_account_file(tmp_path / "client.json", PROJECT, f"{fake.base}/token")
    creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(key), scopes=[CLOUD_PLATFORM]
    )
    functions = ClientOptions(api_endpoint=fake.base)
    fake.polls_to_finish = 1  # an operation's first poll finishes it: no client sleeps
    return Clients(
        functions_v1.CloudFunctionsServiceClient(
            credentials=creds, transport="rest", client_options=functions
        ),
        functions_v2.FunctionServiceClient(
            credentials=creds, transport="rest", client_options=functions
        ),
        run_v2.ServicesClient(
            credentials=creds,
            transport="rest",
            client_options=ClientOptions(api_endpoint=fake.run_base),
        ),
    )


def message(version: str, full: str, **fields: Any) -> Any:
    """A function of the client library of ``version``, as a deploy sends it."""
    from google.cloud import functions_v1, functions_v2

    if version == "v2":
        return functions_v2.Function.from_json(json.dumps({**V2_BODY, "name": full, **fields}))
    body = {
        "name": full,
        "entryPoint": "hello",
        "runtime": "nodejs20",
        "httpsTrigger": {},
        "sourceArchiveUrl": "gs://stage/a.zip",
        **fields,
    }
    return functions_v1.CloudFunction.from_json(json.dumps(body))


def create(clients: Clients, version: str, name: str = "hello") -> Any:
    """The operation creating the function ``name`` (not polled yet)."""
    full = f"{PARENT}/functions/{name}"
    if version == "v2":
        request = {"parent": PARENT, "function": message(version, full), "function_id": name}
    else:
        request = {"location": PARENT, "function": message(version, full)}
    return clients.of(version).create_function(request=request)


def deploy(clients: Clients, version: str, name: str = "hello") -> Any:
    """The function ``name``, created and deployed: as its finished operation answers it."""
    return create(clients, version, name).result(timeout=10)


def seed(fake: FakeFunctions, version: str, names: list[str]) -> None:
    """Functions the fake holds already (``REGION/NAME`` each), as if deployed earlier."""
    fake.functions[version] = {}
    for region_name in names:
        region, name = region_name.split("/")
        full = f"projects/{PROJECT}/locations/{region}/functions/{name}"
        state = {"state": "ACTIVE"} if version == "v2" else {"status": "ACTIVE"}
        team = name.split("-")[0]
        fake.functions[version][full] = {"name": full, "labels": {"team": team}, **state}


def answer_errors(version: str, ref: str, value: Any) -> list[str]:
    """The fake's own answer against the schema (output-only fields belong in answers)."""
    errors = Schema(version).validate(ref, value)
    return [e for e in errors if not e.endswith("output-only field set in a request")]


def state(version: str, function: Any) -> str:
    return str((function.state if version == "v2" else function.status).name)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_list_pages_through_every_region_in_the_order_of_names(
    fake: FakeFunctions, clients: Clients, tmp_path: Path, version: str
) -> None:
    seed(fake, version, SEEDED)
    client = clients.of(version)
    pages = list(client.list_functions(request={"parent": EVERYWHERE, "page_size": 2}).pages)
    assert [[f.name.split("/", 3)[3] for f in page.functions] for page in pages] == [
        ["asia-northeast1/functions/data-d", "asia-northeast1/functions/web-b"],
        ["europe-west1/functions/data-c", "us-central1/functions/data-e"],
        ["us-central1/functions/web-a"],
    ]
    assert [bool(page.next_page_token) for page in pages] == [True, True, False]
    asked = [r.query for r in fake.requests if r.path == f"/{version}/{EVERYWHERE}/functions"]
    assert [q.get("pageToken") for q in asked] == [None] + [p.next_page_token for p in pages[:2]]
    assert {q["pageSize"] for q in asked} == {"2"}

    # One region, without pageSize: all its functions on one page.
    [page] = client.list_functions(request={"parent": PARENT}).pages
    assert [f.name for f in page.functions] == [
        f"{PARENT}/functions/data-d",
        f"{PARENT}/functions/web-b",
    ]
    # The answers as the discovery document has them; a region without functions: {}.
    token = issued_token(fake, tmp_path)
    status, answer = send(fake, "GET", f"/{version}/{EVERYWHERE}/functions?pageSize=4", token=token)
    assert status == 200 and len(answer["functions"]) == 4 and answer["nextPageToken"]
    assert answer_errors(version, "ListFunctionsResponse", answer) == []
    del fake.functions[version][f"projects/{PROJECT}/locations/europe-west1/functions/data-c"]
    empty = f"/{version}/projects/{PROJECT}/locations/europe-west1/functions"
    assert send(fake, "GET", empty, token=token) == (200, {})
    assert fake.violations == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_page_token_the_fake_did_not_issue_for_that_list_is_a_violation(
    fake: FakeFunctions, clients: Clients, version: str
) -> None:
    seed(fake, version, SEEDED)
    client = clients.of(version)
    first = client.list_functions(request={"parent": EVERYWHERE, "page_size": 2})
    issued = first.next_page_token
    with pytest.raises(gexc.BadRequest, match="was never issued"):
        client.list_functions(request={"parent": EVERYWHERE, "page_token": "bm90LWlzc3VlZA=="})
    with pytest.raises(gexc.BadRequest, match="was issued for another list"):
        client.list_functions(request={"parent": PARENT, "page_token": issued})
    assert len(fake.violations) == 2
    second = client.list_functions(request={"parent": EVERYWHERE, "page_token": issued})
    assert [f.name.rsplit("/", 1)[1] for f in second] == ["data-c", "data-e", "web-a"]
    assert len(fake.violations) == 2


def test_a_v2_list_filters_by_labels_and_refuses_what_it_does_not_play(
    fake: FakeFunctions, clients: Clients
) -> None:
    seed(fake, "v2", SEEDED)
    for wanted, names in (
        ('labels.team="web"', ["web-b", "web-a"]),
        ('labels.team=data AND labels.team="data"', ["data-d", "data-c", "data-e"]),
        ('labels.owner="ops"', []),
    ):
        found = clients.v2.list_functions(request={"parent": EVERYWHERE, "filter": wanted})
        assert [f.name.rsplit("/", 1)[1] for f in found] == names, wanted
    assert fake.violations == []
    for refused in ({"filter": 'name:"web"'}, {"order_by": "name desc"}):
        with pytest.raises(gexc.MethodNotImplemented, match="not played"):
            clients.v2.list_functions(request={"parent": EVERYWHERE, **refused})
    assert len(fake.violations) == 2


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_delete_runs_as_an_operation_then_the_function_and_its_policy_are_gone(
    fake: FakeFunctions, clients: Clients, version: str
) -> None:
    from google.cloud import functions_v1, functions_v2
    from google.protobuf import empty_pb2

    client = clients.of(version)
    full = deploy(clients, version).name
    # Who may call it: the function's own policy (v1), its Cloud Run service's (v2).
    iam = clients.v1 if version == "v1" else clients.run
    resource = full if version == "v1" else full.replace("/functions/", "/services/")
    public = {"bindings": [{"role": INVOKERS[version], "members": ["allUsers"]}]}
    iam.set_iam_policy(request={"resource": resource, "policy": public})
    assert list(fake.policies) == [resource]
    operation = client.delete_function(name=full)
    assert state(version, client.get_function(name=full)) == (
        "DELETING" if version == "v2" else "DELETE_IN_PROGRESS"
    )
    assert [f.name for f in client.list_functions(request={"parent": PARENT})] == [full]
    metadata = operation.metadata
    assert metadata.target == full
    if version == "v2":
        assert metadata.verb == "delete"
        assert metadata.operation_type == functions_v2.OperationType.DELETE_FUNCTION
    else:
        assert metadata.type_ == functions_v1.OperationType.DELETE_FUNCTION
        assert operation.operation.name.startswith("operations/op-")
    assert operation.result(timeout=10) == empty_pb2.Empty()
    done = fake.operations[operation.operation.name]["op"]
    assert done["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    assert answer_errors(version, "Operation", {**done, "metadata": {}}) == []
    kind = "GoogleCloudFunctionsV2OperationMetadata" if version == "v2" else "OperationMetadataV1"
    shown = {k: v for k, v in done["metadata"].items() if k != "@type"}
    assert answer_errors(version, kind, shown) == []

    with pytest.raises(gexc.NotFound, match=f"Resource '{full}' was not found"):
        client.get_function(name=full)
    assert list(client.list_functions(request={"parent": PARENT})) == []
    assert fake.policies == {}
    # Deleting what is not there: 404 as the API words it, not a contract violation.
    with pytest.raises(gexc.NotFound, match=f"Resource '{full}' was not found"):
        client.delete_function(name=full)
    # One of that name, created again, starts with an empty policy.
    deploy(clients, version)
    assert fake.policy(full) == {"version": 1, "etag": "ACAB"}
    assert fake.violations == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_delete_told_to_fail_leaves_the_function_as_it_was(
    fake: FakeFunctions, clients: Clients, version: str
) -> None:
    client = clients.of(version)
    full = deploy(clients, version).name
    fake.delete_outcome = "fail"
    operation = client.delete_function(name=full)
    with pytest.raises(gexc.GoogleAPICallError, match="the function was not deleted"):
        operation.result(timeout=10)
    assert state(version, client.get_function(name=full)) == "ACTIVE"
    fake.delete_outcome = "succeed"
    client.delete_function(name=full).result(timeout=10)
    assert fake.functions[version] == {} and fake.violations == []


def test_a_delete_waits_for_the_running_operation_and_takes_injected_errors(
    fake: FakeFunctions, clients: Clients
) -> None:
    full = f"{PARENT}/functions/hello"
    creating = create(clients, "v2")  # not polled: still running
    with pytest.raises(gexc.Conflict, match="already in progress"):
        clients.v2.delete_function(name=full)
    creating.result(timeout=10)
    fake.inject.append(
        Injected(
            "DELETE",
            "/functions/hello",
            403,
            "PERMISSION_DENIED",
            f"Permission 'cloudfunctions.functions.delete' denied on '{full}'",
            reason="IAM_PERMISSION_DENIED",
        )
    )
    # Over REST, Google's clients raise by HTTP status: 403 is Forbidden.
    with pytest.raises(gexc.Forbidden, match=r"cloudfunctions\.functions\.delete"):
        clients.v2.delete_function(name=full)
    assert state("v2", clients.v2.get_function(name=full)) == "ACTIVE"
    clients.v2.delete_function(name=full).result(timeout=10)
    assert fake.functions["v2"] == {} and fake.violations == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_creates_and_patches_stamp_update_time_and_a_test_can_set_it(
    fake: FakeFunctions, clients: Clients, version: str
) -> None:
    now = [datetime(2026, 12, 7, 20, 0, 0, 123456, tzinfo=timezone.utc)]
    created_at = now[0]
    fake.clock = lambda: now[0]
    client = clients.of(version)
    created = deploy(clients, version)
    full = created.name
    stored = fake.functions[version][full]
    assert stored["updateTime"] == "2026-12-07T20:00:00.123456Z"
    assert created.update_time == created_at
    if version == "v2":  # v1's CloudFunction has no createTime
        assert stored["createTime"] == "2026-12-07T20:00:00.123456Z"
        assert created.create_time == created_at

    now[0] += timedelta(hours=1, microseconds=1)
    if version == "v2":
        function = message(version, full, serviceConfig={"availableMemory": "512Mi"})
        mask = ["service_config.available_memory"]
    else:
        function = message(version, full, availableMemoryMb=512)
        mask = ["available_memory_mb"]
    request = {"function": function, "update_mask": {"paths": mask}}
    client.update_function(request=request).result(timeout=10)
    updated = client.get_function(name=full)
    assert updated.update_time == now[0]
    assert fake.functions[version][full]["updateTime"] == "2026-12-07T21:00:00.123457Z"
    if version == "v2":
        assert updated.create_time == created_at

    long_ago = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    fake.set_updated(full, long_ago)
    assert client.get_function(name=full).update_time == long_ago
    fake.set_updated(full, datetime(2020, 1, 2, 3, 4, 5))  # naive: taken as UTC
    assert fake.functions[version][full]["updateTime"] == "2020-01-02T03:04:05.000000Z"
    with pytest.raises(KeyError, match="neither v1 nor v2"):
        fake.set_updated(f"{PARENT}/functions/nope", long_ago)
    assert fake.violations == []


def test_a_deployed_v2_function_names_its_cloud_run_service(
    fake: FakeFunctions, clients: Clients
) -> None:
    deployed = deploy(clients, "v2")
    assert deployed.service_config.service == f"{PARENT}/services/hello"
    assert deployed.service_config.uri.startswith("https://hello-")
    assert clients.v2.get_function(name=deployed.name).service_config.service == (
        f"{PARENT}/services/hello"
    )
    assert fake.violations == []


def test_a_v1_functions_policy_is_read_and_written_with_its_etag(
    fake: FakeFunctions, clients: Clients
) -> None:
    full = deploy(clients, "v1").name
    read = clients.v1.get_iam_policy(request={"resource": full})
    assert (read.version, read.etag, list(read.bindings)) == (1, ACAB, [])
    read.bindings.add(role="roles/cloudfunctions.invoker", members=["allUsers"])
    written = clients.v1.set_iam_policy(request={"resource": full, "policy": read})
    assert written.etag not in (b"", ACAB) and list(written.bindings) == list(read.bindings)
    assert fake.policy(full) == {
        "version": 1,
        "etag": base64.b64encode(written.etag).decode(),
        "bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}],
    }
    assert answer_errors("v1", "Policy", fake.policy(full)) == []
    assert clients.v1.get_iam_policy(request={"resource": full}) == written

    # A policy read before that write: 409 ABORTED, as IAM answers it; nothing changes.
    read.bindings.add(role="roles/cloudfunctions.viewer", members=["user:a@example.com"])
    with pytest.raises(gexc.Conflict, match="concurrent policy changes") as stale:
        clients.v1.set_iam_policy(request={"resource": full, "policy": read})
    assert stale.value.response.json()["error"]["status"] == "ABORTED"
    assert fake.policy(full)["etag"] == base64.b64encode(written.etag).decode()
    # Without an etag: written over whatever is there.
    blind = {
        "bindings": [
            {
                "role": "roles/cloudfunctions.viewer",
                "members": ["user:a@example.com", "user:a@example.com"],
            }
        ]
    }
    rewritten = clients.v1.set_iam_policy(request={"resource": full, "policy": blind})
    assert rewritten.etag not in (written.etag, ACAB)
    assert fake.policy(full)["bindings"] == [
        {"role": "roles/cloudfunctions.viewer", "members": ["user:a@example.com"]}
    ]
    assert fake.violations == []

    # A role the function does not take, a member that is no principal: violations.
    for role, member, says in (
        ("roles/run.invoker", "allUsers", "Role roles/run.invoker is not supported"),
        ("roles/cloudfunctions.invoker", "everyone", "'everyone' is no principal"),
    ):
        bad = {"bindings": [{"role": role, "members": [member]}]}
        with pytest.raises(gexc.BadRequest, match=says):
            clients.v1.set_iam_policy(request={"resource": full, "policy": bad})
    assert len(fake.violations) == 2
    with pytest.raises(gexc.NotFound):
        clients.v1.get_iam_policy(request={"resource": f"{PARENT}/functions/nope"})
    assert len(fake.violations) == 2


def test_a_v2_functions_invokers_are_its_cloud_run_services_policy(
    fake: FakeFunctions, clients: Clients
) -> None:
    deployed = deploy(clients, "v2")
    service = deployed.service_config.service
    read = clients.run.get_iam_policy(request={"resource": service})
    assert (read.version, read.etag, list(read.bindings)) == (1, ACAB, [])
    read.bindings.add(role="roles/run.invoker", members=["allUsers"])
    written = clients.run.set_iam_policy(request={"resource": service, "policy": read})
    assert fake.policy(deployed.name) == {
        "version": 1,
        "etag": base64.b64encode(written.etag).decode(),
        "bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}],
    }
    with pytest.raises(gexc.Conflict, match="concurrent policy changes"):
        clients.run.set_iam_policy(request={"resource": service, "policy": read})
    assert fake.violations == []
    bad = {"bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}]}
    with pytest.raises(gexc.BadRequest, match="is not supported for this resource"):
        clients.run.set_iam_policy(request={"resource": service, "policy": bad})
    assert len(fake.violations) == 1

    # Cloud Run's requests are recorded with the others, told apart by their API.
    run = [r for r in fake.requests if r.api == "run"]
    assert [(r.method, r.path.rsplit(":", 1)[1]) for r in run] == [
        ("GET", "getIamPolicy"),
        ("POST", "setIamPolicy"),
        ("POST", "setIamPolicy"),
        ("POST", "setIamPolicy"),
    ]
    assert all("/services/" in r.path for r in run)
    assert all("/services/" not in r.path for r in fake.requests if r.api != "run")
    assert fake.changes("run") == run[1:]
    assert [r.method for r in fake.changes()] == ["POST"]  # the create, not Cloud Run's

    # Injected errors reach Cloud Run's port too.
    denied = "Permission 'run.services.getIamPolicy' denied"
    fake.inject.append(
        Injected("GET", ":getIamPolicy", 403, "PERMISSION_DENIED", denied, api="run")
    )
    with pytest.raises(gexc.Forbidden, match=re.escape(denied)):
        clients.run.get_iam_policy(request={"resource": service})
    assert clients.v1.list_functions(request={"parent": PARENT}) is not None  # not injected

    # The service goes with its function, and its policy with it.
    clients.v2.delete_function(name=deployed.name).result(timeout=10)
    with pytest.raises(gexc.NotFound, match=f"Resource '{service}' was not found"):
        clients.run.get_iam_policy(request={"resource": service})
    assert fake.policies == {} and len(fake.violations) == 1


def test_cloud_run_has_a_service_only_for_a_v2_function_and_plays_only_its_iam(
    fake: FakeFunctions, clients: Clients, tmp_path: Path
) -> None:
    for version in ("v1", "v2"):  # a 1st gen function has no Cloud Run service
        with pytest.raises(gexc.NotFound, match=f"'{PARENT}/services/hello' was not found"):
            clients.run.get_iam_policy(request={"resource": f"{PARENT}/services/hello"})
        deploy(clients, version, "hello" if version == "v1" else "web")
    assert clients.run.get_iam_policy(request={"resource": f"{PARENT}/services/web"}).etag == ACAB
    assert fake.violations == []

    token = issued_token(fake, tmp_path)
    service = f"/v2/{PARENT}/services/web"
    other = f"/v2/projects/other-proj/locations/{REGION}/services/web"
    for method, path, body, status in (
        ("GET", service, None, 501),  # services.get: not played
        ("DELETE", service, None, 501),
        ("GET", f"{service}:frob", None, 404),
        ("GET", f"/v2/{PARENT}/functions/web", None, 404),  # the functions API, asked of Run
        ("GET", f"{service}:getIamPolicy?nosuch=1", None, 400),
        ("GET", f"{service}:getIamPolicy?options.requestedPolicyVersion=2", None, 400),
        ("GET", f"{service}:getIamPolicy", {"policy": {}}, 400),  # a body where none is taken
        ("POST", f"{service}:setIamPolicy", {"policy": {"etag": "ACAB"}, "etag": "x"}, 400),
        ("POST", f"{service}:setIamPolicy", {"policy": {"bindings": {}}}, 400),
        ("POST", f"{service}:setIamPolicy", {"updateMask": "bindings"}, 400),  # no policy
        ("POST", f"{service}:setIamPolicy", {"policy": {}, "updateMask": "members"}, 400),
        ("GET", f"{other}:getIamPolicy", None, 403),
    ):
        seen = len(fake.violations)
        answer = send(fake, method, path, body, token, base=fake.run_base)
        assert answer[0] == status, (method, path, answer)
        assert len(fake.violations) == seen + 1, (method, path, fake.violations[seen:])
    assert send(fake, "GET", f"{service}:getIamPolicy", base=fake.run_base)[0] == 401
    assert "no bearer token" in fake.violations[-1]
    assert fake.policy(f"{PARENT}/functions/web")["etag"] == "ACAB"  # none of those wrote it
