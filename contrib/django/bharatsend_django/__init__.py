"""Django integration for bharatsend-core (install with ``bharatsend-core[django]``).

Add ``"bharatsend_django"`` to ``INSTALLED_APPS``, a ``BHARATSEND`` settings
dict (at least ``KEY_PEPPER``), ``path("", include("bharatsend_django.urls"))``
to the URLconf, and run ``manage.py migrate``. See ``docs/django.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bharatsend_core import BharatSend
    from bharatsend_core.service.send import SendResult
    from bharatsend_django.runtime import OutboxMessage

__all__ = ["clear_outbox", "facade", "outbox", "send_sms"]
__version__ = "0.1.0"


def facade() -> BharatSend:
    """The :class:`~bharatsend_core.BharatSend` configured from ``settings.BHARATSEND``."""
    from bharatsend_django import runtime

    return runtime.facade()


def clear_outbox() -> None:
    """Empty :data:`outbox` (call it between tests; see ``BHARATSEND["OUTBOX"]``)."""
    from bharatsend_django import runtime

    runtime.clear_outbox()


def send_sms(
    *,
    phone_number: str,
    content: str,
    dlt_template_id: str,
    tenant_id: str | None = None,
    header: str | None = None,
    client_message_id: str | None = None,
    validity_seconds: int | None = None,
    priority: int = 0,
    metadata: Mapping[str, Any] | None = None,
    sandbox: bool = False,
) -> SendResult:
    """Validate, price and durably queue one message, from a view, without HTTP.

    The message is committed by the core at once (it has its own connection),
    so errors come back here as typed exceptions. The worker is woken with
    ``transaction.on_commit``: inside an atomic block it starts sending only
    once the request's transaction commits. ``tenant_id`` defaults to
    ``BHARATSEND["DEFAULT_TENANT"]``.

    On SQLite, when the core shares Django's database file, calling it inside
    an atomic block raises ``ConfigurationError`` (SQLite has one writer: the
    send would wait for the block's lock); PostgreSQL has no such limit.
    """
    from django.db import transaction

    from bharatsend_core.domain.errors import InvalidArgument
    from bharatsend_django import runtime

    tenant = tenant_id or runtime.config().default_tenant
    if not tenant:
        raise InvalidArgument(
            "give tenant_id, or set BHARATSEND['DEFAULT_TENANT']", field="tenant_id"
        )
    runtime.check_not_in_shared_sqlite_atomic()
    bs = runtime.facade()
    result = bs.send(
        tenant,
        phone_number=phone_number,
        content=content,
        dlt_template_id=dlt_template_id,
        header=header,
        client_message_id=client_message_id,
        validity_seconds=validity_seconds,
        priority=priority,
        metadata=metadata,
        sandbox=sandbox,
    )
    transaction.on_commit(bs.storage.wake_dispatch, using=runtime.config().database_alias)
    return result


def __getattr__(name: str) -> list[OutboxMessage]:
    if name == "outbox":
        from bharatsend_django import runtime

        return runtime.outbox
    raise AttributeError(name)
