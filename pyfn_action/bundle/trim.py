"""Trim the bundle with ignore rules: plan what each rule removes, then apply it.

Rules, in order (the last rule matching a file decides, as in gitignore):

1. built-in runtime rules (``data/trim-runtime.txt``, relative to ``pypy/``);
2. built-in site rules (``data/trim-site.txt``, relative to ``site/``);
3. shared libraries the runtime does not list in ``lib/PYPY_PORTABLE_DEPS.txt``;
4. the function's ``.gcloudignore``, meaning exactly what it means to gcloud: its
   rules (and those of a ``#!include:FILE``) are relative to the function's
   directory, so they apply to ``app/`` and only there, and are matched as
   gcloud matches them (a pattern is anchored by a leading ``/`` only; nothing
   inside an excluded directory can be re-included; lines gcloud cannot parse
   are skipped);
5. the function's ``.pyfnignore``: gitignore rules relative to the function's
   directory as well, except that a rule whose path starts with ``pypy/`` or
   ``site/`` applies to that tree of the bundle, so ``!pypy/lib/pypy3.11/lib2to3/``
   re-includes what a built-in rule trimmed.

``#!include:FILE`` works as in gcloud: FILE is a file beside the ignore file
(a name with ``/`` is refused), an included file's own includes are not
followed, and pyfn never reads a file that resolves outside the function's
directory, nor anything but a regular file. Files the bundle cannot run without
are protected: a rule that would remove one is refused, by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pathspec

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.gcloudignore import (
    Decision,
    TrimError,
    gcloud_decision,
    gcloud_glob,
    read_ignore,
)
from pyfn_action.sizes import format_size

log = logging.getLogger(__name__)

_BUNDLE_ROOTS = ("pypy/", "site/")
_GCLOUDIGNORE = ".gcloudignore"
_PYFNIGNORE = ".pyfnignore"


@dataclass(frozen=True)
class Rule:
    origin: str  # "built-in runtime rules", ".pyfnignore", ...
    line: int
    text: str  # as written
    pattern: str  # gitignore pattern over bundle paths ("" for a .gcloudignore rule)
    gcloud: bool = False  # matched as gcloud matches it, against the paths under app/

    @property
    def where(self) -> str:
        return f"{self.origin}:{self.line}"


@dataclass(frozen=True)
class Effect:
    rule: Rule
    files: int
    bytes: int


@dataclass(frozen=True)
class TrimPlan:
    kept: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    effects: tuple[Effect, ...]  # rules that remove something, in rule order
    kept_bytes: int
    removed_bytes: int


def _translate(pattern: str, prefix: str) -> str:
    """A gitignore pattern relative to ``prefix`` as one relative to the bundle root."""
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    if body.startswith("/") or "/" in body.rstrip("/"):
        translated = prefix + body.lstrip("/")
    else:
        translated = prefix + "**/" + body
    return ("!" if negate else "") + translated


def _user_pattern(pattern: str) -> str:
    """A ``.pyfnignore`` rule over bundle paths: ``pypy/…`` and ``site/…`` name the
    bundle's trees (anchored at the bundle's root); anything else is under ``app/``."""
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    if body.lstrip("/").startswith(_BUNDLE_ROOTS):
        return ("!" if negate else "") + "/" + body.lstrip("/")
    return _translate(pattern, "app/")


def _compile(rule: Rule) -> None:
    try:
        pathspec.PathSpec.from_lines("gitignore", [rule.text, rule.pattern])
    except Exception as exc:
        raise TrimError(
            f"{rule.where}: cannot use the rule {rule.text!r}",
            why=str(exc),
            fix="Write it in gitignore syntax (see `git help gitignore`)",
        ) from exc


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if line and not line.startswith("#"):
            yield number, line


def builtin_rules(tag: str) -> list[Rule]:
    """The packaged default rules, validated (a broken one is a packaging bug)."""
    rules = []
    for name, prefix, origin in (
        ("trim-runtime.txt", "pypy/", "built-in runtime rules"),
        ("trim-site.txt", "site/", "built-in site rules"),
    ):
        text = resources.files("pyfn_action").joinpath(f"data/{name}").read_text()
        for number, line in _lines(text):
            rule = Rule(origin, number, line, _translate(line.replace("{tag}", tag), prefix))
            _compile(rule)
            rules.append(rule)
    return rules


def portable_deps_rules(runtime_root: Path) -> list[Rule]:
    """Trim bundled shared libraries the runtime says it does not need."""
    listing = runtime_root / "lib" / "PYPY_PORTABLE_DEPS.txt"
    if not listing.is_file():
        return []
    needed = {line.strip() for line in listing.read_text().splitlines() if line.strip()}
    rules = []
    for lib in sorted(runtime_root.joinpath("lib").glob("*.so*")):
        if lib.name not in needed and not lib.name.startswith("libpypy"):
            text = f"/lib/{lib.name}"
            pattern = "pypy/lib/" + re.sub(r"([\[\]*?!])", r"\\\1", lib.name)
            rules.append(Rule("lib/PYPY_PORTABLE_DEPS.txt", 0, text, pattern))
    return rules


def user_rules(source: Path) -> list[Rule]:
    """Rules from ``.gcloudignore`` (gcloud's meaning, under ``app/``) then
    ``.pyfnignore`` in the function's directory."""
    rules = []
    for name in (_GCLOUDIGNORE, _PYFNIGNORE):
        path = source / name
        if not (path.is_file() or path.is_symlink()):
            continue
        for origin, number, line in read_ignore(path, source):
            if name == _GCLOUDIGNORE:
                if gcloud_glob(line) is None:
                    log.warning(
                        "%s:%d: %r is not a rule gcloud can use; it is skipped, as gcloud "
                        "skips it", origin, number, line,
                    )  # fmt: skip
                    continue
                rules.append(Rule(origin, number, line, "", gcloud=True))
                continue
            text = line.rstrip()
            rule = Rule(origin, number, text, _user_pattern(text))
            _compile(rule)
            rules.append(rule)
    return rules


def plan_trim(
    entries: Sequence[Entry], rules: Sequence[Rule], protected: Iterable[str]
) -> TrimPlan:
    """Decide, file by file, what the rules remove; refuse to remove protected files."""
    # Plain last-match-wins over gitignore patterns: unlike GitIgnoreSpec, a file
    # rule does not outrank a later directory rule, so rule order alone decides.
    # .gcloudignore rules are judged apart, as gcloud judges them, and then take
    # their place in that order.
    plain = [(i, r) for i, r in enumerate(rules) if not r.gcloud]
    gcloud = [(i, r.text) for i, r in enumerate(rules) if r.gcloud]
    memo: dict[tuple[str, bool], Decision | None] = {}
    spec = pathspec.PathSpec.from_lines("gitignore", [r.pattern for _, r in plain])
    guarded = set(protected)
    kept: list[Entry] = []
    removed: list[Entry] = []
    counts: dict[int, list[int]] = {}
    kept_bytes = 0
    for entry in entries:
        result = spec.check_file(entry.arcname)
        decision = None if result.index is None else (plain[result.index][0], bool(result.include))
        if gcloud and entry.arcname.startswith("app/"):
            judged = gcloud_decision(gcloud, entry.arcname.removeprefix("app/"), memo)
            if judged is not None and (decision is None or judged[0] > decision[0]):
                decision = judged
        if decision is None or not decision[1]:
            kept.append(entry)
            kept_bytes += entry.size()
            continue
        index = decision[0]
        rule = rules[index]
        if entry.arcname in guarded or _is_metadata(entry.arcname):
            raise TrimError(
                f"{rule.where}: the rule {rule.text!r} would remove {entry.arcname}",
                why="the bundle cannot run without it",
                fix=f"Narrow the rule, or add !{_unprefixed(entry.arcname)} after it",
            )
        removed.append(entry)
        slot = counts.setdefault(index, [0, 0])
        slot[0] += 1
        slot[1] += entry.size()
    effects = tuple(Effect(rules[i], n, size) for i, (n, size) in sorted(counts.items()))
    removed_bytes = sum(e.bytes for e in effects)
    return TrimPlan(tuple(kept), tuple(removed), effects, kept_bytes, removed_bytes)


def _is_metadata(arcname: str) -> bool:
    return bool(re.fullmatch(r"site/[^/]+\.dist-info/(METADATA|entry_points\.txt)", arcname))


def _unprefixed(arcname: str) -> str:
    return arcname.removeprefix("app/") if arcname.startswith("app/") else arcname


def protected_files(runtime_python: str, module: str) -> list[str]:
    """What the bundle cannot run without: the shim, the PyPy binary, the entry module."""
    return [
        "index.js",
        "package.json",
        "package-lock.json",
        "pyfn/manifest.json",
        "pyfn/worker.py",
        f"pypy/bin/pypy{runtime_python}",
        f"pypy/bin/libpypy{runtime_python}-c.so",
        f"app/{module}",
    ]


def plan_dict(plan: TrimPlan) -> dict[str, object]:
    """The plan as JSON: each rule's effect, and the totals."""
    return {
        "rules": [
            {"rule": e.rule.text, "source": e.rule.origin, "line": e.rule.line,
             "files": e.files, "bytes": e.bytes}
            for e in plan.effects
        ],
        "removed_files": len(plan.removed),
        "removed_bytes": plan.removed_bytes,
        "kept_files": len(plan.kept),
        "kept_bytes": plan.kept_bytes,
    }  # fmt: skip


def render_plan(plan: TrimPlan) -> str:
    """What each rule would remove, as an aligned table."""
    rows = [(e.rule.where, e.rule.text, str(e.files), format_size(e.bytes)) for e in plan.effects]
    rows.append(("total", "", str(len(plan.removed)), format_size(plan.removed_bytes)))
    header = ("where", "rule", "files", "size")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                   r[2].rjust(widths[2]), r[3].rjust(widths[3])]).rstrip()
        for r in table
    ]  # fmt: skip
    lines.append(
        f"\nwould keep {len(plan.kept)} files ({format_size(plan.kept_bytes)}); nothing was written"
    )
    return "\n".join(lines) + "\n"
