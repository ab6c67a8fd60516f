"""Credits: top-ups, balances, statements, message charges and reconciliation.

A message's charge is reserved when it is accepted (in the send transaction),
posted at the tenant's billing point, voided when it fails before that point,
and refunded by a new transfer after a post. ``reconcile`` proves it all adds
up to the last paisa.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from attrs import frozen

from bharatsend_core.domain.dlt.registry import Category
from bharatsend_core.domain.errors import InvalidArgument, TransferNotFound
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    Phase,
    StatementLine,
    Transfer,
    TransferKind,
    available_delta,
    message_transfer_id,
    recompute_balances,
    tenant_account,
)
from bharatsend_core.domain.message import FINAL_STATUSES, Message, Status
from bharatsend_core.domain.tenants import BillingPoint, Tenant
from bharatsend_core.ports import UnitOfWork
from bharatsend_core.service.context import Context, require_tenant

__all__ = [
    "Balance",
    "LedgerService",
    "ReconcileReport",
    "Statement",
    "charge_ids",
    "post_charge",
    "refund_charge",
    "reserve_transfer",
    "settle_message",
    "settle_messages",
    "settlement_for",
    "void_charge",
]

_MAX_REFERENCE = 64


@frozen
class Balance:
    """A tenant's credits in paise: what it can spend, what is posted, what is reserved."""

    tenant_id: str
    available_paise: int
    posted_paise: int
    reserved_paise: int


@frozen
class Statement:
    """A page of a tenant's transfers with the available balance after each."""

    lines: tuple[StatementLine, ...]
    next_cursor: int | None


@frozen
class ReconcileReport:
    """What reconciliation checked and every discrepancy it found (empty when all agrees)."""

    problems: tuple[str, ...]
    accounts: int
    transfers: int
    messages: int

    @property
    def ok(self) -> bool:
        """True when the books agree to the last paisa."""
        return not self.problems


def reserve_transfer(message: Message, at: datetime) -> Transfer:
    """The pending charge of an accepted message."""
    return Transfer(
        id=message_transfer_id(message.id, Phase.RESERVE),
        kind=TransferKind.RESERVE,
        debit_account=tenant_account(message.tenant_id),
        credit_account=REVENUE_ACCOUNT,
        amount=message.price_paise,
        tenant_id=message.tenant_id,
        created_at=at,
        message_id=message.id,
    )


def _settlement(
    message: Message, reserve: Transfer, phase: Phase, at: datetime, amount: int | None
) -> Transfer:
    """The post or void of a message's reservation (a value; nothing is written)."""
    return Transfer(
        id=message_transfer_id(message.id, phase),
        kind=TransferKind.POST if phase is Phase.POST else TransferKind.VOID,
        debit_account=reserve.debit_account,
        credit_account=reserve.credit_account,
        amount=reserve.amount if amount is None else amount,
        tenant_id=message.tenant_id,
        created_at=at,
        pending_id=reserve.id,
        message_id=message.id,
    )


def _refund(message: Message, post: Transfer, at: datetime, amount: int | None) -> Transfer:
    """The compensating transfer of a posted charge (a value; nothing is written)."""
    return Transfer(
        id=message_transfer_id(message.id, Phase.REFUND),
        kind=TransferKind.REFUND,
        debit_account=post.credit_account,
        credit_account=post.debit_account,
        amount=post.amount if amount is None else amount,
        tenant_id=message.tenant_id,
        created_at=at,
        pending_id=post.id,
        message_id=message.id,
    )


def _settle(
    uow: UnitOfWork, message: Message, phase: Phase, at: datetime, amount: int | None
) -> Transfer | None:
    if message.price_paise == 0:
        return None
    reserve = uow.ledger.get(message_transfer_id(message.id, Phase.RESERVE))
    if reserve is None:
        raise TransferNotFound(f"message {message.id} has no reservation", field="message_id")
    return uow.ledger.record(_settlement(message, reserve, phase, at, amount))


def post_charge(
    uow: UnitOfWork, message: Message, at: datetime, amount: int | None = None
) -> Transfer | None:
    """Post a message's reservation at the billing point (idempotent); the rest is released."""
    return _settle(uow, message, Phase.POST, at, amount)


def void_charge(uow: UnitOfWork, message: Message, at: datetime) -> Transfer | None:
    """Release a message's reservation: it failed before the billing point (idempotent)."""
    return _settle(uow, message, Phase.VOID, at, None)


def refund_charge(
    uow: UnitOfWork, message: Message, at: datetime, amount: int | None = None
) -> Transfer | None:
    """Give back (part of) a posted charge as a new compensating transfer (idempotent)."""
    if message.price_paise == 0:
        return None
    post = uow.ledger.get(message_transfer_id(message.id, Phase.POST))
    if post is None:
        raise TransferNotFound(f"message {message.id} has no posted charge", field="message_id")
    return uow.ledger.record(_refund(message, post, at, amount))


_FAILED_DELIVERY = frozenset({Status.UNDELIVERED, Status.EXPIRED})
_PHASES = (Phase.RESERVE, Phase.POST, Phase.VOID, Phase.REFUND)


def charge_ids(message: Message) -> list[str]:
    """The transfer ids a message's charge can have (to read them all in one query)."""
    return [message_transfer_id(message.id, phase) for phase in _PHASES]


def settlement_for(
    message: Message, tenant: Tenant, known: Mapping[str, Transfer], at: datetime
) -> Transfer | None:
    """The transfer that settles a message's charge for the status it reached, or None.

    Pure: ``known`` holds the message's stored charge transfers (see
    :func:`charge_ids`). The ledger, not the tenant's current setting, says
    what was done before, so a billing point changed mid-flight never
    double-settles:

    - not yet settled: post on ``delivered``, or on ``sent`` (and a failed
      delivery) under the ``submit`` billing point; void on ``failed`` and,
      under ``delivery``, on ``undelivered``/``expired``/``rejected``;
    - already posted: a ``rejected`` message (operator or DLT scrubbing
      refused it) is refunded by a compensating transfer; other outcomes
      keep the charge (the carrier took the message).

    The post is the price on the route the message went out on (the tenant's
    rate card may price routes differently); accept reserved the dearest
    possible, and the difference goes back to the tenant with the post.
    """
    if message.price_paise == 0:
        return None
    status = message.status
    if status not in FINAL_STATUSES and status is not Status.SENT:
        return None
    reserve = known.get(message_transfer_id(message.id, Phase.RESERVE))
    if reserve is None:
        raise TransferNotFound(f"message {message.id} has no reservation", field="message_id")
    post = known.get(message_transfer_id(message.id, Phase.POST))
    void = known.get(message_transfer_id(message.id, Phase.VOID))
    if post is None and void is None:
        submit_billing = tenant.billing_point is BillingPoint.SUBMIT
        if status is Status.DELIVERED or (
            submit_billing and (status is Status.SENT or status in _FAILED_DELIVERY)
        ):
            return _settlement(message, reserve, Phase.POST, at, _route_price(message, tenant))
        if status is Status.SENT:
            return None  # billed on delivery
        return _settlement(message, reserve, Phase.VOID, at, None)
    refunded = message_transfer_id(message.id, Phase.REFUND) in known
    if post is not None and status is Status.REJECTED and not refunded:
        return _refund(message, post, at, None)
    return None


def settle_message(
    uow: UnitOfWork, message: Message, tenant: Tenant, at: datetime
) -> Transfer | None:
    """Settle one message's charge for its status (idempotent); see :func:`settlement_for`."""
    transfer = settlement_for(message, tenant, uow.ledger.get_many(charge_ids(message)), at)
    return None if transfer is None else uow.ledger.record(transfer)


def settle_messages(
    uow: UnitOfWork, messages: Sequence[tuple[Message, Tenant]], at: datetime
) -> list[Transfer]:
    """Settle a batch: one read of every charge, one write of every settlement.

    Each message must appear once. What :func:`settlement_for` decides is
    recorded with ``settle_many``; a message settled concurrently makes the
    batch fail with ``TransferConflict`` (the caller rolls back and retries).
    """
    known = uow.ledger.get_many([i for message, _ in messages for i in charge_ids(message)])
    transfers = [
        t
        for message, tenant in messages
        if (t := settlement_for(message, tenant, known, at)) is not None
    ]
    uow.ledger.settle_many(transfers, known=known)
    return transfers


def _route_price(message: Message, tenant: Tenant) -> int:
    """The message's price on its route, never above what was reserved."""
    try:
        category = Category(message.category)
    except ValueError:
        return message.price_paise
    price = tenant.rates.price(category, message.segments, route=message.route)
    return min(price, message.price_paise) if price > 0 else message.price_paise


class LedgerService:
    """Use cases on credits."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def top_up(self, tenant_id: str, paise: int, *, reference: str | None = None) -> Transfer:
        """Add credits. With a ``reference`` (your payment id) a repeat is a no-op."""
        if reference is not None and not (
            0 < len(reference) <= _MAX_REFERENCE and reference.isprintable()
        ):
            raise InvalidArgument(
                f"reference is 1 to {_MAX_REFERENCE} printable characters", field="reference"
            )
        transfer_id = (
            f"topup:{tenant_id}:{reference}"
            if reference is not None
            else f"topup:{self._ctx.ids.new_id('top')}"
        )
        transfer = Transfer(
            id=transfer_id,
            kind=TransferKind.TOP_UP,
            debit_account=TOPUPS_ACCOUNT,
            credit_account=tenant_account(tenant_id),
            amount=paise,
            tenant_id=tenant_id,
            created_at=self._ctx.clock.now(),
            reference=reference,
        )

        def run(uow: UnitOfWork) -> Transfer:
            require_tenant(uow, tenant_id)
            return uow.ledger.record(transfer)

        return self._ctx.write(run)

    def balance(self, tenant_id: str) -> Balance:
        """The tenant's available, posted and reserved paise."""

        def run(uow: UnitOfWork) -> Balance:
            require_tenant(uow, tenant_id)
            b = uow.ledger.balance(tenant_account(tenant_id))
            return Balance(tenant_id, b.available, b.posted, b.pending)

        return self._ctx.read(run)

    def statement(self, tenant_id: str, *, after: int | None = None, limit: int = 100) -> Statement:
        """Transfers oldest first from ``after`` (a cursor), each with the balance after it."""
        if not 1 <= limit <= 1000:
            raise InvalidArgument("limit is 1 to 1000", field="limit")
        account = tenant_account(tenant_id)

        def run(uow: UnitOfWork) -> Statement:
            require_tenant(uow, tenant_id)
            # The running balance needs every earlier transfer of the account.
            history = uow.ledger.transfers(account_id=account)
            by_id = {t.id: t for _, t in history}
            running = 0
            lines: list[StatementLine] = []
            next_cursor: int | None = None
            for seq, transfer in history:
                settles = by_id.get(transfer.pending_id) if transfer.pending_id else None
                delta = available_delta(transfer, settles, account)
                running += delta
                if after is not None and seq <= after:
                    continue
                if len(lines) == limit:
                    next_cursor = lines[-1].seq
                    break
                lines.append(StatementLine(transfer, delta, running, seq))
            return Statement(tuple(lines), next_cursor)

        return self._ctx.read(run)

    def reconcile(self, tenant_id: str | None = None) -> ReconcileReport:
        """Check the books: double entry, stored totals, and every message against its charges."""

        def run(uow: UnitOfWork) -> ReconcileReport:
            problems: list[str] = []
            transfers = [t for _, t in uow.ledger.transfers()]
            stored = {b.account_id: b for b in uow.ledger.balances()}
            total = sum(b.net for b in stored.values())
            if total != 0:
                problems.append(f"accounts sum to {total} paise, not 0")
            for account_id, computed in recompute_balances(transfers).items():
                if stored.get(account_id) != computed:
                    problems.append(f"{account_id}: stored totals differ from its transfers")
            for account_id, balance in stored.items():
                if account_id.startswith("tenant:") and balance.available < 0:
                    problems.append(f"{account_id}: available balance is {balance.available}")
            tenants = [require_tenant(uow, tenant_id)] if tenant_id else uow.tenants.list()
            checked = 0
            for tenant in tenants:
                checked += _reconcile_messages(uow, tenant.id, transfers, problems)
            return ReconcileReport(tuple(problems), len(stored), len(transfers), checked)

        return self._ctx.read(run)


def _reconcile_messages(
    uow: UnitOfWork, tenant_id: str, transfers: Sequence[Transfer], problems: list[str]
) -> int:
    summaries = uow.messages.summaries(tenant_id)
    by_message: dict[str, dict[TransferKind, Transfer]] = {}
    for t in transfers:
        if t.tenant_id == tenant_id and t.message_id is not None:
            by_message.setdefault(t.message_id, {})[t.kind] = t
    known = {s.id for s in summaries}
    for message_id in by_message.keys() - known:
        problems.append(f"transfers of {message_id} belong to no message of tenant {tenant_id}")
    for s in summaries:
        charges = by_message.get(s.id, {})
        reserve = charges.get(TransferKind.RESERVE)
        settled = charges.get(TransferKind.POST) or charges.get(TransferKind.VOID)
        if s.price_paise == 0:
            if charges:
                problems.append(f"{s.id}: free message has ledger transfers")
            continue
        if reserve is None or reserve.amount != s.price_paise:
            problems.append(f"{s.id}: reservation missing or not equal to its price")
            continue
        final = s.status in FINAL_STATUSES
        if TransferKind.POST in charges and TransferKind.VOID in charges:
            problems.append(f"{s.id}: both posted and voided")
        if final and settled is None:
            problems.append(f"{s.id}: {s.status} but its reservation is still pending")
        if s.status is Status.DELIVERED and TransferKind.POST not in charges:
            problems.append(f"{s.id}: delivered but never charged")
        if s.status in (Status.ACCEPTED, Status.SUBMITTING) and settled is not None:
            problems.append(f"{s.id}: {s.status} but already settled")
        refund = charges.get(TransferKind.REFUND)
        if refund is not None and TransferKind.POST not in charges:
            problems.append(f"{s.id}: refunded without a post")
    return len(summaries)
