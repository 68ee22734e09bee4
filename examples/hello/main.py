"""A Cloud Functions HTTP function in the standard Functions Framework style.

The same file runs unchanged on Google's native Python runtimes and, bundled by
pyfn, on PyPy behind the Node.js runtime.
"""

import functions_framework


@functions_framework.http
def hello(request):
    """Greet the caller: GET /?name=PyPy or POST {"name": "PyPy"}."""
    payload = request.get_json(silent=True) or {}
    name = request.args.get("name") or payload.get("name") or "World"
    return f"Hello, {name}!\n"
