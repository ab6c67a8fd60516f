"""The credit ledger: double-entry, two-phase, in integer paise.

Every movement is an immutable :class:`Transfer` from a debit account to a
credit account, so all accounts always sum to zero. Each account keeps four
running totals (debits and credits, pending and posted). A message's charge
goes through two phases:

- ``reserve`` (pending) when the message is accepted: the tenant's available
  balance drops at once, so a burst of sends cannot overspend;
- ``post`` at the billing point (carrier acceptance or delivery), or ``void``
  when the message fails before it: exactly one of the two per reservation;
- ``refund``, a new compensating transfer, after a post.

Transfer ids are derived from the message id and the phase, so replaying a
phase is a no-op, and replaying it with different fields is a
``TransferConflict``. A tenant account may never have more debits (posted plus
pending) than posted credits: its available balance never goes below zero.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from attrs import evolve, field, frozen

from bharatsend_core.domain.errors import (
    InsufficientCredits,
    InvalidArgument,
    TransferConflict,
)

__all__ = [
    "REVENUE_ACCOUNT",
    "TOPUPS_ACCOUNT",
    "AccountBalance",
    "Effect",
    "Phase",
    "StatementLine",
    "Transfer",
    "TransferKind",
    "apply_effects",
    "available_delta",
    "effects",
    "is_tenant_account",
    "message_transfer_id",
    "recompute_balances",
    "same_transfer",
    "tenant_account",
]

#: Where top-ups come from (its balance is minus everything ever topped up).
TOPUPS_ACCOUNT: Final = "system:topups"
#: Where posted charges go.
REVENUE_ACCOUNT: Final = "system:revenue"

_BALANCE_FIELDS: Final = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


def tenant_account(tenant_id: str) -> str:
    """The ledger account of a tenant."""
    return f"tenant:{tenant_id}"


def is_tenant_account(account_id: str) -> bool:
    """Tenant accounts may not overdraw; system accounts may."""
    return account_id.startswith("tenant:")


class TransferKind(enum.StrEnum):
    """What a transfer does."""

    TOP_UP = "top_up"
    RESERVE = "reserve"
    POST = "post"
    VOID = "void"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class Phase(enum.StrEnum):
    """The phases of a message's charge; each gives one derived transfer id."""

    RESERVE = "reserve"
    POST = "post"
    VOID = "void"
    REFUND = "refund"


_PHASE_VALUES: Final[dict[str, str]] = {p.value: p.value for p in Phase}  # members hash as values


def message_transfer_id(message_id: str, phase: Phase | str) -> str:
    """The transfer id of a message's phase: replaying the phase hits the same id."""
    value = _PHASE_VALUES.get(phase)
    return f"{message_id}.{Phase(phase).value if value is None else value}"


def _positive(_instance: object, attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(
            "a transfer amount is a positive whole number of paise", field="amount"
        )


@frozen
class Transfer:
    """One immutable movement of paise between two accounts."""

    id: str
    kind: TransferKind = field(converter=TransferKind)
    debit_account: str
    credit_account: str
    amount: int = field(validator=_positive)
    tenant_id: str
    created_at: datetime
    #: post/void: the reservation they settle; refund: the post it compensates.
    pending_id: str | None = None
    message_id: str | None = None
    reference: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.debit_account == self.credit_account:
            raise InvalidArgument("a transfer needs two different accounts", field="credit_account")
        needs_pending = self.kind in (TransferKind.POST, TransferKind.VOID, TransferKind.REFUND)
        if needs_pending != (self.pending_id is not None):
            raise InvalidArgument(
                f"a {self.kind.value} transfer {'needs' if needs_pending else 'takes no'}"
                " pending_id",
                field="pending_id",
            )
        if self.created_at.tzinfo is None:
            raise InvalidArgument("created_at must be timezone-aware", field="created_at")


def same_transfer(a: Transfer, b: Transfer) -> bool:
    """Whether ``b`` replays ``a`` (equal in everything but the time it was made)."""
    return evolve(a, created_at=b.created_at) == b


@frozen
class AccountBalance:
    """An account's four running totals."""

    account_id: str
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def posted(self) -> int:
        """Credits minus debits, posted only."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What a tenant can still spend: posted credits - posted debits - pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def pending(self) -> int:
        """Paise reserved and not yet settled."""
        return self.debits_pending

    @property
    def net(self) -> int:
        """Credits minus debits counting pending too: all accounts' nets sum to zero."""
        return self.credits_posted + self.credits_pending - self.debits_posted - self.debits_pending


@frozen
class Effect:
    """A change to one running total of one account."""

    account_id: str
    field: str
    delta: int


def effects(transfer: Transfer, settles: Transfer | None = None) -> tuple[Effect, ...]:
    """The running-total changes a transfer makes; checks it against what it settles.

    ``settles`` is the reservation a post/void settles or the post a refund
    compensates. Raises ``TransferConflict`` when they do not fit together.
    """
    t = transfer
    amount = t.amount
    match t.kind:
        case TransferKind.TOP_UP | TransferKind.ADJUSTMENT:
            return (
                Effect(t.debit_account, "debits_posted", amount),
                Effect(t.credit_account, "credits_posted", amount),
            )
        case TransferKind.RESERVE:
            return (
                Effect(t.debit_account, "debits_pending", amount),
                Effect(t.credit_account, "credits_pending", amount),
            )
    if settles is None:
        raise TransferConflict(
            f"transfer {t.id} settles {t.pending_id}, which does not exist", field="pending_id"
        )
    wanted = TransferKind.POST if t.kind is TransferKind.REFUND else TransferKind.RESERVE
    if settles.kind is not wanted:
        raise TransferConflict(
            f"a {t.kind.value} must settle a {wanted.value}, not a {settles.kind.value}",
            field="pending_id",
        )
    if t.kind is TransferKind.REFUND:
        if (t.debit_account, t.credit_account) != (settles.credit_account, settles.debit_account):
            raise TransferConflict("a refund reverses the accounts of its post", field="pending_id")
        if amount > settles.amount:
            raise TransferConflict(
                f"refund of {amount} paise exceeds the {settles.amount} posted", field="amount"
            )
        return (
            Effect(t.debit_account, "debits_posted", amount),
            Effect(t.credit_account, "credits_posted", amount),
        )
    if (t.debit_account, t.credit_account) != (settles.debit_account, settles.credit_account):
        raise TransferConflict(
            f"a {t.kind.value} uses the accounts of its reservation", field="pending_id"
        )
    if amount > settles.amount:
        raise TransferConflict(
            f"{t.kind.value} of {amount} paise exceeds the {settles.amount} reserved",
            field="amount",
        )
    released = (
        Effect(t.debit_account, "debits_pending", -settles.amount),
        Effect(t.credit_account, "credits_pending", -settles.amount),
    )
    if t.kind is TransferKind.VOID:
        return released
    return (
        *released,
        Effect(t.debit_account, "debits_posted", amount),
        Effect(t.credit_account, "credits_posted", amount),
    )


def apply_effects(
    balances: Mapping[str, AccountBalance], changes: Iterable[Effect]
) -> dict[str, AccountBalance]:
    """New balances for the touched accounts; ``InsufficientCredits`` if a tenant would overdraw.

    Only the accounts a transfer touches are returned. The check is the rule
    storage enforces in the same transaction: debits (posted + pending) of a
    tenant account never exceed its posted credits.
    """
    updated: dict[str, AccountBalance] = {}
    for change in changes:
        current = updated.get(change.account_id) or balances.get(change.account_id)
        if current is None:
            current = AccountBalance(change.account_id)
        value = getattr(current, change.field) + change.delta
        updated[change.account_id] = evolve(current, **{change.field: value})
    for account_id, balance in updated.items():
        if is_tenant_account(account_id) and balance.available < 0:
            before = balances.get(account_id) or AccountBalance(account_id)
            raise InsufficientCredits(
                f"the balance available is {before.available} paise; this needs"
                f" {before.available - balance.available}. Top up to continue",
                detail={"available_paise": before.available},
            )
    return updated


def available_delta(transfer: Transfer, settles: Transfer | None, account_id: str) -> int:
    """How much ``transfer`` changes the available balance of ``account_id``."""
    total = 0
    for change in effects(transfer, settles):
        if change.account_id != account_id:
            continue
        if change.field == "credits_posted":
            total += change.delta
        elif change.field in ("debits_posted", "debits_pending"):
            total -= change.delta
    return total


@frozen
class StatementLine:
    """A transfer as it touched one account, with the available balance after it."""

    transfer: Transfer
    delta: int
    balance_after: int
    #: The transfer's position in the ledger: the cursor for the next page.
    seq: int


def recompute_balances(transfers: Iterable[Transfer]) -> dict[str, AccountBalance]:
    """Every account's totals rebuilt from the transfers alone (for reconciliation)."""
    by_id: dict[str, Transfer] = {}
    balances: dict[str, AccountBalance] = {}
    for transfer in transfers:
        settles = by_id.get(transfer.pending_id) if transfer.pending_id else None
        for change in effects(transfer, settles):
            current = balances.get(change.account_id) or AccountBalance(change.account_id)
            value = getattr(current, change.field) + change.delta
            balances[change.account_id] = evolve(current, **{change.field: value})
        by_id[transfer.id] = transfer
    return balances
