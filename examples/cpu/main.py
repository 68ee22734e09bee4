"""A Mandelbrot tile as a PNG, computed in plain Python: the work PyPy is for.

    curl -o tile.png 'https://…/mandelbrot?x=-0.75&y=0.1&zoom=20&size=256'

Every pixel is an escape-time loop of float arithmetic: no numpy, no C extension.
CPython interprets each step; PyPy's JIT compiles the loop to machine code, which is
where its speed-up over the native Python runtime is largest (see README.md).
The tile is a pure function of its query, so it may be cached anywhere.
"""

import struct
import zlib

import functions_framework

# What a request may ask for: bounded, so one request costs at most a few seconds.
LIMITS = {
    "x": (-2.5, 2.5, -0.5),  # the tile's centre on the real axis
    "y": (-2.5, 2.5, 0.0),  # … and on the imaginary axis
    "zoom": (1.0, 1e12, 1.0),  # 1 shows the whole set
    "size": (16, 512, 256),  # pixels a side
    "iterations": (16, 2000, 100),  # the escape-time limit
}


class BadQuery(ValueError):
    """A query parameter out of its bounds: answered 400 with this message."""


def parameter(args, name):
    low, high, default = LIMITS[name]
    text = args.get(name)
    if text is None:
        return default
    try:
        value = int(text) if isinstance(default, int) else float(text)
    except ValueError:
        raise BadQuery(f"{name} must be a number, not {text[:40]!r}") from None
    if not low <= value <= high:  # also refuses NaN
        raise BadQuery(f"{name} must be between {low} and {high}, not {text[:40]}")
    return value


def escape_times(x, y, zoom, size, iterations):
    """One grey level per pixel: black inside the set and far from it, brighter the
    longer a point takes to escape (the closer it lies to the set's edge)."""
    scale = 3.0 / (zoom * size)
    rows = []
    for row in range(size):
        ci = y + (size / 2 - row) * scale
        line = bytearray(size)
        for column in range(size):
            cr = x + (column - size / 2) * scale
            zr = zi = 0.0
            n = 0
            while n < iterations and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                n += 1
            line[column] = 0 if n == iterations else int(255 * (n / iterations) ** 0.5)
        rows.append(bytes(line))
    return rows


def png(rows):
    """An 8-bit greyscale PNG of ``rows`` (one ``bytes`` of grey levels per row)."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + row for row in rows), 6)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@functions_framework.http
def mandelbrot(request):
    if request.method not in ("GET", "HEAD"):
        return "Method not allowed: use GET.\n", 405, {"Allow": "GET, HEAD"}
    try:
        tile = {name: parameter(request.args, name) for name in LIMITS}
    except BadQuery as error:
        return f"{error}\n", 400, {"Content-Type": "text/plain; charset=utf-8"}
    image = png(escape_times(**tile))
    return image, 200, {"Content-Type": "image/png", "Cache-Control": "public, max-age=86400"}
