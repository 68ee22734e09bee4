"""Measure the Action's install step: the locked install against installing the action
directory with pip (as the step did before the lock), side by side.

Run by hand, not by CI (it installs from the package index):

    .venv/bin/python benchmarks/install.py [--rounds 3] [--python python3.12]

Each round, taking turns, from empty caches (no pip or uv cache) into a new virtual
environment: ``pip install <a copy of the action>``, the way the step installed pyfn
before; and the step's own script from action.yml, as the runner runs it (pip puts uv
in, uv installs requirements/action.txt hash-checked). Then the step once more on the
environment it made, which is what a job meets when actions/cache restored it. Prints
one JSON object: each run's seconds, the medians and ``locked_over_pip``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _step_script() -> str:
    steps = yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"]
    [install] = [s for s in steps if s.get("id") == "install"]
    return str(install["run"])


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=shutil.which("python3.12") or sys.executable)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"pip": [], "locked": [], "restored": []}
    with tempfile.TemporaryDirectory(prefix="pyfn-install-") as tmp:
        work = Path(tmp)
        cold = {
            **os.environ,
            "PIP_NO_CACHE_DIR": "1",
            "UV_NO_CACHE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        asked = [args.python, "-c", "import sys; print(sys.version.split()[0])"]
        version = subprocess.run(asked, capture_output=True, text=True, check=True).stdout.strip()
        for n in range(args.rounds):
            for kind in ["pip", "locked"] if n % 2 == 0 else ["locked", "pip"]:
                run = work / f"{kind}-{n}"
                action = run / "action"  # a fresh copy: pip writes build/ into it
                shutil.copytree(
                    REPO,
                    action,
                    ignore=shutil.ignore_patterns(
                        ".git", ".venv", "tests", "node_modules", "build", "*.egg-info"
                    ),
                )
                if kind == "pip":
                    venv = run / "venv"
                    subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
                    seconds = _timed(
                        [
                            str(venv / "bin" / "python"),
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            str(action),
                        ],
                        cold,
                        run,
                    )
                    times["pip"].append(round(seconds, 2))
                    continue
                env = {
                    **cold,
                    "GITHUB_ACTION_PATH": str(action),
                    "RUNNER_TEMP": str(run),
                    "GITHUB_OUTPUT": str(run / "output"),
                    "PYFN_SETUP_PYTHON": args.python,
                    "PYFN_ENV_KEY": f"pyfn-env-bench-py{version}",
                }
                script = _step_script()
                times["locked"].append(round(_timed(["bash", "-c", script], env, run), 2))
                times["restored"].append(round(_timed(["bash", "-c", script], env, run), 2))
            print(
                f"round {n + 1}: pip {times['pip'][-1]} s, locked {times['locked'][-1]} s, "
                f"restored {times['restored'][-1]} s",
                file=sys.stderr,
            )
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "python": version,
                "seconds": times,
                "median_seconds": medians,
                "locked_over_pip": round(medians["locked"] / medians["pip"], 3),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
