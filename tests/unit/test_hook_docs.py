"""Every hook pre-commit can run is documented, and points at an installed command.

docs/hooks.md documents each hook in full (its own section, its console script and
the configuration that enables it); README shows the configuration and links each
hook to its section. A hook has one name: its id names its console script and its
module; the scripts' earlier names stay as aliases.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).parents[2]
ALIASES = {
    "pyfn-check-size": "pyfn-oversized-files",
    "pyfn-check-secrets": "pyfn-no-credentials",
    "pyfn-check-wheels": "pyfn-native-wheels",
}


def _hooks() -> list[dict[str, str]]:
    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    hooks: list[dict[str, str]] = []
    for line in text.splitlines():
        match = re.match(r"^(- )?\s*(\w+): (.*)$", line)
        if match:
            if match.group(1):
                hooks.append({})
            hooks[-1][match.group(2)] = match.group(3).strip()
    return hooks


def test_every_hook_is_documented_in_the_hooks_page() -> None:
    page = (REPO / "docs" / "hooks.md").read_text()
    hooks = _hooks()
    assert hooks
    for hook in hooks:
        assert re.search(rf"^#+ `{re.escape(hook['id'])}`$", page, re.M), hook["id"]
        assert f"id: {hook['id']}" in page, hook["id"]
        assert re.search(rf"Console script:\s+`{re.escape(hook['entry'])}`", page), hook["entry"]


def test_every_hook_is_configured_and_linked_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for hook in _hooks():
        assert f"id: {hook['id']}" in readme, hook["id"]
        assert f"(docs/hooks.md#{hook['id']})" in readme, hook["id"]


def test_every_hook_entry_is_a_console_script() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for hook in _hooks():
        assert hook["language"] == "python"
        assert hook["entry"] in scripts, hook["entry"]


def _scripts() -> dict[str, str]:
    scripts: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "scripts"
    ]
    return scripts


def test_a_hooks_id_names_its_script_and_its_module() -> None:
    scripts = _scripts()
    for hook in _hooks():
        module = hook["id"].removeprefix("pyfn-").replace("-", "_")
        assert hook["entry"] == hook["id"]
        assert scripts[hook["id"]] == f"pyfn_action.hooks.{module}:main"
        assert (REPO / "pyfn_action" / "hooks" / f"{module}.py").is_file(), module


def test_the_scripts_earlier_names_run_the_same_hooks() -> None:
    scripts = _scripts()
    assert set(ALIASES.values()) == {hook["id"] for hook in _hooks()}
    for alias, name in ALIASES.items():
        assert scripts[alias] == scripts[name], alias
