"""Two cold builds sharing one cache, as a monorepo loop or the Action's functions run them.

Each test starts real processes that say when they are ready, waits for both, then lets
them race for the same cache entry; both must succeed, the entry be built once, and what
either was handed still be there afterwards. Nothing is left to timing: the build that
holds the entry's lock goes on only once the other has logged that it waits for that
lock ("waiting for another pyfn that is preparing …", the line a user sees), so every
round tests a second build arriving while the first is building the entry.
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

# Before each worker: log to a shared file. ``start()``, once imported: say so, and wait
# for the start. ``other_build_waits()`` returns once another build has logged that it
# waits for the lock (the build holding it calls it inside the locked section), and
# fails the worker if none comes.
PRELUDE = """
import json, logging, os, sys, time
from pathlib import Path
ready, go, events = (Path(a) for a in sys.argv[1:4])
args = sys.argv[4:]
logging.basicConfig(filename=events, level=logging.INFO, format="%(process)d %(message)s")
WAITING = "waiting for another pyfn that is preparing"

def other_build_waits():
    deadline = time.monotonic() + 30
    while WAITING not in events.read_text():
        if time.monotonic() > deadline:
            sys.exit("no other build came to wait for this one's lock")
        time.sleep(0.002)

def start():
    ready.touch()
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
"""

RUNTIME_WORKER = """
from pyfn_action.runtime import archive as archives
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime
extract = archives.extract

def extract_once_the_other_waits(*a, **kw):
    other_build_waits()
    return extract(*a, **kw)

archives.extract = extract_once_the_other_waits
archive, sha, cache, out = args
start()
runtime = resolve_runtime(RuntimeRequest(archive=archive, sha256=sha), Path(cache))
Path(out).write_text(json.dumps({"root": str(runtime.root), "exe": runtime.executable.is_file()}))
"""

SITE_WORKER = """
from pyfn_action.deps.requirements import Distribution, Installed
from pyfn_action.deps.sitecache import installed_site
cache, out, calls = args

def install(site):
    with open(calls, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    info = site / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Name: demo\\n")
    other_build_waits()  # pip is still at work when the other build arrives
    files = ("demo-1.0.dist-info/METADATA",)
    return Installed(site, (Distribution("demo", "1.0", "demo-1.0-py3-none-any.whl", files),))

start()
installed = installed_site(Path(cache), "c" * 64, install)
Path(out).write_text(json.dumps({"site": str(installed.site)}))
"""


def _race(
    worker: str, args_for: list[list[str]], work: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Start one worker per argument list, wait until each is ready, then let them go;
    both log into ``work / "events.log"``, and exactly one must have waited."""
    work.mkdir()
    go, events = work / "go", work / "events.log"
    events.touch()
    readies = [work / f"ready{i}" for i in range(len(args_for))]
    procs = []
    for ready, args in zip(readies, args_for):
        argv = [sys.executable, "-c", PRELUDE + worker, str(ready), str(go), str(events), *args]
        procs.append(
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(r.exists() for r in readies):  # both imported and waiting to start
        assert all(p.poll() is None for p in procs), "a worker ended before the start"
        assert time.monotonic() < deadline, "the workers did not get ready"
        time.sleep(0.005)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=DEADLINE_SECONDS)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    waited = [line for line in events.read_text().splitlines() if "waiting for another" in line]
    assert len(waited) == 1, events.read_text()  # the second build waited for the first
    return results


def test_two_cold_runtime_resolutions_both_succeed(tmp_path: Path) -> None:
    archive = tmp_path / "pypy3.9-v7.3.11-linux64.tar.gz"
    # many files: extraction takes long enough for both to be cold at once
    sha = fake_runtime(archive, extra={f"lib/pypy3.9/m{n}.py": b"#\n" * n for n in range(400)})
    for n in range(ROUNDS):
        cache = tmp_path / f"cache{n}"
        outs = [tmp_path / f"out{n}-{i}.json" for i in (1, 2)]
        _race(
            RUNTIME_WORKER,
            [[str(archive), sha, str(cache), str(o)] for o in outs],
            tmp_path / f"race{n}",
        )
        roots = {json.loads(o.read_text())["root"] for o in outs}
        assert roots == {str(cache / "runtimes" / sha)}
        assert (cache / "runtimes" / sha / "bin" / "pypy3.9").is_file()
        assert (cache / "runtimes" / f"{sha}.json").is_file()
        # no temporary trees left behind
        left = sorted(p.name for p in (cache / "runtimes").iterdir())
        assert left == [sha, f"{sha}.json"]  # no temporary trees, no lock files


def test_two_cold_site_installs_both_succeed_and_install_once(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        cache, calls = tmp_path / f"cache{n}", tmp_path / f"calls{n}"
        outs = [tmp_path / f"out{n}-{i}.json" for i in (1, 2)]
        _race(SITE_WORKER, [[str(cache), str(o), str(calls)] for o in outs], tmp_path / f"race{n}")
        # one install: the second build found it already there and used it
        assert len(calls.read_text().split()) == 1
        for out in outs:
            site = Path(json.loads(out.read_text())["site"])
            assert (site / "demo-1.0.dist-info" / "METADATA").is_file()
