"""HTTP adapters: the webhook transport on urllib3."""

from bharatsend_core.adapters.http.transport import HttpTransport

__all__ = ["HttpTransport"]
