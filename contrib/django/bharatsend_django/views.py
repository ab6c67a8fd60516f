"""One view for the whole v1 API: Django's request in, the shared handlers' answer out."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bharatsend_core.http.core import content_length
from bharatsend_django import runtime

__all__ = ["api_view"]


@csrf_exempt  # Bearer keys, not cookies: CSRF does not apply
@transaction.non_atomic_requests  # the core commits on its own connection (ATOMIC_REQUESTS)
def api_view(request: HttpRequest, path: str = "") -> HttpResponse:
    """Translate and hand over to :class:`~bharatsend_core.http.ApiApp`."""
    length = content_length(request.META.get("CONTENT_LENGTH"))
    # Django's stream yields nothing past a declared length; without one there is no body
    # (a garbled header reads nothing, like Django's own request.body).
    answer = runtime.api().serve(
        request.method or "GET",
        "/" + path,
        dict(request.headers.items()),
        request.META.get("QUERY_STRING", ""),
        length,
        request.read if length else None,
    )
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response
