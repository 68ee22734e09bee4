"""The deploy plan: request bodies and update masks, checked against the discovery
documents of the Cloud Functions API, and every setting refused before any call."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from support.functions_api import STAGED, Schema

from pyfn_action.cloud.plan import Plan, plan
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.config import DeploySettings, resolve_deploy
from pyfn_action.errors import ConfigError
from pyfn_action.runtime.targets import generation

EVERYTHING = {
    "memory": "1Gi",
    "function_timeout": "120s",
    "min_instances": "1",
    "max_instances": "5",
    "env_vars": ["LOG_LEVEL=debug,API_TOKEN=s3cret"],
    "secrets": ["DB_PASSWORD=db-pass:3,/etc/keys/api=api-key"],
    "labels": ["team=web"],
    "service_account": "runner@demo-proj.iam.gserviceaccount.com",
    "ingress": "internal-only",
}


def settings(**flags: Any) -> DeploySettings:
    """What the deploy flow judges: the settings, with the runtime it chose."""
    return replace(resolve_deploy(None, env={}, flags=flags), node_runtime="nodejs22")


def address(name: str = "hello") -> FunctionAddress:
    return FunctionAddress(project="demo-proj", region="asia-northeast1", name=name)


def make(gen: int = 2, signature: str = "http", **flags: Any) -> Plan:
    return plan(
        settings(**flags), address(), generation(gen), entry_point="hello", signature=signature
    ).with_source(STAGED)


@pytest.mark.parametrize("gen", [1, 2])
@pytest.mark.parametrize(
    "flags",
    [
        {},
        EVERYTHING,
        {"trigger_topic": "orders"},
        {"trigger_topic": "orders", "retry": True},
        {"trigger_bucket": "b-1", "trigger_event": "deleted"},
    ],
)
def test_every_body_and_mask_fits_the_discovery_schema(gen: int, flags: dict[str, Any]) -> None:
    signature = "cloudevent" if any(k.startswith("trigger_") for k in flags) else "http"
    p = make(gen, signature, **flags)
    schema = Schema(f"v{gen}")
    ref = "Function" if gen == 2 else "CloudFunction"
    assert schema.validate(ref, p.body) == []
    assert schema.mask_errors(ref, ",".join(p.update_mask)) == []


def test_v2_body_pins_the_generation_and_masks_only_what_is_set() -> None:
    p = make(2, memory="512MB", max_instances="3")
    storage = p.body["buildConfig"]["source"]["storageSource"]
    assert storage == {"bucket": "stage", "object": STAGED.object, "generation": "1712345678901234"}
    assert p.body["buildConfig"]["runtime"] == "nodejs22"
    assert p.body["buildConfig"]["entryPoint"] == "hello"
    assert p.body["name"] == "projects/demo-proj/locations/asia-northeast1/functions/hello"
    assert p.update_mask == [
        "buildConfig.runtime",
        "buildConfig.entryPoint",
        "buildConfig.source",
        "serviceConfig.availableMemory",
        "serviceConfig.maxInstanceCount",
    ]
    assert p.body["serviceConfig"] == {"availableMemory": "512Mi", "maxInstanceCount": 3}
    assert "labels" not in p.body and "eventTrigger" not in p.body
    # No enum the user did not ask for: REST clients may send enums as numbers.
    assert "environment" not in p.body


def test_v2_everything_maps_to_the_api_fields() -> None:
    p = make(2, **EVERYTHING, concurrency="8")
    service = p.body["serviceConfig"]
    assert service["availableMemory"] == "1Gi"
    assert service["timeoutSeconds"] == 120
    assert service["minInstanceCount"] == 1 and service["maxInstanceCount"] == 5
    assert service["maxInstanceRequestConcurrency"] == 8
    assert service["availableCpu"] == "1"  # concurrency above 1 needs a whole vCPU
    assert any("cpu set to 1" in n for n in p.notes)
    assert service["environmentVariables"] == {
        "API_TOKEN": "s3cret",
        "LOG_LEVEL": "debug",
        "NODE_OPTIONS": "--require ./index.js",
    }
    assert service["secretEnvironmentVariables"] == [
        {"key": "DB_PASSWORD", "projectId": "demo-proj", "secret": "db-pass", "version": "3"}
    ]
    assert service["secretVolumes"] == [
        {
            "mountPath": "/etc/keys",
            "projectId": "demo-proj",
            "secret": "api-key",
            "versions": [{"version": "latest", "path": "api"}],
        }
    ]
    assert service["serviceAccountEmail"] == "runner@demo-proj.iam.gserviceaccount.com"
    assert service["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    assert p.body["labels"] == {"team": "web"}


def test_v1_body_uses_the_archive_url_and_v1_field_names() -> None:
    p = make(1, **EVERYTHING)
    body = p.body
    assert body["sourceArchiveUrl"] == f"gs://stage/{STAGED.object}"
    assert body["availableMemoryMb"] == 1024
    assert body["timeout"] == "120s"
    assert body["minInstances"] == 1 and body["maxInstances"] == 5
    assert body["httpsTrigger"] == {"securityLevel": "SECURE_ALWAYS"}
    assert "httpsTrigger" not in p.update_mask  # an update leaves the trigger alone
    assert p.update_mask[:3] == ["runtime", "entryPoint", "sourceArchiveUrl"]


@pytest.mark.parametrize(
    ("gen", "flags", "expected"),
    [
        (
            2,
            {"trigger_topic": "orders"},
            {
                "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
                "pubsubTopic": "projects/demo-proj/topics/orders",
            },
        ),
        (
            2,
            {"trigger_bucket": "uploads"},
            {
                "eventType": "google.cloud.storage.object.v1.finalized",
                "eventFilters": [{"attribute": "bucket", "value": "uploads"}],
            },
        ),
        (
            1,
            {"trigger_topic": "projects/other/topics/orders"},
            {
                "eventType": "google.pubsub.topic.publish",
                "resource": "projects/other/topics/orders",
            },
        ),
        (
            1,
            {"trigger_bucket": "uploads", "trigger_event": "metadata-updated"},
            {
                "eventType": "google.storage.object.metadataUpdate",
                "resource": "projects/_/buckets/uploads",
            },
        ),
    ],
)
def test_triggers(gen: int, flags: dict[str, str], expected: dict[str, Any]) -> None:
    p = make(gen, "cloudevent", **flags)
    assert p.body["eventTrigger"] == expected
    assert "eventTrigger" in p.update_mask
    assert "httpsTrigger" not in p.body


def test_dry_run_requests_hide_environment_values() -> None:
    p = make(2, env_vars=["API_TOKEN=s3cret"])
    shown = json.dumps(p.requests())
    assert "s3cret" not in shown and "API_TOKEN" in shown
    assert p.requests()["update"]["query"]["updateMask"].startswith("buildConfig.runtime,")
    assert p.requests()["create"]["query"] == {"functionId": "hello"}


@pytest.mark.parametrize("gen", [1, 2])
def test_a_legacy_event_function_deploys_with_an_event_trigger(gen: int) -> None:
    address = FunctionAddress(project="demo-proj", region="us-central1", name="hello")
    settings = resolve_deploy(None, env={}, flags={"trigger_topic": "orders"})
    p = plan(settings, address, generation(gen), entry_point="hello", signature="event")
    assert "eventTrigger" in p.body
    assert "orders" in json.dumps(p.body["eventTrigger"])


@pytest.mark.parametrize(
    ("gen", "signature", "flags", "message"),
    [
        (2, "http", {"function_timeout": "3601"}, "run at most 3600 s"),
        (1, "http", {"function_timeout": "10m"}, "run at most 540 s"),
        (2, "cloudevent", {"trigger_topic": "t-1", "function_timeout": "541"}, "at most 540 s"),
        (1, "http", {"memory": "384Mi"}, "not a 1st gen size"),
        (1, "http", {"concurrency": "4"}, "2nd gen setting"),
        (1, "http", {"cpu": "1"}, "2nd gen setting"),
        (2, "http", {"concurrency": "8", "cpu": "0.5"}, "needs at least 1 vCPU"),
        (2, "http", {"concurrency": "0"}, "1 to 1000"),
        (2, "http", {"min_instances": "4", "max_instances": "2"}, "above max_instances"),
        (2, "http", {"trigger_topic": "t-1"}, "needs an event function"),
        (1, "script", {"trigger_bucket": "uploads"}, "needs an event function"),
        (2, "cloudevent", {}, "no event trigger"),
        (1, "event", {}, "'event' but no event trigger"),
        (1, "event", {"trigger_topic": "t-1", "function_timeout": "541"}, "at most 540 s"),
        (2, "cloudevent", {"trigger_topic": "ab", "trigger_bucket": "uploads"}, "Both"),
        (2, "cloudevent", {"trigger_topic": "goog-topic"}, "not a Pub/Sub topic"),
        (2, "cloudevent", {"trigger_bucket": "Bad_Bucket"}, "bucket name"),
        (2, "http", {"env_vars": ["PORT=1"]}, "reserved"),
        (2, "http", {"env_vars": ["X_GOOGLE_A=1"]}, "reserved"),
        # docs/deploy.md names K_SERVICE reserved: the platform sets it (the function's name)
        (2, "http", {"env_vars": ["K_SERVICE=mine"]}, "'K_SERVICE' is reserved"),
        (1, "http", {"env_vars": ["K_SERVICE=mine"]}, "'K_SERVICE' is reserved"),
        (2, "http", {"secrets": ["K_SERVICE=svc:1"]}, "'K_SERVICE' is reserved"),
        (2, "http", {"env_vars": ["1BAD=1"]}, "not a valid environment variable name"),
        (2, "http", {"labels": ["Team=web"]}, "Label"),
        (2, "http", {"secrets": ["KEY=projects/p/x"]}, "not a Secret Manager reference"),
        (2, "http", {"secrets": ["KEY=name:first"]}, "not a Secret Manager reference"),
        (2, "http", {"secrets": ["/file=name"]}, "directory and a file name"),
        (2, "http", {"service_account": "not-an-email"}, "service account email"),
        (2, "http", {"cpu": "lots"}, "number of vCPUs"),
    ],
)
def test_bad_settings_are_refused_with_the_rule(
    gen: int, signature: str, flags: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make(gen, signature, **flags)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("gen", "name", "ok"),
    [
        (2, "hello", True),
        (2, "hello-2", True),
        (2, "Hello", False),
        (2, "my_fn", False),
        (2, "2fast", False),
        (2, "trailing-", False),
        (2, "a" * 63, True),
        (2, "a" * 64, False),
        (1, "my_fn", True),
        (1, "Hello", True),
        (1, "_x", False),
        (1, "x_", False),
    ],
)
def test_function_names_follow_each_generations_rule(gen: int, name: str, ok: bool) -> None:
    def build() -> object:
        return plan(
            DeploySettings(),
            address(name),
            generation(gen),
            entry_point="main",
            signature="http",
        )

    if ok:
        build()
    else:
        with pytest.raises(ConfigError) as caught:
            build()
        assert "is not a valid Cloud Functions name" in caught.value.message
        assert ("lowercase" in caught.value.message) == (gen == 2)


def test_deploy_settings_parse_values_and_precedence() -> None:
    env = {"PYFN_REGION": "europe-west1", "PYFN_DEPLOY_TIMEOUT": "90s", "PYFN_TIMEOUT": "5"}
    s = resolve_deploy(None, env=env, flags={"memory": "2G", "labels": ["a=1", "a=2,b=3"]})
    assert s.region == "europe-west1"
    assert s.timeout == 90.0  # PYFN_TIMEOUT is the shim's, not the deploy's
    assert s.memory == 2048
    assert s.labels == (("a", "2"), ("b", "3"))
    assert s.prefix == "pyfn" and s.node_runtime == ""  # the deploy flow chooses it
    bad_values: list[dict[str, Any]] = [
        {"memory": "12"},
        {"memory": "1.5Mi"},
        {"timeout": "soon"},
        {"min_instances": "-1"},
        {"env_vars": ["NOEQ"]},
    ]
    for bad in bad_values:
        with pytest.raises(ConfigError):
            resolve_deploy(None, env={}, flags=bad)


def test_deploy_keys_in_the_config_file_do_not_disturb_the_build(tmp_path: Any) -> None:
    from pyfn_action.config import resolve

    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    (tmp_path / "pyfn.toml").write_text(
        'name = "hello"\nregion = "us-central1"\nmemory = "512Mi"\n[env_vars]\nLOG_LEVEL = "info"\n'
    )
    config = resolve(tmp_path, env={}, flags={})
    assert config.name == "hello"
    s = resolve_deploy(tmp_path, env={}, flags={})
    assert s.region == "us-central1" and s.memory == 512
    assert s.env_vars == (("LOG_LEVEL", "info"),)
    (tmp_path / "pyfn.toml").write_text('regoin = "us-central1"\n')
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, env={}, flags={})
    assert "Did you mean 'region'?" in caught.value.message


@pytest.mark.parametrize(
    "variable", ["PYFN_FUNCTIONS_ENDPOINT", "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS"]
)
@pytest.mark.parametrize("gen", [1, 2])
def test_the_api_endpoint_can_be_overridden(variable: str, gen: int) -> None:
    from google.auth.credentials import AnonymousCredentials

    from pyfn_action.cloud.apply import client

    api = client(generation(gen), AnonymousCredentials(), {variable: "http://127.0.0.1:9/"})
    assert api._transport._host == "http://127.0.0.1:9"
    default = client(generation(gen), AnonymousCredentials(), {})
    assert default._transport._host == "https://cloudfunctions.googleapis.com"


class _Operation:
    class operation:  # mirrors google.api_core.operation.Operation.operation
        name = "projects/demo-proj/locations/asia-northeast1/operations/op-1"

    metadata = None

    def done(self, retry: object = None) -> bool:
        return False


class _Api:
    def get_function(self, request: object) -> object:
        from google.api_core import exceptions as gexc

        raise gexc.NotFound("Resource 'projects/demo-proj/.../functions/hello' was not found")

    def create_function(self, request: object) -> _Operation:
        return _Operation()


def test_interrupting_the_wait_says_the_operation_goes_on() -> None:
    from pyfn_action.cloud.apply import Polling, apply

    said: list[str] = []

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply(make(2), _Api(), timeout=60, say=said.append, polling=Polling(sleep=interrupt))
    assert "goes on in Google Cloud" in said[-1]
    assert "gcloud functions describe hello --region asia-northeast1" in said[-1]


def test_a_function_left_failed_by_its_deployment_says_why_and_what_to_do() -> None:
    """docs/deploy.md, a function in a failed state: an operation that ends without an
    error but leaves the function FAILED is an error (exit 15) with the function's state
    messages and what to do."""
    from google.cloud import functions_v2

    from pyfn_action.cloud.apply import Polling, apply
    from pyfn_action.errors import DeployError

    class Finished(_Operation):
        class operation(_Operation.operation):
            @staticmethod
            def HasField(name: str) -> bool:
                return False  # no error: the operation itself succeeded

        def done(self, retry: object = None) -> bool:
            return True

        def result(self, timeout: object = None, retry: object = None) -> object:
            return functions_v2.Function(
                state=functions_v2.Function.State.FAILED,
                state_messages=[
                    functions_v2.StateMessage(
                        severity=functions_v2.StateMessage.Severity.ERROR,
                        type_="ServiceFailed",
                        message="Container failed to start and listen on the port",
                    )
                ],
            )

    class Api(_Api):
        def create_function(self, request: object) -> _Operation:
            return Finished()

    with pytest.raises(DeployError) as caught:
        apply(make(2), Api(), timeout=60, say=lambda _: None, polling=Polling(sleep=lambda _: None))
    error = caught.value
    assert error.exit_code == 15
    assert error.what == "Function hello is FAILED after the deployment"
    assert error.why == "ERROR Container failed to start and listen on the port"
    assert "deploy again" in error.fix
    assert "gcloud functions describe hello --region asia-northeast1 --project demo-proj" in (
        error.fix
    )


def test_the_wait_is_bounded_by_the_timeout_on_its_own_clock() -> None:
    from pyfn_action.cloud.apply import Polling, apply
    from pyfn_action.errors import DeployTimeout

    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    with pytest.raises(DeployTimeout) as caught:
        apply(
            make(2),
            _Api(),
            timeout=600,
            say=lambda _: None,
            polling=Polling(clock=lambda: now[0], sleep=sleep),
        )
    assert now[0] == pytest.approx(600)
    assert naps[:3] == [1.0, 1.5, 2.25] and max(naps) == 10.0  # backoff, capped
    assert len(naps) < 80
    assert caught.value.exit_code == 16


@pytest.mark.parametrize(
    ("gen", "key", "value"),
    [(2, "retryPolicy", "RETRY_POLICY_RETRY"), (1, "failurePolicy", {"retry": {}})],
)
def test_retry_on_failure_for_event_functions(gen: int, key: str, value: object) -> None:
    p = make(gen, "cloudevent", trigger_topic="orders", retry=True)
    assert p.body["eventTrigger"][key] == value
    assert key not in make(gen, "cloudevent", trigger_topic="orders").body["eventTrigger"]
    with pytest.raises(ConfigError) as caught:
        make(gen, "http", retry=True)
    assert "no event trigger" in caught.value.message


def test_a_deploy_judges_and_plans_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """prepare_deploy judges the settings and makes the plan; deploy_function only pins
    the bundle in it (here: a dry run, which stages it)."""
    from types import SimpleNamespace

    from pyfn_action.cloud import auth, rules
    from pyfn_action.cloud import plan as plan_module
    from pyfn_action.config import resolve
    from pyfn_action.errors import CloudCredentialsError
    from pyfn_action.flows import jobs

    calls: list[str] = []

    def counted(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise CloudCredentialsError("none here")

    monkeypatch.setattr(rules, "check", counted("check", rules.check))
    monkeypatch.setattr(plan_module, "make_plan", counted("make_plan", plan_module.make_plan))
    monkeypatch.setattr(auth, "credentials", no_credentials)
    report = SimpleNamespace(
        bundle=SimpleNamespace(sha256="d" * 64, compressed_bytes=1), node_framework="5.0.5"
    )
    built = SimpleNamespace(bundle=tmp_path / "bundle.zip", report=report)
    monkeypatch.setattr(jobs, "build_function", lambda *a, **k: (calls.append("build"), built)[1])
    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    config = resolve(tmp_path, env={}, flags={"name": "hello", "entry_point": "hello"})
    deploy_settings = settings(
        project="demo-proj", region="us-central1", bucket="stage", memory="512Mi"
    )
    outcome = jobs.deploy(config, deploy_settings, {}, dry_run=True)
    assert calls == ["check", "make_plan", "build"]
    storage = outcome.plan.body["buildConfig"]["source"]["storageSource"]
    assert storage == {"bucket": "stage", "object": "pyfn/hello/" + "d" * 64 + ".zip"}
    assert outcome.to_dict()["action"] is None  # the function could not be read


def test_the_concurrency_the_instance_gets_is_recorded_for_the_shim() -> None:
    from types import SimpleNamespace

    from pyfn_action.cloud.apply import request_concurrency

    deployed = SimpleNamespace(service_config=SimpleNamespace(max_instance_request_concurrency=80))
    assert request_concurrency(None, None, generation(1)) == 1  # 1st gen: always one
    assert request_concurrency(None, None, generation(2)) == 1  # the platform's default
    assert request_concurrency(None, deployed, generation(2)) == 80  # what is deployed
    assert request_concurrency(8, deployed, generation(2)) == 8  # what the deploy sets
