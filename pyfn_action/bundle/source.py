"""Check a function's source directory before anything is downloaded or built."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.config import Config
from pyfn_action.errors import SourceError


@dataclass(frozen=True)
class FunctionSource:
    root: Path
    module: Path  # main.py, or the script in script mode
    requirements: Path | None


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def check_source(config: Config, python: tuple[int, int]) -> FunctionSource:
    """Judge the source: entry module present, parses for the runtime's Python, entry defined."""
    root = config.source
    if config.signature == "script":
        assert config.script is not None  # guaranteed by config
        module = root / config.script
        if not module.resolve().is_relative_to(root.resolve()) or not module.is_file():
            raise SourceError(
                f"Script {config.script} not found in {root}",
                why="script mode runs this file for every request",
                fix='Create it, or set script = "..." to a file inside the function\'s directory',
            )
    else:
        module = root / "main.py"
        if not module.is_file():
            raise SourceError(
                f"No main.py in {root}",
                why="Cloud Functions loads the entry point from main.py",
                fix="Create main.py with your function, e.g. "
                "@functions_framework.http def hello(request): ...",
            )
    try:
        text = module.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(module), feature_version=python)
    except SyntaxError as exc:
        raise SourceError(
            f"{module}:{exc.lineno}: {exc.msg}",
            why=f"the file must be valid Python {python[0]}.{python[1]}, the runtime's version",
            fix="Fix the syntax at that line",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"Cannot read {module}", why=str(exc)) from exc
    if config.signature != "script":
        names = _defined_names(tree)
        if config.entry_point not in names:
            functions = sorted(
                n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
            raise SourceError(
                f"Entry point {config.entry_point!r} is not defined in {module}",
                why=f"functions defined there: {', '.join(functions) or 'none'}",
                fix="Set entry_point in pyfn.toml (or --entry-point) to one of them",
            )
    requirements = root / config.requirements
    if requirements.exists() and not requirements.is_file():
        raise SourceError(f"{requirements} is not a file")
    return FunctionSource(root, module, requirements if requirements.is_file() else None)
