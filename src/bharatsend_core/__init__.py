"""bharatsend-core: India OTP and transactional SMS, embedded in your backend.

Every message is checked against TRAI DLT rules, persisted before it is sent,
submitted over SMPP, tracked through delivery receipts, billed exactly once and
reported through signed webhooks. The names below are the stable public API;
the domain modules (``bharatsend_core.domain.*``) document the rest.
"""

from bharatsend_core.adapters.system import pin_process
from bharatsend_core.app import BharatSend
from bharatsend_core.config import Settings
from bharatsend_core.domain.encoding import Encoding, Segmentation, segment
from bharatsend_core.domain.errors import ERROR_CODES, BharatSendError
from bharatsend_core.domain.phone import PhoneNumber, parse_phone

__version__ = "0.1.0"

__all__ = [
    "ERROR_CODES",
    "BharatSend",
    "BharatSendError",
    "Encoding",
    "PhoneNumber",
    "Segmentation",
    "Settings",
    "__version__",
    "parse_phone",
    "pin_process",
    "segment",
]
