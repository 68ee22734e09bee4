"""The GitHub Action's entry point: ``action.yml`` runs this after installing pyfn.

An adapter and nothing more: it reads the inputs from ``INPUT_<NAME>`` (as the
runner names them for JavaScript and Docker actions), ``PYFN_*`` and the
runner's variables, and runs the package's own flows. It also runs outside the
composite action, for tests and other CI systems::

    INPUT_SOURCE=functions/hello python entrypoint.py
    python entrypoint.py --cache-key      # key, restore-keys and path for actions/cache
"""

from pyfn_action.github.action import main

if __name__ == "__main__":
    raise SystemExit(main())
