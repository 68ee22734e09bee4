"""Private keys and credentials in files: the one scanner behind ``pyfn build`` and the
``pyfn-no-credentials`` hook.

What it finds, in a file's bytes:

- PEM private keys (``-----BEGIN … PRIVATE KEY-----`` followed by a key's body, not a
  mere mention of the marker, as libraries make), PGP private key blocks, SSH2 and
  PuTTY private keys, also in UTF-16 and UTF-32 text;
- DER private keys (PKCS#8, encrypted PKCS#8, PKCS#1 RSA, SEC1 EC), PKCS#12 stores (by
  their structure: a SEQUENCE holding version 3 and PKCS#7 data, whatever the file's
  name; and any file named ``.p12``/``.pfx``), Java key stores;
- Google credentials in JSON: service-account keys, ``authorized_user`` files (what
  ``gcloud auth application-default login`` writes: a refresh token and a client
  secret), any object holding both a refresh token and a client secret;
- the same inside base64 text (a ``.env`` line, wrapped or not), zip archives (wheels,
  jars, eggs; Deflate64 too), tarballs and gzip/bzip2/xz streams, nested.

Archives are read member by member: a member that cannot be read (encrypted, damaged,
compressed with a method Python lacks) is reported and the next one is read. The work
is bounded (:class:`Limits`); whatever a limit kept from being read is reported as
:class:`Unscanned`, never passed over in silence. Messages name the file, the member and
the kind of key, never the key.
"""

from __future__ import annotations

from pyfn_action.secrets.files import scan_bytes, scan_content, scan_file
from pyfn_action.secrets.model import (
    ADVICE,
    LIMITS,
    MAX_FILE_BYTES,
    Finding,
    Limits,
    Scan,
    Unscanned,
    iter_lines,
)
from pyfn_action.secrets.names import shown_name

__all__ = [
    "ADVICE",
    "LIMITS",
    "MAX_FILE_BYTES",
    "Finding",
    "Limits",
    "Scan",
    "Unscanned",
    "iter_lines",
    "scan_bytes",
    "scan_content",
    "scan_file",
    "shown_name",
]
