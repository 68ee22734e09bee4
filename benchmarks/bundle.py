"""Measure `pyfn build` on examples/hello, and pyfn's zip step against `zip -qr -9`.

Run by hand, not by CI:

    .venv/bin/python benchmarks/bundle.py [--pypy-archive PATH --pypy-sha256 HEX]

Without an archive it packs Debian's pypy3 (``pyfn runtime pack``) first, so it
runs where the official PyPy host is out of reach. Prints one JSON object, all
measured side by side in this one run:

- cold and warm build times (fresh cache, then the same cache), and a rebuild
  after a one-line change to main.py;
- the bundle's size, untrimmed against trimmed (runtime + app, zipped by pyfn);
- the zip step (cold: no Deflate cache) against `zip -qr -9` of the same tree;
- what a stronger Deflate encoder (zopfli, if installed) would save on the
  runtime, measured on a sample of its files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyfn_action.bundle.bytecode import cache_tag
from pyfn_action.bundle.deflate import compress
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.stage import app_entries, runtime_entries
from pyfn_action.bundle.trim import builtin_rules, plan_trim, portable_deps_rules
from pyfn_action.bundle.zipper import write_zip
from pyfn_action.config import resolve
from pyfn_action.flows.build import build
from pyfn_action.runtime.pack import pack_runtime
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime

REPO = Path(__file__).resolve().parents[1]


def _materialize(entries: list[Entry], root: Path) -> None:
    for entry in entries:
        path = root / entry.arcname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.read())
        path.chmod(0o755 if entry.executable else 0o644)


def _zip_step(entries: list[Entry], work: Path, rounds: int) -> dict[str, float]:
    tree = work / "tree"
    _materialize(entries, tree)
    ours_t, theirs_t = [], []
    ours_size = theirs_size = 0
    for n in range(rounds):  # alternate the two, so drift hits both alike
        start = time.perf_counter()
        ours_size = write_zip(entries, work / f"ours-{n}.zip").compressed_bytes
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(["zip", "-qr", "-9", str(work / f"zip-{n}.zip"), "."], cwd=tree, check=True)
        theirs_t.append(time.perf_counter() - start)
        theirs_size = (work / f"zip-{n}.zip").stat().st_size
    ours, theirs = min(ours_t), min(theirs_t)
    return {
        "zip_seconds": round(ours, 3),
        "zip_r9_seconds": round(theirs, 3),
        "zip_time_ratio": round(ours / theirs, 3),
        "zip_bytes": ours_size,
        "zip_r9_bytes": theirs_size,
        "zip_size_ratio": round(ours_size / theirs_size, 4),
    }


def _zopfli_sample(entries: list[Entry], every: int) -> dict[str, Any]:
    """zlib -9 against zopfli on every ``every``-th runtime file (zopfli is slow)."""
    try:
        import zopfli.zopfli as zopfli  # type: ignore[import-not-found]
    except ImportError:
        return {"zopfli": "not installed (pip install zopfli to measure it)"}
    # Every N-th runtime file, the 57 MB libpypy and other giants aside: zopfli
    # runs at a fraction of a MB/s.
    small = [e for e in entries if e.arcname.startswith("pypy/") and e.size() < 8_000_000]
    sample = small[::every]
    zlib_bytes = zopfli_bytes = raw = 0
    start = time.perf_counter()
    for entry in sample:
        data = entry.read()
        raw += len(data)
        zlib_bytes += len(compress(data, 9).payload)
        zopfli_bytes += min(len(zopfli.compress(data)[2:-4]), len(data))
    return {
        "zopfli_sample_files": len(sample),
        "zopfli_sample_bytes": raw,
        "zopfli_sample_zlib9_bytes": zlib_bytes,
        "zopfli_sample_zopfli_bytes": zopfli_bytes,
        "zopfli_saving_ratio": round(1 - zopfli_bytes / zlib_bytes, 4),
        "zopfli_sample_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypy-archive")
    parser.add_argument("--pypy-sha256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--zopfli-every", type=int, default=20, help="sample 1 file in N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfn-bench-") as tmp_name:
        tmp = Path(tmp_name)
        archive, sha = args.pypy_archive, args.pypy_sha256
        if not archive:
            pypy = shutil.which("pypy3")
            if pypy is None:
                parser.error("no --pypy-archive and no pypy3 on PATH to pack")
            packed = pack_runtime(Path(pypy), tmp / "pypy3.9-v7.3.11-linux64.tar.gz")
            archive, sha = str(packed.path), packed.sha256
        env = dict(os.environ)
        source = tmp / "hello"
        shutil.copytree(REPO / "examples" / "hello", source)
        flags = {"pypy_archive": archive, "pypy_sha256": sha, "out": str(tmp / "dist")}
        config = resolve(source, env=env, flags=flags)
        cache = tmp / "cache"
        times = []
        for step in ("cold", "warm", "one-line change"):
            if step == "one-line change":
                with (source / "main.py").open("a") as fh:
                    fh.write("# one more line\n")
            start = time.perf_counter()
            result = build(config, cache_dir=cache, env=env)
            times.append(time.perf_counter() - start)
        assert result.report is not None
        runtime = resolve_runtime(RuntimeRequest(archive=archive, sha256=sha), cache)
        app, _ = app_entries(config.source)
        untrimmed = sorted([*runtime_entries(runtime), *app], key=lambda e: e.arcname)
        rules = builtin_rules(cache_tag(runtime)) + portable_deps_rules(runtime.root)
        trimmed = list(plan_trim(untrimmed, rules, []).kept)
        sizes = {
            name: write_zip(group, tmp / f"{name}.zip").compressed_bytes
            for name, group in (("untrimmed", untrimmed), ("trimmed", trimmed))
        }
        zip_figures = _zip_step(trimmed, tmp / "zip", args.rounds)
        print(
            json.dumps(
                {
                    "python": sys.version.split()[0],
                    "cpus": os.cpu_count(),
                    "cold_build_seconds": round(times[0], 2),
                    "warm_build_seconds": round(times[1], 2),
                    "rebuild_after_one_line_change_seconds": round(times[2], 2),
                    "bundle_compressed_bytes": result.report.bundle.compressed_bytes,
                    "bundle_uncompressed_bytes": result.report.bundle.uncompressed_bytes,
                    "runtime_and_app_untrimmed_zip_bytes": sizes["untrimmed"],
                    "runtime_and_app_trimmed_zip_bytes": sizes["trimmed"],
                    "trim_size_ratio": round(sizes["trimmed"] / sizes["untrimmed"], 4),
                    "zip_step_tree": "trimmed runtime + app of examples/hello, cold",
                    **zip_figures,
                    **_zopfli_sample(trimmed, args.zopfli_every),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
