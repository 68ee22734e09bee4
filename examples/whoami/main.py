"""The caller's IP address, for ``curl`` (plain text) and ``jq`` (JSON).

    curl https://…/whoami                                   → 203.0.113.7
    curl -H 'Accept: application/json' https://…/whoami     → {"ip": "203.0.113.7"}

Behind Cloud Functions, the caller does not connect to the function: Google's front
end does, and appends the address it saw to ``X-Forwarded-For``. Whatever the caller
wrote into that header itself comes before it, so the left-most entry proves
nothing (``curl -H 'X-Forwarded-For: 8.8.8.8'`` would claim any address). The caller
is the first hop that a trusted proxy added: counted from the right, past the
``TRUSTED_HOPS`` proxies in front of the function (1, Google's front end; 2 with an
external load balancer as well). An entry there that is not an IP address, or no
header at all, leaves the peer address of the connection.
"""

import ipaddress
import json
import os

import functions_framework

TRUSTED_HOPS = os.environ.get("TRUSTED_HOPS", "1")
if not TRUSTED_HOPS.isdigit():
    raise SystemExit(f"TRUSTED_HOPS must be a whole number of proxies, not {TRUSTED_HOPS!r}")
TRUSTED_HOPS = int(TRUSTED_HOPS)
MAX_HEADER = 4096  # longer X-Forwarded-For values are not read (a proxy chain is short)


def forwarded_for(request):
    """The address the outermost trusted proxy saw, or None."""
    if TRUSTED_HOPS < 1:
        return None
    header = ",".join(request.headers.getlist("X-Forwarded-For"))
    if not header or len(header) > MAX_HEADER:
        return None
    hops = [hop.strip() for hop in header.split(",")]
    if len(hops) < TRUSTED_HOPS:
        return None
    return as_ip(hops[-TRUSTED_HOPS])


def as_ip(text):
    """``text`` as a normalised IP address, or None (``2001:DB8::1`` → ``2001:db8::1``)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # Node.js listening on both families reports an IPv4 peer as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


@functions_framework.http
def whoami(request):
    if request.method not in ("GET", "HEAD"):
        return "Method not allowed: use GET.\n", 405, {"Allow": "GET, HEAD"}
    ip = forwarded_for(request) or as_ip(request.remote_addr or "") or "unknown"
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    best = request.accept_mimetypes.best_match(["text/plain", "application/json"])
    if best == "application/json":
        headers["Content-Type"] = "application/json"
        return json.dumps({"ip": ip}) + "\n", 200, headers
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return ip + "\n", 200, headers
