"""Idempotency of sends: the same ``client_message_id`` with the same request is one message.

A request's fingerprint is a SHA-256 over its canonical form (the fields that
define the message, normalised: E.164 phone, exact content, template, header,
options), so a retry that spells the phone number differently is still the same
request, while any real difference is a conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bharatsend_core.domain.errors import IdempotencyConflict, InvalidArgument

__all__ = ["MAX_CLIENT_MESSAGE_ID", "check_client_message_id", "fingerprint", "require_same"]

#: Longest client_message_id we store.
MAX_CLIENT_MESSAGE_ID = 128


def check_client_message_id(value: str | None) -> str | None:
    """Validate a client_message_id (1-128 printable ASCII characters, no spaces)."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_CLIENT_MESSAGE_ID
        or not value.isascii()
        or not value.isprintable()
        or " " in value
    ):
        raise InvalidArgument(
            f"client_message_id is 1 to {MAX_CLIENT_MESSAGE_ID} printable ASCII characters"
            " without spaces",
            field="client_message_id",
        )
    return value


def fingerprint(request: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a normalised request."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def require_same(stored: str, presented: str, client_message_id: str) -> None:
    """Raise ``IdempotencyConflict`` unless both fingerprints are equal."""
    if stored != presented:
        raise IdempotencyConflict(
            f"client_message_id {client_message_id!r} was already used for a different"
            " message; use a new id for a new message",
            field="client_message_id",
        )
