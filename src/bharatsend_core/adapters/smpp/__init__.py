"""SMPP 3.4 adapters: a local SMSC simulator for tests and the sandbox carrier."""

from __future__ import annotations

from bharatsend_core.adapters.smpp.simulator import (
    Behaviour,
    ReceiptResponse,
    ReceivedSubmit,
    Recorded,
    SentReceipt,
    SmscSimulator,
)

__all__ = [
    "Behaviour",
    "ReceiptResponse",
    "ReceivedSubmit",
    "Recorded",
    "SentReceipt",
    "SmscSimulator",
]
