"""SMPP 3.4 adapters: the wire codec (``pdu``), submit_sm building, a bound session, and a
local SMSC simulator."""

from __future__ import annotations

from bharatsend_core.adapters.smpp.carrier import SmppCarrier
from bharatsend_core.adapters.smpp.session import (
    ReceiptPdu,
    SmppSession,
    SubmitFuture,
    SubmitOutcome,
)
from bharatsend_core.adapters.smpp.simulator import (
    Behaviour,
    ReceiptResponse,
    ReceivedSubmit,
    Recorded,
    SentReceipt,
    SmscSimulator,
)
from bharatsend_core.adapters.smpp.submission import (
    DEFAULT_DLT_TLVS,
    SubmitPdu,
    WireSettings,
    build_submissions,
    send_submission,
    validity_period,
)

__all__ = [
    "DEFAULT_DLT_TLVS",
    "Behaviour",
    "ReceiptPdu",
    "ReceiptResponse",
    "ReceivedSubmit",
    "Recorded",
    "SentReceipt",
    "SmppCarrier",
    "SmppSession",
    "SmscSimulator",
    "SubmitFuture",
    "SubmitOutcome",
    "SubmitPdu",
    "WireSettings",
    "build_submissions",
    "send_submission",
    "validity_period",
]
