"""``python -m pyfn_action.cli``: the ``pyfn`` command, as it ran when the command was
one module."""

from pyfn_action.cli import main

raise SystemExit(main())
