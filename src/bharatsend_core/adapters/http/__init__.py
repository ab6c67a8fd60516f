"""HTTP adapters: the webhook transport on httpx."""

from bharatsend_core.adapters.http.transport import HttpxTransport

__all__ = ["HttpxTransport"]
