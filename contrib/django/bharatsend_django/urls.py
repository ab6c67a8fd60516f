"""``path("", include("bharatsend_django.urls"))`` mounts the v1 API (and health checks)."""

from __future__ import annotations

from django.urls import re_path

from bharatsend_django.views import api_view

app_name = "bharatsend"

urlpatterns = [
    re_path(r"^(?P<path>(?:v1/|healthz$|readyz$).*)$", api_view, name="api"),
]
