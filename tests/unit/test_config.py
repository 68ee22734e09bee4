from __future__ import annotations

from pathlib import Path

import pytest

from pyfn_action.config import BENCH_KEYS, DEPLOY_KEYS, KEYS, Budget, resolve, resolve_deploy
from pyfn_action.errors import ConfigError, SourceError
from pyfn_action.sizes import parse_size


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "my-func"
    d.mkdir()
    (d / "main.py").write_text("def my_func(request):\n    return 'ok'\n")
    return d


def test_defaults(src: Path) -> None:
    config = resolve(src, env={}, flags={})
    assert (config.name, config.entry_point) == ("my-func", "my_func")
    assert (config.signature, config.runtime, config.gen) == ("http", "pypy3.11", 2)
    assert config.budget == Budget()


@pytest.mark.parametrize(
    ("file", "env", "flags", "expected"),
    [
        ({}, {}, {}, "pypy3.11"),
        ({"runtime": "pypy3.10"}, {}, {}, "pypy3.10"),
        ({"runtime": "pypy3.10"}, {"PYFN_RUNTIME": "pypy3.11"}, {}, "pypy3.11"),
        (
            {"runtime": "pypy3.11"},
            {"PYFN_RUNTIME": "pypy3.11"},
            {"runtime": "pypy3.10"},
            "pypy3.10",
        ),
    ],
)
def test_precedence(src: Path, file: dict, env: dict, flags: dict, expected: str) -> None:
    if file:
        (src / "pyfn.toml").write_text("".join(f'{k} = "{v}"\n' for k, v in file.items()))
    assert resolve(src, env=env, flags=flags).runtime == expected


def test_pyproject_tool_table(src: Path) -> None:
    (src / "pyproject.toml").write_text('[tool.pyfn]\ngen = 1\nentry_point = "other"\n')
    config = resolve(src, env={}, flags={})
    assert (config.gen, config.entry_point) == (1, "other")


def test_both_files_is_an_error(src: Path) -> None:
    (src / "pyproject.toml").write_text("[tool.pyfn]\ngen = 1\n")
    (src / "pyfn.toml").write_text("gen = 2\n")
    with pytest.raises(ConfigError, match="both"):
        resolve(src, env={}, flags={})


def test_unknown_key_suggests_the_closest(src: Path) -> None:
    (src / "pyfn.toml").write_text('entrypoint = "x"\n')
    with pytest.raises(ConfigError) as info:
        resolve(src, env={}, flags={})
    assert "'entrypoint'" in info.value.message
    assert "did you mean 'entry_point'" in info.value.message.lower()


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("gen", "3", "not 1 or 2"),
        ("runtime", "pypy2.7", "not one of"),
        ("signature", "background", "not one of"),
        ("pypy_sha256", "abc", "64 hex"),
        ("budget", "lots", "not a size"),
        ("entry_point", "not-an-identifier", "identifier"),
    ],
)
def test_invalid_values(src: Path, key: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        resolve(src, env={f"PYFN_{key.upper()}": value}, flags={})


@pytest.mark.parametrize("signature", ["http", "cloudevent", "event", "script"])
def test_every_signature_the_frameworks_serve_is_accepted(src: Path, signature: str) -> None:
    env = {"PYFN_SIGNATURE": signature}
    if signature == "script":
        env["PYFN_SCRIPT"] = "main.py"
    assert resolve(src, env=env, flags={}).signature == signature


def test_archive_needs_its_checksum(src: Path) -> None:
    with pytest.raises(ConfigError, match="SHA-256"):
        resolve(src, env={}, flags={"pypy_archive": "x.tar.gz"})


def test_broken_toml_names_the_line(src: Path) -> None:
    (src / "pyfn.toml").write_text('name = "a"\ngen = = 2\n')
    with pytest.raises(ConfigError, match="line 2"):
        resolve(src, env={}, flags={})


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        resolve(tmp_path / "nope", env={}, flags={})


def test_budget_table(src: Path) -> None:
    (src / "pyfn.toml").write_text('[budget]\ncompressed = "95MiB"\nuncompressed = "1.5G"\n')
    assert resolve(src, env={}, flags={}).budget == Budget(95 * 2**20, 1_500_000_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100MB", 100_000_000),
        ("95MiB", 95 * 2**20),
        ("1.5G", 1_500_000_000),
        ("500000", 500_000),
        ("10 kb", 10_000),
        (42, 42),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "1.2.3MB", "-5", "10 parsecs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("table", "name", "raw"),
    [
        (KEYS, "budget", "60MB"),
        (KEYS, "budget", {"compressed": "60MB", "uncompressed": "300MB"}),
        (KEYS, "out", "build/out"),
        (KEYS, "gen", "1"),
        (KEYS, "extra_index_urls", "https://a.test/simple https://b.test/simple"),
        (DEPLOY_KEYS, "env_vars", "A=1,B=x=y"),
        (DEPLOY_KEYS, "memory", "1Gi"),
        (DEPLOY_KEYS, "timeout", "10m"),
    ],
)
def test_each_parser_takes_its_own_result(table: dict, name: str, raw: object) -> None:  # type: ignore[type-arg]
    parsed = table[name].parse(raw)
    assert table[name].parse(parsed) == parsed


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('function_timeout = "inf"', "function_timeout"),
        ('memory = "1e400"', "memory"),
        ("memory = 1e400", "memory"),
        ('memory = "64Gi"', "memory"),
        ("budget = 1.5", "budget"),
        ("budget = {compressed = [1]}", "budget"),
        ('timeout = "nan"', "timeout"),
        ('timeout = "-inf"', "timeout"),
        ("timeout = true", "timeout"),
        ("prefix = {a = 1}", "prefix"),
        ('prefix = "a/../b"', "prefix"),
        ("max_instances = 1e10", "max_instances"),
        ("max_instances = 99999999999", "max_instances"),
        ("concurrency = true", "concurrency"),
        ('cpu = "nan"', "cpu"),
        ("cpu = -1", "cpu"),
        ('region = "us-central1\\n::set-output"', "region"),
    ],
)
def test_values_are_checked_by_type_and_range(src: Path, toml: str, key: str) -> None:
    (src / "pyfn.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        resolve(src, env={}, flags={})
        resolve_deploy(src, env={}, flags={})
    message = caught.value.message
    assert f"Invalid value for {key!r} in {src / 'pyfn.toml'}" in message


@pytest.mark.parametrize(
    ("origin", "where"), [("env", "the environment"), ("flags", "the command line")]
)
def test_bad_values_name_their_source(src: Path, origin: str, where: str) -> None:
    env = {"PYFN_DEPLOY_TIMEOUT": "nan"} if origin == "env" else {}
    flags = {"timeout": "nan"} if origin == "flags" else {}
    with pytest.raises(ConfigError, match=f"Invalid value for 'timeout' in {where}"):
        resolve_deploy(src, env=env, flags=flags)


def test_cpu_may_be_a_toml_number(src: Path) -> None:
    (src / "pyfn.toml").write_text("cpu = 2\n")
    assert resolve_deploy(src, env={}, flags={}).cpu == "2"
    (src / "pyfn.toml").write_text("cpu = 0.583\n")
    assert resolve_deploy(src, env={}, flags={}).cpu == "0.583"
    (src / "pyfn.toml").write_text('cpu = "1"\nprefix = "/deploys/team-a/"\n')
    settings = resolve_deploy(src, env={}, flags={})
    assert (settings.cpu, settings.prefix) == ("1", "deploys/team-a")


def test_an_archive_url_without_its_checksum_is_named_without_its_secrets(src: Path) -> None:
    url = "https://deployer:s3cret@mirror.test/pypy.tar.bz2?X-Goog-Signature=abc123"
    with pytest.raises(ConfigError) as caught:
        resolve(src, env={}, flags={"pypy_archive": url})
    message = caught.value.message
    assert "https://mirror.test/pypy.tar.bz2" in message
    assert "s3cret" not in message and "abc123" not in message


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        ("A=1,B=x=y", (("A", "1"), ("B", "x=y"))),
        (
            "^;^ORIGINS=https://a.test,https://b.test;MODE=x",
            (("MODE", "x"), ("ORIGINS", "https://a.test,https://b.test")),
        ),
        ("^::^A=1,2::B=3", (("A", "1,2"), ("B", "3"))),
        (["^|^A=1,2", "B=3,C=4"], (("A", "1,2"), ("B", "3"), ("C", "4"))),
        (" ^;^A=1,2 ", (("A", "1,2"),)),
    ],
)
def test_values_with_commas_take_gclouds_delimiter_escape(raw: object, pairs: object) -> None:
    assert DEPLOY_KEYS["env_vars"].parse(raw) == pairs
    assert DEPLOY_KEYS["labels"].parse(raw) == pairs


def test_an_escaped_list_still_needs_key_value_items() -> None:
    with pytest.raises(ValueError, match="'B' is not KEY=VALUE"):
        DEPLOY_KEYS["env_vars"].parse("^;^A=1,2;B")


def test_the_deploy_command_takes_the_escape_as_a_user_types_it(tmp_path: Path) -> None:
    from pyfn_action.cli import build_parser
    from pyfn_action.cli.settings import flag_values

    args = build_parser().parse_args(
        [
            "deploy",
            str(tmp_path),
            "--env-vars",
            "^;^ORIGINS=https://a.test,https://b.test;MODE=x",
            "--env-vars",
            "LEVEL=info",
        ]
    )
    settings = resolve_deploy(tmp_path, env={}, flags=flag_values(args, DEPLOY_KEYS))
    assert settings.env_vars == (
        ("LEVEL", "info"),
        ("MODE", "x"),
        ("ORIGINS", "https://a.test,https://b.test"),
    )


def test_a_keys_kind_is_what_its_parser_reads() -> None:
    """The command line and the Action write a key by its kind: a flag parses as a boolean,
    a table as KEY=VALUE pairs, a value as anything else."""
    from pyfn_action.config.values import _bool, _table

    for key in (*KEYS.values(), *DEPLOY_KEYS.values(), *BENCH_KEYS.values()):
        assert key.kind == {_bool: "flag", _table: "table"}.get(key.parse, "value"), key.name
    assert DEPLOY_KEYS["labels"].parse(["a=1", "b=2"]) == (("a", "1"), ("b", "2"))
    assert KEYS["refresh"].parse("true") is True


def test_the_command_line_takes_each_key_as_its_kind_says(tmp_path: Path) -> None:
    from pyfn_action.cli import build_parser
    from pyfn_action.cli.settings import flag_values

    argv = ["deploy", str(tmp_path), "--refresh", "--labels", "a=1", "--labels", "b=2"]
    args = build_parser().parse_args([*argv, "--arch", "aarch64", "--retry"])
    given = flag_values(args, {**KEYS, **DEPLOY_KEYS})
    assert given == {
        "refresh": True,
        "labels": ["a=1", "b=2"],
        "arch": "aarch64",
        "retry": True,
    }
