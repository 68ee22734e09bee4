"""The Action's adapter pieces: the runner's language, the event, the inputs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from pyfn_action.config import Budget, resolve, resolve_deploy
from pyfn_action.errors import ConfigError, SourceError
from pyfn_action.github.action import run
from pyfn_action.github.event import read_event
from pyfn_action.github.functions import resolve_functions as _functions
from pyfn_action.github.inputs import env_name, parse, secret_values
from pyfn_action.github.workflow import Runner, escape_data, escape_property

SHA_A, SHA_B = "a" * 40, "b" * 40


# --- workflow commands and files --------------------------------------------------------


def test_escaping_follows_the_runner() -> None:
    assert escape_data("50%\r\n::set-env") == "50%25%0D%0A::set-env"
    assert escape_property("a:b,c\n") == "a%3Ab%2Cc%0A"


def test_commands_are_the_only_lines_processed_once_stopped() -> None:
    out = io.StringIO()
    runner = Runner({}, out)
    runner.stop_commands()
    runner.error("bad\n::add-mask::x", file="fn/main.py", line=3, title="pyfn: t")
    lines = out.getvalue().splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert lines[1:] == [
        f"::{token}::",
        "::error file=fn/main.py,line=3,title=pyfn%3A t::bad%0A::add-mask::x",
        f"::stop-commands::{token}",
    ]


def test_outputs_use_a_random_delimiter_and_keep_every_line(tmp_path: Path) -> None:
    output, summary = tmp_path / "out", tmp_path / "summary"
    runner = Runner(
        {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}, io.StringIO()
    )
    runner.set_output("body", "line 1\nx=y\nEOF")
    runner.set_output("url", "https://example.test/")
    runner.summary("# one")
    runner.summary("# two\n")
    text = output.read_text()
    blocks = re.findall(r"^(\S+)<<(ghadelimiter_[0-9a-f]{32})\n(.*?)\n\2$", text, re.S | re.M)
    assert [(n, v) for n, _, v in blocks] == [
        ("body", "line 1\nx=y\nEOF"),
        ("url", "https://example.test/"),
    ]
    assert blocks[0][1] != blocks[1][1]
    assert summary.read_text() == "# one\n# two\n"


def test_masks_each_line_of_a_secret() -> None:
    out = io.StringIO()
    Runner({}, out).mask("first\nsecond")
    assert out.getvalue().splitlines() == ["::add-mask::first", "::add-mask::second"]


def test_a_value_already_masked_is_not_said_again() -> None:
    out = io.StringIO()
    runner = Runner({}, out)
    runner.mask("token")
    runner.mask("other\ntoken")
    assert out.getvalue().splitlines() == ["::add-mask::token", "::add-mask::other"]


# --- the event ------------------------------------------------------------------------------


def _event(tmp_path: Path, payload: object) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload) if not isinstance(payload, str) else payload)
    return {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REPOSITORY": "acme/fns",
    }


def _pull(**overrides: object) -> dict[str, object]:
    pull: dict[str, object] = {
        "number": 7,
        "base": {"sha": SHA_A, "ref": "main", "repo": {"full_name": "acme/fns"}},
        "head": {"sha": SHA_B, "ref": "feature", "repo": {"full_name": "someone/fns"}},
    }
    pull.update(overrides)
    return {"action": "opened", "number": 7, "pull_request": pull}


def test_a_pull_request_event(tmp_path: Path) -> None:
    event = read_event(_event(tmp_path, _pull()))
    assert (event.pull_number, event.base_sha, event.base_ref, event.head_sha) == (
        7,
        SHA_A,
        "main",
        SHA_B,
    )
    assert event.is_pull_request and event.from_fork


@pytest.mark.parametrize(
    ("head", "action", "ours", "closed"),
    [
        ({"full_name": "acme/fns"}, "closed", True, True),
        ({"full_name": "Acme/FNS"}, "synchronize", True, False),  # GitHub ignores case
        ({"full_name": "someone/fns"}, "closed", False, True),
        (None, "reopened", False, False),  # a deleted fork: not known to be ours
    ],
)
def test_whose_branch_and_which_activity(
    tmp_path: Path, head: object, action: str, ours: bool, closed: bool
) -> None:
    payload = _pull(head={"sha": SHA_B, "ref": "feature", "repo": head})
    payload["action"] = action
    event = read_event(_event(tmp_path, payload))
    assert (event.action, event.from_this_repository, event.closed) == (action, ours, closed)


def test_an_activity_that_is_no_word_is_not_read(tmp_path: Path) -> None:
    payload = _pull()
    payload["action"] = "closed\n::error::x"
    assert read_event(_event(tmp_path, payload)).action is None


def test_a_push_event_has_no_pull_request(tmp_path: Path) -> None:
    env = {**_event(tmp_path, {"ref": "refs/heads/main"}), "GITHUB_EVENT_NAME": "push"}
    event = read_event(env)
    assert not event.is_pull_request and event.repository == "acme/fns"


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[1]",
        {"pull_request": "x"},
        _pull(number="7; rm -rf /"),
        _pull(base={"sha": "--upload-pack=evil", "ref": "main"}),
        _pull(head={"sha": SHA_B, "repo": {"full_name": "a/b c"}}),
    ],
)
def test_a_malformed_event_is_a_clear_error(tmp_path: Path, payload: object) -> None:
    with pytest.raises(ConfigError, match="Cannot read the GitHub event"):
        read_event(_event(tmp_path, payload))


# --- inputs -------------------------------------------------------------------------------


def _function(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "main.py").write_text("def f(request):\n    return 'ok'\n")
    return path


def _inputs(**values: str) -> dict[str, str]:
    return {env_name(k.replace("_", "-")): v for k, v in values.items()}


def test_input_names_are_the_runners() -> None:
    assert env_name("github-token") == "INPUT_GITHUB-TOKEN"
    assert env_name("entry-point") == "INPUT_ENTRY-POINT"


def test_inputs_map_to_settings(tmp_path: Path) -> None:
    _function(tmp_path, "fns/a")
    _function(tmp_path, "fns/b")
    (tmp_path / "fns" / "notes").mkdir()
    env = _inputs(
        source="fns/*\n",
        gen="1",
        budget="60MB",
        deploy="true",
        region="us-east1",
        env_vars="MODE=prod\nLIST=a,b",
        config='arch = "aarch64"\nmin_instances = 1',
        github_token="ghs_secret",  # noqa: S106
    )
    inputs = parse({**env, "INPUT_COMMENT": "false"}, cwd=tmp_path)
    assert [p.name for p in inputs.sources] == ["a", "b"]
    assert inputs.deploy and not inputs.comment
    assert inputs.flags == {"gen": 1, "budget": Budget(compressed=60_000_000), "arch": "aarch64"}
    assert inputs.deploy_flags["env_vars"] == (("LIST", "a,b"), ("MODE", "prod"))
    assert inputs.deploy_flags["min_instances"] == 1 and inputs.deploy_flags["region"] == "us-east1"
    config = resolve(tmp_path / "fns" / "a", env={}, flags=inputs.flags)
    assert (config.gen, config.budget, config.arch) == (1, Budget(60_000_000), "aarch64")
    settings = resolve_deploy(tmp_path / "fns" / "a", env={}, flags=inputs.deploy_flags)
    assert settings.env_vars == (("LIST", "a,b"), ("MODE", "prod"))
    assert set(inputs.secrets) == {"ghs_secret", "a,b", "prod"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gen": "3"}, "input 'gen': '3'"),
        ({"budget": "lots"}, "input 'budget': 'lots'"),
        ({"deploy": "maybe"}, "input 'deploy': 'maybe'"),
        ({"comment": "sometimes"}, "input 'comment'"),
        ({"memory": "lots"}, "input 'memory'"),
        ({"config": "arch = "}, "input 'config' is not valid TOML"),
        ({"config": "archh = 'x'"}, "Did you mean 'arch'"),
        ({"config": "cpu = 'lots'"}, "Invalid value for 'cpu' in the input 'config'"),
        ({"config": "gen = 1"}, "has an input of its own, 'gen'"),
        ({"source": "fns/a\nfns/b", "name": "x"}, "input 'name' applies to one function"),
        ({"working_directory": "nowhere"}, "input 'working-directory'"),
    ],
)
def test_bad_inputs_name_the_input(tmp_path: Path, values: dict[str, str], message: str) -> None:
    _function(tmp_path, "fns/a")
    _function(tmp_path, "fns/b")
    values.setdefault("source", "fns/a")
    with pytest.raises(ConfigError) as caught:
        parse(_inputs(**values), cwd=tmp_path)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing", "'missing', which does not exist"),
        ("empty", "'empty', which holds no function"),
        ("fns/x*", "matches no function directory"),
        ("# none", "is empty"),
        ("escape", "outside the working directory"),
    ],
)
def test_sources_that_hold_no_function(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    _function(tmp_path / "elsewhere", "fn")
    work = tmp_path / "work"
    work.mkdir()
    (work / "empty").mkdir()
    (work / "escape").symlink_to(tmp_path / "elsewhere" / "fn")
    with pytest.raises(SourceError) as caught:
        parse(_inputs(source=source), cwd=work)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("files", "config", "message"),
    [
        # Names default to the directory's: two directories of one name clash.
        ({"a/api": "", "b/api": ""}, "", "Several functions have the same name: api."),
        (
            {"a/one": 'name = "same"', "b/two": 'name = "same"'},
            "",
            "Several functions have the same name: same.",
        ),
        (
            {"a/one": 'out = "build"', "b/two": 'out = "build"'},
            "",
            "Several functions have the same out: ",
        ),
        ({"a/one": "", "b/two": ""}, 'out = "shared"', "Several functions have the same out: "),
    ],
    ids=["directory-names", "pyfn.toml-names", "pyfn.toml-outs", "config-input-out"],
)
def test_several_functions_need_unique_names_and_outs(
    tmp_path: Path, files: dict[str, str], config: str, message: str
) -> None:
    for directory, toml in files.items():
        _function(tmp_path, directory)
        if toml:
            (tmp_path / directory / "pyfn.toml").write_text(toml + "\n")
    env = _inputs(source="\n".join(files), config=config)
    for args in (["--check-inputs"], []):  # the step that checks, and the main step
        out = io.StringIO()
        assert run(args, {**env, "GITHUB_WORKSPACE": str(tmp_path)}, out, cwd=tmp_path) == 2
        [error] = [line for line in out.getvalue().splitlines() if line.startswith("::error")]
        assert message in error and "Give each function its own" in error
    assert not (tmp_path / "dist").exists() and not (tmp_path / "build").exists()


def test_several_functions_with_their_own_names_are_each_built_into_dist_name(
    tmp_path: Path,
) -> None:
    for directory in ("a/api", "b/api", "c/web"):
        _function(tmp_path, directory)
    (tmp_path / "b" / "api" / "pyfn.toml").write_text('name = "api-b"\n')
    env = {**_inputs(source="a/api\nb/api\nc/web"), "GITHUB_WORKSPACE": str(tmp_path)}
    out = io.StringIO()
    assert run(["--check-inputs"], env, out, cwd=tmp_path) == 0, out.getvalue()
    functions = _functions(parse(env, cwd=tmp_path), env)
    assert {f.name: f.config.out for f in functions} == {
        "api": tmp_path / "dist" / "api",
        "api-b": tmp_path / "dist" / "api-b",
        "web": tmp_path / "dist" / "web",
    }


INJECTED = "::set-output name=url::evil.test"  # no "//": a path would fold it


@pytest.mark.parametrize(("where", "code"), [("base-report", 10), ("linked-source", 3)])
def test_an_injected_workflow_command_in_an_input_is_only_text(
    tmp_path: Path, where: str, code: int
) -> None:
    """Paths are quoted as they are, not with repr(): a newline in one reaches the error's
    text as a real newline, and only the runner's escaping keeps it inside the command."""
    work = tmp_path / "work"
    work.mkdir()
    if where == "base-report":  # the report's path is in the error: read as given
        values = {"source": "fn", "base_report": f"base.json\n{INJECTED}\n::add-mask::x"}
        _function(work, "fn")
    else:  # a link in the repository to a directory whose name holds the commands
        outside = _function(tmp_path, f"fn\n{INJECTED}\n::add-mask::x")
        (work / "fn").symlink_to(outside)
        values = {"source": "fn"}
    out = io.StringIO()
    assert run([], {**_inputs(**values), "GITHUB_WORKSPACE": str(work)}, out, cwd=work) == code
    lines = out.getvalue().splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    # Commands are processed only between ::TOKEN:: and ::stop-commands::TOKEN: each such
    # window holds exactly one command, and the input's lines stay inside the error's.
    windows = [n for n, line in enumerate(lines) if line == f"::{token}::"]
    assert windows
    for n in windows:
        assert lines[n + 2] == f"::stop-commands::{token}", lines[n : n + 4]
    [error] = [lines[n + 1] for n in windows if lines[n + 1].startswith("::error")]
    assert f"%0A{INJECTED}%0A::add-mask::x" in error
    assert not any(line.startswith((INJECTED, "::add-mask::x")) for line in lines)


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("env_vars", "DB_PASSWORD=hunter2,DEBUG", "hunter2"),
        ("env_vars", "A=1\nDB_PASSWORD=hunter2\nBROKEN", "hunter2"),
        ("secrets", "API_KEY=projects/p/secrets/key:latest,oops", "projects/p/secrets/key:latest"),
        ("config", 'env_vars = "TOKEN=s3cr3t,X"', "s3cr3t"),
    ],
)
def test_a_secret_is_masked_before_anything_says_it(
    tmp_path: Path, name: str, value: str, secret: str
) -> None:
    _function(tmp_path, "fn")
    env = {**_inputs(source="fn", **{name: value}), "GITHUB_WORKSPACE": str(tmp_path)}
    out = io.StringIO()
    code = run([], env, out, cwd=tmp_path)
    assert code == 2
    lines = out.getvalue().splitlines()
    masked = lines.index(f"::add-mask::{secret}")
    said = [line for line in lines if not line.startswith("::add-mask::")]
    before = [line for line in lines[:masked] if not line.startswith("::add-mask::")]
    assert not any(secret in line for line in before)
    if name != "config":  # TOML's own errors are masked by the runner, not rewritten
        assert not any(secret in line for line in said), said
    assert any(line.startswith("::error") for line in said)


def test_secret_values_are_found_in_every_shape() -> None:
    env = _inputs(env_vars="A=alpha,B = 'bravo'\nC=charlie=delta", github_token="ghs_x")  # noqa: S106
    values = secret_values(env)
    for piece in ("alpha", "bravo", "charlie=delta", "delta", "ghs_x"):
        assert piece in values
    assert all(len(v) >= 3 for v in values) and values == sorted(values, key=lambda v: -len(v))


@pytest.mark.parametrize("name", ["deploy", "comment", "cache"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("yes", None),
        ("1", None),
        ("on", None),
        ("no", None),
        ("tru", None),
    ],
)
def test_every_boolean_input_is_read_alike(
    tmp_path: Path, name: str, value: str, expected: bool | None
) -> None:
    _function(tmp_path, "fn")
    if expected is None:
        with pytest.raises(ConfigError, match=f"input '{name}': '{value}'"):
            parse(_inputs(source="fn", **{name: value}), cwd=tmp_path)
    else:
        assert getattr(parse(_inputs(source="fn", **{name: value}), cwd=tmp_path), name) is expected


@pytest.mark.parametrize("args", [[], ["--check-inputs"], ["--cache-key"]])
def test_every_step_says_linux_runners_only_elsewhere(tmp_path: Path, args: list[str]) -> None:
    out = io.StringIO()
    assert run(args, {"RUNNER_OS": "Windows"}, out, cwd=tmp_path) == 2
    assert "::error title=pyfn::pyfn-action runs on Linux runners only, not on Windows." in (
        out.getvalue()
    )
