"""Pure rules of the ledger, API keys and ids, with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bharatsend_core.domain.errors import (
    InsufficientCredits,
    InsufficientScope,
    InvalidApiKey,
    InvalidArgument,
    TransferConflict,
)
from bharatsend_core.domain.ids import encode_base32, format_id, is_id
from bharatsend_core.domain.keys import issue_key, parse_key, require_scope, verify_key
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    AccountBalance,
    Transfer,
    TransferKind,
    apply_effects,
    effects,
    message_transfer_id,
    recompute_balances,
    same_transfer,
    tenant_account,
)

T0 = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
ACME = tenant_account("ten_acme")

# ------------------------------------------------------------------------- ledger


def transfer(kind: str, tid: str, amount: int, pending: str | None = None, **kw: str) -> Transfer:
    debit, credit = {
        "top_up": (TOPUPS_ACCOUNT, ACME),
        "reserve": (ACME, REVENUE_ACCOUNT),
        "post": (ACME, REVENUE_ACCOUNT),
        "void": (ACME, REVENUE_ACCOUNT),
        "refund": (REVENUE_ACCOUNT, ACME),
    }[kind]
    return Transfer(tid, kind, debit, credit, amount, "ten_acme", T0, pending, **kw)


class LedgerMachine(RuleBasedStateMachine):
    """Random top-ups, reservations, posts, voids and refunds against the pure rules."""

    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, AccountBalance] = {}
        self.transfers: list[Transfer] = []
        self.pending: dict[str, Transfer] = {}
        self.posted: dict[str, Transfer] = {}
        self.n = 0

    def _apply(self, t: Transfer, settles: Transfer | None = None) -> bool:
        try:
            self.balances.update(apply_effects(self.balances, effects(t, settles)))
        except InsufficientCredits:
            return False
        self.transfers.append(t)
        return True

    @rule(amount=st.integers(1, 500))
    def top_up(self, amount: int) -> None:
        self.n += 1
        self._apply(transfer("top_up", f"top{self.n}", amount))

    @rule(amount=st.integers(1, 300))
    def reserve(self, amount: int) -> None:
        self.n += 1
        t = transfer("reserve", message_transfer_id(f"m{self.n}", "reserve"), amount)
        before = self.balances.get(ACME, AccountBalance(ACME)).available
        if self._apply(t):
            self.pending[t.id] = t
        else:
            assert before < amount  # refused only when it did not fit

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), post=st.booleans())
    def settle(self, data: st.DataObject, post: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.pending)))
        r = self.pending.pop(rid)
        amount = data.draw(st.integers(1, r.amount)) if post else r.amount
        t = transfer("post" if post else "void", rid + ("p" if post else "v"), amount, rid)
        assert self._apply(t, r)
        if post:
            self.posted[t.id] = t

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.posted)))
        p = self.posted.pop(pid)
        assert self._apply(
            transfer("refund", pid + "r", data.draw(st.integers(1, p.amount)), pid), p
        )

    @invariant()
    def accounts_sum_to_zero(self) -> None:
        assert sum(b.net for b in self.balances.values()) == 0

    @invariant()
    def the_tenant_never_overdraws(self) -> None:
        assert self.balances.get(ACME, AccountBalance(ACME)).available >= 0

    @invariant()
    def totals_equal_a_replay_of_the_transfers(self) -> None:
        rebuilt = recompute_balances(self.transfers)
        assert rebuilt == self.balances

    @invariant()
    def reserved_equals_the_open_reservations(self) -> None:
        acme = self.balances.get(ACME, AccountBalance(ACME))
        assert acme.pending == sum(t.amount for t in self.pending.values())


TestLedgerMachine = LedgerMachine.TestCase


def test_settlements_must_fit_what_they_settle() -> None:
    r = transfer("reserve", "m.reserve", 100)
    with pytest.raises(TransferConflict):
        effects(transfer("post", "m.post", 101, "m.reserve"), r)
    with pytest.raises(TransferConflict):
        effects(transfer("post", "m.post", 10, "m.reserve"), None)
    with pytest.raises(TransferConflict):
        effects(transfer("refund", "m.refund", 10, "m.reserve"), r)  # refunds settle posts
    with pytest.raises(InvalidArgument):
        transfer("post", "m.post", 10)  # no pending id
    with pytest.raises(InvalidArgument):
        transfer("top_up", "t", 0)


def test_a_replay_differs_only_in_time() -> None:
    a = transfer("top_up", "t1", 100)
    later = Transfer(
        "t1", TransferKind.TOP_UP, TOPUPS_ACCOUNT, ACME, 100, "ten_acme", T0 + timedelta(1)
    )
    assert same_transfer(a, later)
    assert not same_transfer(a, transfer("top_up", "t1", 101))


def test_overdraft_is_refused_with_the_available_balance() -> None:
    balances = apply_effects({}, effects(transfer("top_up", "t", 50)))
    with pytest.raises(InsufficientCredits) as info:
        apply_effects(balances, effects(transfer("reserve", "m.reserve", 51)))
    assert info.value.detail["available_paise"] == 50


# ------------------------------------------------------------------------- keys

PEPPER = b"p" * 32


@given(st.binary(min_size=10, max_size=10), st.binary(min_size=25, max_size=25),
       st.sampled_from(["live", "test"]))  # fmt: skip
def test_an_issued_key_parses_and_verifies(id_bytes: bytes, secret_bytes: bytes, mode: str) -> None:
    issued = issue_key(tenant_id="ten_1", mode=mode, scopes=["sms:send"], pepper=PEPPER,
                       id_bytes=id_bytes, secret_bytes=secret_bytes, now=T0)  # fmt: skip
    parsed = parse_key(issued.secret)
    assert parsed.key_id == issued.key.id
    assert verify_key(issued.key, parsed, PEPPER, T0) == issued.key
    assert parsed.secret not in issued.key.secret_hash
    assert parsed.secret not in repr(issued.key)


@given(st.integers(0, 39), st.sampled_from("0123456789abcdefghjkmnpqrstvwxyz"))
def test_changing_any_character_of_the_secret_fails(position: int, char: str) -> None:
    issued = issue_key(tenant_id="ten_1", mode="live", scopes=["sms:send"], pepper=PEPPER,
                       id_bytes=b"\x01" * 10, secret_bytes=b"\x02" * 25, now=T0)  # fmt: skip
    parsed = parse_key(issued.secret)
    secret = parsed.secret[:position] + char + parsed.secret[position + 1 :]
    if secret == parsed.secret:
        return
    forged = parse_key(f"bs_live_{parsed.key_id}_{secret}")
    with pytest.raises(InvalidApiKey):
        verify_key(issued.key, forged, PEPPER, T0)
    with pytest.raises(InvalidApiKey):
        verify_key(issued.key, parsed, b"q" * 32, T0)  # another pepper


@given(st.text(max_size=80))
def test_parse_key_refuses_anything_malformed_with_one_error(raw: str) -> None:
    with pytest.raises(InvalidApiKey, match=r"^the API key is missing or invalid$"):
        parse_key(raw)


def test_scope_check_and_key_lifecycle() -> None:
    issued = issue_key(tenant_id="ten_1", mode="live", scopes=["sms:read"], pepper=PEPPER,
                       id_bytes=b"\x01" * 10, secret_bytes=b"\x02" * 25, now=T0,
                       expires_at=T0 + timedelta(days=1))  # fmt: skip
    with pytest.raises(InsufficientScope):
        require_scope(issued.key, "sms:send")
    assert issued.key.usable_at(T0)
    assert not issued.key.usable_at(T0 + timedelta(days=1))
    revoked = issued.key.revoke(T0)
    assert revoked.revoke(T0 + timedelta(1)).revoked_at == T0
    assert not revoked.usable_at(T0)
    with pytest.raises(InvalidArgument):
        issue_key(tenant_id="t", mode="live", scopes=["sms:send"], pepper=PEPPER,
                  id_bytes=b"\x01" * 10, secret_bytes=b"\x02" * 24, now=T0)  # fmt: skip


# ------------------------------------------------------------------------- ids


@given(st.integers(0, 2**47), st.integers(1, 10**6), st.binary(min_size=10, max_size=10),
       st.binary(min_size=10, max_size=10))  # fmt: skip
def test_ids_sort_by_time(ms: int, later: int, r1: bytes, r2: bytes) -> None:
    a, b = format_id("msg", ms, r1), format_id("msg", ms + later, r2)
    assert a < b
    assert is_id(a, "msg")
    assert not is_id(a, "ten")
    assert len(a) == 30


@given(st.integers(0, 2**48 - 1), st.binary(min_size=10, max_size=10))
def test_an_id_is_its_time_and_randomness_in_crockford_base32(ms: int, random80: bytes) -> None:
    # The same 130 bits written out one character at a time, the slow way.
    expected = encode_base32(ms << 80 | int.from_bytes(random80), 26)
    assert format_id("msg", ms, random80) == f"msg_{expected}"
