"""The framework-neutral HTTP API (v1); Flask and Django only translate to and from it."""

from bharatsend_core.http.api import ApiApp
from bharatsend_core.http.core import ApiConfig, ApiRequest, ApiResponse, KeyRateLimiter
from bharatsend_core.http.wsgi import ApiServer

__all__ = ["ApiApp", "ApiConfig", "ApiRequest", "ApiResponse", "ApiServer", "KeyRateLimiter"]
