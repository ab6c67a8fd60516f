"""Framework-neutral HTTP plumbing: request/response values, routing, auth, rate limits.

Flask, Django and the plain WSGI server only translate their request into an
:class:`ApiRequest` and an :class:`ApiResponse` back, so every integration
behaves byte for byte the same. Errors become the ``{"error": ...}`` envelope
here, once, from the error's own ``http_status``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs

from attrs import field, frozen

from bharatsend_core.domain.errors import (
    BharatSendError,
    EndpointNotFound,
    InsufficientScope,
    InternalError,
    InvalidApiKey,
    InvalidArgument,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
)
from bharatsend_core.domain.keys import Scope
from bharatsend_core.http.schema import parse_query, structure, unstructure

__all__ = [
    "ApiConfig",
    "ApiRequest",
    "ApiResponse",
    "Call",
    "KeyRateLimiter",
    "Operation",
    "PrincipalCache",
    "Reply",
    "Router",
    "bounded_body",
    "content_length",
    "too_large",
]

log = logging.getLogger("bharatsend.http")

JSON: Final = "application/json"
CSV: Final = "text/csv"


def _upper(method: str) -> str:
    return method.upper()


def _lower_keys(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@frozen
class ApiRequest:
    """An HTTP request as every integration hands it over."""

    method: str = field(converter=_upper)
    path: str
    #: Header names in any case; looked up lower-cased.
    headers: Mapping[str, str] = field(factory=dict, converter=_lower_keys)
    body: bytes = b""
    #: The raw query string (without ``?``).
    query: str = ""

    def header(self, name: str) -> str | None:
        """A header's value, or None."""
        return self.headers.get(name.lower())


@frozen
class ApiResponse:
    """What to answer: status, headers and the body bytes."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """A header's value, or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@frozen
class ApiConfig:
    """Limits of the HTTP API."""

    #: Larger bodies are refused with 413 before they are parsed.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Requests per second each API key may make (token bucket refill); 0 turns it off.
    key_rate: float = 100.0
    #: How many requests a key may burst above its rate.
    key_burst: int = 200
    #: How long a verified key is trusted without asking the database again. A key
    #: revoked or expired elsewhere keeps working on this process at most this long;
    #: 0 checks every request.
    key_cache_seconds: float = 1.0
    #: Worker heartbeats older than this make ``/readyz`` answer 503; None skips the check.
    worker_heartbeat_max_age: float | None = 30.0


@frozen
class Call:
    """One authenticated request as a handler sees it."""

    request: ApiRequest
    params: Mapping[str, str]
    tenant_id: str
    sandbox: bool
    body: Any = None
    query: Any = None


@frozen
class Reply:
    """What a handler returns: the data (a model or list of models) and extras."""

    data: Any
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    #: For lists: whether another page follows, and the cursor to fetch it.
    has_more: bool | None = None
    next_cursor: str | None = None


@frozen
class Operation:
    """One endpoint: where it is, who may call it, what it takes and what it answers."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Callable[[Call], Reply]
    #: Any one of these scopes is enough; empty means any valid key.
    scopes: tuple[Scope, ...] = ()
    auth: bool = True
    body: type | None = None
    #: ``text/csv`` for uploads; the handler gets the raw text.
    body_type: str = JSON
    query: type | None = None
    #: The model (or ``list[Model]``) under ``data``.
    response: Any = None
    status: int = 200
    paginated: bool = False
    #: Error statuses worth documenting for this endpoint (on top of the common ones).
    errors: tuple[int, ...] = ()
    #: Raw response (not the ``data`` envelope), e.g. the OpenAPI document itself.
    raw: bool = False
    description: str = ""

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression with named groups for ``{param}``."""
        return _compile(self.path)

    @property
    def path_params(self) -> tuple[str, ...]:
        """The names of the ``{param}`` parts of the path."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]{1,200})", re.escape(path))
    return re.compile(f"^{regex}$")


class KeyRateLimiter:
    """A token bucket per API key, in this process (thread-safe, bounded in memory).

    Each process of a multi-process server keeps its own buckets, so the
    effective limit is per process; size ``rate`` accordingly.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._now = monotonic
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds until it could."""
        if self._rate <= 0:
            return 0.0
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return wait


class PrincipalCache:
    """Recently verified keys, so a burst of requests costs one key lookup, not one each.

    Entries are keyed by a SHA-256 of the presented key (the key itself is not
    kept) and live ``ttl`` seconds; only successes are cached, so a bad key is
    checked (and refused) every time.
    """

    def __init__(
        self,
        ttl: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._ttl = ttl
        self._now = monotonic
        self._max = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw_key: str) -> Any:
        """The cached principal for this key, or None."""
        if self._ttl <= 0:
            return None
        digest = hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] <= self._now():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, raw_key: str, principal: Any) -> None:
        """Remember a verified principal for ``ttl`` seconds."""
        if self._ttl <= 0:
            return
        digest = hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            self._entries[digest] = (self._now() + self._ttl, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every key (after a revocation through this process)."""
        with self._lock:
            self._entries.clear()


Authenticator = Callable[[str, Sequence[Scope]], tuple[str, str, bool]]


class Router:
    """Matches requests to operations and runs them with every check in a fixed order.

    Order: path → method → body size → auth → scope → rate limit → media type
    → JSON → model → handler. Auth comes before the body is looked at, so an
    anonymous caller learns nothing about validation.
    """

    def __init__(
        self,
        operations: Sequence[Operation],
        authenticate: Authenticator,
        config: ApiConfig,
        limiter: KeyRateLimiter,
    ) -> None:
        self.operations = tuple(operations)
        self._compiled = [(op, op.pattern) for op in self.operations]
        self._authenticate = authenticate
        self._config = config
        self._limiter = limiter

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request; never raises."""
        try:
            return self._handle(request)
        except BharatSendError as err:
            return error_response(err)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, _safe_path(request.path))
            return error_response(InternalError("an internal error occurred; it has been logged"))

    def _handle(self, request: ApiRequest) -> ApiResponse:
        op, params = self._match(request)
        if len(request.body) > self._config.max_body_bytes:
            raise too_large(self._config.max_body_bytes, len(request.body))
        tenant_id, sandbox = "", False
        if op.auth:
            tenant_id, key_id, sandbox = self._authenticate(
                _bearer(request.header("authorization")), op.scopes
            )
            wait = self._limiter.take(key_id)
            if wait > 0:
                raise RateLimited(
                    "too many requests for this API key; slow down",
                    field="authorization",
                    retry_after=max(1, int(wait + 0.999)),
                )
        body = self._body(op, request)
        given = parse_qs(request.query, keep_blank_values=True)
        query: Any = None
        if op.query is not None:
            query = parse_query(given, op.query)
        elif given:
            name = sorted(given)[0]
            raise InvalidArgument(f"unknown query parameter {name!r}", field=name)
        reply = op.handler(Call(request, params, tenant_id, sandbox, body, query))
        if op.raw:
            return json_response(reply.status, reply.data, reply.headers)
        envelope: dict[str, Any] = {"data": unstructure(reply.data)}
        if op.paginated:
            envelope["has_more"] = bool(reply.has_more)
            envelope["next_cursor"] = reply.next_cursor
        return json_response(reply.status, envelope, reply.headers)

    def _match(self, request: ApiRequest) -> tuple[Operation, dict[str, str]]:
        allowed: list[str] = []
        for op, pattern in self._compiled:
            found = pattern.match(request.path)
            if found is None:
                continue
            if op.method == request.method or (op.method == "GET" and request.method == "HEAD"):
                return op, found.groupdict()
            allowed.append(op.method)
        if allowed:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here; use {', '.join(sorted(set(allowed)))}",
                detail={"allow": sorted(set(allowed))},
            )
        raise EndpointNotFound(f"no endpoint at {_safe_path(request.path)}", field="path")

    def _body(self, op: Operation, request: ApiRequest) -> Any:
        if op.body is None and op.body_type == JSON:
            return None
        media = (request.header("content-type") or "").split(";")[0].strip().lower()
        if op.body_type == CSV:
            if media not in (CSV, "text/plain", "application/octet-stream"):
                raise UnsupportedMediaType(
                    "send the CSV with Content-Type: text/csv", field="content-type"
                )
            return _text(request.body)
        if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
            raise UnsupportedMediaType(
                "send JSON with Content-Type: application/json", field="content-type"
            )
        try:
            data = json.loads(_text(request.body))
        except (ValueError, RecursionError):
            raise MalformedRequest("the body is not valid JSON", field="body") from None
        assert op.body is not None
        return structure(data, op.body)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not valid UTF-8", field="body") from None


def too_large(limit: int, length: int | None = None) -> PayloadTooLarge:
    """The 413 error for a body over ``limit`` bytes."""
    said = f"the body is {length} bytes" if length is not None else "the body is too large"
    return PayloadTooLarge(
        f"{said}; the limit is {limit}", field="body", detail={"limit_bytes": limit}
    )


def content_length(value: str | int | None) -> int | None:
    """A declared ``Content-Length``; None when absent or garbled (then nothing is read)."""
    if value is None or value == "":
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def bounded_body(limit: int, length: int | None, read: Callable[[int], bytes] | None) -> bytes:
    """Read a request body without ever holding more than ``limit`` + 1 bytes.

    A declared length over the limit is refused before anything is read. With
    no declared length, ``read`` is given only by servers whose stream ends by
    itself (chunked bodies); otherwise there is no body. ``PayloadTooLarge``.
    """
    if length is not None and length > limit:
        raise too_large(limit, length)
    if read is None or length == 0:
        return b""
    body = read(limit + 1 if length is None else length)
    if len(body) > limit:
        raise too_large(limit)
    return body


def _bearer(value: str | None) -> str:
    if not value:
        raise InvalidApiKey("the API key is missing or invalid", field="authorization")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("the API key is missing or invalid", field="authorization")
    return token.strip()


def _safe_path(path: str) -> str:
    """The path for a message or a log line, cut short (it is caller input)."""
    return path[:120]


def json_response(status: int, data: Any, headers: Sequence[tuple[str, str]] = ()) -> ApiResponse:
    """A JSON response (compact, UTF-8, never cached)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from the caller's own JSON ("\ud800") echoed in a message:
        # escape everything rather than fail.
        body = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    base = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
    return ApiResponse(status, body, (*base, *headers))


def error_response(err: BharatSendError) -> ApiResponse:
    """The ``{"error": {...}}`` envelope at the error's own status."""
    headers: list[tuple[str, str]] = []
    if isinstance(err, RateLimited):
        headers.append(("Retry-After", str(err.retry_after)))
    if isinstance(err, InvalidApiKey):
        headers.append(("WWW-Authenticate", 'Bearer realm="bharatsend"'))
    if isinstance(err, InsufficientScope):
        headers.append(("WWW-Authenticate", 'Bearer error="insufficient_scope"'))
    if isinstance(err, MethodNotAllowed):
        headers.append(("Allow", ", ".join(err.detail.get("allow", ()))))
    return json_response(err.http_status, {"error": err.to_dict()}, headers)
