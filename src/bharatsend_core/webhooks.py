"""Standard Webhooks signatures: what the worker signs with, and what receivers verify with.

Every webhook carries three headers (the Standard Webhooks scheme):

- ``webhook-id``: the event id, the same on every retry (the receiver's dedup key);
- ``webhook-timestamp``: Unix seconds when this attempt was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  one per active secret, space-separated, so a secret can be rotated without
  downtime (receivers accept any of them).

A secret is ``whsec_`` followed by the base64 of at least 24 random bytes; the
HMAC key is the decoded bytes. Receivers call :func:`verify`::

    from bharatsend_core.webhooks import verify

    event = verify(secret, request.headers, request.get_data())

It checks the signature in constant time and refuses timestamps further than
``tolerance`` seconds from now (replayed captures), and only then parses the
body. Pure standard library: receivers need nothing else installed.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bharatsend_core.domain.errors import WebhookSignatureInvalid
from bharatsend_core.domain.webhooks import (
    SECRET_PREFIX,
    generate_secret,
    secret_key,
    sign,
    signature,
    signature_headers,
)

__all__ = [
    "SECRET_PREFIX",
    "generate_secret",
    "secret_key",
    "sign",
    "signature_headers",
    "verify",
]


def _header(headers: Mapping[str, str], name: str) -> str:
    # Frameworks differ in header case; HTTP names are case-insensitive.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookSignatureInvalid(f"the {name} header is missing", field=name)


def verify(
    secret_or_secrets: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and timestamp, then return the parsed event.

    ``secret_or_secrets`` is one ``whsec_`` secret or several (during a
    rotation); any of them may have signed. Raises
    :class:`~bharatsend_core.domain.errors.WebhookSignatureInvalid` for a
    missing header, a timestamp more than ``tolerance`` seconds away from
    ``now`` (default: the system clock), or no matching signature; nothing
    about the expected signature is revealed.
    """
    secrets = [secret_or_secrets] if isinstance(secret_or_secrets, str) else list(secret_or_secrets)
    keys = [secret_key(s) for s in secrets]
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    event_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    offered = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureInvalid(
            "webhook-timestamp is not Unix seconds", field="webhook-timestamp"
        ) from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureInvalid(
            f"webhook-timestamp is more than {tolerance} s away from now (a replay?)",
            field="webhook-timestamp",
        )
    expected = [signature(k, event_id, timestamp, raw) for k in keys]
    matched = False
    for item in offered.split():
        version, _, given = item.partition(",")
        if version != "v1":
            continue
        for candidate in expected:
            # Compare every pair: the time taken does not depend on which matched.
            matched |= hmac.compare_digest(candidate.encode(), given.encode())
    if not matched:
        raise WebhookSignatureInvalid("no valid v1 signature", field="webhook-signature")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookSignatureInvalid("the signed body is not JSON", field="body") from None
    if not isinstance(event, dict):
        raise WebhookSignatureInvalid("the signed body is not a JSON object", field="body")
    return event
