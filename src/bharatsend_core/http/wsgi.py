"""The API as a plain WSGI application, and a small threaded server for the demo.

No framework: a WSGI server (waitress, gunicorn, wsgiref) calls
:func:`call_wsgi`, which turns the environ into an :class:`ApiRequest`. Bodies
longer than the limit are refused without being read in full.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bharatsend_core.http.core import content_length

if TYPE_CHECKING:
    from bharatsend_core.http.api import ApiApp

__all__ = ["ApiServer", "call_wsgi", "reason"]

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def reason(status: int) -> str:
    """The reason phrase for a status line."""
    return _REASONS.get(status, "Unknown")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def call_wsgi(
    app: ApiApp, environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Serve one WSGI request with ``app``."""
    length = content_length(environ.get("CONTENT_LENGTH"))
    stream = environ.get("wsgi.input")
    # PEP 3333: never read past CONTENT_LENGTH; without one there is no body.
    read = stream.read if stream is not None and length is not None else None
    path = environ.get("PATH_INFO", "/")
    # PEP 3333 hands the path over as latin-1 decoded bytes.
    path = path.encode("latin-1").decode("utf-8", "replace")
    response = app.serve(
        environ.get("REQUEST_METHOD", "GET"),
        path,
        _headers(environ),
        environ.get("QUERY_STRING", ""),
        length,
        read,
    )
    body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else response.body
    headers = [*response.headers, ("Content-Length", str(len(body)))]
    start_response(f"{response.status} {reason(response.status)}", headers)
    return [body]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Access logs carry paths with ids; keep them out of the demo's terminal."""


class ApiServer:
    """The API on a threaded ``wsgiref`` server, for the demo and tests (not production)."""

    def __init__(self, app: ApiApp, host: str = "127.0.0.1", port: int = 8080) -> None:
        self._server = make_server(
            host, port, app.wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_port)

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bharatsend-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
