"""Who may call a function: allUsers granted and taken away on the policy gcloud changes
(the 1st gen function's, the 2nd gen function's Cloud Run service's), keeping every other
member, and read again when someone else changed the policy meanwhile (409)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.functions_api import STAGED, FakeFunctions, Injected, fake_functions
from support.oauth import service_account_file

from pyfn_action.cloud import apply, auth
from pyfn_action.cloud.invokers import set_public
from pyfn_action.cloud.plan import plan
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.config import resolve_deploy
from pyfn_action.errors import DeployError
from pyfn_action.runtime.targets import generation

PROJECT, REGION = "demo-proj", "us-central1"
ADDRESS = FunctionAddress(project=PROJECT, region=REGION, name="hello")
CI = "serviceAccount:ci@x.iam.gserviceaccount.com"
ROLES = {1: "roles/cloudfunctions.invoker", 2: "roles/run.invoker"}


@pytest.fixture
def fake() -> Iterator[FakeFunctions]:
    with fake_functions(project=PROJECT) as fake:
        yield fake


def _deployed(
    fake: FakeFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gen: int
) -> tuple[Any, Any, dict[str, str]]:
    key = service_account_file(tmp_path / "deployer.json", PROJECT, f"{fake.base}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    credentials, _ = auth.credentials({})
    env = {"PYFN_FUNCTIONS_ENDPOINT": fake.base, "PYFN_RUN_ENDPOINT": fake.run_base}
    api = apply.client(generation(gen), credentials, env)
    the_plan = plan(
        resolve_deploy(None, env={}, flags={}),
        ADDRESS,
        generation(gen),
        entry_point="hello",
        signature="http",
    ).with_source(STAGED)
    apply.apply(
        the_plan, api, timeout=60, polling=apply.Polling(sleep=lambda _: None), say=lambda _: None
    )
    return api, credentials, env


def _call(public: bool, api: Any, credentials: Any, env: dict[str, str], gen: int) -> bool:
    function = apply.read_function(api, ADDRESS, generation(gen))
    return set_public(
        public, function, ADDRESS, generation(gen), api=api, credentials=credentials, env=env
    )


@pytest.mark.parametrize("gen", [1, 2])
def test_granted_then_taken_away_keeping_the_other_members(
    fake: FakeFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gen: int
) -> None:
    api, credentials, env = _deployed(fake, tmp_path, monkeypatch, gen)
    role, path = ROLES[gen], ADDRESS.path
    assert _call(False, api, credentials, env, gen) is False  # private already: no write
    assert _call(True, api, credentials, env, gen) is True
    assert fake.policy(path)["bindings"] == [{"role": role, "members": ["allUsers"]}]
    assert _call(True, api, credentials, env, gen) is False  # public already
    # someone else's invoker, beside allUsers, stays when allUsers goes
    resource = path if gen == 1 else f"projects/{PROJECT}/locations/{REGION}/services/hello"
    fake.policies[resource]["bindings"][0]["members"].append(CI)
    assert _call(False, api, credentials, env, gen) is True
    assert fake.policy(path)["bindings"] == [{"role": role, "members": [CI]}]
    assert fake.violations == []


def test_a_policy_changed_meanwhile_is_read_again(
    fake: FakeFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, credentials, env = _deployed(fake, tmp_path, monkeypatch, 2)
    conflict = Injected(
        "POST", ":setIamPolicy", 409, "ABORTED", "There were concurrent policy changes.", api="run"
    )
    fake.inject.append(conflict)
    assert _call(True, api, credentials, env, 2) is True
    assert conflict.times == 0
    assert {"role": "roles/run.invoker", "members": ["allUsers"]} in fake.policy(ADDRESS.path)[
        "bindings"
    ]
    fake.inject.append(
        Injected(
            "POST",
            ":setIamPolicy",
            409,
            "ABORTED",
            "There were concurrent policy changes.",
            times=3,
            api="run",
        )
    )
    with pytest.raises(DeployError, match="kept changing"):
        _call(False, api, credentials, env, 2)


def test_a_refusal_becomes_advice(
    fake: FakeFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, credentials, env = _deployed(fake, tmp_path, monkeypatch, 2)
    fake.inject.append(
        Injected(
            "POST",
            ":setIamPolicy",
            400,
            "FAILED_PRECONDITION",
            "One or more users named in the policy do not belong to a permitted customer.",
            api="run",
        )
    )
    with pytest.raises(DeployError, match="permitted customer"):
        _call(True, api, credentials, env, 2)
