"""Settings: one frozen value, resolved once at start-up, with errors that name the bad key.

Resolution order for each setting: keyword argument, then the environment
(``BHARATSEND_<NAME>``), then the default. Framework integrations pass their
own settings as keyword arguments. The environment is injectable, so tests
never touch ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import attrs
import cattrs
from attrs import field, frozen

from bharatsend_core.domain.dlt import Category, DltPolicy
from bharatsend_core.domain.errors import BharatSendError, ConfigurationError
from bharatsend_core.domain.tenants import DEFAULT_RATE_PAISE, BillingPoint, RateCard

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX: Final = "BHARATSEND_"
_MIN_PEPPER_BYTES: Final = 16


def _pepper(value: str | bytes | None) -> bytes | None:
    if value is None or value == "" or value == b"":
        return None
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) < _MIN_PEPPER_BYTES:
        raise ConfigurationError(
            f"key_pepper must be at least {_MIN_PEPPER_BYTES} bytes of secret; generate one"
            ' with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            field="key_pepper",
        )
    return raw


def _regions(value: str | frozenset[str] | list[str] | tuple[str, ...]) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else value
    regions = frozenset(r.strip().upper() for r in items if r.strip())
    if not regions:
        raise ConfigurationError(
            "allowed_regions needs at least one region", field="allowed_regions"
        )
    return regions


def _categories(
    value: str | frozenset[str] | list[str] | tuple[str, ...] | set[str],
) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else value
    chosen = frozenset(str(c).strip().lower() for c in items if str(c).strip())
    known = {c.value for c in Category}
    unknown = sorted(chosen - known)
    if unknown:
        raise ConfigurationError(
            f"number_limit_categories has unknown DLT categories {', '.join(unknown)};"
            f" known: {', '.join(sorted(known))}",
            field="number_limit_categories",
        )
    return chosen


#: The DLT categories OTPs travel under: the ones SMS pumping abuses.
_OTP_CATEGORIES: Final = frozenset({Category.TRANSACTIONAL.value, Category.SERVICE_IMPLICIT.value})


def _seconds(value: int | float | str | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


@frozen
class Settings:
    """Everything an embedding application may configure."""

    #: Where messages, the ledger and the DLT registry live.
    database_url: str = "sqlite:///bharatsend.db"
    #: Database connections kept open per process, and up to twice as many
    #: more in bursts; above your request threads plus five for a worker.
    database_pool_size: int = 10
    #: Group commit for single sends: up to this many accept transactions per
    #: tenant at once, and sends arriving while they run are committed together
    #: when one ends (each still gets its own answer); 0 commits every send()
    #: on its own.
    send_group_commits: int = 2
    #: Server-side secret mixed into API key hashes; keep it out of the database.
    key_pepper: bytes | None = field(default=None, converter=_pepper, repr=False)
    #: How long an accepted message may wait to be sent when the caller gives no validity.
    default_validity: timedelta = field(default=timedelta(hours=1), converter=_seconds)
    #: The longest validity a caller may ask for.
    max_validity: timedelta = field(default=timedelta(hours=72), converter=_seconds)
    #: Messages needing more segments are refused (content_too_long).
    max_segments: int = 10
    #: Destination regions; India only unless the host opts in (SMS-pumping defence).
    allowed_regions: frozenset[str] = field(default=frozenset({"IN"}), converter=_regions)
    #: The price of a segment when a tenant's rate card says nothing else.
    default_rate_paise: int = DEFAULT_RATE_PAISE
    #: Billing point for new tenants.
    billing_point: BillingPoint = field(default=BillingPoint.SUBMIT, converter=BillingPoint)
    #: The DLT enforcement settings.
    dlt: DltPolicy = field(factory=DltPolicy)
    #: Send every message to the sandbox carrier, whatever the key.
    sandbox: bool = False
    #: Allow webhook targets on private or loopback addresses, and plain http
    #: (development and tests only: it turns off the SSRF guard).
    webhooks_allow_private: bool = False
    #: At most this many accepted messages per (tenant, destination number) in
    #: ``number_limit_window``, counting ``number_limit_categories`` only
    #: (SMS-pumping defence); 0 turns the limit off.
    number_limit: int = 10
    #: The trailing window of the per-number limit (environment: seconds).
    number_limit_window: timedelta = field(default=timedelta(minutes=10), converter=_seconds)
    #: DLT categories the per-number limit counts (environment: comma-separated).
    number_limit_categories: frozenset[str] = field(default=_OTP_CATEGORIES, converter=_categories)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.database_pool_size <= 1000:
            raise ConfigurationError(
                "database_pool_size must be 1 to 1000", field="database_pool_size"
            )
        if not 0 <= self.send_group_commits <= 1000:
            raise ConfigurationError(
                "send_group_commits must be 0 (off) to 1000", field="send_group_commits"
            )
        if not 1 <= self.max_segments <= 255:
            raise ConfigurationError("max_segments must be 1 to 255", field="max_segments")
        if not timedelta(0) < self.default_validity <= self.max_validity:
            raise ConfigurationError(
                "default_validity must be positive and at most max_validity",
                field="default_validity",
            )
        if not 0 <= self.number_limit <= 1_000_000:
            raise ConfigurationError(
                "number_limit must be 0 (off) to 1000000", field="number_limit"
            )
        if self.number_limit_window <= timedelta(0):
            raise ConfigurationError(
                "number_limit_window must be a positive number of seconds",
                field="number_limit_window",
            )
        if not 0 <= self.default_rate_paise <= 100_000:
            raise ConfigurationError(
                "default_rate_paise must be 0 to 100000", field="default_rate_paise"
            )

    @property
    def rate_card(self) -> RateCard:
        """The rate card new tenants start with."""
        return RateCard(default=self.default_rate_paise)

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build from keyword arguments, then ``BHARATSEND_*`` variables, then defaults."""
        env = os.environ if environ is None else environ
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}",
                field=unknown[0],
            )
        values: dict[str, Any] = {}
        for name in names:
            if name in overrides:
                values[name] = overrides[name]
            elif name != "dlt" and f"{ENV_PREFIX}{name.upper()}" in env:
                values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
        try:
            return _CONVERTER.structure(values, cls)
        except BharatSendError:
            raise
        except cattrs.BaseValidationError as e:
            ours = _first_ours(e)
            if ours is not None:
                raise ours from None
            messages = cattrs.transform_error(e)
            raise ConfigurationError(
                "invalid settings: " + "; ".join(messages),
                field=_first_field(messages),
            ) from None
        except (TypeError, ValueError) as e:
            raise ConfigurationError(f"invalid settings: {e}") from None


def _first_ours(error: BaseException) -> BharatSendError | None:
    """Our own error inside cattrs' exception group (raised by a validator or converter)."""
    if isinstance(error, BharatSendError):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = _first_ours(inner)
        if found is not None:
            return found
    return None


def _first_field(messages: list[str]) -> str | None:
    for message in messages:
        if "@ $." in message:
            return message.rsplit("@ $.", 1)[1].split(".")[0].split("[")[0]
    return None


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    if isinstance(value, int):
        return value
    return int(str(value).strip())


_CONVERTER = cattrs.Converter(forbid_extra_keys=True)
_CONVERTER.register_structure_hook(bool, _structure_bool)
_CONVERTER.register_structure_hook(int, _structure_int)
_CONVERTER.register_structure_hook_func(lambda t: t == bytes | None, lambda v, _: v)
_CONVERTER.register_structure_hook(timedelta, lambda v, _: _seconds(v))
# Every frozenset[str] setting has its own attrs converter (regions, categories): pass through.
_CONVERTER.register_structure_hook_func(lambda t: t == frozenset[str], lambda v, _: v)
_CONVERTER.register_structure_hook(BillingPoint, lambda v, _: BillingPoint(v))
_CONVERTER.register_structure_hook(
    DltPolicy, lambda v, _: v if isinstance(v, DltPolicy) else DltPolicy(**v)
)
