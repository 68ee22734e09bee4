"""Two cold builds sharing one cache, as a monorepo loop or the Action's functions run them.

Each test starts real processes that wait at one barrier file, then race for the
same cache entry; both must succeed, the entry be built once, and what either
was handed still be there afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from support.tarballs import fake_runtime

ROUNDS = 3
DEADLINE_SECONDS = 60

RUNTIME_WORKER = """
import json, sys, time
from pathlib import Path
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime
archive, sha, cache, go, out = sys.argv[1:]
deadline = time.monotonic() + 30
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.001)
runtime = resolve_runtime(RuntimeRequest(archive=archive, sha256=sha), Path(cache))
Path(out).write_text(json.dumps({"root": str(runtime.root), "exe": runtime.executable.is_file()}))
"""

SITE_WORKER = """
import json, os, sys, time
from pathlib import Path
from pyfn_action.deps.requirements import Distribution, Installed
from pyfn_action.deps.sitecache import installed_site
cache, go, out, calls = sys.argv[1:]
deadline = time.monotonic() + 30
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.001)

def install(site):
    with open(calls, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    info = site / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Name: demo\\n")
    time.sleep(0.3)  # pip takes a while: the other build arrives meanwhile
    files = ("demo-1.0.dist-info/METADATA",)
    return Installed(site, (Distribution("demo", "1.0", "demo-1.0-py3-none-any.whl", files),))

installed = installed_site(Path(cache), "c" * 64, install)
Path(out).write_text(json.dumps({"site": str(installed.site)}))
"""


def _race(argv_for: list[list[str]], go: Path) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in argv_for
    ]
    time.sleep(0.3)  # both started and waiting
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=DEADLINE_SECONDS)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_two_cold_runtime_resolutions_both_succeed(tmp_path: Path) -> None:
    archive = tmp_path / "pypy3.9-v7.3.11-linux64.tar.gz"
    # many files: extraction takes long enough for both to be cold at once
    sha = fake_runtime(archive, extra={f"lib/pypy3.9/m{n}.py": b"#\n" * n for n in range(400)})
    for n in range(ROUNDS):
        cache, go = tmp_path / f"cache{n}", tmp_path / f"go{n}"
        outs = [tmp_path / f"out{n}-{i}.json" for i in (1, 2)]
        argv = [
            [sys.executable, "-c", RUNTIME_WORKER, str(archive), sha, str(cache), str(go), str(o)]
            for o in outs
        ]
        for result in _race(argv, go):
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
        roots = {json.loads(o.read_text())["root"] for o in outs}
        assert roots == {str(cache / "runtimes" / sha)}
        assert (cache / "runtimes" / sha / "bin" / "pypy3.9").is_file()
        assert (cache / "runtimes" / f"{sha}.json").is_file()
        # no temporary trees left behind
        left = sorted(p.name for p in (cache / "runtimes").iterdir())
        assert left == [sha, f"{sha}.json"]  # no temporary trees, no lock files


def test_two_cold_site_installs_both_succeed_and_install_once(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        cache, go, calls = tmp_path / f"cache{n}", tmp_path / f"go{n}", tmp_path / f"calls{n}"
        outs = [tmp_path / f"out{n}-{i}.json" for i in (1, 2)]
        argv = [
            [sys.executable, "-c", SITE_WORKER, str(cache), str(go), str(o), str(calls)]
            for o in outs
        ]
        for result in _race(argv, go):
            assert result.returncode == 0, result.stderr
        # one install: the second build found it already there and used it
        assert len(calls.read_text().split()) == 1
        for out in outs:
            site = Path(json.loads(out.read_text())["site"])
            assert (site / "demo-1.0.dist-info" / "METADATA").is_file()
