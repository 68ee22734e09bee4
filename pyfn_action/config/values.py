"""The value parsers behind every configuration key.

Each takes a value as TOML, an environment variable or a command-line flag gives it,
and returns it parsed, or raises ValueError with a human reason. Each also takes its own
result unchanged, so settings parsed once (an adapter judging its inputs) can be
layered again as flags.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pyfn_action.config.models import Budget
from pyfn_action.sizes import parse_size

# --- a build's values ----------------------------------------------------------


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    if any(not c.isprintable() for c in value.strip()):
        raise ValueError(f"{value!r} holds a control character")
    return value.strip()


def _number(value: Any, what: str) -> float:
    """A finite number from a TOML number or a string; never a boolean, inf or nan."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not {what}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not {what}") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value)
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _gen(value: Any) -> int:
    text = str(value).strip()
    if text not in ("1", "2"):
        raise ValueError(f"{value!r} is not 1 or 2")
    return int(text)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false, 1/0)")


def _in_source(value: Any) -> str:
    """A file of the function's directory, named relative to it: never absolute, never ``..``."""
    text = _str(value)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if text.startswith(("/", "\\", "~")) or (parts and ":" in parts[0]):
        raise ValueError(f"{text!r} is not a path relative to the function's directory")
    if ".." in parts:
        raise ValueError(f"{text!r} leads out of the function's directory")
    return text


def _path(value: Any) -> Path:
    return value if isinstance(value, Path) else Path(_str(value)).expanduser()


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def _sha256(value: Any) -> str:
    text = _str(value).lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{value!r} is not a SHA-256 (64 hex digits)")
    return text


def _pypy_version(value: Any) -> str:
    text = _str(value)
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{value!r} is not a PyPy release such as 7.3.19")
    return text


def _identifier(value: Any) -> str:
    text = _str(value)
    if not text.isidentifier():
        raise ValueError(f"{text!r} is not a Python identifier")
    return text


def _budget(value: Any) -> Budget:
    if isinstance(value, Budget):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"compressed", "uncompressed"}
        if unknown:
            raise ValueError(
                f"unknown budget key(s) {', '.join(sorted(unknown))}; "
                "use compressed and uncompressed"
            )
        return Budget(
            compressed=_opt_size(value.get("compressed")),
            uncompressed=_opt_size(value.get("uncompressed")),
        )
    return Budget(compressed=parse_size(value))


def _opt_size(value: Any) -> int | None:
    return None if value is None else parse_size(value)


# --- the deploy's values: read from the same file and environment, never bundled ---


MEMORY_UNITS = {
    "": 1,
    "mi": 1,
    "mib": 1,
    "m": 1,
    "mb": 1,
    "gi": 1024,
    "gib": 1024,
    "g": 1024,
    "gb": 1024,
}


MAX_MEMORY_MIB = 32768  # the largest instance either generation offers


def _memory(value: Any) -> int:
    """``512Mi``, ``512MB``, ``1Gi``, ``2G`` or a number of MiB → MiB."""
    shape = "a memory size such as 256Mi, 512MB or 1Gi"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not {shape}")
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if unit not in MEMORY_UNITS or not number:
        raise ValueError(f"{value!r} is not {shape}")
    mib = _number(number, shape) * MEMORY_UNITS[unit]
    if not 128 <= mib <= MAX_MEMORY_MIB or mib != int(mib):
        raise ValueError(
            f"{value!r} is below the 128 MiB minimum, above the 32 GiB maximum, or not a whole MiB"
        )
    return int(mib)


MAX_SECONDS = 86400  # a day: longer than any wait or timeout the platform has


def _seconds(value: Any) -> float:
    """``600``, ``90s``, ``10m``, ``1h`` → seconds (more than 0, at most a day)."""
    shape = "a duration such as 600, 90s or 10m"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not {shape}")
    text = str(value).strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    number = text[:-1] if scale else text
    seconds = _number(number, shape) * (scale or 1)
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{value!r} is not a duration of more than 0 s and at most a day")
    return seconds


def _whole_seconds(value: Any) -> int:
    seconds = _seconds(value)
    if seconds != int(seconds):
        raise ValueError(f"{value!r} is not a whole number of seconds")
    return int(seconds)


MAX_COUNT = 2**31 - 1  # the API's int32 fields


def _count(value: Any) -> int:
    text = str(value).strip()
    whole = not isinstance(value, bool) and isinstance(value, (int, str))
    if not (whole and text.isascii() and text.isdigit() and int(text) <= MAX_COUNT):
        raise ValueError(f"{value!r} is not a whole number from 0 to {MAX_COUNT}")
    return int(text)


def _cpu(value: Any) -> str:
    """vCPUs: a TOML number or a string such as ``"0.583"``, kept as text."""
    number = _number(value, "a number of vCPUs such as 0.583, 1 or 2")
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive number of vCPUs")
    return str(value).strip() if isinstance(value, str) else f"{number:g}"


def _speedup(value: Any) -> float:
    """A ratio against the native runtime: ``2`` (twice as fast), ``0.8`` (a fifth slower
    allowed); a trailing ``x`` or ``×`` is allowed."""
    text = str(value).strip().rstrip("x×") if isinstance(value, str) else value
    number = _number(text, "a ratio such as 2 or 0.8")
    if not 0 < number <= 1000 or number != number:
        raise ValueError(f"{value!r} is not a ratio between 0 and 1000")
    return float(number)


def _prefix(value: Any) -> str:
    """An object-name prefix in the bucket: ``pyfn`` or ``deploys/team-a``."""
    text = _str(value).strip("/") if value != "" else ""
    parts = text.split("/") if text else []
    if any(part in ("", ".", "..") for part in parts) or len(text) > 512:
        raise ValueError(f"{value!r} is not an object prefix such as pyfn or deploys/team-a")
    return text


# gcloud's escape for lists whose items hold commas: ``^;^A=1,2;B=3`` is split at ``;``.
_DELIMITER = re.compile(r"\^([^^]+)\^")


def _split_items(text: str) -> list[str]:
    """``KEY=VALUE,KEY=VALUE``, or the same with another delimiter chosen gcloud's way."""
    chosen = _DELIMITER.match(text)
    if chosen:
        return text[chosen.end() :].split(chosen.group(1))
    return text.split(",")


def _table(value: Any) -> tuple[tuple[str, str], ...]:
    """A TOML table, or ``KEY=VALUE,KEY=VALUE`` text (repeatable on the command line;
    ``^;^KEY=VALUE;KEY=VALUE`` when values hold commas)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        pairs = list(value)  # already parsed
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise ValueError(f"the value of {k!r} must be a string, got {v!r}")
            pairs.append((str(k), str(v)))
    else:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"expected KEY=VALUE[,KEY=VALUE…] or a table, got {value!r}")
        for item in items:
            for part in filter(None, (p.strip() for p in _split_items(item.strip()))):
                k, sep, v = part.partition("=")
                if not sep or not k.strip():
                    raise ValueError(f"{part!r} is not KEY=VALUE")
                pairs.append((k.strip(), v))
    seen: dict[str, str] = {}
    for k, v in pairs:
        seen[k] = v  # the last one given wins, as with repeated flags
    return tuple(sorted(seen.items()))


def _node_runtime(value: Any) -> str:
    text = _str(value)
    if not (text.startswith("nodejs") and text[6:].isdigit()):
        raise ValueError(f"{text!r} is not a Cloud Functions Node.js runtime such as nodejs22")
    return text


# The Node.js Functions Framework a bundle declares: pinned exactly, or a mirror of it
# named as an npm alias. Ranges are refused: what is deployed must be what was tested.
NODE_FRAMEWORK_PACKAGE = "@google-cloud/functions-framework"
_SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"
_NPM_ALIAS = re.compile(rf"^npm:((?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)@({_SEMVER})$")


def node_framework_parts(spec: str) -> tuple[str, str]:
    """(package, exact version) of a framework declaration; ``ValueError`` if not pinned."""
    if re.fullmatch(_SEMVER, spec):
        return NODE_FRAMEWORK_PACKAGE, spec
    alias = _NPM_ALIAS.match(spec)
    if alias:
        return alias.group(1), alias.group(2)
    raise ValueError(
        f"{spec!r} is not an exact version (such as 5.0.5) or an npm alias of one "
        "(such as npm:@corp/functions-framework@5.0.5)"
    )


def _node_framework(value: Any) -> str:
    text = _str(value)
    node_framework_parts(text)
    return text
