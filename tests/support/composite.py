"""Run a composite action's steps locally, the way the GitHub runner does.

``run_composite()`` reads ``action.yml``, fills in the inputs (defaults may be expressions
such as ``${{ github.token }}``) and runs ``runs.steps`` in order, so a test exercises the
action's own glue (install step, ``env:`` mapping, outputs) and not only the program it
ends up calling. It supports this subset of the runner, and raises ``CompositeError`` on
anything else rather than guess:

* Expressions ``${{ ... }}`` in a step's ``env:``, ``with:``, ``if:``,
  ``working-directory`` and ``continue-on-error``, in input defaults and in
  ``outputs.*.value``. An ``if:`` without ``${{ }}`` is an expression as a whole; without a
  status function it means ``success() && (...)``. Contexts: ``inputs``, ``github``,
  ``env`` (the base env plus ``GITHUB_ENV``), ``steps`` (``outputs``, ``outcome``,
  ``conclusion``) and ``runner`` (``os``, ``arch``, ``temp``); names may hold hyphens and
  match case-insensitively; ``a.b`` and ``a['b']``. Literals: ``'str'`` (``''`` is a quote),
  numbers, ``true``, ``false``, ``null``. Operators ``! < <= > >= == != && ||`` and
  parentheses, with GitHub's loose typing: strings compare case-insensitively, mixed types
  compare as numbers, a missing property is ``null`` (rendered as ``''``), ``&&``/``||``
  yield an operand. Functions: ``success() always() failure() cancelled() contains()
  startsWith() endsWith() format() join() toJSON() fromJSON()``.
* A ``run:`` step (``shell: bash`` only) runs as ``bash --noprofile --norc -eo pipefail
  FILE`` in ``workdir`` or its ``working-directory``. A ``run:`` text holding ``${{`` is
  script injection: the action is refused before any step runs.
* Each step's environment, lowest layer first: the caller's ``env``; ``CI``,
  ``GITHUB_ACTIONS``, ``RUNNER_OS`` and ``GITHUB_<NAME>`` for the scalar ``github`` fields
  the runner exports (``event_name``, ``event_path``, ``repository``, ...; never
  ``token``); what earlier steps wrote to ``GITHUB_ENV``; the step's ``env:``; then the
  runner's own ``GITHUB_ACTION_PATH``, ``GITHUB_WORKSPACE``, ``RUNNER_TEMP`` and fresh
  ``GITHUB_OUTPUT``/``GITHUB_ENV``/``GITHUB_PATH``/``GITHUB_STEP_SUMMARY`` files. Directories
  from ``GITHUB_PATH`` go in front of ``PATH``, latest first. ``GITHUB_OUTPUT`` and
  ``GITHUB_ENV`` take ``name=value`` and ``name<<DELIM`` ... ``DELIM`` lines, parsed as the
  runner's ``EnvFileKeyValuePairs`` does; a malformed file fails the step. Each step's
  summary file is appended to ``CompositeRun.summary``.
* A ``uses:`` step calls the stand-in registered under its reference without ``@version``
  (``"actions/cache"``) with a ``StepCall``; the mapping it returns becomes the step's
  outputs (over anything it wrote to ``GITHUB_OUTPUT``), and what it raises propagates.
  No stand-in: ``CompositeError``.
* A failed step (non-zero exit) fails the run; later steps run only if their ``if:`` asks
  for ``failure()`` or ``always()``, unless the step has ``continue-on-error: true``.

Stricter than the runner: an input the action does not declare raises (the runner warns),
and so does a file-command line with an empty name (the runner lets it through).
Not supported: other shells, ``hashFiles()``, object filters (``a.*.b``), other contexts
(``secrets``, ``matrix``, ``job`` ...), expressions in ``name:``. Pass ``temp_dir`` (e.g.
under ``tmp_path``) to keep ``RUNNER_TEMP`` and the step files where pytest cleans up.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class CompositeError(Exception):
    """The action does something the harness refuses or does not support."""


@dataclass(frozen=True)
class StepCall:
    """What a ``uses:`` stand-in receives."""

    id: str | None
    name: str
    uses: str  # the full reference, e.g. "actions/cache@v4"
    with_: dict[str, str]  # the evaluated `with:` mapping
    env: dict[str, str]  # the environment the action would have run with


@dataclass
class StepResult:
    """One step of the run; ``env`` is exactly the environment it ran with."""

    index: int
    id: str | None
    name: str
    uses: str | None  # the reference of a `uses:` step; None for a `run:` step
    skipped: bool
    exit_code: int | None = None  # None when skipped; 0 for a `uses:` step
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    with_: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # a GITHUB_OUTPUT/GITHUB_ENV file the runner would reject
    continue_on_error: bool = False

    @property
    def outcome(self) -> str:
        if self.skipped:
            return "skipped"
        return "failure" if self.exit_code != 0 or self.error is not None else "success"


@dataclass
class CompositeRun:
    steps: list[StepResult]
    outputs: dict[str, str]  # the action's evaluated `outputs`
    summary: str  # every step's GITHUB_STEP_SUMMARY, in order
    exit_code: int  # 0, else the first failed step's exit code (1 for a file error)
    temp_dir: Path

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def step(self, step_id: str) -> StepResult:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"no step {step_id!r}; ids: {[s.id for s in self.steps]}")


Standin = Callable[[StepCall], Mapping[str, str]]

_STEP_KEYS = {"id", "name", "if", "env", "continue-on-error"}
_RUN_KEYS = _STEP_KEYS | {"run", "shell", "working-directory"}
_USES_KEYS = _STEP_KEYS | {"uses", "with"}
# github context fields the runner exports as GITHUB_<NAME>
_GITHUB_ENV = (  # noqa: SIM905 (a word list reads better than 30 quoted strings)
    "action action_ref action_repository actor actor_id api_url base_ref event_name event_path "
    "graphql_url head_ref job ref ref_name ref_protected ref_type repository repository_id "
    "repository_owner repository_owner_id retention_days run_attempt run_id run_number "
    "server_url sha triggering_actor workflow workflow_ref workflow_sha"
).split()


def run_composite(
    action_dir: Path,
    *,
    inputs: Mapping[str, Any],
    github: Mapping[str, Any],
    env: Mapping[str, str],
    uses: Mapping[str, Standin],
    workdir: Path,
    timeout: float = 600,
    temp_dir: Path | None = None,
    runner_os: str | None = None,
) -> CompositeRun:
    """Run ``action_dir/action.yml``'s steps; ``timeout`` (seconds) bounds the whole run.
    ``runner_os`` plays another runner (``Windows``, ``macOS``) in ``runner.os`` and
    ``RUNNER_OS``; the steps still run here."""
    action_dir, workdir = Path(action_dir).resolve(), Path(workdir).resolve()
    meta = load_action(action_dir)
    deadline = time.monotonic() + timeout
    temp = Path(tempfile.mkdtemp(prefix="composite-")) if temp_dir is None else Path(temp_dir)
    runner_temp, files = temp / "runner-temp", temp / "files"
    runner_temp.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)

    github_ctx = {"action_path": str(action_dir), "workspace": str(workdir), **github}
    runner_os = runner_os or {"Darwin": "macOS"}.get(platform.system(), platform.system())
    arch = {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}
    runner_ctx = {
        "os": runner_os,
        "arch": arch.get(platform.machine().lower(), platform.machine()),
        "temp": str(runner_temp),
    }
    env_ctx: dict[str, str] = dict(env)
    ctx: dict[str, Any] = {"github": github_ctx, "runner": runner_ctx, "env": env_ctx}
    ctx["inputs"] = _inputs(meta.get("inputs") or {}, inputs, Evaluator(dict(ctx)))
    ctx["steps"] = steps_ctx = {}
    ev = Evaluator(ctx)
    defaults = {"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": runner_os}
    for key in _GITHUB_ENV:
        if isinstance(github_ctx.get(key), (str, int, float, bool)):
            defaults[f"GITHUB_{key.upper()}"] = to_string(github_ctx[key])
    set_env: dict[str, str] = {}
    prepend_path: list[str] = []
    results: list[StepResult] = []
    summary, exit_code = "", 0

    for index, step in enumerate(meta["runs"]["steps"]):
        sid = step.get("id")
        first_line = (str(step.get("run", "")).strip().splitlines() or [""])[0]
        name = str(step.get("name") or step.get("uses") or f"Run {first_line}")
        result = StepResult(index, sid, name, step.get("uses"), skipped=True)
        results.append(result)
        if not to_bool(ev.condition(step.get("if"))):
            if sid:
                steps_ctx[sid] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            continue
        result.skipped = False
        coe = step.get("continue-on-error", False)
        if not isinstance(coe, bool):
            coe = {"true": True, "false": False}.get(ev.render(coe).strip().lower())
            if coe is None:
                raise CompositeError(f"step {name!r}: continue-on-error must be true or false")
        result.continue_on_error = coe
        step_env = {str(k): ev.render(v) for k, v in (step.get("env") or {}).items()}
        paths = {n: files / f"{n}_{index}" for n in ("output", "env", "path", "step_summary")}
        for path in paths.values():
            path.write_bytes(b"")
        run_env = {**env, **defaults, **set_env, **step_env}
        run_env.update(
            GITHUB_ACTION_PATH=str(action_dir),
            GITHUB_WORKSPACE=str(workdir),
            RUNNER_TEMP=str(runner_temp),
            **{f"GITHUB_{n.upper()}": str(p) for n, p in paths.items()},
        )
        if prepend_path:
            head = os.pathsep.join(reversed(prepend_path))
            run_env["PATH"] = head + (os.pathsep + run_env["PATH"] if run_env.get("PATH") else "")
        result.env = run_env
        outputs: dict[str, str] = {}
        if "run" in step:
            cwd = workdir / ev.render(step.get("working-directory", ""))
            script = files / f"script_{index}.sh"
            script.write_text(step["run"], encoding="utf-8")
            command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
            result.exit_code, result.stdout, result.stderr = _run(
                command, cwd, run_env, deadline - time.monotonic(), name
            )
        else:
            ref = step["uses"]
            standin = uses.get(ref.split("@", 1)[0])
            if standin is None:
                raise CompositeError(f"step {name!r}: no stand-in for uses: {ref}")
            result.with_ = {str(k): ev.render(v) for k, v in (step.get("with") or {}).items()}
            returned = standin(StepCall(sid, name, ref, dict(result.with_), dict(run_env)))
            outputs.update({str(k): to_string(v) for k, v in returned.items()})
            result.exit_code = 0
        try:
            outputs = {**dict(parse_file_command(_read(paths["output"]))), **outputs}
            for key, value in parse_file_command(_read(paths["env"])):
                set_env[key] = env_ctx[key] = value
            for line in re.split(r"\r\n|\r|\n", _read(paths["path"])):
                if line:
                    prepend_path[:] = [p for p in prepend_path if p != line] + [line]
        except CompositeError as e:
            result.error = str(e)
        result.outputs = outputs
        summary += _read(paths["step_summary"])
        failed = result.outcome == "failure" and not result.continue_on_error
        if failed and exit_code == 0:
            exit_code = result.exit_code or 1
        ev.failed = ev.failed or failed
        if sid:
            conclusion = "success" if result.continue_on_error else result.outcome
            steps_ctx[sid] = {
                "outputs": outputs,
                "outcome": result.outcome,
                "conclusion": conclusion,
            }

    action_outputs = {
        str(n): ev.render((spec or {}).get("value", ""))
        for n, spec in (meta.get("outputs") or {}).items()
    }
    return CompositeRun(results, action_outputs, summary, exit_code, temp)


def load_action(action_dir: Path) -> dict[str, Any]:
    """Read and check ``action.yml``: a composite whose steps the harness can run."""
    path = action_dir / "action.yml"
    if not path.exists():
        path = action_dir / "action.yaml"
    meta: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    runs = meta.get("runs") if isinstance(meta, dict) else None
    if not isinstance(runs, dict) or runs.get("using") != "composite":
        raise CompositeError(f"{path}: runs.using is not 'composite'")
    if not isinstance(runs.get("steps"), list):
        raise CompositeError(f"{path}: runs.steps is not a list")
    ids: set[str] = set()
    for index, step in enumerate(runs["steps"]):
        where = f"{path}: step {index + 1}"
        if not isinstance(step, dict) or ("run" in step) == ("uses" in step):
            raise CompositeError(f"{where}: needs exactly one of run: and uses:")
        unknown = set(step) - (_RUN_KEYS if "run" in step else _USES_KEYS)
        if unknown:
            raise CompositeError(f"{where}: unsupported keys {sorted(unknown)}")
        if "id" in step:
            if step["id"] in ids:
                raise CompositeError(f"{where}: duplicate id {step['id']!r}")
            ids.add(step["id"])
        if "run" in step:
            if not isinstance(step["run"], str):
                raise CompositeError(f"{where}: run: is not a string")
            if "${{" in step["run"]:
                raise CompositeError(
                    f"{where}: run: contains '${{{{' (script injection); "
                    "pass the value through env: instead"
                )
            if step.get("shell") != "bash":
                raise CompositeError(f"{where}: shell: {step.get('shell')!r} (only bash)")
    return dict(meta)


def _inputs(declared: Mapping[str, Any], given: Mapping[str, Any], ev: Evaluator) -> dict[str, Any]:
    by_fold = {str(name).casefold(): str(name) for name in declared}
    unknown = [k for k in given if k.casefold() not in by_fold]
    if unknown:
        raise CompositeError(f"unexpected inputs {unknown}; the action declares {list(declared)}")
    values = {by_fold[k.casefold()]: to_string(v) for k, v in given.items()}
    for name, spec in declared.items():
        if str(name) not in values:
            values[str(name)] = ev.render((spec or {}).get("default", ""))
    return values


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig") if path.exists() else ""


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float, name: str
) -> tuple[int, str, str]:
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # so a timeout can kill everything the step started
    ) as proc:
        try:
            out, err = proc.communicate(timeout=max(timeout, 0.001))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise CompositeError(
                f"step {name!r} timed out\n--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}"
            ) from None
    return proc.returncode, out, err


def parse_file_command(text: str) -> list[tuple[str, str]]:
    """``GITHUB_OUTPUT``/``GITHUB_ENV`` text as (name, value) pairs, like the runner."""
    lines = text.split("\n")  # every element but the last ended with a newline
    ended = [True] * (len(lines) - 1) + [False]
    if lines[-1] == "":
        lines.pop()
        ended.pop()
    pairs, i = [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            key, value = line.split("=", 1)
        elif heredoc >= 0:
            key, delimiter = line.split("<<", 1)
            if not key or not delimiter:
                raise CompositeError(f"Invalid format {line!r}: empty name or delimiter")
            body: list[str] = []
            while True:
                if i >= len(lines):
                    raise CompositeError(f"Matching delimiter not found {delimiter!r}")
                if lines[i] == delimiter:
                    i += 1
                    break
                if not ended[i]:
                    raise CompositeError("Invalid value. EOF marker missing new line.")
                body.append(lines[i])
                i += 1
            value = "\n".join(body)
        else:
            raise CompositeError(f"Invalid format {line!r}")
        if not key:
            raise CompositeError(f"Invalid format {line!r}: empty name")
        pairs.append((key, value))
    return pairs


# --- expressions ----------------------------------------------------------------------

_CONTEXTS = ("inputs", "github", "env", "steps", "runner")
_TOKEN = re.compile(
    r"(?P<str>'(?:[^']|'')*')"
    r"|(?P<num>-?(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,*])"
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def to_number(v: Any) -> float:
    if v is None or isinstance(v, (bool, int, float)):
        return float(v or 0)
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return 0.0
        if re.fullmatch(r"-?0x[0-9a-fA-F]+", s):
            return float(int(s, 16))
        return float(s) if _NUMBER.fullmatch(s) else math.nan
    return math.nan


def to_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))
    if isinstance(v, str):
        return v
    return "Array" if isinstance(v, list) else "Object"


def to_bool(v: Any) -> bool:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return not (v == 0 or math.isnan(v))
    return bool(v) if v is None or isinstance(v, (bool, str)) else True


def _kind(v: Any) -> str:
    if v is None or isinstance(v, (bool, str)):
        return type(v).__name__
    return "num" if isinstance(v, (int, float)) else "obj"


def loose_equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if "obj" in (ka, kb):
        return a is b
    if ka == kb == "str":
        return bool(a.casefold() == b.casefold())
    if ka == kb and ka != "num":
        return bool(a == b)
    return to_number(a) == to_number(b)


def _less(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if "obj" in (ka, kb):
        return False
    if ka == kb == "str":
        return bool(a.casefold() < b.casefold())
    return to_number(a) < to_number(b)


def _property(obj: Any, key: Any) -> Any:
    value: Any = None
    if isinstance(obj, Mapping):
        key = to_string(key)
        if key in obj:
            value = obj[key]
        else:
            value = next((v for k, v in obj.items() if str(k).casefold() == key.casefold()), None)
    elif isinstance(obj, (list, tuple)) and _kind(key) == "num":
        i = to_number(key)
        if i.is_integer() and 0 <= i < len(obj):
            value = obj[int(i)]
    if isinstance(value, tuple):
        return list(value)
    return float(value) if _kind(value) == "num" and not isinstance(value, float) else value


def _format(fmt: str, args: list[Any]) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt.startswith(("{{", "}}"), i):
            out.append(fmt[i])
            i += 2
            continue
        m = _PLACEHOLDER.match(fmt, i)
        if m and int(m[1]) < len(args):
            out.append(to_string(args[int(m[1])]))
            i = m.end()
        elif fmt[i] in "{}":
            raise CompositeError(f"format(): bad placeholder at {i} in {fmt!r}")
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return [_jsonable(x) for x in v] if isinstance(v, (list, tuple)) else v


def _from_json(s: Any) -> Any:
    try:
        return json.loads(to_string(s), parse_int=float)
    except ValueError as e:
        raise CompositeError(f"fromJSON(): {e}") from None


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return any(loose_equal(x, needle) for x in haystack)
    return to_string(needle).casefold() in to_string(haystack).casefold()


_STATUS = {"success", "always", "failure", "cancelled"}
# name (case-insensitive) -> (least arguments, most arguments, implementation)
_FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "contains": (2, 2, _contains),
    "startswith": (2, 2, lambda a, b: to_string(a).casefold().startswith(to_string(b).casefold())),
    "endswith": (2, 2, lambda a, b: to_string(a).casefold().endswith(to_string(b).casefold())),
    "format": (1, 99, lambda f, *a: _format(to_string(f), list(a))),
    "join": (
        1,
        2,
        lambda a, sep=",": (
            to_string(sep).join(map(to_string, a)) if isinstance(a, list) else to_string(a)
        ),
    ),
    "tojson": (1, 1, lambda v: json.dumps(_jsonable(v), indent=2, ensure_ascii=False)),
    "fromjson": (1, 1, _from_json),
}


class _Parser:
    """Recursive descent over GitHub's grammar; nodes are tuples."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.i = text, [], 0
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            m = _TOKEN.match(text, pos)
            if not m or not m.lastgroup:
                raise self.error(f"unexpected {text[pos]!r} at offset {pos}")
            self.tokens.append((m.lastgroup, m[0]))
            pos = m.end()

    def error(self, message: str) -> CompositeError:
        return CompositeError(f"expression {self.text.strip()!r}: {message}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (op is not None and tok != ("op", op)):
            raise self.error(f"expected {op or 'more'}, found {tok[1] if tok else 'the end'}")
        self.i += 1
        return tok

    def parse(self) -> tuple[Any, ...]:
        node = self.binary(0)
        extra = self.peek()
        if extra:
            raise self.error(f"unexpected {extra[1]!r}")
        return node

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="))

    def binary(self, level: int) -> tuple[Any, ...]:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in self._LEVELS[level]:
            self.i += 1
            node = ("op", tok[1], node, self.binary(level + 1))
        return node

    def unary(self) -> tuple[Any, ...]:
        if self.peek() == ("op", "!"):
            self.i += 1
            return ("not", self.unary())
        node = self.primary()
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise self.error(f"unsupported property {name!r} (object filters too)")
                node = ("prop", node, ("lit", name))
            else:
                node = ("prop", node, self.binary(0))
                self.take("]")
        return node

    def primary(self) -> tuple[Any, ...]:
        kind, text = self.take()
        if kind == "str":
            return ("lit", text[1:-1].replace("''", "'"))
        if kind == "num":
            return ("lit", to_number(text))
        if kind == "name":
            if text in ("true", "false", "null"):
                return ("lit", {"true": True, "false": False, "null": None}[text])
            if self.peek() != ("op", "("):
                if text.lower() not in _CONTEXTS:
                    raise self.error(f"unsupported context {text!r}")
                return ("ctx", text.lower())
            self.i += 1
            args: list[tuple[Any, ...]] = []
            while self.peek() != ("op", ")"):
                if args:
                    self.take(",")
                args.append(self.binary(0))
            self.i += 1
            fn = text.lower()
            low, high = (0, 0) if fn in _STATUS else _FUNCTIONS.get(fn, (-1, -1, None))[:2]
            if low < 0:
                raise self.error(f"unsupported function {text}()")
            if not low <= len(args) <= high:
                raise self.error(f"{text}() takes {low}..{high} arguments, not {len(args)}")
            return ("call", fn, args)
        if (kind, text) == ("op", "("):
            node = self.binary(0)
            self.take(")")
            return node
        raise self.error(f"unexpected {text!r}")


def _has_status(node: Any) -> bool:
    if isinstance(node, tuple):
        if node[0] == "call" and node[1] in _STATUS:
            return True
        return any(_has_status(n) for n in node[1:])
    return isinstance(node, list) and any(_has_status(n) for n in node)


class Evaluator:
    """Evaluates expressions against ``contexts``; ``failed`` drives the status functions."""

    def __init__(self, contexts: dict[str, Any], failed: bool = False) -> None:
        self.contexts, self.failed = contexts, failed

    def evaluate(self, text: str) -> Any:
        return self._eval(_Parser(text).parse())

    def _eval(self, node: tuple[Any, ...]) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ctx":
            if node[1] not in self.contexts:
                raise CompositeError(f"context {node[1]!r} is not available here")
            return self.contexts[node[1]]
        if kind == "prop":
            return _property(self._eval(node[1]), self._eval(node[2]))
        if kind == "not":
            return not to_bool(self._eval(node[1]))
        if kind == "call":
            if node[1] in _STATUS:
                return {"success": not self.failed, "failure": self.failed}.get(
                    node[1], node[1] == "always"
                )
            return _FUNCTIONS[node[1]][2](*(self._eval(a) for a in node[2]))
        op, left = node[1], self._eval(node[2])
        if op in ("&&", "||"):
            return left if to_bool(left) == (op == "||") else self._eval(node[3])
        right = self._eval(node[3])
        return {
            "==": lambda: loose_equal(left, right),
            "!=": lambda: not loose_equal(left, right),
            "<": lambda: _less(left, right),
            ">": lambda: _less(right, left),
            "<=": lambda: _less(left, right) or loose_equal(left, right),
            ">=": lambda: _less(right, left) or loose_equal(left, right),
        }[op]()

    def render(self, value: Any) -> str:
        """A YAML value with ``${{ }}`` parts, evaluated to the string the runner would pass."""
        if isinstance(value, (dict, list)):
            raise CompositeError(f"expected a string, got {value!r}")
        if not isinstance(value, str):
            return to_string(value)
        return "".join(to_string(self.evaluate(t)) if e else t for e, t in _segments(value))

    def condition(self, value: Any) -> Any:
        """Evaluate an ``if:``; a bare expression, or one ``${{ }}`` that is the whole value."""
        text = to_string(value).strip()
        parts = _segments(text)
        if any(expr for expr, _ in parts):
            if len(parts) != 1:
                raise CompositeError(f"if: {text!r} mixes ${{{{ }}}} with other text")
            text = parts[0][1]
        node = _Parser(text).parse() if text.strip() else ("call", "success", [])
        if not _has_status(node):
            node = ("op", "&&", ("call", "success", []), node)
        return self._eval(node)


def _segments(text: str) -> list[tuple[bool, str]]:
    """Split ``text`` into literal parts and ``${{ }}`` expression bodies."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    while (start := text.find("${{", pos)) >= 0:
        parts.append((False, text[pos:start]))
        i, quoted = start + 3, False
        while i < len(text):
            if quoted and text.startswith("''", i):
                i += 2  # an escaped quote inside a string literal
                continue
            if text[i] == "'":
                quoted = not quoted
            elif not quoted and text.startswith("}}", i):
                break
            i += 1
        else:
            raise CompositeError(f"unterminated ${{{{ in {text!r}")
        parts.append((True, text[start + 3 : i]))
        pos = i + 2
    parts.append((False, text[pos:]))
    return [(expr, t) for expr, t in parts if expr or t]
