"""pyfn-action: ship Python functions to Google Cloud Functions on PyPy."""

__version__ = "0.1.0"
