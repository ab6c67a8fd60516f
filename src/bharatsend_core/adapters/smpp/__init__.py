"""SMPP 3.4 adapters: submit_sm building and sending, and a local SMSC simulator."""

from __future__ import annotations

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
    "ReceiptResponse",
    "ReceivedSubmit",
    "Recorded",
    "SentReceipt",
    "SmscSimulator",
    "SubmitPdu",
    "WireSettings",
    "build_submissions",
    "send_submission",
    "validity_period",
]
