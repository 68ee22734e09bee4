"""A build script that writes out the environment it runs in, and the credentials a
job that deploys would hold: what the build tests plant, and how they judge it."""

from __future__ import annotations

import json
from pathlib import Path

SECRETS = {
    "INPUT_GITHUB-TOKEN": "ghs_sentinel-input-token",
    "GITHUB_TOKEN": "ghs_sentinel-github-token",
    "INPUT_SECRETS": "sentinel-input-secrets",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "sentinel-oidc-request-token",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://sentinel-oidc.invalid/token",
    "ACTIONS_RUNTIME_TOKEN": "sentinel-runtime-token",
    "ACTIONS_CACHE_URL": "https://sentinel-cache.invalid/",
    "GOOGLE_GHA_CREDS_PATH": "/sentinel/gha-creds-1.json",
    "CLOUDSDK_AUTH_ACCESS_TOKEN": "sentinel-gcloud-access-token",
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret",
}


def envspy(directory: Path, seen: Path) -> dict[str, str]:
    """A project whose build script appends the environment it runs in to ``seen``."""
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n',
        "setup.py": "import json, os, sys\nfrom setuptools import setup\n"
        f"with open({str(seen)!r}, 'a') as f:\n"
        "    seen = {'python': sys.implementation.name, 'environ': dict(os.environ)}\n"
        "    f.write(json.dumps(seen) + '\\n')\n"
        "setup(name='envspy', version='1.0', py_modules=['envspy'])\n",
        "envspy.py": "SPY = True\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: envspy\nVersion: 1.0\n",
    }
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return files


def job_credentials(tmp_path: Path) -> dict[str, str]:
    """The variables a job that deploys would hold; the key file lies outside the source."""
    key = tmp_path / "gha-creds-0123.json"
    key.write_text('{"type": "external_account", "audience": "sentinel-audience"}')
    return {**SECRETS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}


def judge(seen: Path, credentials: dict[str, str], kept: dict[str, str]) -> set[str]:
    """Every run of the build script saw what it needs and not one credential; the
    Pythons it ran in."""
    runs = [json.loads(line) for line in seen.read_text().splitlines()]
    assert runs, "the build script never ran"
    for run in runs:
        environment = run["environ"]
        leaked = sorted(set(environment) & set(credentials))
        assert not leaked, f"the build script saw {leaked}"
        text = json.dumps(environment)
        assert not [v for v in credentials.values() if v in text]
        assert environment.get("PATH") and environment.get("HOME")
        for name, value in kept.items():
            assert environment.get(name) == value, name
    return {run["python"] for run in runs}
