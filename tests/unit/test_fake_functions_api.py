"""The Cloud Functions fake says no: each rule it claims to enforce is shown refusing a
request that breaks it (and recording the violation), beside a control it accepts.

The fake is an in-process server on loopback; pyfn's own client (over REST, with a
service account key whose token endpoint is the fake) is the control that must pass."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.functions_api import (
    CLOUD_PLATFORM,
    STAGED,
    TOKEN,
    FakeFunctions,
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
        ("v2", "GoogleCloudFunctionsV2OperationMetadata",
         {"createTime": "2024-05-01T12:00:00.123456789+09:00"}),
        ("v2", "Policy", {"etag": "BwXhqDsG6x0="}),
        ("v2", "Policy", {"etag": "BwXhqDsG6x0"}),  # unpadded
        ("v2", "Policy", {"etag": "-_8="}),  # URL-safe
    ],
)  # fmt: skip
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
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"createTime": "2024-13-01T00:00:00Z"},
         "is not an RFC 3339 timestamp"),
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"endTime": "2024-05-01 12:00:00Z"},
         "is not an RFC 3339 timestamp"),
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"endTime": "2024-05-01T12:00:00"},
         "is not an RFC 3339 timestamp"),
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"endTime": "2024-02-30T12:00:00Z"},
         "is not an RFC 3339 timestamp"),
        ("v2", "GoogleCloudFunctionsV2OperationMetadata", {"endTime": "1714564800"},
         "is not an RFC 3339 timestamp"),
        ("v1", "OperationMetadataV1", {"updateTime": "yesterday"}, "is not an RFC 3339"),
        # byte (base64)
        ("v2", "Policy", {"etag": "not base64!"}, "is not base64"),
        ("v2", "Policy", {"etag": "abc=="}, "is not base64"),
        ("v2", "Policy", {"etag": "a"}, "is not base64"),
        ("v1", "Policy", {"etag": "Bw+_"}, "is not base64"),  # two alphabets mixed
    ],
)  # fmt: skip
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
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fake.base + path, data=data, method=method, headers=headers)
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
        ("succeed", False, [["IN_PROGRESS", "NOT_STARTED"], ["IN_PROGRESS", "NOT_STARTED"],
                            ["COMPLETE", "IN_PROGRESS"], ["COMPLETE", "COMPLETE"]]),
        ("succeed", True, [["IN_PROGRESS", "NOT_STARTED", "NOT_STARTED"],
                           ["COMPLETE", "IN_PROGRESS", "NOT_STARTED"],
                           ["COMPLETE", "COMPLETE", "IN_PROGRESS"],
                           ["COMPLETE", "COMPLETE", "COMPLETE"]]),
        ("fail", False, [["IN_PROGRESS", "NOT_STARTED"], ["IN_PROGRESS", "NOT_STARTED"],
                         ["IN_PROGRESS", "NOT_STARTED"], ["COMPLETE", "NOT_STARTED"]]),
    ],
)  # fmt: skip
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
        body["eventTrigger"] = {"eventType": "google.cloud.pubsub.topic.v1.messagePublished",
                                "pubsubTopic": f"projects/{PROJECT}/topics/orders"}  # fmt: skip
    status, operation = send(fake, "POST", f"/v2/{PARENT}/functions?functionId=hello", body,
                             token)  # fmt: skip
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
        ({"buildConfig": {**V2_BODY["buildConfig"], "source": {"storageSource": {
            "bucket": "stage", "object": "a.zip", "generation": "latest"}}}}, "int64"),
    ],
)  # fmt: skip
def test_a_create_that_breaks_the_schema_is_refused_and_recorded(
    fake: FakeFunctions, tmp_path: Path, bad: dict[str, Any], says: str
) -> None:
    token = issued_token(fake, tmp_path)
    status, answer = send(fake, "POST", f"/v2/{PARENT}/functions?functionId=hello",
                          {**V2_BODY, **bad}, token)  # fmt: skip
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
        ("POST", "/v2/projects/other-proj/locations/asia-northeast1/functions?functionId=hello",
         {**V2_BODY, "name": "projects/other-proj/locations/asia-northeast1/functions/hello"}),
        ("GET", "/v2/projects/other-proj/locations/asia-northeast1/operations/operation-1", None),
    ],
)  # fmt: skip
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
    body = {"name": "projects/other-proj/locations/asia-northeast1/functions/hello",
            "entryPoint": "hello", "runtime": "nodejs20", "httpsTrigger": {},
            "sourceArchiveUrl": "gs://stage/a.zip"}  # fmt: skip
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
        ("DELETE", "/v2/projects/demo-proj/locations/asia-northeast1/functions/hello", 501),
        ("GET", "/v2/projects/demo-proj/locations/asia-northeast1/functions", 501),
        ("POST", "/v1/projects/demo-proj/locations/asia-northeast1/functions:generateUploadUrl",
         501),
    ],
)  # fmt: skip
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
    assert status == 400 and fake.violations == [f"POST /v2/{PARENT}/functions: the body is "
                                                 "not JSON"]  # fmt: skip


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
    claims = {"iss": info["client_email"], "sub": info["client_email"], "iat": now,
              "exp": now + 3600, "scope": CLOUD_PLATFORM}  # fmt: skip
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
    claims = {"iss": info["client_email"], "aud": f"{fake.base}/token", "iat": now,
              "exp": now + 3600, "scope": CLOUD_PLATFORM}  # fmt: skip
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
        the_plan = plan(settings, address, generation(gen), entry_point="hello",
                        signature="http").with_source(STAGED)  # fmt: skip
        deployed = apply.apply(the_plan, api, timeout=60, clock=lambda: now[0], sleep=sleep,
                               say=lambda _: None)  # fmt: skip
        assert (deployed.action, deployed.state) == (expected, "ACTIVE")
    assert fake.violations == []
    paths = [(r.method, r.path.split("/")[-2]) for r in fake.requests]
    assert ("PATCH", "functions") in paths and ("GET", "operations") in paths
