"""One view for the whole v1 API: Django's request in, the shared handlers' answer out."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bharatsend_core.domain.errors import PayloadTooLarge
from bharatsend_core.http import ApiRequest
from bharatsend_core.http.core import ApiResponse, error_response
from bharatsend_django import runtime

__all__ = ["api_view"]


@csrf_exempt  # Bearer keys, not cookies: CSRF does not apply
@transaction.non_atomic_requests  # the core commits on its own connection (ATOMIC_REQUESTS)
def api_view(request: HttpRequest, path: str = "") -> HttpResponse:
    """Translate and hand over to :class:`~bharatsend_core.http.ApiApp`."""
    api = runtime.api()
    limit = api.config.max_body_bytes
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:  # a garbled header: read nothing, like Django's own request.body
        length = 0
    answer: ApiResponse
    if length > limit:
        answer = error_response(
            PayloadTooLarge(
                f"the body is {length} bytes; the limit is {limit}",
                field="body",
                detail={"limit_bytes": limit},
            )
        )
    else:
        body = request.read(limit + 1) if length else b""
        if len(body) > limit:
            answer = error_response(
                PayloadTooLarge(
                    f"the body is over the limit of {limit} bytes",
                    field="body",
                    detail={"limit_bytes": limit},
                )
            )
        else:
            answer = api.handle(
                ApiRequest(
                    method=request.method or "GET",
                    path="/" + path,
                    headers=dict(request.headers.items()),
                    body=body,
                    query=request.META.get("QUERY_STRING", ""),
                )
            )
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response
