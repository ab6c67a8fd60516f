"""Ports: the ``typing.Protocol`` interfaces the service layer needs.

They import only the domain. Every port has an in-memory adapter and at least
one real one, and all of them pass the same contract tests (``tests/contract``).
"""

from bharatsend_core.ports.clock import Clock
from bharatsend_core.ports.ids import IdGenerator
from bharatsend_core.ports.storage import (
    ApiKeyRepository,
    DispatchClaim,
    DispatchRepository,
    DltRepository,
    DuplicateClientMessageId,
    LedgerRepository,
    MessageRepository,
    MessageSummary,
    Storage,
    TemplateVersion,
    TenantRepository,
    UnitOfWork,
    WhitelistKind,
)

__all__ = [
    "ApiKeyRepository",
    "Clock",
    "DispatchClaim",
    "DispatchRepository",
    "DltRepository",
    "DuplicateClientMessageId",
    "IdGenerator",
    "LedgerRepository",
    "MessageRepository",
    "MessageSummary",
    "Storage",
    "TemplateVersion",
    "TenantRepository",
    "UnitOfWork",
    "WhitelistKind",
]
