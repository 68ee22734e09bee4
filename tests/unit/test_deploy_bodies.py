"""The body builders and the generation data they read, held to recorded outputs.

``golden/deploy_plans.json`` was recorded from the deploy code before it was split
into rules, one body builder per API version and generation data: for 1st and 2nd
gen plans of many settings, the body, update mask, notes and both requests (with
and without the uploaded source, and as a dry run stages them), the error every
refused setting raised, and the dry run's output. The code must still produce
each of them exactly, key order included where a user sees it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.functions_api import STAGED

from pyfn_action.cloud.bodies import V1Body, V2Body, body_builder
from pyfn_action.cloud.plan import Plan, plan
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.config import resolve_deploy
from pyfn_action.errors import ConfigError, PyfnError
from pyfn_action.runtime import targets
from pyfn_action.runtime.targets import generation

GOLDEN = json.loads((Path(__file__).parent / "golden" / "deploy_plans.json").read_text())
STAGED_KEY = "pyfn/hello/" + "b" * 64 + ".zip"


def _plan(gen: int, signature: str, flags: dict[str, Any], name: str = "hello") -> Plan:
    # the runtime the deploy flow chose (prepare_deploy sets it from the calendar)
    chosen = flags.get("node_runtime", "nodejs22")
    settings = replace(resolve_deploy(None, env={}, flags=flags), node_runtime=chosen)
    address = FunctionAddress(project="demo-proj", region="asia-northeast1", name=name)
    return plan(settings, address, generation(gen), entry_point="hello", signature=signature)


def _record(p: Plan) -> dict[str, Any]:
    requests = p.requests()
    redacted = requests["create"]["body"]
    assert requests["update"]["body"] == redacted
    return {
        "body": p.body,
        "update_mask": p.update_mask,
        "notes": p.notes,
        "redacted": redacted,
        "requests": {k: {**v, "body": "<redacted>"} for k, v in requests.items()},
    }


def _id(case: dict[str, Any]) -> str:
    return f"gen{case['gen']}-{case['signature']}-{sorted(case['flags'])}-source{case['source']}"


@pytest.mark.parametrize("case", GOLDEN["plans"], ids=_id)
def test_each_plan_is_the_one_recorded(case: dict[str, Any]) -> None:
    p = _plan(case["gen"], case["signature"], case["flags"])
    if case["source"]:
        p = p.with_source(STAGED)
    staged = p.staged("stage", STAGED_KEY)
    got = {**_record(p), "staged": _record(staged)}
    recorded = {k: case[k] for k in ("body", "update_mask", "notes", "redacted", "requests")}
    assert got == {**recorded, "staged": case["staged"]}
    if not case["source"]:
        # What a dry run prints, in the order it prints it.
        assert json.dumps(got) == json.dumps({**recorded, "staged": case["staged"]})


@pytest.mark.parametrize(
    "case", GOLDEN["errors"], ids=lambda c: f"gen{c['gen']}-{sorted(c['flags'])}-{c['name'][:8]}"
)
def test_each_refusal_is_the_one_recorded(case: dict[str, Any]) -> None:
    with pytest.raises(PyfnError) as caught:
        _plan(case["gen"], case["signature"], case["flags"], case["name"])
    error = caught.value
    assert (type(error).__name__, error.what, error.why, error.fix, error.exit_code) == (
        case["type"],
        case["what"],
        case["why"],
        case["fix"],
        case["exit_code"],
    )


def _output_id(case: dict[str, Any]) -> str:
    return f"gen{case['gen']}-{case['existing']}-json{case['json']}"


@pytest.mark.parametrize("case", GOLDEN["dry_run_output"], ids=_output_id)
def test_the_dry_run_output_is_the_one_recorded(case: dict[str, Any]) -> None:
    from pyfn_action.flows.jobs import DeployOutcome

    key = "pyfn/hello/" + "c" * 64 + ".zip"
    p = _plan(case["gen"], case["signature"], case["flags"]).staged("stage", key)
    report: Any = SimpleNamespace(
        bundle=SimpleNamespace(sha256="c" * 64, compressed_bytes=12_345_678),
        node_framework="5.0.5",
    )
    outcome = DeployOutcome(None, report, p, f"gs://stage/{key}", case["existing"])  # type: ignore[arg-type]
    shown = json.dumps(outcome.to_dict(), indent=2) + "\n" if case["json"] else outcome.to_text()
    assert shown == case["output"]


@pytest.mark.parametrize("gen", [1, 2])
@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (None, "--require ./index.js"),
        ("--max-old-space-size=200", "--require ./index.js --max-old-space-size=200"),
        ("--require ./index.js --trace-warnings", "--require ./index.js --trace-warnings"),
    ],
)
def test_the_deploy_has_node_load_the_bundle_first(gen: int, given: str | None, sent: str) -> None:
    """NODE_OPTIONS preloads index.js (its workers start while the framework loads),
    before whatever NODE_OPTIONS the user configured, and the rest of the environment
    is kept."""
    env = {"env_vars": f"NODE_OPTIONS={given},A=1"} if given else {"env_vars": "A=1"}
    p = _plan(gen, "http", env)
    path = generation(gen).fields["env_vars"]
    holder = p.body
    for part in path.split("."):
        holder = holder[part]
    assert holder == {"A": "1", "NODE_OPTIONS": sent}
    assert path in p.update_mask


def _env(p: Plan) -> dict[str, str] | None:
    holder: Any = p.body
    for part in p.generation.fields["env_vars"].split("."):
        holder = holder.get(part) if isinstance(holder, dict) else None
    return holder


@pytest.mark.parametrize("gen", [1, 2])
def test_without_configured_variables_the_preload_joins_what_the_function_has(gen: int) -> None:
    """A new function gets NODE_OPTIONS alone; an existing one keeps its variables (set in
    the console, say) and gains it, all sent since they are one field; one that has it
    already is not touched; unknown (a dry run without credentials) is a note."""
    path = generation(gen).fields["env_vars"]
    bare = _plan(gen, "http", {})
    assert path not in bare.update_mask and _env(bare) is None
    created = bare.with_environment(None, exists=False)
    assert _env(created) == {"NODE_OPTIONS": "--require ./index.js"}
    assert created.update_mask == [*bare.update_mask, path]
    kept = bare.with_environment({"MODE": "prod", "NODE_OPTIONS": "--trace-warnings"}, True)
    assert _env(kept) == {"MODE": "prod", "NODE_OPTIONS": "--require ./index.js --trace-warnings"}
    assert path in kept.update_mask
    assert bare.with_environment({"NODE_OPTIONS": "--require ./index.js"}, True) == bare
    unknown = bare.with_environment(None, None)
    assert unknown.body == bare.body and unknown.update_mask == bare.update_mask
    assert any("NODE_OPTIONS" in note for note in unknown.notes)
    assert _env(bare) is None  # the original plan is left as it was
    configured = _plan(gen, "http", {"env_vars": "A=1"})
    assert configured.with_environment({"B": "2"}, True) == configured  # replaced, as set


def test_the_api_version_in_the_data_picks_the_builder() -> None:
    assert isinstance(body_builder(generation(1)), V1Body)
    assert isinstance(body_builder(generation(2)), V2Body)
    assert generation(1).api_version == "v1" and generation(2).api_version == "v2"


def test_each_builder_writes_the_fields_the_data_names() -> None:
    real = generation(2)
    moved = replace(real, fields={**real.fields, "memory": "serviceConfig.memoryElsewhere"})
    address = FunctionAddress(project="demo-proj", region="us-central1", name="hello")
    settings = resolve_deploy(None, env={}, flags={"memory": "1Gi"})
    p = plan(settings, address, moved, entry_point="hello", signature="http")
    assert p.body["serviceConfig"] == {"memoryElsewhere": "1Gi"}
    assert "serviceConfig.memoryElsewhere" in p.update_mask


@pytest.mark.parametrize("gen", [1, 2])
@pytest.mark.parametrize("kind", ["http", "event"])
def test_the_timeout_limit_comes_from_the_generation_data(gen: int, kind: str) -> None:
    limit = generation(gen).max_timeout_seconds[kind]
    signature, flags = ("http", {}) if kind == "http" else ("cloudevent", {"trigger_topic": "t-1"})
    _plan(gen, signature, {**flags, "function_timeout": str(limit)})  # at the limit: fine
    with pytest.raises(ConfigError) as caught:
        _plan(gen, signature, {**flags, "function_timeout": str(limit + 1)})
    assert caught.value.why == f"{generation(gen).label} {kind} functions run at most {limit} s"


def test_changed_generation_data_changes_the_limits() -> None:
    """The rules read the data: a different table gives different limits and sizes."""
    changed = replace(
        generation(2),
        max_timeout_seconds={"http": 100, "event": 50},
        memory_mib=(256,),
        label="test gen",
    )
    address = FunctionAddress(project="demo-proj", region="us-central1", name="hello")
    with pytest.raises(ConfigError) as caught:
        plan(
            resolve_deploy(None, env={}, flags={"function_timeout": "101"}),
            address,
            changed,
            entry_point="hello",
            signature="http",
        )
    assert caught.value.why == "test gen http functions run at most 100 s"
    with pytest.raises(ConfigError) as caught:
        plan(
            resolve_deploy(None, env={}, flags={"memory": "512Mi"}),
            address,
            changed,
            entry_point="hello",
            signature="http",
        )
    assert caught.value.message.startswith("memory 512Mi is not a test gen size")


def test_a_setting_a_generation_has_no_field_for_is_refused_naming_those_that_have() -> None:
    assert not generation(1).has_setting("cpu") and generation(2).has_setting("cpu")
    with pytest.raises(ConfigError) as caught:
        _plan(1, "http", {"cpu": "2"})
    assert caught.value.what == "cpu is a 2nd gen setting"
    assert caught.value.fix == "Drop --cpu, or deploy with --gen 2"


def test_every_generation_has_every_fact_the_code_reads() -> None:
    for gen in targets.generations():
        assert gen.label and gen.services and gen.name_rule and gen.pubsub_event
        assert set(gen.max_timeout_seconds) == {"http", "event"}
        assert set(gen.storage_events) == {"finalized", "deleted", "archived", "metadata-updated"}
        for needed in (
            "runtime",
            "entry_point",
            "secret_env_vars",
            "secret_volumes",
            "env_vars",
            "event_trigger",
        ):
            assert needed in gen.fields, (gen.gen, needed)
    assert [g.gen for g in targets.generations()] == [1, 2]
