"""The view's own request handling (the API's behaviour is the shared suite in tests/api)."""

from __future__ import annotations

from django.test import RequestFactory

from bharatsend_django.views import api_view

from .conftest import Configure


def test_a_garbled_content_length_reads_no_body(
    bharatsend_settings: Configure, own_sqlite_url: str
) -> None:
    """Like Django's WSGIRequest: an unreadable CONTENT_LENGTH means no body, not a 500."""
    bharatsend_settings(DATABASE=own_sqlite_url)
    request = RequestFactory().post(
        "/v1/sms/send", data=b"{}", content_type="application/json", CONTENT_LENGTH="lots"
    )
    response = api_view(request, path="v1/sms/send")
    assert response.status_code == 401  # no key: answered by the API, not a crash
    assert response["Content-Type"] == "application/json"
    assert api_view(RequestFactory().get("/healthz"), path="healthz").status_code == 200
