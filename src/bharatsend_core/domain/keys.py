"""API keys: ``bs_live_<id>_<secret>`` / ``bs_test_<id>_<secret>``, stored only as a keyed hash.

The id is public (it is the lookup key, like a username); the secret is at
least 160 random bits and is shown once, at creation. We store
HMAC-SHA256(pepper, secret): the pepper is a server-side setting kept out of
the database, so a stolen database alone cannot be used to test guesses.
Verification is a single indexed lookup by id and one constant-time compare.
Every way a key can fail (malformed, unknown, wrong secret, revoked, expired)
gives the same ``InvalidApiKey``, so an attacker learns nothing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from attrs import evolve, field, frozen

from bharatsend_core.domain.errors import InsufficientScope, InvalidApiKey, InvalidArgument
from bharatsend_core.domain.ids import CROCKFORD, encode_base32

__all__ = [
    "KEY_ID_CHARS",
    "SECRET_BITS",
    "ApiKey",
    "IssuedKey",
    "KeyMode",
    "ParsedKey",
    "Scope",
    "hash_secret",
    "issue_key",
    "parse_key",
    "require_scope",
    "verify_key",
]

#: Characters of the public key id (80 random bits).
KEY_ID_CHARS: Final = 16
#: Random bits in a secret (the issue asks for at least 160).
SECRET_BITS: Final = 200
_SECRET_CHARS: Final = SECRET_BITS // 5
_B32 = "[" + CROCKFORD + "]"
_KEY_RE: Final = re.compile(
    rf"bs_(?P<mode>live|test)_(?P<id>{_B32}{{{KEY_ID_CHARS}}})_(?P<secret>{_B32}{{{_SECRET_CHARS}}})"
)
#: Don't touch last_used_at more often than this: a write on every request would serialise them.
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)


class KeyMode(enum.StrEnum):
    """Live keys send for real; test keys only ever reach the sandbox carrier."""

    LIVE = "live"
    TEST = "test"


class Scope(enum.StrEnum):
    """What a key may do."""

    SMS_SEND = "sms:send"
    SMS_READ = "sms:read"
    TEMPLATES_WRITE = "templates:write"
    WEBHOOKS_WRITE = "webhooks:write"
    KEYS_ADMIN = "keys:admin"
    BALANCE_READ = "balance:read"


def _scopes(value: Iterable[str]) -> frozenset[Scope]:
    if isinstance(value, str):
        raise InvalidArgument("scopes is a list of scope names, not one string", field="scopes")
    scopes = set()
    for raw in value:
        try:
            scopes.add(Scope(raw))
        except ValueError:
            choices = ", ".join(s.value for s in Scope)
            raise InvalidArgument(
                f"unknown scope {raw!r}; use one of {choices}", field="scopes"
            ) from None
    if not scopes:
        raise InvalidArgument("a key needs at least one scope", field="scopes")
    return frozenset(scopes)


@frozen
class ApiKey:
    """A stored API key: everything but the secret, which only its hash stands for."""

    id: str
    tenant_id: str
    mode: KeyMode = field(converter=KeyMode)
    secret_hash: str = field(repr=False)
    scopes: frozenset[Scope] = field(converter=_scopes)
    created_at: datetime
    name: str = ""
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """What a person may see of the key: ``bs_live_<id>``."""
        return f"bs_{self.mode.value}_{self.id}"

    @property
    def is_test(self) -> bool:
        """Test keys mark their messages as sandbox traffic."""
        return self.mode is KeyMode.TEST

    def usable_at(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def revoke(self, now: datetime) -> ApiKey:
        """The key, revoked at ``now`` (revoking twice keeps the first time)."""
        return self if self.revoked_at is not None else evolve(self, revoked_at=now)

    def needs_touch(self, now: datetime) -> bool:
        """Whether last_used_at is stale enough to be written again."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION

    def has(self, scope: Scope | str) -> bool:
        """Whether the key carries ``scope``."""
        return Scope(scope) in self.scopes


@frozen
class IssuedKey:
    """A freshly created key and its full text, which is shown once and never stored."""

    key: ApiKey
    secret: str = field(repr=False)


@frozen
class ParsedKey:
    """The parts of a presented key string."""

    mode: KeyMode
    key_id: str
    secret: str = field(repr=False)


def hash_secret(pepper: bytes, secret: str) -> str:
    """HMAC-SHA256 of the secret under the server-side pepper, hex."""
    return hmac.new(pepper, secret.encode("ascii"), hashlib.sha256).hexdigest()


def issue_key(
    *,
    tenant_id: str,
    mode: KeyMode | str,
    scopes: Iterable[str],
    pepper: bytes,
    id_bytes: bytes,
    secret_bytes: bytes,
    now: datetime,
    name: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Build a key from random bytes the caller drew (10 for the id, 25 for the secret)."""
    if len(id_bytes) * 8 < KEY_ID_CHARS * 5 or len(secret_bytes) * 8 < SECRET_BITS:
        raise InvalidArgument("not enough random bytes for a key", field="secret_bytes")
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument("expires_at must be in the future", field="expires_at")
    if len(name) > 200:
        raise InvalidArgument("a key name is at most 200 characters", field="name")
    key_mode = KeyMode(mode)
    key_id = encode_base32(int.from_bytes(id_bytes[:10]), KEY_ID_CHARS)
    secret = encode_base32(int.from_bytes(secret_bytes[:25]), _SECRET_CHARS)
    key = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        mode=key_mode,
        secret_hash=hash_secret(pepper, secret),
        scopes=frozenset(scopes),
        created_at=now,
        name=name,
        expires_at=expires_at,
    )
    return IssuedKey(key, f"bs_{key_mode.value}_{key_id}_{secret}")


def parse_key(raw: str) -> ParsedKey:
    """Split a presented key into mode, id and secret; ``InvalidApiKey`` if malformed."""
    m = _KEY_RE.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if m is None:
        raise InvalidApiKey("the API key is missing or invalid", field="authorization")
    return ParsedKey(KeyMode(m.group("mode")), m.group("id"), m.group("secret"))


def verify_key(stored: ApiKey | None, presented: ParsedKey, pepper: bytes, now: datetime) -> ApiKey:
    """Return the stored key if the presented one is genuine and usable; else ``InvalidApiKey``.

    The hash is compared in constant time even when no key was found, so the
    timing does not tell an unknown id from a wrong secret.
    """
    expected = stored.secret_hash if stored is not None else "0" * 64
    genuine = hmac.compare_digest(hash_secret(pepper, presented.secret), expected)
    if (
        stored is None
        or not genuine
        or stored.mode is not presented.mode
        or not stored.usable_at(now)
    ):
        raise InvalidApiKey("the API key is missing or invalid", field="authorization")
    return stored


def require_scope(key: ApiKey, scope: Scope | str) -> None:
    """Raise ``InsufficientScope`` unless ``key`` carries ``scope``."""
    if not key.has(scope):
        raise InsufficientScope(
            f"this API key lacks the {Scope(scope).value!r} scope", field="authorization"
        )
