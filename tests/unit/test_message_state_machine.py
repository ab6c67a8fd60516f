"""Property test: random legal and illegal events never break the message's invariants.

Hypothesis drives a message with 1-4 parts through random events at random
times (which may go backwards, as they do when hosts' clocks disagree) and
random receipt outcomes, some aimed at legal moves and some at anything.
After every step the invariants the rest of the system relies on must hold.
"""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bharatsend_core.domain.errors import IllegalTransition, InvalidArgument
from bharatsend_core.domain.message import (
    FINAL_STATUSES,
    TRANSITIONS,
    Claim,
    Event,
    Expire,
    Message,
    OutcomeUnknown,
    PartReceipt,
    PartStatus,
    PartSubmitted,
    ReceiptOutcome,
    ReceiptTimeout,
    Status,
    SubmitFailed,
)
from bharatsend_core.domain.webhooks import events_from, makes_events

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
OTP = "739105"

_SEVERITY = {
    PartStatus.DELIVERED: 0,
    PartStatus.EXPIRED: 1,
    PartStatus.UNDELIVERED: 2,
    PartStatus.REJECTED: 3,
}

steps = st.integers(-300, 900)  # seconds; negative = this host's clock is behind
part_indexes = st.integers(0, 4)  # may point past the message's parts
# Mostly "retry later" so that runs do not all end in `failed` early.
retry_delays = st.one_of(st.integers(0, 600), st.integers(-60, 3600), st.none())
outcomes = st.sampled_from(ReceiptOutcome)
# Weighted towards `delivered` so multipart messages reach the delivered fold too.
likely_outcomes = st.one_of(st.just(ReceiptOutcome.DELIVERED), outcomes)
error_codes = st.sampled_from(["carrier_throttled", "carrier_rejected", "attempts_exhausted"])


class MessageLifecycle(RuleBasedStateMachine):
    """Applies random events to one message and checks the invariants after each."""

    message: Message
    now: datetime
    final_status: Status | None
    ids: int

    @initialize(segments=st.integers(1, 4), validity_minutes=st.integers(1, 90))
    def accept(self, segments: int, validity_minutes: int) -> None:
        self.now = T0
        self.final_status = None
        self.ids = 0
        self.message = Message.accept(
            id="msg_prop",
            tenant_id="ten_1",
            phone="+919812345678",
            content=f"{OTP} is your OTP. Do not share it. -ACME",
            template_id="1107161234567890123",
            header="ACMEOT",
            entity_id="1101161234567890123",
            category="service_implicit",
            encoding="gsm7",
            segments=segments,
            now=T0,
            validity=timedelta(minutes=validity_minutes),
        )

    # ------------------------------------------------------------------ helpers

    def tick(self, seconds: int) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def retry_at(self, delay: int | None) -> datetime | None:
        return None if delay is None else self.now + timedelta(seconds=delay)

    def carrier_id(self) -> str:
        self.ids += 1
        return f"carrier-{self.ids}"

    def apply(self, event: Event) -> None:
        before = self.message
        snapshot = copy.deepcopy(before)
        name = type(event).__name__
        index = getattr(event, "index", None)
        try:
            after = before.apply(event)
        except IllegalTransition:
            assert before == snapshot, "an illegal event changed the message"
            return
        except InvalidArgument:
            assert name in TRANSITIONS[before.status]
            assert index is not None
            assert index >= before.segments, "only an out-of-range part index is invalid"
            assert before == snapshot
            return

        assert before == snapshot, "apply mutated its input"
        assert name in TRANSITIONS[before.status], f"{name} applied outside the table"
        assert after.status in TRANSITIONS[before.status][name]
        # Final statuses are absorbing; late receipts are recorded, nothing else moves.
        if before.status in FINAL_STATUSES:
            assert after.status is before.status
            assert after.parts == before.parts
            assert after.error == before.error
        # Append-only timeline.
        assert after.timeline[: len(before.timeline)] == before.timeline
        assert len(after.timeline) > len(before.timeline)
        assert after.attempts >= before.attempts
        for old, new in zip(before.parts, after.parts, strict=True):
            if old.status is not PartStatus.PENDING:
                assert new.carrier_message_id == old.carrier_message_id
            if old.is_final:
                assert new == old
        self.message = after
        if after.status in FINAL_STATUSES and self.final_status is None:
            self.final_status = after.status

    def parts_with(self, *statuses: PartStatus) -> list[int]:
        return [p.index for p in self.message.parts if p.status in statuses]

    # ------------------------------------------------------------------ random events

    @rule(step=steps, route=st.sampled_from(["route_a", "route_b"]))
    def claim(self, step: int, route: str) -> None:
        self.apply(Claim(self.tick(step), route))

    @rule(step=steps, index=part_indexes)
    def submit_any_part(self, step: int, index: int) -> None:
        self.apply(PartSubmitted(self.tick(step), index, self.carrier_id()))

    @rule(
        step=steps, code=error_codes, carrier_code=st.none() | st.just("0x58"), delay=retry_delays
    )
    def submit_failed(
        self, step: int, code: str, carrier_code: str | None, delay: int | None
    ) -> None:
        at = self.tick(step)
        self.apply(SubmitFailed(at, code, carrier_code, self.retry_at(delay)))

    @rule(step=steps, index=part_indexes, delay=retry_delays)
    def outcome_unknown(self, step: int, index: int, delay: int | None) -> None:
        at = self.tick(step)
        self.apply(OutcomeUnknown(at, index, self.retry_at(delay)))

    @rule(step=steps, index=part_indexes, outcome=outcomes, code=st.none() | st.just("001"))
    def receipt_for_any_part(
        self, step: int, index: int, outcome: ReceiptOutcome, code: str | None
    ) -> None:
        self.apply(PartReceipt(self.tick(step), index, outcome, code))

    @rule(step=steps)
    def expire(self, step: int) -> None:
        self.apply(Expire(self.tick(step)))

    @rule(step=steps)
    def receipt_timeout(self, step: int) -> None:
        self.apply(ReceiptTimeout(self.tick(step)))

    # ------------------------------------------------------------------ aimed at legal moves

    @precondition(lambda self: self.message.status is Status.SUBMITTING)
    @rule(step=steps, pick=st.integers(0, 3))
    def submit_a_pending_part(self, step: int, pick: int) -> None:
        pending = self.message.pending_part_indexes
        self.apply(PartSubmitted(self.tick(step), pending[pick % len(pending)], self.carrier_id()))

    @precondition(lambda self: any(p.status is not PartStatus.PENDING for p in self.message.parts))
    @rule(step=steps, pick=st.integers(0, 3), outcome=likely_outcomes)
    def receipt_for_a_submitted_part(self, step: int, pick: int, outcome: ReceiptOutcome) -> None:
        candidates = [p.index for p in self.message.parts if p.status is not PartStatus.PENDING]
        self.apply(PartReceipt(self.tick(step), candidates[pick % len(candidates)], outcome))

    @precondition(lambda self: self.message.status in (Status.ACCEPTED, Status.RETRYING))
    @rule(step=st.integers(0, 120))
    def claim_soon(self, step: int) -> None:
        self.apply(Claim(self.tick(step), "route_a"))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def final_statuses_are_absorbing(self) -> None:
        if self.final_status is not None:
            assert self.message.status is self.final_status

    @invariant()
    def timeline_is_numbered_and_never_goes_backwards(self) -> None:
        timeline = self.message.timeline
        assert [e.sequence for e in timeline] == list(range(len(timeline)))
        assert all(a.at <= b.at for a, b in itertools.pairwise(timeline))
        assert timeline[0].kind == "accepted"
        assert timeline[-1].status is self.message.status
        assert self.message.updated_at == timeline[-1].at

    @invariant()
    def parts_fold_consistently(self) -> None:
        message = self.message
        parts = message.parts
        if message.status is Status.DELIVERED:
            assert all(p.status is PartStatus.DELIVERED for p in parts)
        if message.is_final and message.status is not Status.FAILED:
            worst = max(parts, key=lambda p: _SEVERITY[p.status])
            assert message.status.value == worst.status.value
        if message.status is Status.SENT:
            assert not message.pending_part_indexes
        if message.status in (Status.ACCEPTED, Status.SUBMITTING, Status.RETRYING):
            assert message.pending_part_indexes, "an unsent message has something to send"

    @invariant()
    def retry_time_and_error_match_the_status(self) -> None:
        message = self.message
        assert (message.next_attempt_at is not None) == (message.status is Status.RETRYING)
        ended_badly = message.is_final and message.status is not Status.DELIVERED
        assert (message.error is not None) == ended_badly
        if message.status in (Status.SUBMITTING, Status.RETRYING, Status.SENT):
            assert message.attempts >= 1

    @invariant()
    def every_entry_passes_its_own_validators(self) -> None:
        # apply() builds entries without re-running them (values.trusted).
        for entry in self.message.timeline:
            attrs.validate(entry)
            assert isinstance(entry.status, Status)

    @invariant()
    def makes_events_says_what_events_from_would_build(self) -> None:
        # record_events skips the endpoint lookup on makes_events' word alone.
        message = self.message
        for after in range(-1, len(message.timeline) + 1):
            assert makes_events(message, after) == bool(events_from(message, after))

    @invariant()
    def content_never_leaks(self) -> None:
        assert OTP not in repr(self.message)
        for entry in self.message.timeline:
            assert all(not (isinstance(v, str) and OTP in v) for _, v in entry.detail)


MessageLifecycle.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMessageLifecycle = MessageLifecycle.TestCase
