"""Configuration: one precedence, written once.

built-in defaults → ``pyfn.toml`` (or ``[tool.pyfn]`` in ``pyproject.toml``)
→ ``PYFN_*`` environment → command-line flags.

Every key has the same name in the file, ``PYFN_<KEY>`` in the environment and
``--<key>`` on the command line (underscores become dashes). Unknown keys in a
file are an error that suggests the closest known key.
"""

from __future__ import annotations

from pyfn_action.config.files import config_file, key_line, read_file_config
from pyfn_action.config.keys import (
    ARCHES,
    BENCH_KEYS,
    DEPLOY_KEYS,
    INGRESS,
    KEYS,
    RUNTIMES,
    SIGNATURES,
    STDIN_KINDS,
    STORAGE_EVENTS,
    Key,
    suggest,
)
from pyfn_action.config.layering import (
    apply_keys,
    env_config,
    resolve,
    resolve_bench,
    resolve_deploy,
    resolve_keys,
)
from pyfn_action.config.models import Budget, Config, DeploySettings, as_dict
from pyfn_action.config.values import (
    MAX_COUNT,
    MAX_MEMORY_MIB,
    MAX_SECONDS,
    MEMORY_UNITS,
)

__all__ = [
    "ARCHES",
    "BENCH_KEYS",
    "DEPLOY_KEYS",
    "INGRESS",
    "KEYS",
    "MAX_COUNT",
    "MAX_MEMORY_MIB",
    "MAX_SECONDS",
    "MEMORY_UNITS",
    "RUNTIMES",
    "SIGNATURES",
    "STDIN_KINDS",
    "STORAGE_EVENTS",
    "Budget",
    "Config",
    "DeploySettings",
    "Key",
    "apply_keys",
    "as_dict",
    "config_file",
    "env_config",
    "key_line",
    "read_file_config",
    "resolve",
    "resolve_bench",
    "resolve_deploy",
    "resolve_keys",
    "suggest",
]
