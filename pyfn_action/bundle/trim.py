"""Trim the bundle with ignore rules: plan what each rule removes, then apply it.

Rules, in order:

1. built-in runtime rules (``data/trim-runtime.txt``, relative to ``pypy/``);
2. built-in site rules (``data/trim-site.txt``, relative to ``site/``);
3. shared libraries the runtime does not list in ``lib/PYPY_PORTABLE_DEPS.txt``;
4. the function's ``.gcloudignore`` or, without one, gcloud's default for its
   directory: gcloud's rules for the function's own files (``app/``), matched as
   gcloud matches them;
5. the function's ``.pyfnignore``: gitignore rules relative to the function's
   directory, matched as git matches them, except that a rule whose path starts
   with ``pypy/`` or ``site/`` applies to that tree of the bundle.

Every rule and every file are judged as git judges a path against one ignore file
holding all these rules in order: each directory above a file first, from the
top (the last rule matching a directory decides it; an excluded directory takes
everything inside with it, and nothing inside comes back), then the file itself
(the last rule matching it decides). A line a rule file cannot use is skipped
with a warning naming it. Files the bundle cannot run without are protected: a
rule that would remove one is refused, by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.gcloudignore import (
    GcloudPattern,
    default_rules,
    gcloud_pattern,
    read_ignore,
)
from pyfn_action.bundle.gitignore import GitPattern, compile_pattern, trim_trailing_spaces
from pyfn_action.bundle.shimfiles import shim_python_names, shim_script_names
from pyfn_action.errors import TrimError
from pyfn_action.sizes import format_size

log = logging.getLogger(__name__)

_BUNDLE_ROOTS = ("pypy/", "site/")
_GCLOUDIGNORE = ".gcloudignore"
_PYFNIGNORE = ".pyfnignore"
_APP = "app/"


@dataclass(frozen=True)
class Rule:
    origin: str  # "built-in runtime rules", ".pyfnignore", "gcloud's default", ...
    line: int
    text: str  # as written
    matcher: GitPattern | GcloudPattern = field(repr=False, compare=False)

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


def _git_rule(origin: str, number: int, text: str, pattern: str, base: str) -> Rule | None:
    matcher, why = compile_pattern(pattern, base)
    if matcher is None:
        log.warning(
            "%s:%d: %r is not a rule git can use (%s); it is skipped, as git skips it",
            origin,
            number,
            text,
            why,
        )
        return None
    return Rule(origin=origin, line=number, text=text, matcher=matcher)


def _builtin_lines(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            yield number, line


def builtin_rules(tag: str) -> list[Rule]:
    """The packaged default rules, validated (a broken one is a packaging bug)."""
    rules = []
    for name, base, origin in (
        ("trim-runtime.txt", "pypy/", "built-in runtime rules"),
        ("trim-site.txt", "site/", "built-in site rules"),
    ):
        text = resources.files("pyfn_action").joinpath(f"data/{name}").read_text()
        for number, line in _builtin_lines(text):
            matcher, why = compile_pattern(line.replace("{tag}", tag), base)
            if matcher is None:
                raise TrimError(f"{origin}:{number}: cannot use the rule {line!r}", why=why)
            rules.append(Rule(origin=origin, line=number, text=line, matcher=matcher))
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
            pattern = "/lib/" + re.sub(r"([\[\]*?\\])", r"\\\1", lib.name)
            rule = _git_rule("lib/PYPY_PORTABLE_DEPS.txt", 0, f"/lib/{lib.name}", pattern, "pypy/")
            rules += [rule] if rule else []
    return rules


def _pyfnignore_rule(origin: str, number: int, line: str) -> Rule | None:
    """A ``.pyfnignore`` line: ``pypy/…`` and ``site/…`` name the bundle's trees
    (anchored at the bundle's root); anything else is relative to ``app/``."""
    text = trim_trailing_spaces(line)
    negate = text.startswith("!")
    body = text[1:] if negate else text
    if body.lstrip("/").startswith(_BUNDLE_ROOTS):
        pattern = ("!" if negate else "") + "/" + body.lstrip("/")
        return _git_rule(origin, number, line, pattern, "")
    return _git_rule(origin, number, line, line, _APP)


def _gcloud_rule(origin: str, number: int, line: str) -> Rule | None:
    matcher = gcloud_pattern(line, _APP)
    if matcher is None:
        log.warning(
            "%s:%d: %r is not a rule gcloud can use; it is skipped, as gcloud skips it",
            origin,
            number,
            line,
        )
        return None
    return Rule(origin=origin, line=number, text=line, matcher=matcher)


def _present(path: Path) -> bool:
    return path.is_file() or path.is_symlink()


def gcloud_default(source: Path) -> str | None:
    """Which default stands in for a missing ``.gcloudignore``, as a sentence; ``None``
    when the function has its own."""
    if _present(source / _GCLOUDIGNORE):
        return None
    return default_rules(source)[1]


def user_rules(source: Path) -> list[Rule]:
    """Rules from ``.gcloudignore`` (or gcloud's default without one; gcloud's meaning,
    under ``app/``) then ``.pyfnignore`` (git's meaning) in the function's directory."""
    gcloudignore = source / _GCLOUDIGNORE
    if _present(gcloudignore):
        lines = read_ignore(gcloudignore, source)
    else:
        lines = default_rules(source)[0]
    rules = [_gcloud_rule(*line) for line in lines]
    pyfnignore = source / _PYFNIGNORE
    if _present(pyfnignore):
        rules += [_pyfnignore_rule(*line) for line in read_ignore(pyfnignore, source, git=True)]
    return [rule for rule in rules if rule is not None]


class _Judge:
    """Which rule leaves a path out, as git decides: the directories above it first,
    from the top, then the path itself; the last rule matching a path decides it."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = rules
        self._dirs: dict[str, int | None] = {}

    def _last(self, path: str, is_dir: bool) -> int | None:
        raw = path.encode("utf-8", "surrogateescape")
        for index in range(len(self._rules) - 1, -1, -1):
            if self._rules[index].matcher.matches(path, raw, is_dir):
                return index
        return None

    def _excluding(self, index: int | None) -> int | None:
        return None if index is None or self._rules[index].matcher.negated else index

    def _directory(self, path: str) -> int | None:
        if path not in self._dirs:
            parent = path.rpartition("/")[0]
            above = self._directory(parent) if parent else None
            if above is None:
                above = self._excluding(self._last(path, True))
            self._dirs[path] = above
        return self._dirs[path]

    def leaving_out(self, path: str, *, is_dir: bool = False) -> int | None:
        """The index of the rule that leaves ``path`` out, or ``None`` if it stays."""
        parent = path.rpartition("/")[0]
        above = self._directory(parent) if parent else None
        return above if above is not None else self._excluding(self._last(path, is_dir))


def left_out(rules: Sequence[Rule], paths: Iterable[tuple[str, bool]]) -> set[str]:
    """Which of these bundle paths (path, whether it is a directory) the rules leave out."""
    judge = _Judge(rules)
    return {path for path, is_dir in paths if judge.leaving_out(path, is_dir=is_dir) is not None}


def plan_trim(
    entries: Sequence[Entry], rules: Sequence[Rule], protected: Iterable[str]
) -> TrimPlan:
    """Decide, file by file, what the rules remove; refuse to remove protected files."""
    judge = _Judge(rules)
    guarded = set(protected)
    kept: list[Entry] = []
    removed: list[Entry] = []
    counts: dict[int, list[int]] = {}
    kept_bytes = 0
    for entry in entries:
        index = judge.leaving_out(entry.arcname)
        if index is None:
            kept.append(entry)
            kept_bytes += entry.size()
            continue
        rule = rules[index]
        if entry.arcname in guarded or _is_metadata(entry.arcname):
            raise TrimError(
                f"{rule.where}: the rule {rule.text!r} would remove {entry.arcname}",
                why="the bundle cannot run without it",
                fix=_keep_fix(entry.arcname),
            )
        removed.append(entry)
        slot = counts.setdefault(index, [0, 0])
        slot[0] += 1
        slot[1] += entry.size()
    effects = tuple(Effect(rules[i], n, size) for i, (n, size) in sorted(counts.items()))
    removed_bytes = sum(e.bytes for e in effects)
    return TrimPlan(
        kept=tuple(kept),
        removed=tuple(removed),
        effects=effects,
        kept_bytes=kept_bytes,
        removed_bytes=removed_bytes,
    )


def _is_metadata(arcname: str) -> bool:
    return bool(re.fullmatch(r"site/[^/]+\.dist-info/(METADATA|entry_points\.txt)", arcname))


def _keep_fix(arcname: str) -> str:
    shown = arcname.removeprefix(_APP)
    parent = shown.rpartition("/")[0]
    fix = f"Narrow the rule, or add !{shown} after it"
    if parent:
        fix += f" (and !{parent}/ if a rule leaves out its directory)"
    return fix


def protected_files(runtime_python: str, module: str) -> list[str]:
    """What the bundle cannot run without: the shim, the PyPy binary, the entry module."""
    return [
        *shim_script_names(),
        "package.json",
        "package-lock.json",
        "pyfn/manifest.json",
        *shim_python_names(),
        f"pypy/bin/pypy{runtime_python}",
        f"pypy/bin/libpypy{runtime_python}-c.so",
        f"app/{module}",
    ]


def effect_dict(effect: Effect) -> dict[str, object]:
    """One rule's effect as JSON (``--dry-run --json`` and ``report.json``'s ``trim``)."""
    rule = effect.rule
    return {
        "rule": rule.text,
        "source": rule.origin,
        "line": rule.line,
        "files": effect.files,
        "bytes": effect.bytes,
    }


def plan_dict(plan: TrimPlan) -> dict[str, object]:
    """The plan as JSON: each rule's effect, and the totals."""
    return {
        "rules": [effect_dict(e) for e in plan.effects],
        "removed_files": len(plan.removed),
        "removed_bytes": plan.removed_bytes,
        "kept_files": len(plan.kept),
        "kept_bytes": plan.kept_bytes,
    }


def render_plan(plan: TrimPlan) -> str:
    """What each rule would remove, as an aligned table."""
    rows = [(e.rule.where, e.rule.text, str(e.files), format_size(e.bytes)) for e in plan.effects]
    rows.append(("total", "", str(len(plan.removed)), format_size(plan.removed_bytes)))
    header = ("where", "rule", "files", "size")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [
        "  ".join(
            [
                r[0].ljust(widths[0]),
                r[1].ljust(widths[1]),
                r[2].rjust(widths[2]),
                r[3].rjust(widths[3]),
            ]
        ).rstrip()
        for r in table
    ]
    lines.append(
        f"\nwould keep {len(plan.kept)} files ({format_size(plan.kept_bytes)}); nothing was written"
    )
    return "\n".join(lines) + "\n"
