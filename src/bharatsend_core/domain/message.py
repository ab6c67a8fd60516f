"""The message aggregate and its state machine: one table, pure transitions.

A :class:`Message` is an immutable value. Every state change is an event
applied with :meth:`Message.apply`, which returns a *new* message (built with
``values.replace``: ``attrs.evolve`` checking only what changes) or raises and
leaves the original untouched (STYLE rule 6).
The legal moves live in one table, :data:`TRANSITIONS`, which ``apply``
consults first and from which :func:`state_diagram` generates the docs
diagram, the way h11 keeps its protocol states in ``_state.py``. In short::

    accepted → submitting → sent → delivered | undelivered | expired | rejected
    submitting → retrying (transient failure) → submitting (next claim)
    accepted | submitting | retrying → failed (permanent failure, validity gone)

A long text is sent as N parts (one ``submit_sm`` each, SMPP 3.4 §4.4), each
with its own carrier message id and delivery receipt. The message is
``delivered`` only when every part is; otherwise it takes the worst final part
state (rejected > undelivered > expired > delivered). Receipts may arrive in
any order; a receipt that arrives late or twice is *recorded* on the timeline
and never moves a message out of a final state.

The domain never reads the clock and never draws random numbers: every event
carries its own time, and retry jitter is passed in by the caller. The message
content is kept on the value for the sender but is ``repr=False`` and never
copied into the timeline, errors or reprs (never log content or OTP digits).
"""

from __future__ import annotations

import copy
import enum
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs
from attrs import field, frozen

from bharatsend_core.domain.errors import IllegalTransition, InvalidArgument
from bharatsend_core.domain.values import builder, enum_converter, replace

__all__ = [
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


# --------------------------------------------------------------------------- enums


class Status(enum.StrEnum):
    """Where a message is in its life; the values are the API's status strings."""

    #: Persisted and reserved, waiting for a dispatch worker.
    ACCEPTED = "accepted"
    #: A worker has claimed it and is writing ``submit_sm`` PDUs.
    SUBMITTING = "submitting"
    #: The carrier acknowledged every part; waiting for delivery receipts.
    SENT = "sent"
    #: Every part reached the handset.
    DELIVERED = "delivered"
    #: The carrier gave up on at least one part (UNDELIV, DELETED, UNKNOWN).
    UNDELIVERED = "undelivered"
    #: The carrier's validity period ran out for at least one part.
    EXPIRED = "expired"
    #: The carrier or operator refused at least one part (e.g. DLT scrubbing).
    REJECTED = "rejected"
    #: A transient submit failure; the next attempt is scheduled.
    RETRYING = "retrying"
    #: Permanently failed before the carrier took the whole message.
    FAILED = "failed"


#: Absorbing statuses: once here, a message never changes status again.
FINAL_STATUSES: frozenset[Status] = frozenset(
    {Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED}
)


class PartStatus(enum.StrEnum):
    """Where one part (one ``submit_sm``) is; a message folds its parts' states."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        """True once a final receipt has settled the part (no later receipt changes it)."""
        return self not in (PartStatus.PENDING, PartStatus.SUBMITTED)


class ReceiptOutcome(enum.StrEnum):
    """A delivery receipt normalised by the receipt parser (``domain/receipts.py``).

    ``enroute`` and ``buffered`` (SMPP ``ACCEPTD``, ``ACKED``, ``BUFFRED``,
    ``ENROUTE``) are intermediate: recorded on the timeline, no state change.
    The rest are final for the part; ``UNDELIV``, ``DELETED`` and ``UNKNOWN``
    all normalise to ``undelivered``.
    """

    ENROUTE = "enroute"
    BUFFERED = "buffered"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        """True when the receipt settles the part; intermediate ones are only recorded."""
        return self not in (ReceiptOutcome.ENROUTE, ReceiptOutcome.BUFFERED)


class FailureReason(enum.StrEnum):
    """Why a message ended without delivery; reports and webhooks group by it."""

    #: A part's final receipt said UNDELIV/DELETED/UNKNOWN.
    UNDELIVERED = "undelivered"
    #: A part's final receipt said EXPIRED (the carrier's validity ran out).
    EXPIRED = "expired"
    #: A part's final receipt said REJECTD.
    REJECTED = "rejected"
    #: A permanent submit error: the carrier never took the whole message.
    FAILED_BEFORE_SUBMIT = "failed_before_submit"
    #: Our own validity window closed before the message could be sent.
    VALIDITY_EXPIRED = "validity_expired"
    #: The retry policy ran out of attempts.
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"


# --------------------------------------------------------------------------- validators

_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ENCODINGS = frozenset({"gsm7", "ucs2"})

# Named functions, as mypy's attrs plugin wants converters to be.
_status = enum_converter(Status)
_part_status = enum_converter(PartStatus)
_failure_reason = enum_converter(FailureReason)
_receipt_outcome = enum_converter(ReceiptOutcome)


def _as_status(value: Any) -> Status:
    return _status(value)


def _as_part_status(value: Any) -> PartStatus:
    return _part_status(value)


def _as_failure_reason(value: Any) -> FailureReason:
    return _failure_reason(value)


def _as_receipt_outcome(value: Any) -> ReceiptOutcome:
    return _receipt_outcome(value)


#: A timeline detail value: plain JSON scalars only, so details serialise as-is.
DetailValue: TypeAlias = str | int | None


def _require_aware(name: str, value: object) -> None:
    """Raise unless ``value`` is an aware datetime: naive times are ambiguous across hosts."""
    if type(value) is datetime and value.tzinfo is UTC:
        return  # what storage and the clocks hand out: no offset to compute
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime", field=name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(
            f"{name} must be timezone-aware; pass e.g. datetime.now(timezone.utc)", field=name
        )


def _aware(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _require_aware(attribute.name, value)


def _optional_aware(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _require_aware(attribute.name, value)


def _index(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(
            f"{attribute.name} must be a part index (an int >= 0)", field=attribute.name
        )


def _non_negative_int(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"{attribute.name} must be an int >= 0", field=attribute.name)


def _non_empty_str(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{attribute.name} must be a non-empty string", field=attribute.name)


def _optional_non_empty_str(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _non_empty_str(instance, attribute, value)


def _code(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _CODE_RE.match(value):
        raise InvalidArgument(
            f"{attribute.name} must be a stable snake_case code such as 'carrier_rejected'",
            field=attribute.name,
        )


def _detail(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise InvalidArgument("detail must be a tuple of (key, value) pairs", field="detail")
    for pair in value:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or isinstance(pair[1], bool)
            or not (pair[1] is None or isinstance(pair[1], str | int))
        ):
            raise InvalidArgument(
                "detail pairs must be (str, str | int | None); never put content in detail",
                field="detail",
            )


# --------------------------------------------------------------------------- values


@frozen
class Part:
    """One segment of a message: one ``submit_sm``, one carrier id, one receipt.

    Kept per part because a long text is N independent submissions: a retry
    resends only the parts still ``pending``, and each part's receipt settles
    only that part.
    """

    #: 0-based position of the segment in the concatenated message.
    index: int = field(validator=_index)
    status: PartStatus = field(default=PartStatus.PENDING, converter=_as_part_status)
    #: The ``message_id`` from ``submit_sm_resp``; receipts are matched on it.
    carrier_message_id: str | None = field(default=None, validator=_optional_non_empty_str)
    submitted_at: datetime | None = field(default=None, validator=_optional_aware)
    final_at: datetime | None = field(default=None, validator=_optional_aware)
    #: The carrier's error code from the final receipt (SMPP ``err:``), if any.
    error_code: str | None = None
    #: The submit was written but never answered; we count it as submitted
    #: without a carrier id, so no receipt can ever be matched to it.
    outcome_unknown: bool = False
    #: The route the part was submitted on: receipts are matched on
    #: (route, carrier_message_id), because two carriers may reuse an id.
    route: str | None = None

    @property
    def is_final(self) -> bool:
        """True once a final receipt settled this part."""
        return self.status.is_final


@frozen
class MessageError:
    """Why a message ended badly: a stable code, a reason group and the carrier's code.

    Never carries content; safe to log and to send in webhooks.
    """

    #: Stable snake_case code (``carrier_rejected``, ``validity_expired``, ``undelivered``...).
    code: str = field(validator=_code)
    reason: FailureReason = field(converter=_as_failure_reason)
    #: The raw carrier code (SMPP ``command_status`` or receipt ``err:``), if any.
    carrier_code: str | None = None


@frozen
class TimelineEntry:
    """One append-only record of what happened to a message and the status after it.

    ``at`` never goes backwards along a timeline even when hosts' clocks
    disagree: it is ``max(event time, previous entry time)``, and the raw
    event time is kept in ``detail`` as ``event_at`` when it was earlier.
    """

    #: Position in the timeline: 0, 1, 2, ... without gaps.
    sequence: int = field(validator=_non_negative_int)
    at: datetime = field(validator=_aware)
    #: What happened: ``accepted``, ``claimed``, ``part_submitted``, ``sent``, ``receipt``...
    kind: str = field(validator=_code)
    #: The message status once this entry is applied.
    status: Status = field(converter=_as_status)
    #: Ordered (key, value) pairs; JSON scalars only, never content.
    detail: tuple[tuple[str, DetailValue], ...] = field(default=(), validator=_detail)

    def get(self, key: str, default: DetailValue = None) -> DetailValue:
        """The detail value for ``key`` (tests and reports read details by name)."""
        for k, v in self.detail:
            if k == key:
                return v
        return default


# --------------------------------------------------------------------------- events


@frozen
class Claim:
    """A dispatch worker takes the message to submit it on ``route``.

    Legal from ``accepted`` or ``retrying`` strictly before ``expires_at``;
    at or after expiry the service must apply :class:`Expire` instead, so an
    expired OTP is never sent. It is deliberately not checked against
    ``next_attempt_at``: the dispatch queue decides when work is due, and a
    worker whose clock runs slightly behind must not wedge a message.
    """

    at: datetime = field(validator=_aware)
    route: str = field(validator=_non_empty_str)


@frozen
class PartSubmitted:
    """The carrier acknowledged one pending part (``submit_sm_resp`` with status 0)."""

    at: datetime = field(validator=_aware)
    index: int = field(validator=_index)
    carrier_message_id: str = field(validator=_non_empty_str)


@frozen
class SubmitFailed:
    """A submit attempt failed; ``retry_at`` says when to try again, ``None`` gives up.

    ``error_code`` becomes the message error's code when the message fails.
    Pass ``"attempts_exhausted"`` or ``"validity_expired"`` when the retry
    policy (:func:`schedule_retry`) gave up, so the failure reason says so; any
    other code is read as a permanent carrier refusal (``failed_before_submit``).
    """

    at: datetime = field(validator=_aware)
    error_code: str = field(validator=_code)
    carrier_code: str | None
    retry_at: datetime | None = field(validator=_optional_aware)


@frozen
class OutcomeUnknown:
    """A ``submit_sm`` for a pending part was written but never answered (link dropped).

    The carrier may or may not have taken it. With ``retry_at`` the part is
    resent later and the message is flagged ``possible_duplicate``; with
    ``None`` (or a ``retry_at`` at/after expiry) the part is counted as
    submitted without a carrier id, because failing a message that may have
    been delivered would be a lie.
    """

    at: datetime = field(validator=_aware)
    index: int = field(validator=_index)
    retry_at: datetime | None = field(validator=_optional_aware)


@frozen
class PartReceipt:
    """A normalised delivery receipt for one part (matched on its carrier id)."""

    at: datetime = field(validator=_aware)
    index: int = field(validator=_index)
    outcome: ReceiptOutcome = field(converter=_as_receipt_outcome)
    #: The receipt's ``err:`` field or TLV ``network_error_code``, if any.
    carrier_code: str | None = None


@frozen
class ReceiptTimeout:
    """No final receipt came for some parts of a ``sent`` message within the wait allowed.

    Aggregators lose receipts; without this a message would stay ``sent``
    (and, billed on delivery, keep its credits reserved) forever. The parts
    still waiting become ``expired`` with error code ``no_receipt`` and the
    message folds as usual. The service decides when the wait is over.
    """

    at: datetime = field(validator=_aware)


@frozen
class Expire:
    """Our validity window closed while the message was still waiting to be sent."""

    at: datetime = field(validator=_aware)


#: Anything :meth:`Message.apply` accepts.
Event: TypeAlias = (
    Claim | PartSubmitted | SubmitFailed | OutcomeUnknown | PartReceipt | Expire | ReceiptTimeout
)

_EVENT_TYPES: tuple[type, ...] = (
    Claim,
    PartSubmitted,
    SubmitFailed,
    OutcomeUnknown,
    PartReceipt,
    Expire,
    ReceiptTimeout,
)


# --------------------------------------------------------------------------- the table

_S = Status
_FOLDED = frozenset({_S.SENT, _S.DELIVERED, _S.UNDELIVERED, _S.EXPIRED, _S.REJECTED})


def _table(
    rows: dict[Status, dict[type, frozenset[Status]]],
) -> Mapping[Status, Mapping[str, frozenset[Status]]]:
    return MappingProxyType(
        {
            status: MappingProxyType({event.__name__: targets for event, targets in row.items()})
            for status, row in rows.items()
        }
    )


#: The state machine: status -> event class name -> statuses the event may lead to.
#: :meth:`Message.apply` consults it before anything else; an event missing
#: for the current status raises :class:`IllegalTransition`. Final statuses
#: accept only :class:`PartReceipt`, as a recorded no-op.
TRANSITIONS: Mapping[Status, Mapping[str, frozenset[Status]]] = _table(
    {
        _S.ACCEPTED: {
            Claim: frozenset({_S.SUBMITTING}),
            Expire: frozenset({_S.FAILED}),
        },
        _S.SUBMITTING: {
            PartSubmitted: frozenset({_S.SUBMITTING, _S.SENT}),
            SubmitFailed: frozenset({_S.RETRYING, _S.FAILED}),
            OutcomeUnknown: frozenset({_S.SUBMITTING, _S.SENT, _S.RETRYING}),
            # A part submitted earlier in this attempt may get its receipt
            # before the other parts' submit responses arrive.
            PartReceipt: frozenset({_S.SUBMITTING}),
        },
        _S.RETRYING: {
            Claim: frozenset({_S.SUBMITTING}),
            Expire: frozenset({_S.FAILED}),
            # Parts submitted before the failure keep receiving receipts.
            PartReceipt: frozenset({_S.RETRYING}),
        },
        _S.SENT: {
            PartReceipt: _FOLDED,
            ReceiptTimeout: frozenset({_S.UNDELIVERED, _S.EXPIRED, _S.REJECTED}),
        },
        # Iterate Status, not the frozenset, so the table's order is stable.
        **{s: {PartReceipt: frozenset({s})} for s in Status if s in FINAL_STATUSES},
    }
)


def state_diagram() -> str:
    """The state machine as a Mermaid ``stateDiagram-v2``, generated from :data:`TRANSITIONS`.

    Generated rather than hand-drawn so the docs can never disagree with the
    code. Edges with several events are labelled with all of them.
    """
    lines = ["stateDiagram-v2", f"    [*] --> {Status.ACCEPTED.value}"]
    for source, row in TRANSITIONS.items():  # the table's order reads as a lifecycle
        edges: dict[Status, list[str]] = {}
        for event_name, targets in row.items():
            for target in Status:
                if target in targets:
                    edges.setdefault(target, []).append(event_name)
        for target in Status:
            if target in edges:
                lines.append(f"    {source.value} --> {target.value}: {', '.join(edges[target])}")
    lines.extend(f"    {s.value} --> [*]" for s in Status if s in FINAL_STATUSES)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the aggregate

# Worst part state wins the fold (DESIGN: "its final state otherwise follows the worst part").
_SEVERITY: Mapping[PartStatus, int] = MappingProxyType(
    {
        PartStatus.DELIVERED: 0,
        PartStatus.EXPIRED: 1,
        PartStatus.UNDELIVERED: 2,
        PartStatus.REJECTED: 3,
    }
)
_OUTCOME_PART: Mapping[ReceiptOutcome, PartStatus] = MappingProxyType(
    {
        ReceiptOutcome.DELIVERED: PartStatus.DELIVERED,
        ReceiptOutcome.UNDELIVERED: PartStatus.UNDELIVERED,
        ReceiptOutcome.EXPIRED: PartStatus.EXPIRED,
        ReceiptOutcome.REJECTED: PartStatus.REJECTED,
    }
)
# Codes the service passes in SubmitFailed when *it* gave up rather than the carrier.
_GIVE_UP_REASONS: Mapping[str, FailureReason] = MappingProxyType(
    {
        FailureReason.ATTEMPTS_EXHAUSTED.value: FailureReason.ATTEMPTS_EXHAUSTED,
        FailureReason.VALIDITY_EXPIRED.value: FailureReason.VALIDITY_EXPIRED,
    }
)


class JsonObject(Mapping[str, Any]):
    """An immutable JSON object: reads hand out copies, so nothing inside can be changed.

    Used for caller metadata on a frozen :class:`Message`; deep-copies and
    pickles as itself.
    """

    __slots__ = ("_data",)

    def __init__(self, value: Mapping[str, Any] | None = None) -> None:
        # Most messages carry no metadata: skip the copy for the empty object.
        self._data: dict[str, Any] = copy.deepcopy(dict(value)) if value else {}

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonObject):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, object]) -> JsonObject:
        return self

    def __reduce__(self) -> tuple[type[JsonObject], tuple[dict[str, Any]]]:
        return (JsonObject, (self._data,))

    def __repr__(self) -> str:
        return f"JsonObject({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A mutable deep copy."""
        return copy.deepcopy(self._data)


def _frozen_mapping(value: Mapping[str, Any]) -> JsonObject:
    return value if isinstance(value, JsonObject) else JsonObject(value)


def _phone(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _E164_RE.match(value):
        raise InvalidArgument("phone must be an E.164 number such as +919812345678", field="phone")


def _encoding(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _ENCODINGS:
        raise InvalidArgument("encoding must be 'gsm7' or 'ucs2'", field="encoding")


def _segments(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument("segments must be an int >= 1", field="segments")


@frozen(kw_only=True)
class Message:
    """The message aggregate: what to send, where it is, and everything that happened.

    Immutable: :meth:`apply` returns a new message or raises, leaving this one
    as it was, so a failed transition can never half-update a row. Build new
    messages with :meth:`accept`; adapters rebuild stored ones with the
    constructor (every field is keyword-only).
    """

    id: str = field(validator=_non_empty_str)
    tenant_id: str = field(validator=_non_empty_str)
    #: The caller's idempotency key, unique per tenant.
    client_message_id: str | None = None
    phone: str = field(validator=_phone)
    #: The text to send. Never in reprs, errors or the timeline.
    content: str = field(repr=False)
    template_id: str
    header: str
    entity_id: str
    category: str
    encoding: str = field(validator=_encoding)
    segments: int = field(validator=_segments)
    parts: tuple[Part, ...] = field()
    status: Status = field(converter=_as_status)
    #: Claims so far (a claim is one submit attempt of the pending parts).
    attempts: int = field(default=0, validator=_non_negative_int)
    #: When the next attempt is due; set only while ``retrying``.
    next_attempt_at: datetime | None = field(default=None, validator=_optional_aware)
    #: After this instant the message must not be sent (an OTP is worthless late).
    expires_at: datetime = field(validator=_aware)
    created_at: datetime = field(validator=_aware)
    #: Time of the last timeline entry.
    updated_at: datetime = field(validator=_aware)
    route: str | None = None
    #: A submit may have reached the carrier before a resend: the handset may
    #: receive the text twice, and reconciliation should look for two ids.
    possible_duplicate: bool = False
    #: Set when the message ends anywhere but ``delivered``.
    error: MessageError | None = None
    #: Sent through the sandbox carrier (test keys); never reaches a handset.
    sandbox: bool = False
    #: Higher goes first in the dispatch queue (OTPs over notifications).
    priority: int = 0
    #: Paise reserved on the ledger when the message was accepted.
    price_paise: int = field(default=0, validator=_non_negative_int)
    #: The caller's small JSON object, echoed in status webhooks; never interpreted here.
    metadata: JsonObject = field(factory=JsonObject, converter=_frozen_mapping, hash=False)
    timeline: tuple[TimelineEntry, ...] = ()

    @parts.validator
    def _check_parts(self, _attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple) or len(value) != self.segments:
            raise InvalidArgument("parts must be a tuple with one Part per segment", field="parts")
        for i, part in enumerate(value):
            if not isinstance(part, Part) or part.index != i:
                raise InvalidArgument(
                    "parts must be Part values indexed 0..segments-1", field="parts"
                )

    # ------------------------------------------------------------------ construction

    @classmethod
    def accept(
        cls,
        *,
        id: str,
        tenant_id: str,
        phone: str,
        content: str,
        template_id: str,
        header: str,
        entity_id: str,
        category: str,
        encoding: str,
        segments: int,
        now: datetime,
        validity: timedelta,
        client_message_id: str | None = None,
        sandbox: bool = False,
        priority: int = 0,
        price_paise: int = 0,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """A freshly accepted message: status ``accepted``, all parts pending, one timeline entry.

        ``expires_at`` is ``now + validity``; after it the message is never
        claimed. Content is assumed already validated (DLT, encoding); here we
        check only what the state machine relies on.
        """
        _require_aware("now", now)
        if not isinstance(validity, timedelta) or validity <= timedelta(0):
            raise InvalidArgument("validity must be a positive timedelta", field="validity")
        if not isinstance(segments, int) or isinstance(segments, bool) or segments < 1:
            raise InvalidArgument("segments must be an int >= 1", field="segments")
        if not isinstance(content, str):
            raise InvalidArgument("content must be a string", field="content")
        entry = TimelineEntry(
            sequence=0,
            at=now,
            kind="accepted",
            status=Status.ACCEPTED,
            detail=(("segments", segments), ("encoding", encoding), ("length", len(content))),
        )
        return cls(
            id=id,
            tenant_id=tenant_id,
            client_message_id=client_message_id,
            phone=phone,
            content=content,
            template_id=template_id,
            header=header,
            entity_id=entity_id,
            category=category,
            encoding=encoding,
            segments=segments,
            parts=tuple(Part(i) for i in range(segments)),
            status=Status.ACCEPTED,
            expires_at=now + validity,
            created_at=now,
            updated_at=now,
            sandbox=sandbox,
            priority=priority,
            price_paise=price_paise,
            metadata=metadata or {},
            timeline=(entry,),
        )

    # ------------------------------------------------------------------ queries

    @property
    def is_final(self) -> bool:
        """True in an absorbing status; only receipts (recorded as no-ops) apply then."""
        return self.status in FINAL_STATUSES

    @property
    def pending_part_indexes(self) -> tuple[int, ...]:
        """Indexes of the parts a (re)submission must send; submitted parts are never resent."""
        return tuple(p.index for p in self.parts if p.status is PartStatus.PENDING)

    # ------------------------------------------------------------------ transitions

    def apply(self, event: Event) -> Message:
        """Apply one event and return the new message; raise and change nothing if illegal.

        Consults :data:`TRANSITIONS` first: an event the table does not list
        for the current status raises :class:`IllegalTransition`. Event-specific
        guards (expiry, part state) raise the same error. A part index past the
        message's segments raises :class:`InvalidArgument`.
        """
        if not isinstance(event, _EVENT_TYPES):
            raise TypeError(f"not a message event: {type(event).__name__}")
        name = type(event).__name__
        allowed = TRANSITIONS[self.status].get(name)
        if allowed is None:
            expected = ", ".join(TRANSITIONS[self.status])
            raise self._illegal(
                name,
                f"{name} does not apply to a message in status {self.status}; "
                f"in {self.status} only {expected} may be applied",
            )
        if (
            isinstance(event, PartSubmitted | OutcomeUnknown | PartReceipt)
            and event.index >= self.segments
        ):
            raise InvalidArgument(
                f"{name} names part {event.index} but message {self.id} "
                f"has {self.segments} part(s)",
                field="index",
                detail={"message_id": self.id, "index": event.index},
            )
        step = _Step(self, event.at)
        if isinstance(event, Claim):
            self._on_claim(event, step)
        elif isinstance(event, PartSubmitted):
            self._on_part_submitted(event, step)
        elif isinstance(event, SubmitFailed):
            self._on_submit_failed(event, step)
        elif isinstance(event, OutcomeUnknown):
            self._on_outcome_unknown(event, step)
        elif isinstance(event, PartReceipt):
            self._on_receipt(event, step)
        elif isinstance(event, ReceiptTimeout):
            self._on_receipt_timeout(step)
        else:
            self._on_expire(event, step)
        # The table is the contract: a handler that strays from it is a bug here.
        assert step.status in allowed, (self.status, name, step.status)
        return step.build()

    def _illegal(self, event_name: str, message: str) -> IllegalTransition:
        return IllegalTransition(
            message,
            detail={"message_id": self.id, "event": event_name, "status": self.status.value},
        )

    def _on_claim(self, event: Claim, step: _Step) -> None:
        if event.at >= self.expires_at:
            raise self._illegal(
                "Claim",
                f"Claim at or after expiry in status {self.status}: "
                f"message {self.id} expired at {self.expires_at.isoformat()}; apply Expire instead",
            )
        attempt = self.attempts + 1
        step.status = Status.SUBMITTING
        step.changes.update(attempts=attempt, route=event.route, next_attempt_at=None)
        step.record(
            "claimed",
            route=event.route,
            attempt=attempt,
            pending=len(self.pending_part_indexes),
        )

    def _on_part_submitted(self, event: PartSubmitted, step: _Step) -> None:
        part = self.parts[event.index]
        if part.status is not PartStatus.PENDING:
            raise self._illegal(
                "PartSubmitted",
                f"PartSubmitted in status {self.status}: part {event.index} of message "
                f"{self.id} is already {part.status}, not pending",
            )
        step.parts[event.index] = replace(
            part,
            status=PartStatus.SUBMITTED,
            carrier_message_id=event.carrier_message_id,
            submitted_at=step.at,
            route=self.route,
        )
        step.record(
            "part_submitted",
            index=event.index,
            carrier_message_id=event.carrier_message_id,
            attempt=self.attempts,
        )
        step.settle()

    def _on_submit_failed(self, event: SubmitFailed, step: _Step) -> None:
        step.record(
            "submit_failed",
            error_code=event.error_code,
            carrier_code=event.carrier_code,
            attempt=self.attempts,
            pending=len(self.pending_part_indexes),
        )
        if event.retry_at is None:
            reason = _GIVE_UP_REASONS.get(event.error_code, FailureReason.FAILED_BEFORE_SUBMIT)
            step.fail(MessageError(event.error_code, reason, event.carrier_code))
        elif event.retry_at >= self.expires_at:
            step.fail(
                MessageError("validity_expired", FailureReason.VALIDITY_EXPIRED, event.carrier_code)
            )
        else:
            step.schedule_retry(event.retry_at)

    def _on_outcome_unknown(self, event: OutcomeUnknown, step: _Step) -> None:
        part = self.parts[event.index]
        if part.status is not PartStatus.PENDING:
            raise self._illegal(
                "OutcomeUnknown",
                f"OutcomeUnknown in status {self.status}: part {event.index} of message "
                f"{self.id} is already {part.status}, not pending",
            )
        retry_at = event.retry_at
        if retry_at is not None and retry_at < self.expires_at:
            step.record(
                "outcome_unknown", index=event.index, resolution="retry", attempt=self.attempts
            )
            step.changes["possible_duplicate"] = True
            step.schedule_retry(retry_at)
            return
        step.parts[event.index] = replace(
            part,
            status=PartStatus.SUBMITTED,
            submitted_at=step.at,
            outcome_unknown=True,
            route=self.route,
        )
        step.record(
            "outcome_unknown",
            index=event.index,
            resolution="assumed_submitted",
            attempt=self.attempts,
        )
        step.settle()

    def _on_receipt(self, event: PartReceipt, step: _Step) -> None:
        if self.is_final:
            # Late receipts never move a final message (DESIGN: absorbing states).
            step.record(
                "receipt_ignored",
                index=event.index,
                outcome=event.outcome.value,
                carrier_code=event.carrier_code,
            )
            return
        part = self.parts[event.index]
        if part.status is PartStatus.PENDING:
            # The receipt overtook the submit response; the service parks it.
            raise self._illegal(
                "PartReceipt",
                f"PartReceipt in status {self.status}: part {event.index} of message "
                f"{self.id} is still pending; park the receipt until its submit response",
            )
        if part.is_final:
            step.record(
                "receipt_duplicate",
                index=event.index,
                outcome=event.outcome.value,
                part_status=part.status.value,
                carrier_code=event.carrier_code,
            )
            return
        if event.outcome.is_final:
            step.parts[event.index] = replace(
                part,
                status=_OUTCOME_PART[event.outcome],
                final_at=step.at,
                error_code=event.carrier_code,
            )
        step.record(
            "receipt",
            index=event.index,
            outcome=event.outcome.value,
            carrier_code=event.carrier_code,
        )
        step.settle()

    def _on_receipt_timeout(self, step: _Step) -> None:
        waiting = [p.index for p in self.parts if not p.is_final]
        for index in waiting:
            step.parts[index] = replace(
                self.parts[index],
                status=PartStatus.EXPIRED,
                final_at=step.at,
                error_code="no_receipt",
            )
        step.record("receipt_timeout", parts=len(waiting))
        step.settle()

    def _on_expire(self, event: Expire, step: _Step) -> None:
        if event.at < self.expires_at:
            raise self._illegal(
                "Expire",
                f"Expire before expiry in status {self.status}: message {self.id} "
                f"is valid until {self.expires_at.isoformat()}",
            )
        step.fail(MessageError("expired_before_submit", FailureReason.VALIDITY_EXPIRED))


#: Timeline entries from values ``apply`` checked already (see ``_Step.record``).
_new_entry = builder(TimelineEntry)


class _Step:
    """Scratch pad for one :meth:`Message.apply`: collects changes, then builds once.

    Mutable on purpose and never escapes ``apply``: the message itself is only
    ever replaced by :meth:`build`, after every guard has passed.
    """

    __slots__ = ("_skew", "at", "changes", "entries", "message", "parts", "status")

    def __init__(self, message: Message, event_at: datetime) -> None:
        self.message = message
        self.status = message.status
        self.parts = list(message.parts)
        self.changes: dict[str, Any] = {}
        self.entries: list[TimelineEntry] = []
        last = message.updated_at
        if message.timeline and message.timeline[-1].at > last:
            last = message.timeline[-1].at
        # Hosts' clocks disagree: the timeline never goes backwards, but the
        # raw event time is kept so skew stays visible.
        self.at = max(event_at, last)
        self._skew: tuple[tuple[str, DetailValue], ...] = (
            (("event_at", event_at.isoformat()),) if event_at < last else ()
        )

    def record(self, kind: str, **detail: DetailValue) -> None:
        # Built from values this module checked already (event fields, the
        # step's own state), so TimelineEntry's validators are not run again;
        # the state-machine property test re-validates every entry it sees.
        extra = self._skew if not self.entries else ()
        self.entries.append(
            _new_entry(
                sequence=len(self.message.timeline) + len(self.entries),
                at=self.at,
                kind=kind,
                status=self.status,
                detail=(*detail.items(), *extra),
            )
        )

    def fail(self, error: MessageError) -> None:
        self.status = Status.FAILED
        self.changes.update(error=error, next_attempt_at=None)
        self.record(
            "failed", code=error.code, reason=error.reason.value, carrier_code=error.carrier_code
        )

    def schedule_retry(self, retry_at: datetime) -> None:
        self.status = Status.RETRYING
        self.changes["next_attempt_at"] = retry_at
        self.record(
            "retry_scheduled",
            retry_at=retry_at.isoformat(),
            attempt=self.message.attempts,
            pending=sum(p.status is PartStatus.PENDING for p in self.parts),
        )

    def settle(self) -> None:
        """Move to ``sent`` once no part is pending, then fold once every part is final."""
        if self.status is Status.SUBMITTING and all(
            p.status is not PartStatus.PENDING for p in self.parts
        ):
            self.status = Status.SENT
            self.record("sent", parts=len(self.parts), attempt=self.message.attempts)
        if self.status is Status.SENT and all(p.is_final for p in self.parts):
            worst = max(self.parts, key=lambda p: _SEVERITY[p.status])
            self.status = Status(worst.status.value)
            if self.status is Status.DELIVERED:
                self.record("delivered", parts=len(self.parts))
                return
            error = MessageError(
                worst.status.value, FailureReason(worst.status.value), worst.error_code
            )
            self.changes["error"] = error
            self.record(
                self.status.value,
                reason=error.reason.value,
                index=worst.index,
                carrier_code=worst.error_code,
                parts=len(self.parts),
            )

    def build(self) -> Message:
        return replace(
            self.message,
            status=self.status,
            parts=tuple(self.parts),
            timeline=self.message.timeline + tuple(self.entries),
            updated_at=self.at,
            **self.changes,
        )


# --------------------------------------------------------------------------- retries


def _positive_timedelta(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidArgument(
            f"{attribute.name} must be a positive timedelta", field=attribute.name
        )


@frozen
class RetryPolicy:
    """Exponential backoff with jitter for transient submit failures.

    Jitter spreads retries after a carrier outage so every worker does not
    hit the reconnected bind at once; the random draw is the caller's (the
    domain has no randomness), which keeps this testable.
    """

    #: Claims allowed in total, the first one included.
    max_attempts: int = field(default=5)
    base: timedelta = field(default=timedelta(seconds=5), validator=_positive_timedelta)
    factor: float = field(default=2.0)
    cap: timedelta = field(default=timedelta(minutes=10), validator=_positive_timedelta)
    #: Share of the nominal delay that jitter may take off (0 = none, 1 = "full jitter").
    jitter_ratio: float = field(default=0.5)

    @max_attempts.validator
    def _check_max_attempts(self, _attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgument("max_attempts must be an int >= 1", field="max_attempts")

    @factor.validator
    def _check_factor(self, _attribute: attrs.Attribute[Any], value: object) -> None:
        # factor >= 1 keeps delays non-decreasing from one attempt to the next.
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
            raise InvalidArgument("factor must be a finite number >= 1", field="factor")

    @cap.validator
    def _check_cap(self, _attribute: attrs.Attribute[Any], value: timedelta) -> None:
        if value < self.base:
            raise InvalidArgument("cap must be at least base", field="cap")

    @jitter_ratio.validator
    def _check_jitter_ratio(self, _attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidArgument("jitter_ratio must be between 0 and 1", field="jitter_ratio")


def backoff_delay(attempt: int, policy: RetryPolicy, jitter: float) -> timedelta:
    """The wait before retrying after failed attempt number ``attempt`` (1-based).

    Nominal ``d = min(cap, base * factor ** (attempt - 1))``; the result is
    ``d * (1 - jitter_ratio) + d * jitter_ratio * jitter``, so it lies in
    ``[d * (1 - jitter_ratio), d]`` and never exceeds ``cap``. ``jitter`` is a
    uniform draw in ``[0, 1)`` made by the caller.
    """
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise InvalidArgument("attempt must be an int >= 1", field="attempt")
    if not isinstance(jitter, int | float) or not 0.0 <= jitter < 1.0:
        raise InvalidArgument("jitter must be a number in [0, 1)", field="jitter")
    try:
        growth = policy.factor ** (attempt - 1)
    except OverflowError:  # a huge attempt number: far past the cap anyway
        growth = math.inf
    if policy.base.total_seconds() * growth >= policy.cap.total_seconds():
        nominal = policy.cap
    else:
        nominal = policy.base * growth
    # One multiplication keeps the result monotone in the nominal delay.
    return nominal * (1 - policy.jitter_ratio + policy.jitter_ratio * jitter)


def schedule_retry(
    message: Message, now: datetime, policy: RetryPolicy, jitter: float
) -> datetime | None:
    """When to retry ``message`` after a transient failure at ``now``, or ``None`` to give up.

    Gives up when the attempts are spent or the retry would land at or after
    ``expires_at`` (a late OTP is worthless). On ``None`` the service applies
    :class:`SubmitFailed` with ``error_code`` ``"attempts_exhausted"`` or
    ``"validity_expired"`` and ``retry_at=None``.
    """
    _require_aware("now", now)
    if message.attempts >= policy.max_attempts:
        return None
    retry_at = now + backoff_delay(max(message.attempts, 1), policy, jitter)
    if retry_at >= message.expires_at:
        return None
    return retry_at
