"""``pyfn build`` and ``pyfn serve``: a function bundled, and a bundle served on this machine."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pyfn_action.cli.settings import (
    add_config_flags,
    add_source,
    flag_values,
    run_build,
    set_debug,
)
from pyfn_action.config import KEYS, resolve, resolve_keys
from pyfn_action.flows.jobs import cache_dir

log = logging.getLogger("pyfn_action")


def add_build(commands: Any) -> None:
    build = commands.add_parser(
        "build",
        help="bundle a function with PyPy: writes DIR/bundle.zip and DIR/report.json",
        description="Bundle a function with a PyPy runtime, its requirements and the Node shim.",
    )
    add_source(build, "the function's directory (default: .)")
    add_config_flags(build, [k for k in KEYS])
    build.set_defaults(handler=_cmd_build)


def add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="build (or take a bundle) and serve it locally as Cloud Functions would",
        description="Serve a bundle under the real Node.js Functions Framework, exactly as "
        "Cloud Functions' Node.js runtime runs it, until interrupted.",
    )
    add_source(serve, "the function's directory, built first (default: .)")
    serve.add_argument("--bundle", metavar="ZIP", help="serve this bundle instead of building")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    add_config_flags(serve, [k for k in KEYS if k != "json"])
    serve.set_defaults(handler=_cmd_serve)


def _cmd_build(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.bundle.trim import plan_dict, render_plan
    from pyfn_action.report.render import render_table

    config = resolve(Path(args.source), env=env, flags=flag_values(args, KEYS))
    set_debug(config.debug)
    result = run_build(config, env)
    if result.report is None:  # a dry run
        if config.json:
            stdout.write(json.dumps(plan_dict(result.plan), indent=2) + "\n")
        else:
            stdout.write(render_plan(result.plan))
        return 0
    if config.json:
        stdout.write(result.report.to_json())
    else:
        stdout.write(render_table(result.report))
        stdout.write(f"\nwrote {result.bundle} (sha256 {result.report.bundle.sha256})\n")
        stdout.write(f"wrote {result.report_path}\n")
    return 0


def _runtime_mismatch(framework: Any, manifest: Any, env: Mapping[str, str]) -> str:
    """The serve warning for the runtime the bundle was built for (its manifest says
    which; a bundle of an older pyfn, that does not, is judged against pyfn's pick)."""
    from pyfn_action.flows import nodeframework
    from pyfn_action.runtime import noderuntimes

    on = noderuntimes.today(env)
    gen = manifest.function.gen
    name = manifest.runtime.get("node_runtime") or noderuntimes.choose(gen, None, on).name
    return nodeframework.runtime_mismatch(framework, str(name), gen, on, env)


def _cmd_serve(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    import signal

    from pyfn_action.flows import nodeframework, serve, served

    if args.bundle:
        # No source to read a config file from: the cache is the flag's, else PYFN_CACHE_DIR's.
        bundle = Path(args.bundle)
        given = resolve_keys(["cache_dir"], env=env, flags=flag_values(args, KEYS))
        cache = cache_dir(given.get("cache_dir"))
    else:
        config = resolve(Path(args.source), env=env, flags=flag_values(args, KEYS))
        set_debug(config.debug)
        cache = cache_dir(config.cache_dir)
        result = run_build(config, env)
        if result.bundle is None:
            from pyfn_action.errors import ServeError

            raise ServeError("Nothing to serve after a dry run", fix="Drop --dry-run")
        bundle = result.bundle

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # also when run() is called alone
    # A bad bundle fails before anything is installed.
    with served.served_copy(bundle, cache) as copy:
        root, entry_point = copy.root, copy.manifest.function.entry_point
        framework = nodeframework.ensure_framework(
            cache, env, nodeframework.declared_framework(root)
        )
        mismatch = _runtime_mismatch(framework, copy.manifest, env)
        if mismatch:
            log.warning("%s", mismatch)
        process = serve.start(
            framework,
            root,
            entry_point=entry_point,
            host=args.host,
            port=args.port,
            env=env,
            cleanup=copy.cleanup,
        )
        shown = f"[{args.host}]" if ":" in args.host else args.host
        stdout.write(
            f"Serving {entry_point} from {bundle} at http://{shown}:{args.port}/ "
            f"under the Node.js Functions Framework {framework.package.spec} "
            "(Ctrl-C to stop)\n"
        )
        stdout.flush()
        try:
            code = process.wait()
        except KeyboardInterrupt:
            serve.stop(process)
            stdout.write("Stopped.\n")
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)
            if process.poll() is None:
                serve.stop(process)
    from pyfn_action.errors import ServeError

    raise ServeError(
        f"The Node.js Functions Framework exited with status {code}",
        why="see its messages above (a port already in use, for example)",
        fix="Pick another --port, or check the bundle with pyfn build",
    )
