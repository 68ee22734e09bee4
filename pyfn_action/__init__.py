"""pyfn-action: ship Python functions to Google Cloud Functions on PyPy."""

__version__ = "1.0.0"  # the only place it is written: pyproject.toml reads it
