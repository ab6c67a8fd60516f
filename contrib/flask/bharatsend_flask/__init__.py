"""Flask integration for bharatsend-core (install with ``bharatsend-core[flask]``).

::

    from flask import Flask
    from bharatsend_flask import BharatSend

    app = Flask(__name__)
    app.config["BHARATSEND_DATABASE_URL"] = "sqlite:///sms.db"
    app.config["BHARATSEND_KEY_PEPPER"] = "a-long-server-side-secret"
    bharatsend = BharatSend(app)  # the v1 API is now served by this app

The blueprint only translates Flask's request into the framework-neutral
:class:`~bharatsend_core.http.ApiRequest` and the answer back, so the API
behaves exactly as under Django or the plain WSGI server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from flask import Blueprint, Flask, Response, current_app, request

from bharatsend_core import BharatSend as Facade
from bharatsend_core.config import Settings
from bharatsend_core.domain.errors import ConfigurationError
from bharatsend_core.http import ApiApp, ApiConfig

__all__ = ["BharatSend", "facade"]
__version__ = "0.1.0"

_PREFIX = "BHARATSEND_"
# Flask config keys that configure the integration rather than the core.
_API_KEYS = {
    "BHARATSEND_MAX_BODY_BYTES": "max_body_bytes",
    "BHARATSEND_KEY_RATE": "key_rate",
    "BHARATSEND_KEY_BURST": "key_burst",
    "BHARATSEND_WORKER_HEARTBEAT_MAX_AGE": "worker_heartbeat_max_age",
}
_OWN_KEYS = {"BHARATSEND_URL_PREFIX", "BHARATSEND_ROUTES", *_API_KEYS}
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class BharatSend:
    """The Flask extension: builds the facade from ``BHARATSEND_*`` config and mounts the API.

    Config keys are the core's settings with the ``BHARATSEND_`` prefix
    (``BHARATSEND_DATABASE_URL``, ``BHARATSEND_KEY_PEPPER``,
    ``BHARATSEND_NUMBER_LIMIT``...), plus ``BHARATSEND_URL_PREFIX`` (where the
    API is mounted, default ``""``), ``BHARATSEND_ROUTES`` (carrier routes the
    ``flask bharatsend routes sync`` command and the worker apply) and the API
    limits ``BHARATSEND_MAX_BODY_BYTES``, ``BHARATSEND_KEY_RATE``,
    ``BHARATSEND_KEY_BURST``. A facade built elsewhere may be passed in.
    """

    def __init__(self, app: Flask | None = None, *, facade: Facade | None = None) -> None:
        self._facade = facade
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Configure from ``app.config``, register the blueprint and the CLI group."""
        config = app.config
        bs = self._facade or Facade.from_url(**_settings(config))
        api = ApiApp(bs, _api_config(config))
        prefix = str(config.get("BHARATSEND_URL_PREFIX", "") or "").rstrip("/")
        state = _State(bs, api, tuple(config.get("BHARATSEND_ROUTES", ()) or ()))
        app.extensions["bharatsend"] = bs
        app.extensions["bharatsend_state"] = state
        name = "bharatsend" if "bharatsend" not in app.blueprints else f"bharatsend_{id(self)}"
        blueprint = Blueprint(name, __name__, url_prefix=prefix or None)
        blueprint.add_url_rule(
            "/<path:path>", "api", _view, methods=_METHODS, defaults={"prefix": prefix}
        )
        app.register_blueprint(blueprint)
        from bharatsend_flask.cli import bharatsend_group

        if "bharatsend" not in app.cli.commands:
            app.cli.add_command(bharatsend_group)

    @staticmethod
    def facade(app: Flask | None = None) -> Facade:
        """The facade of ``app`` (the current app by default)."""
        return facade(app)


@attrs.frozen
class _State:
    bs: Facade
    api: ApiApp
    routes: tuple[Mapping[str, Any], ...]


def facade(app: Flask | None = None) -> Facade:
    """The configured :class:`~bharatsend_core.BharatSend` of ``app`` (default: current)."""
    target = app or current_app
    try:
        bs: Facade = target.extensions["bharatsend"]
    except KeyError:
        raise ConfigurationError(
            "bharatsend is not initialised on this app; call BharatSend(app)", field="app"
        ) from None
    return bs


def state(app: Flask | None = None) -> _State:
    """The integration's state on ``app`` (facade, API, configured routes)."""
    facade(app)
    result: _State = (app or current_app).extensions["bharatsend_state"]
    return result


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in attrs.fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith(_PREFIX) or key in _OWN_KEYS:
            continue
        name = key[len(_PREFIX) :].lower()
        if name not in names:
            raise ConfigurationError(
                f"unknown setting {key}; known: "
                + ", ".join(sorted(f"{_PREFIX}{n.upper()}" for n in names) + sorted(_OWN_KEYS)),
                field=key,
            )
        values[name] = value
    return values


def _api_config(config: Mapping[str, Any]) -> ApiConfig:
    values = {field: config[key] for key, field in _API_KEYS.items() if key in config}
    try:
        return ApiConfig(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid API limit: {exc}", field="BHARATSEND_API") from None


def _view(path: str, prefix: str) -> Response:
    # werkzeug's stream ends by itself (chunked bodies too), so it is always readable.
    answer = state().api.serve(
        request.method,
        "/" + path,
        dict(request.headers.items()),
        request.query_string.decode("latin-1"),
        request.content_length,
        request.stream.read,
    )
    return Response(answer.body, status=answer.status, headers=list(answer.headers))


def configured_routes(app: Flask | None = None) -> Sequence[Mapping[str, Any]]:
    """The ``BHARATSEND_ROUTES`` of ``app``."""
    return state(app).routes
