"""A least-squares line through posted points, computed with numpy.

    curl -d '{"points": [[0, 1], [1, 3], [2, 5]]}' https://…/regress
    → {"slope": 2.0, "intercept": 1.0, "r2": 1.0, "n": 3}

It shows that a binary wheel built for PyPy (numpy's, with the OpenBLAS it vendors
in ``numpy.libs``) is installed for the target and loads from the bundle.
"""

import json
import math

import functions_framework
import numpy as np

MAX_BODY = 1024 * 1024  # bytes: about 40,000 points
MAX_POINTS = 10_000


class BadInput(ValueError):
    """What was posted cannot be fitted: answered 400 with this message."""


def finite(value):
    """Whether ``value`` is a JSON number that fits a float (not NaN, not ±Infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def points_of(payload):
    if not isinstance(payload, dict) or not isinstance(payload.get("points"), list):
        raise BadInput('post a JSON object: {"points": [[x, y], ...]}')
    points = payload["points"]
    if not 2 <= len(points) <= MAX_POINTS:
        raise BadInput(f"post between 2 and {MAX_POINTS} points, not {len(points)}")
    for point in points:
        if not isinstance(point, list) or len(point) != 2 or not all(map(finite, point)):
            raise BadInput(f"each point is [x, y] with two finite numbers, not {point!r:.60}")
    return np.array(points, dtype=np.float64)


def fit(xy):
    x, y = xy[:, 0], xy[:, 1]
    if np.ptp(x) == 0:
        raise BadInput("every point has the same x: no line fits")
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (slope * x + intercept)
    spread = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / spread if spread else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "n": len(xy)}


def answer(status, text, **headers):
    return text + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **headers}


@functions_framework.http
def regress(request):
    if request.method != "POST":
        return answer(405, 'POST {"points": [[x, y], ...]}', Allow="POST")
    # The length the caller declares, then what it sends: neither may pass the bound.
    if (request.content_length or 0) > MAX_BODY:
        return answer(413, f"post at most {MAX_BODY} bytes")
    data = request.stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        return answer(413, f"post at most {MAX_BODY} bytes")
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):  # not UTF-8 or not JSON, or nested too deep
        return answer(400, "the body is not JSON")
    try:
        result = fit(points_of(payload))
    except BadInput as error:
        return answer(400, str(error))
    return json.dumps(result) + "\n", 200, {"Content-Type": "application/json"}
