"""The request's headers as indented JSON, for ``curl … | jq``.

The framework-mode twin of ``../script/reflect.py``: the same answer for the same
request, from a function loaded once per worker instead of a PyPy process started
for every request. Script mode hands the script Node.js's ``req.headers``, whose
names are lowercase; so are these.
"""

import json

import functions_framework


@functions_framework.http
def reflect(request):
    headers = {name.lower(): value for name, value in request.headers.items()}
    body = json.dumps(headers, indent=2) + "\n"
    return body, 200, {"Content-Type": "text/plain; charset=utf-8"}
