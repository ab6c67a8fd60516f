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

from bharatsend_core.domain.errors import PayloadTooLarge
from bharatsend_core.http.core import ApiRequest, ApiResponse, error_response

if TYPE_CHECKING:
    from bharatsend_core.http.api import ApiApp

__all__ = ["ApiServer", "call_wsgi", "reason", "request_from_environ"]

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


def request_from_environ(environ: dict[str, Any], max_body: int) -> ApiRequest:
    """An :class:`ApiRequest` from a WSGI environ; ``PayloadTooLarge`` past ``max_body``."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_body:
        raise PayloadTooLarge(
            f"the body is {length} bytes; the limit is {max_body}",
            field="body",
            detail={"limit_bytes": max_body},
        )
    stream = environ.get("wsgi.input")
    body = stream.read(length) if (stream is not None and length > 0) else b""
    path = environ.get("PATH_INFO", "/")
    if isinstance(path, str):
        # PEP 3333 hands the path over as latin-1 decoded bytes.
        path = path.encode("latin-1").decode("utf-8", "replace")
    return ApiRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        headers=headers,
        body=body,
        query=environ.get("QUERY_STRING", ""),
    )


def call_wsgi(
    app: ApiApp, environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Serve one WSGI request with ``app``."""
    try:
        request = request_from_environ(environ, app.config.max_body_bytes)
    except PayloadTooLarge as err:
        response: ApiResponse = error_response(err)
    else:
        response = app.handle(request)
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
