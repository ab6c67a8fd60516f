"""Behaviour of the message aggregate: states, parts, receipts, timeline, retries.

The state machine is pure (STYLE rule 6): every test builds values, applies
events with explicit times and checks the new value; nothing sleeps or reads
a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain import message as message_module
from bharatsend_core.domain.errors import IllegalTransition, InvalidArgument
from bharatsend_core.domain.message import (
    FINAL_STATUSES,
    TRANSITIONS,
    Claim,
    Event,
    Expire,
    FailureReason,
    Message,
    MessageError,
    OutcomeUnknown,
    Part,
    PartReceipt,
    PartStatus,
    PartSubmitted,
    ReceiptOutcome,
    RetryPolicy,
    Status,
    SubmitFailed,
    TimelineEntry,
    backoff_delay,
    schedule_retry,
    state_diagram,
)

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
VALIDITY = timedelta(minutes=10)
OTP = "482913"
CONTENT = f"{OTP} is your OTP for login. Do not share it with anyone. -ACME"


def at(seconds: float) -> datetime:
    """A time ``seconds`` after T0; tests name times relative to acceptance."""
    return T0 + timedelta(seconds=seconds)


def accepted(segments: int = 1, validity: timedelta = VALIDITY) -> Message:
    return Message.accept(
        id="msg_01HZX",
        tenant_id="ten_1",
        phone="+919812345678",
        content=CONTENT,
        template_id="1107161234567890123",
        header="ACMEOT",
        entity_id="1101161234567890123",
        category="service_implicit",
        encoding="gsm7",
        segments=segments,
        now=T0,
        validity=validity,
        client_message_id="order-42",
    )


def claimed(segments: int = 1) -> Message:
    return accepted(segments).apply(Claim(at(1), "route_a"))


def sent(segments: int = 1) -> Message:
    message = claimed(segments)
    for i in range(segments):
        message = message.apply(PartSubmitted(at(2), i, f"carrier-{i}"))
    return message


def kinds(message: Message) -> list[str]:
    return [entry.kind for entry in message.timeline]


def message_in(status: Status) -> Message:
    """A one-part message that has reached ``status`` by legal moves."""
    if status is Status.ACCEPTED:
        return accepted()
    if status is Status.SUBMITTING:
        return claimed()
    if status is Status.RETRYING:
        return claimed().apply(SubmitFailed(at(2), "carrier_throttled", "0x58", at(30)))
    if status is Status.FAILED:
        return claimed().apply(SubmitFailed(at(2), "carrier_rejected", "0x0b", None))
    if status is Status.SENT:
        return sent()
    return sent().apply(PartReceipt(at(5), 0, ReceiptOutcome(status.value)))


def one_of_each_event(when: datetime) -> list[Event]:
    return [
        Claim(when, "route_a"),
        PartSubmitted(when, 0, "carrier-x"),
        SubmitFailed(when, "carrier_throttled", None, when + timedelta(seconds=10)),
        OutcomeUnknown(when, 0, None),
        PartReceipt(when, 0, ReceiptOutcome.DELIVERED),
        Expire(when),
    ]


# --------------------------------------------------------------------------- accept


def test_accept_starts_accepted_with_all_parts_pending_and_one_timeline_entry() -> None:
    message = accepted(segments=3)

    assert message.status is Status.ACCEPTED
    assert message.attempts == 0
    assert message.expires_at == T0 + VALIDITY
    assert message.created_at == message.updated_at == T0
    assert message.pending_part_indexes == (0, 1, 2)
    assert [p.index for p in message.parts] == [0, 1, 2]
    assert kinds(message) == ["accepted"]
    assert message.timeline[0].sequence == 0
    assert not message.is_final


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"segments": 0}, "segments"),
        ({"validity": timedelta(0)}, "validity"),
        ({"validity": timedelta(seconds=-1)}, "validity"),
        ({"now": datetime(2025, 1, 15, 10, 0)}, "now"),  # naive on purpose
        ({"phone": "9812345678"}, "phone"),
        ({"encoding": "latin1"}, "encoding"),
    ],
)
def test_accept_rejects_invalid_input_with_field(overrides: dict[str, object], field: str) -> None:
    kwargs: dict[str, object] = {
        "id": "msg_1",
        "tenant_id": "ten_1",
        "phone": "+919812345678",
        "content": CONTENT,
        "template_id": "1107161234567890123",
        "header": "ACMEOT",
        "entity_id": "1101161234567890123",
        "category": "transactional",
        "encoding": "gsm7",
        "segments": 1,
        "now": T0,
        "validity": VALIDITY,
    }
    kwargs.update(overrides)

    with pytest.raises(InvalidArgument) as excinfo:
        Message.accept(**kwargs)  # type: ignore[arg-type]

    assert excinfo.value.field == field


def test_message_constructor_rejects_parts_that_do_not_match_segments() -> None:
    with pytest.raises(InvalidArgument):
        attrs.evolve(accepted(segments=2), parts=(Part(0),))


# --------------------------------------------------------------------------- happy paths


def test_single_part_happy_path_goes_accepted_submitting_sent_delivered() -> None:
    message = accepted()
    statuses = [message.status]
    events: list[Event] = [
        Claim(at(1), "route_a"),
        PartSubmitted(at(2), 0, "carrier-0"),
        PartReceipt(at(9), 0, ReceiptOutcome.DELIVERED),
    ]
    for event in events:
        message = message.apply(event)
        statuses.append(message.status)

    assert statuses == [Status.ACCEPTED, Status.SUBMITTING, Status.SENT, Status.DELIVERED]
    assert kinds(message) == [
        "accepted",
        "claimed",
        "part_submitted",
        "sent",
        "receipt",
        "delivered",
    ]
    assert [e.status for e in message.timeline] == [
        Status.ACCEPTED,
        Status.SUBMITTING,
        Status.SUBMITTING,
        Status.SENT,
        Status.SENT,
        Status.DELIVERED,
    ]
    assert message.attempts == 1
    assert message.route == "route_a"
    assert message.error is None
    assert message.parts[0] == Part(
        0,
        PartStatus.DELIVERED,
        carrier_message_id="carrier-0",
        submitted_at=at(2),
        final_at=at(9),
        route="route_a",
    )
    assert message.updated_at == at(9)
    assert message.is_final


def test_multipart_message_is_delivered_only_when_every_part_is() -> None:
    message = sent(segments=3)

    message = message.apply(PartReceipt(at(5), 0, ReceiptOutcome.DELIVERED))
    assert message.status is Status.SENT
    message = message.apply(PartReceipt(at(6), 2, ReceiptOutcome.DELIVERED))
    assert message.status is Status.SENT
    message = message.apply(PartReceipt(at(7), 1, ReceiptOutcome.DELIVERED))

    assert message.status is Status.DELIVERED
    assert all(p.status is PartStatus.DELIVERED for p in message.parts)


def test_one_undelivered_part_makes_the_message_undelivered() -> None:
    message = sent(segments=2)

    message = message.apply(PartReceipt(at(5), 0, ReceiptOutcome.UNDELIVERED, "001"))
    message = message.apply(PartReceipt(at(6), 1, ReceiptOutcome.DELIVERED))

    assert message.status is Status.UNDELIVERED
    assert message.error == MessageError("undelivered", FailureReason.UNDELIVERED, "001")
    assert message.timeline[-1].kind == "undelivered"
    assert message.timeline[-1].get("index") == 0


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ((ReceiptOutcome.UNDELIVERED, ReceiptOutcome.REJECTED), Status.REJECTED),
        ((ReceiptOutcome.REJECTED, ReceiptOutcome.UNDELIVERED), Status.REJECTED),
        ((ReceiptOutcome.EXPIRED, ReceiptOutcome.UNDELIVERED), Status.UNDELIVERED),
        ((ReceiptOutcome.DELIVERED, ReceiptOutcome.EXPIRED), Status.EXPIRED),
        ((ReceiptOutcome.DELIVERED, ReceiptOutcome.DELIVERED), Status.DELIVERED),
    ],
)
def test_message_takes_the_worst_part_state(
    outcomes: tuple[ReceiptOutcome, ReceiptOutcome], expected: Status
) -> None:
    message = sent(segments=2)
    for index, outcome in enumerate(outcomes):
        message = message.apply(PartReceipt(at(5 + index), index, outcome))

    assert message.status is expected
    if expected is Status.DELIVERED:
        assert message.error is None
    else:
        assert message.error is not None
        assert message.error.reason == FailureReason(expected.value)


def test_receipt_before_last_part_submitted_is_kept_and_folds_once_every_part_is_final() -> None:
    message = claimed(segments=2).apply(PartSubmitted(at(2), 0, "carrier-0"))
    # Part 0's receipt overtakes part 1's submit response.
    message = message.apply(PartReceipt(at(3), 0, ReceiptOutcome.DELIVERED))
    assert message.status is Status.SUBMITTING
    assert message.parts[0].status is PartStatus.DELIVERED

    message = message.apply(PartSubmitted(at(4), 1, "carrier-1"))
    assert message.status is Status.SENT
    message = message.apply(PartReceipt(at(5), 1, ReceiptOutcome.DELIVERED))

    assert message.status is Status.DELIVERED
    assert kinds(message)[-5:] == ["receipt", "part_submitted", "sent", "receipt", "delivered"]


def test_receipt_for_a_pending_part_raises_and_leaves_the_message_unchanged() -> None:
    message = claimed(segments=2).apply(PartSubmitted(at(2), 0, "carrier-0"))
    snapshot = attrs.evolve(message)

    with pytest.raises(IllegalTransition) as excinfo:
        message.apply(PartReceipt(at(3), 1, ReceiptOutcome.DELIVERED))

    assert message == snapshot
    assert "pending" in excinfo.value.message
    # Once the submit response arrives the parked receipt applies.
    message = message.apply(PartSubmitted(at(4), 1, "carrier-1"))
    message = message.apply(PartReceipt(at(3), 1, ReceiptOutcome.DELIVERED))
    assert message.parts[1].status is PartStatus.DELIVERED


def test_intermediate_receipt_is_recorded_without_a_state_change() -> None:
    message = sent()

    after = message.apply(PartReceipt(at(5), 0, ReceiptOutcome.ENROUTE))

    assert after.status is Status.SENT
    assert after.parts == message.parts
    assert after.timeline[:-1] == message.timeline
    assert after.timeline[-1].kind == "receipt"
    assert after.timeline[-1].get("outcome") == "enroute"


def test_part_index_past_the_segments_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        claimed(segments=2).apply(PartSubmitted(at(2), 2, "carrier-2"))

    assert excinfo.value.field == "index"


def test_a_part_cannot_be_submitted_twice() -> None:
    message = claimed(segments=2).apply(PartSubmitted(at(2), 0, "carrier-0"))

    with pytest.raises(IllegalTransition):
        message.apply(PartSubmitted(at(3), 0, "carrier-0b"))


# --------------------------------------------------------------------------- failures and retries


def test_transient_failure_goes_to_retrying_with_next_attempt_at() -> None:
    message = claimed().apply(SubmitFailed(at(2), "carrier_throttled", "0x58", at(30)))

    assert message.status is Status.RETRYING
    assert message.next_attempt_at == at(30)
    assert message.error is None
    assert kinds(message)[-2:] == ["submit_failed", "retry_scheduled"]
    assert message.timeline[-2].get("carrier_code") == "0x58"


def test_claim_after_retry_counts_the_attempt_and_clears_next_attempt_at() -> None:
    message = claimed().apply(SubmitFailed(at(2), "carrier_throttled", None, at(30)))

    message = message.apply(Claim(at(31), "route_b"))

    assert message.status is Status.SUBMITTING
    assert message.attempts == 2
    assert message.route == "route_b"
    assert message.next_attempt_at is None


def test_retry_resends_only_pending_parts() -> None:
    message = claimed(segments=3).apply(PartSubmitted(at(2), 0, "carrier-0"))
    message = message.apply(SubmitFailed(at(3), "bind_lost", None, at(30)))

    assert message.status is Status.RETRYING
    assert message.pending_part_indexes == (1, 2)
    assert message.parts[0].carrier_message_id == "carrier-0"

    message = message.apply(Claim(at(31), "route_a"))
    with pytest.raises(IllegalTransition):
        message.apply(PartSubmitted(at(32), 0, "carrier-0-again"))
    message = message.apply(PartSubmitted(at(32), 1, "carrier-1"))
    message = message.apply(PartSubmitted(at(33), 2, "carrier-2"))

    assert message.status is Status.SENT
    assert [p.carrier_message_id for p in message.parts] == ["carrier-0", "carrier-1", "carrier-2"]


def test_receipts_for_submitted_parts_apply_while_retrying() -> None:
    message = claimed(segments=2).apply(PartSubmitted(at(2), 0, "carrier-0"))
    message = message.apply(SubmitFailed(at(3), "bind_lost", None, at(30)))

    message = message.apply(PartReceipt(at(4), 0, ReceiptOutcome.DELIVERED))

    assert message.status is Status.RETRYING
    assert message.parts[0].status is PartStatus.DELIVERED


def test_permanent_failure_fails_before_submit() -> None:
    message = claimed().apply(SubmitFailed(at(2), "carrier_rejected", "0x0b", None))

    assert message.status is Status.FAILED
    assert message.error == MessageError(
        "carrier_rejected", FailureReason.FAILED_BEFORE_SUBMIT, "0x0b"
    )
    assert message.next_attempt_at is None
    assert kinds(message)[-2:] == ["submit_failed", "failed"]


def test_giving_up_on_attempts_records_attempts_exhausted() -> None:
    message = claimed().apply(SubmitFailed(at(2), "attempts_exhausted", "0x58", None))

    assert message.error == MessageError(
        "attempts_exhausted", FailureReason.ATTEMPTS_EXHAUSTED, "0x58"
    )


def test_retry_at_or_past_expiry_fails_with_validity_expired() -> None:
    message = claimed()

    failed = message.apply(SubmitFailed(at(2), "carrier_throttled", "0x58", message.expires_at))

    assert failed.status is Status.FAILED
    assert failed.error == MessageError("validity_expired", FailureReason.VALIDITY_EXPIRED, "0x58")


def test_outcome_unknown_with_retry_flags_a_possible_duplicate() -> None:
    message = claimed().apply(OutcomeUnknown(at(2), 0, at(30)))

    assert message.status is Status.RETRYING
    assert message.possible_duplicate
    assert message.next_attempt_at == at(30)
    assert message.pending_part_indexes == (0,)
    # The flag survives the resend: the handset may still get the text twice.
    message = message.apply(Claim(at(31), "route_a")).apply(PartSubmitted(at(32), 0, "c-0"))
    assert message.possible_duplicate
    assert message.status is Status.SENT


def test_outcome_unknown_without_retry_counts_the_part_as_submitted() -> None:
    message = claimed(segments=2).apply(OutcomeUnknown(at(2), 0, None))

    assert message.status is Status.SUBMITTING
    assert message.parts[0].status is PartStatus.SUBMITTED
    assert message.parts[0].outcome_unknown
    assert message.parts[0].carrier_message_id is None
    assert not message.possible_duplicate

    message = message.apply(PartSubmitted(at(3), 1, "carrier-1"))
    assert message.status is Status.SENT


def test_outcome_unknown_on_the_last_part_sends_the_message() -> None:
    message = claimed().apply(OutcomeUnknown(at(2), 0, None))

    assert message.status is Status.SENT
    assert kinds(message)[-2:] == ["outcome_unknown", "sent"]


def test_outcome_unknown_with_retry_past_expiry_counts_the_part_as_submitted() -> None:
    message = claimed()

    message = message.apply(OutcomeUnknown(at(2), 0, message.expires_at + timedelta(seconds=1)))

    assert message.status is Status.SENT
    assert message.parts[0].outcome_unknown
    assert message.error is None


# --------------------------------------------------------------------------- late receipts


def test_duplicate_receipt_changes_nothing_but_is_recorded() -> None:
    message = sent(segments=2).apply(PartReceipt(at(5), 0, ReceiptOutcome.DELIVERED))

    after = message.apply(PartReceipt(at(6), 0, ReceiptOutcome.UNDELIVERED))

    assert after.status is message.status
    assert after.parts == message.parts
    assert after.timeline[:-1] == message.timeline
    assert after.timeline[-1].kind == "receipt_duplicate"
    assert after.timeline[-1].get("part_status") == "delivered"


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_late_receipt_on_a_final_message_is_recorded_and_status_unchanged(final: Status) -> None:
    message = message_in(final)

    after = message.apply(PartReceipt(at(60), 0, ReceiptOutcome.REJECTED))

    assert after.status is final
    assert after.parts == message.parts
    assert after.error == message.error
    assert after.timeline[:-1] == message.timeline
    assert after.timeline[-1].kind == "receipt_ignored"
    assert after.timeline[-1].status is final


# --------------------------------------------------------------------------- expiry


def test_claim_at_or_after_expiry_is_illegal() -> None:
    message = accepted()

    with pytest.raises(IllegalTransition) as excinfo:
        message.apply(Claim(message.expires_at, "route_a"))

    assert "Expire" in excinfo.value.message
    assert message == accepted()


def test_expire_before_expiry_is_illegal() -> None:
    message = accepted()

    with pytest.raises(IllegalTransition):
        message.apply(Expire(message.expires_at - timedelta(microseconds=1)))


@pytest.mark.parametrize("status", [Status.ACCEPTED, Status.RETRYING])
def test_expire_after_expiry_fails_with_expired_before_submit(status: Status) -> None:
    message = message_in(status)

    message = message.apply(Expire(message.expires_at))

    assert message.status is Status.FAILED
    assert message.error == MessageError("expired_before_submit", FailureReason.VALIDITY_EXPIRED)
    assert message.next_attempt_at is None
    assert message.timeline[-1].kind == "failed"


# --------------------------------------------------------------------------- time


NAIVE = datetime(2025, 1, 15, 10, 0)  # naive on purpose


@pytest.mark.parametrize(
    "build",
    [
        lambda: Claim(NAIVE, "route_a"),
        lambda: PartSubmitted(NAIVE, 0, "c"),
        lambda: SubmitFailed(NAIVE, "carrier_throttled", None, None),
        lambda: SubmitFailed(T0, "carrier_throttled", None, NAIVE),
        lambda: OutcomeUnknown(NAIVE, 0, None),
        lambda: OutcomeUnknown(T0, 0, NAIVE),
        lambda: PartReceipt(NAIVE, 0, ReceiptOutcome.DELIVERED),
        lambda: Expire(NAIVE),
        lambda: TimelineEntry(0, NAIVE, "accepted", Status.ACCEPTED),
        lambda: Part(0, submitted_at=NAIVE),
        lambda: schedule_retry(claimed(), NAIVE, RetryPolicy(), 0.0),
    ],
    ids=[
        "claim",
        "part_submitted",
        "submit_failed",
        "submit_failed_retry_at",
        "outcome_unknown",
        "outcome_unknown_retry_at",
        "part_receipt",
        "expire",
        "timeline_entry",
        "part",
        "schedule_retry",
    ],
)
def test_naive_datetimes_are_rejected(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgument):
        build()


def test_other_timezones_are_accepted_and_compared_by_instant() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    message = accepted()

    message = message.apply(Claim(at(1).astimezone(ist), "route_a"))

    assert message.updated_at == at(1)


def test_timeline_never_goes_backwards_with_skewed_clocks() -> None:
    message = claimed(segments=2)  # claimed at T0+1s
    # A second worker's clock runs a minute behind.
    message = message.apply(PartSubmitted(at(-59), 0, "carrier-0"))
    message = message.apply(PartSubmitted(at(3), 1, "carrier-1"))
    message = message.apply(PartReceipt(at(-30), 1, ReceiptOutcome.DELIVERED))

    times = [entry.at for entry in message.timeline]
    assert times == sorted(times)
    assert [entry.sequence for entry in message.timeline] == list(range(len(message.timeline)))
    skewed = message.timeline[2]
    assert skewed.kind == "part_submitted"
    assert skewed.at == at(1)
    assert skewed.get("event_at") == at(-59).isoformat()
    assert message.parts[0].submitted_at == at(1)
    assert message.updated_at == times[-1]


# --------------------------------------------------------------------------- content hygiene


def test_content_never_appears_in_repr_timeline_or_errors() -> None:
    message = claimed(segments=2).apply(PartSubmitted(at(2), 0, "carrier-0"))

    assert message.content == CONTENT
    assert OTP not in repr(message)
    assert "content" not in repr(message)
    for entry in message.timeline:
        for _key, value in entry.detail:
            assert not (isinstance(value, str) and OTP in value)
    with pytest.raises(IllegalTransition) as excinfo:
        message.apply(PartReceipt(at(3), 1, ReceiptOutcome.DELIVERED))
    error = excinfo.value
    assert OTP not in str(error)
    assert OTP not in repr(error)
    assert OTP not in repr(error.to_dict())


def test_timeline_detail_refuses_non_scalar_values() -> None:
    with pytest.raises(InvalidArgument):
        TimelineEntry(0, T0, "accepted", Status.ACCEPTED, detail=(("content", ["x"]),))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("status", list(Status))
def test_every_event_outside_the_table_raises_and_leaves_the_message_unchanged(
    status: Status,
) -> None:
    message = message_in(status)
    snapshot = attrs.evolve(message)

    for event in one_of_each_event(at(4)):
        name = type(event).__name__
        if name in TRANSITIONS[status]:
            continue
        with pytest.raises(IllegalTransition) as excinfo:
            message.apply(event)
        assert name in excinfo.value.message
        assert status.value in excinfo.value.message
        assert excinfo.value.detail["event"] == name
        assert message == snapshot


def test_table_covers_every_status_and_final_statuses_accept_only_receipts() -> None:
    assert set(TRANSITIONS) == set(Status)
    for status in FINAL_STATUSES:
        assert dict(TRANSITIONS[status]) == {"PartReceipt": frozenset({status})}
    for row in TRANSITIONS.values():
        for targets in row.values():
            assert targets <= set(Status)


def test_final_statuses_have_no_way_out() -> None:
    for status in FINAL_STATUSES:
        for targets in TRANSITIONS[status].values():
            assert targets == {status}


def test_apply_rejects_a_non_event() -> None:
    with pytest.raises(TypeError):
        accepted().apply("Claim")  # type: ignore[arg-type]


def test_state_diagram_mentions_every_status_and_every_table_edge() -> None:
    diagram = state_diagram()

    assert diagram.startswith("stateDiagram-v2\n")
    assert "[*] --> accepted" in diagram
    for status in Status:
        assert status.value in diagram
    for status in FINAL_STATUSES:
        assert f"{status.value} --> [*]" in diagram
    edges = [line.strip() for line in diagram.splitlines() if ": " in line]
    for source, row in TRANSITIONS.items():
        for event_name, targets in row.items():
            for target in targets:
                assert any(
                    e.startswith(f"{source.value} --> {target.value}: ") and event_name in e
                    for e in edges
                )


# --------------------------------------------------------------------------- retry backoff


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    base = timedelta(milliseconds=draw(st.integers(1, 60_000)))
    return RetryPolicy(
        max_attempts=draw(st.integers(1, 10)),
        base=base,
        factor=draw(st.floats(1.0, 4.0)),
        cap=base + timedelta(milliseconds=draw(st.integers(0, 3_600_000))),
        jitter_ratio=draw(st.floats(0.0, 1.0)),
    )


jitters = st.floats(0.0, 1.0, exclude_max=True)


@given(policy=policies(), attempt=st.integers(1, 200), jitter=jitters)
def test_backoff_is_monotone_non_decreasing_in_attempt(
    policy: RetryPolicy, attempt: int, jitter: float
) -> None:
    assert backoff_delay(attempt, policy, jitter) <= backoff_delay(attempt + 1, policy, jitter)


@given(policy=policies(), attempt=st.integers(1, 10**6), jitter=jitters)
def test_backoff_lies_between_the_jittered_floor_and_the_nominal_delay(
    policy: RetryPolicy, attempt: int, jitter: float
) -> None:
    try:
        nominal_s = policy.base.total_seconds() * policy.factor ** (attempt - 1)
    except OverflowError:
        nominal_s = math.inf
    nominal_s = min(nominal_s, policy.cap.total_seconds())
    rounding = 2e-6  # timedelta keeps microseconds

    delay = backoff_delay(attempt, policy, jitter).total_seconds()

    assert nominal_s * (1 - policy.jitter_ratio) - rounding <= delay <= nominal_s + rounding
    assert delay <= policy.cap.total_seconds()


def test_backoff_defaults_give_the_documented_delays() -> None:
    policy = RetryPolicy()

    assert backoff_delay(1, policy, 0.0) == timedelta(seconds=2.5)
    assert backoff_delay(1, policy, 0.5) == timedelta(seconds=3.75)
    assert backoff_delay(3, policy, 0.0) == timedelta(seconds=10)
    assert backoff_delay(50, policy, 0.0) == timedelta(minutes=5)
    assert backoff_delay(10**9, policy, 0.0) == timedelta(minutes=5)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_backoff_rejects_jitter_outside_the_unit_interval(jitter: float) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        backoff_delay(1, RetryPolicy(), jitter)

    assert excinfo.value.field == "jitter"


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_rejects_attempts_below_one(attempt: int) -> None:
    with pytest.raises(InvalidArgument):
        backoff_delay(attempt, RetryPolicy(), 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base": timedelta(0)},
        {"factor": 0.5},
        {"factor": math.inf},
        {"cap": timedelta(seconds=1)},
        {"jitter_ratio": 1.5},
        {"jitter_ratio": -0.1},
    ],
)
def test_retry_policy_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_schedule_retry_adds_the_backoff_to_now() -> None:
    message = claimed()

    assert schedule_retry(message, at(2), RetryPolicy(), 0.0) == at(2) + timedelta(seconds=2.5)


def test_schedule_retry_gives_up_when_attempts_are_exhausted() -> None:
    policy = RetryPolicy(max_attempts=2)
    message = claimed().apply(SubmitFailed(at(2), "carrier_throttled", None, at(5)))
    assert schedule_retry(message, at(2), policy, 0.0) is not None

    message = message.apply(Claim(at(6), "route_a"))

    assert message.attempts == 2
    assert schedule_retry(message, at(7), policy, 0.0) is None


def test_schedule_retry_gives_up_when_the_retry_would_land_after_expiry() -> None:
    message = accepted(validity=timedelta(seconds=10)).apply(Claim(at(1), "route_a"))

    assert schedule_retry(message, at(8), RetryPolicy(), 0.0) is None
    assert schedule_retry(message, at(5), RetryPolicy(), 0.0) == at(7.5)


@given(jitter=jitters, attempts=st.integers(1, 12))
def test_schedule_retry_never_returns_a_time_at_or_after_expiry(
    jitter: float, attempts: int
) -> None:
    message = attrs.evolve(claimed(), attempts=attempts)

    retry_at = schedule_retry(message, at(1), RetryPolicy(max_attempts=8), jitter)

    if attempts >= 8:
        assert retry_at is None
    if retry_at is not None:
        assert at(1) < retry_at < message.expires_at


# --------------------------------------------------------------------------- exports


def test_public_names_are_pinned() -> None:
    assert sorted(message_module.__all__) == sorted(
        [
            "FINAL_STATUSES",
            "TRANSITIONS",
            "Claim",
            "DetailValue",
            "Event",
            "Expire",
            "FailureReason",
            "JsonObject",
            "Message",
            "MessageError",
            "OutcomeUnknown",
            "Part",
            "PartReceipt",
            "PartStatus",
            "PartSubmitted",
            "ReceiptOutcome",
            "ReceiptTimeout",
            "RetryPolicy",
            "Status",
            "SubmitFailed",
            "TimelineEntry",
            "backoff_delay",
            "schedule_retry",
            "state_diagram",
        ]
    )
    for name in message_module.__all__:
        assert hasattr(message_module, name)


def test_a_receipt_timeout_expires_the_parts_still_waiting() -> None:
    from bharatsend_core.domain.message import ReceiptTimeout

    message = message_in(Status.SENT)
    timed_out = message.apply(ReceiptTimeout(message.updated_at + timedelta(days=3)))
    assert timed_out.status is Status.EXPIRED
    assert all(p.status is PartStatus.EXPIRED for p in timed_out.parts)
    assert all(p.error_code == "no_receipt" for p in timed_out.parts)
    assert timed_out.error is not None
    assert timed_out.error.code == "expired"
    assert timed_out.timeline[-2].kind == "receipt_timeout"
    with pytest.raises(IllegalTransition):
        message_in(Status.ACCEPTED).apply(ReceiptTimeout(message.updated_at))
