"""In-memory adapters: the sandbox's storage and the host application's test kit."""

from bharatsend_core.adapters.memory.carrier import MemoryCarrier
from bharatsend_core.adapters.memory.storage import MemoryStorage

__all__ = ["MemoryCarrier", "MemoryStorage"]
