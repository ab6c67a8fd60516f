"""domain.values: the fast enum converter, replace, trusted and builder agree with attrs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.message import (
    Message,
    Part,
    PartStatus,
    ReceiptOutcome,
    Status,
    TimelineEntry,
)
from bharatsend_core.domain.values import builder, enum_converter, replace, trusted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def message(segments: int = 2) -> Message:
    return Message.accept(
        id="msg_1",
        tenant_id="ten_1",
        phone="+919812345678",
        content="x" * 10,
        template_id="1207161234567890123",
        header="ACMEOT",
        entity_id="1201159123456789012",
        category="transactional",
        encoding="gsm7",
        segments=segments,
        now=NOW,
        validity=timedelta(minutes=10),
    )


@given(st.sampled_from([Status, PartStatus, ReceiptOutcome]), st.data())
def test_enum_converter_equals_calling_the_enum(cls: type, data: st.DataObject) -> None:
    convert = enum_converter(cls)
    member = data.draw(st.sampled_from(list(cls)))
    assert convert(member.value) is cls(member.value) is member
    assert convert(member) is member


@pytest.mark.parametrize("bad", ["nope", 3, None, ["sent"]])
def test_enum_converter_refuses_what_the_enum_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a valid Status"):
        enum_converter(Status)(bad)


@given(
    status=st.sampled_from(list(Status)),
    attempts=st.integers(0, 50),
    route=st.none() | st.text(min_size=1, max_size=8),
    possible_duplicate=st.booleans(),
    minutes=st.integers(0, 100),
)
def test_replace_equals_evolve(
    status: Status, attempts: int, route: str | None, possible_duplicate: bool, minutes: int
) -> None:
    original = message()
    changes = {
        "status": status.value,  # converted, as evolve converts
        "attempts": attempts,
        "route": route,
        "possible_duplicate": possible_duplicate,
        "updated_at": NOW + timedelta(minutes=minutes),
    }
    fast = replace(original, **changes)
    assert fast == attrs.evolve(original, **changes)
    assert fast.status is status
    assert original.status is Status.ACCEPTED  # the original is untouched


def test_replace_validates_the_changed_fields() -> None:
    original = message()
    with pytest.raises(InvalidArgument) as naive:
        replace(original, updated_at=datetime(2026, 1, 1))
    assert naive.value.field == "updated_at"
    with pytest.raises(InvalidArgument) as parts:
        replace(original, parts=(Part(0),))  # segments is 2
    assert parts.value.field == "parts"
    with pytest.raises(InvalidArgument):
        replace(Part(0), index=-1)
    with pytest.raises(TypeError, match="no field 'colour'"):
        replace(original, colour="red")


def test_trusted_builds_without_checks_but_needs_every_field() -> None:
    entry = trusted(
        TimelineEntry, sequence=0, at=NOW, kind="accepted", status=Status.ACCEPTED, detail=()
    )
    assert entry == TimelineEntry(0, NOW, "accepted", Status.ACCEPTED)
    with pytest.raises(TypeError, match="missing \\['detail'\\]"):
        trusted(TimelineEntry, sequence=0, at=NOW, kind="accepted", status=Status.ACCEPTED)
    with pytest.raises(TypeError, match="unknown \\['extra'\\]"):
        trusted(
            TimelineEntry,
            sequence=0,
            at=NOW,
            kind="accepted",
            status=Status.ACCEPTED,
            extra=1,
        )


_FIELDS = ("status", "attempts", "route", "possible_duplicate", "updated_at")


@given(names=st.lists(st.sampled_from(_FIELDS), unique=True), data=st.data())
def test_replace_equals_evolve_for_any_set_and_order_of_fields(
    names: list[str], data: st.DataObject
) -> None:
    # Each (class, names in order) gets its own generated function: any set of
    # names, in any order, and none at all, must still be evolve.
    original = message()
    values = {
        "status": data.draw(st.sampled_from(list(Status))).value,
        "attempts": data.draw(st.integers(0, 50)),
        "route": data.draw(st.none() | st.text(min_size=1, max_size=8)),
        "possible_duplicate": data.draw(st.booleans()),
        "updated_at": NOW + timedelta(minutes=data.draw(st.integers(0, 100))),
    }
    changes = {name: values[name] for name in names}
    assert replace(original, **changes) == attrs.evolve(original, **changes)
    assert replace(original, **changes) == replace(original, **changes)  # cached: same answer


def test_replace_validates_after_every_change_is_in() -> None:
    # parts are checked against segments: changing both at once is judged on the new pair.
    original = message(segments=2)
    one = replace(original, segments=1, parts=(Part(0),))
    assert one.segments == 1
    assert one.parts == (Part(0),)
    with pytest.raises(InvalidArgument):
        replace(original, parts=(Part(0),))


def test_builder_is_trusted_as_a_function_of_the_fields() -> None:
    make = builder(Part)
    built = make(
        index=1,
        status=PartStatus.SUBMITTED,
        carrier_message_id="c1",
        submitted_at=NOW,
        final_at=None,
        error_code=None,
        outcome_unknown=False,
        route="r1",
    )
    assert built == Part(1, PartStatus.SUBMITTED, "c1", NOW, route="r1")
    assert type(built) is Part
    with pytest.raises(TypeError):
        make(index=1)  # every field is required
    with pytest.raises(TypeError):
        builder(TimelineEntry)(
            sequence=0, at=NOW, kind="k", status=Status.ACCEPTED, detail=(), colour="red"
        )


def test_replace_past_the_cache_of_generated_functions_is_still_evolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bharatsend_core.domain import values

    monkeypatch.setattr(values, "_EVOLVERS", {})
    monkeypatch.setattr(values, "_EVOLVERS_MAX", 0)  # every call takes the by-name path
    original = message()
    changes = {"status": "submitting", "attempts": 3, "route": "r1"}
    assert replace(original, **changes) == attrs.evolve(original, **changes)
    assert values._EVOLVERS == {}
    with pytest.raises(TypeError, match="no field 'colour'"):
        replace(original, colour="red")
    with pytest.raises(InvalidArgument):
        replace(Part(0), index=-1)
