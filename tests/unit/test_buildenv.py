"""What a build's processes see of the environment: the allow-list's names, never a
credential, in pip, the bytecode compiler and a PyPy's description of itself."""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from pathlib import Path

import pytest

from pyfn_action.buildenv import allow_list, build_environment, parse_allow_list
from pyfn_action.deps.pip_runner import host_interpreter, interpreter_for
from pyfn_action.runtime.interpreter import describe
from pyfn_action.runtime.pypy import Runtime

KEPT = {
    "programs, home and temporary files": (
        "PATH HOME TMPDIR TEMP TMP XDG_CONFIG_HOME XDG_CONFIG_DIRS"
    ),
    "locale and time": "LANG LANGUAGE LC_ALL LC_CTYPE LC_MESSAGES TZ SOURCE_DATE_EPOCH",
    "proxies, both cases": (
        "http_proxy HTTP_PROXY https_proxy HTTPS_PROXY no_proxy NO_PROXY all_proxy ALL_PROXY"
    ),
    "certificates": "SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE",
    "pip's settings for reaching an index": (
        "PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_NO_INDEX PIP_FIND_LINKS PIP_TRUSTED_HOST "
        "PIP_CERT PIP_CLIENT_CERT PIP_PROXY PIP_RETRIES PIP_TIMEOUT PIP_DEFAULT_TIMEOUT "
        "PIP_CONFIG_FILE PIP_KEYRING_PROVIDER NETRC"
    ),
    "the loader": "LD_LIBRARY_PATH",
}
KEPT_NAMES = [name for names in KEPT.values() for name in names.split()]
DROPPED = {
    "the job's token, as the Action's input and as the runner's own variable": (
        "INPUT_GITHUB-TOKEN INPUT_GITHUB_TOKEN GITHUB_TOKEN GH_TOKEN"
    ),
    "the Action's other inputs, whatever they hold": (
        "INPUT_SECRETS INPUT_BUCKET INPUT_ENV-VARS INPUT_ARGS"
    ),
    "OIDC and the runner's services: with these a process can mint a token": (
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN ACTIONS_ID_TOKEN_REQUEST_URL ACTIONS_RUNTIME_TOKEN "
        "ACTIONS_RUNTIME_URL ACTIONS_CACHE_URL ACTIONS_RESULTS_URL"
    ),
    "Google credentials, the files that hold them, and Google settings": (
        "GOOGLE_APPLICATION_CREDENTIALS GOOGLE_GHA_CREDS_PATH GOOGLE_CLOUD_PROJECT "
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE CLOUDSDK_AUTH_ACCESS_TOKEN CLOUDSDK_CONFIG "
        "GCLOUD_PROJECT STORAGE_EMULATOR_HOST"
    ),
    "other clouds and registries": (
        "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AZURE_CLIENT_SECRET "
        "NPM_TOKEN NODE_AUTH_TOKEN TWINE_PASSWORD UV_INDEX_URL"
    ),
    "the runner's and pyfn's own settings, of no use to a build": (
        "GITHUB_EVENT_PATH GITHUB_OUTPUT GITHUB_ENV RUNNER_TEMP CI PYFN_CACHE_DIR"
    ),
    "what changes how Python or the loader run pip, or where pip installs": (
        "PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE LD_PRELOAD "
        "PIP_TARGET PIP_PREFIX PIP_USER PIP_REQUIRE_VIRTUALENV PIP_CACHE_DIR"
    ),
    "near misses: only the exact names count": (
        "PATH_EXTRA HOMEBREW_GITHUB_API_TOKEN LC lc_all Path PIP_INDEX_URL_TOKEN"
    ),
}
DROPPED_NAMES = [name for names in DROPPED.values() for name in names.split()]
SECRETS = {name: f"sentinel-{n}" for n, name in enumerate(DROPPED_NAMES)}


@pytest.mark.parametrize("name", KEPT_NAMES)
def test_what_a_build_needs_is_kept(name: str) -> None:
    assert allow_list().keeps(name)
    assert build_environment({name: "value", **SECRETS}) == {name: "value"}


@pytest.mark.parametrize("name", DROPPED_NAMES)
def test_credentials_and_everything_unnamed_are_dropped(name: str) -> None:
    assert not allow_list().keeps(name)
    assert build_environment({name: "s3cr3t", "PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


def test_values_pass_unchanged_index_credentials_included() -> None:
    env = {"PIP_INDEX_URL": "https://user:pa55@pypi.example/simple", "LC_ALL": "C.UTF-8"}
    assert build_environment(env) == env
    assert build_environment({}) == {}


@pytest.mark.parametrize("line", ["*", "_*", "INPUT*", "PIP-INDEX-URL", "PATH HOME", "$HOME"])
def test_the_packaged_list_is_checked_on_load(line: str) -> None:
    with pytest.raises(RuntimeError, match="line 2"):
        parse_allow_list(f"PATH\n{line}\n")


def test_only_the_locale_is_kept_by_prefix() -> None:
    """A prefix keeps names nobody has read: only the locale's ``LC_`` is that safe."""
    assert allow_list().prefixes == ("LC_",)


def test_a_list_without_path_is_refused() -> None:
    with pytest.raises(RuntimeError, match="PATH"):
        parse_allow_list("# nothing\nHOME\n")


def _runtime(tmp_path: Path) -> Runtime:
    """A runtime this machine can run, with the pip wheel its ensurepip bundles."""
    root = tmp_path / "rt"
    bundled = root / "lib" / "pypy3.9" / "ensurepip" / "_bundled"
    bundled.mkdir(parents=True)
    with zipfile.ZipFile(bundled / "pip-24.0-py3-none-any.whl", "w") as zf:
        zf.writestr("pip/__main__.py", "")
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    return Runtime(root, "3.9", "7.3.11", arch or platform.machine().lower(), "73", "0" * 64, "t")


@pytest.mark.skipif(sys.platform != "linux", reason="the target PyPy runs on Linux only")
def test_the_target_pypy_runs_pip_and_the_compiler_without_credentials(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/home/ci", "LD_LIBRARY_PATH": "/opt/lib", **SECRETS}
    interpreter = interpreter_for(runtime, runtime.target((2, 17)), tmp_path / "cache", env)
    assert interpreter.is_target
    pip = tmp_path / "cache" / "pip-for-pypy"
    assert dict(interpreter.env) == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/ci",
        "LD_LIBRARY_PATH": f"{runtime.root / 'lib'}:/opt/lib",
        "PYTHONPATH": str(next(p for p in pip.iterdir() if p.is_dir())),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_this_pythons_pip_runs_without_credentials() -> None:
    env = {"PATH": "/usr/bin", "PIP_INDEX_URL": "https://pypi.example/simple", **SECRETS}
    interpreter = host_interpreter(env)
    assert not interpreter.is_target
    assert dict(interpreter.env) == {"PATH": "/usr/bin", "PIP_INDEX_URL": env["PIP_INDEX_URL"]}


def test_a_pypy_describes_itself_without_credentials(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    fake = tmp_path / "pypy3"
    answer = {
        "implementation": "pypy",
        "python": "3.9",
        "pypy": "7.3.11",
        "executable": str(fake),
        "stdlib": str(tmp_path),
        "include": None,
        "ext_suffixes": [".pypy39-pp73-x86_64-linux-gnu.so"],
    }
    fake.write_text(
        f"#!{sys.executable}\nimport json, os\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        f"print({json.dumps(answer)!r})\n"
    )
    fake.chmod(0o755)
    found = describe(fake, {"PATH": "/usr/bin", "LANG": "C.UTF-8", **SECRETS})
    assert found.pypy == "7.3.11"
    environment = json.loads(seen.read_text())
    assert not set(environment) & set(SECRETS)
    assert environment["PATH"] == "/usr/bin" and environment["LANG"] == "C.UTF-8"
