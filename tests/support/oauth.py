"""OAuth for the loopback fakes of Google APIs.

Tests write service account key files (:func:`service_account_file`) whose ``token_uri``
is a fake's ``/token``. A :class:`TokenEndpoint` plays that endpoint's JWT bearer grant,
as Google's does: it issues a token only for an assertion signed by one of those keys,
and remembers the scopes asked for. Google's client libraries may also send a
self-signed JWT instead of asking for a token; :meth:`TokenEndpoint.access` accepts
those too, as Google checks them against the account's public keys.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses the assertion to Google's token endpoint whatever the key's
# token_uri says.
GOOGLE_GRANT_AUDIENCE = "https://oauth2.googleapis.com/token"
# Public keys of the service account keys service_account_file wrote: by token_uri, by key id.
KEYS: dict[str, dict[str, tuple[str, Any]]] = {}


@dataclass(frozen=True)
class Access:
    """What a request's credential grants: its scopes, and a self-signed JWT's audience."""

    scopes: frozenset[str]
    audience: str = ""


@dataclass
class TokenEndpoint:
    """A fake's ``/token``: tokens issued as ``{prefix}-1``, ``{prefix}-2``, ... with the
    scopes their signed assertions asked for."""

    prefix: str
    base: str = ""  # the fake's base URL, once it listens: its keys are those of base/token
    tokens: dict[str, set[str]] = field(default_factory=dict)  # issued token → its scopes
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def uri(self) -> str:
        return f"{self.base}/token"

    def grant(self, body: bytes) -> tuple[int, Any]:
        """The JWT bearer grant: a new token for an assertion signed by a key of this fake."""
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        grant = form.get("grant_type", [""])[-1]
        claims = self.signed_claims(form.get("assertion", [""])[-1])
        if (
            grant != JWT_GRANT
            or claims is None
            or claims.get("aud") not in (self.uri, GOOGLE_GRANT_AUDIENCE)
        ):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = f"{self.prefix}-{next(self._ids)}"
        self.tokens[token] = set(str(claims.get("scope", "")).split())
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def access(self, authorization: str) -> Access | None:
        """What a bearer token this endpoint issued, or a self-signed JWT of one of its keys,
        grants; None for anything else."""
        if not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ")
        if token in self.tokens:
            return Access(frozenset(self.tokens[token]))
        claims = self.signed_claims(token)
        if claims is None:
            return None
        scopes = frozenset(str(claims.get("scope", "")).split())
        return Access(scopes, str(claims.get("aud", "")))

    def signed_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of an RS256 JWT signed by a key :func:`service_account_file` wrote for
        this endpoint (iss and sub its account, not expired), else None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = token.split(".")
        if len(parts) != 3 or not self.base:
            return None
        try:
            header, claims, signature = (
                base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts
            )
            header, claims = json.loads(header), json.loads(claims)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        key = KEYS.get(self.uri, {}).get(str(header.get("kid")))
        if key is None or header.get("alg") != "RS256":
            return None
        email, public = key
        try:
            public.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return None
        iat, exp = claims.get("iat"), claims.get("exp")
        if claims.get("iss") != email or claims.get("sub", email) != email:
            return None
        if not isinstance(iat, int) or not isinstance(exp, int) or not iat < exp <= iat + 3600:
            return None
        if exp < time.time():
            return None
        return claims

    @contextmanager
    def at(self, base: str) -> Iterator[None]:
        """This endpoint at ``base``/token while the fake listens there: it trusts the keys
        written for that URI meanwhile, none of an earlier fake that had the port."""
        self.base = base
        KEYS.pop(self.uri, None)
        try:
            yield
        finally:
            KEYS.pop(self.uri, None)


def service_account_file(path: Path, project: str, token_uri: str) -> Path:
    """A service account key file (a fresh RSA key) whose token endpoint is on loopback.

    Its public key is registered for ``token_uri``: the fake serving that URI accepts what
    the key signs (token grants, and self-signed JWTs)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_id = uuid.uuid4().hex
    email = f"deployer@{project}.iam.gserviceaccount.com"
    KEYS.setdefault(token_uri, {})[key_id] = (email, key.public_key())
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path
