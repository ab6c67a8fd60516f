"""The app config: validates ``settings.BHARATSEND`` at startup and hooks into ``migrate``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BharatSendConfig(AppConfig):
    """``INSTALLED_APPS = [..., "bharatsend_django"]``."""

    name = "bharatsend_django"
    label = "bharatsend"
    verbose_name = "BharatSend SMS"
    default = True

    def ready(self) -> None:
        """Fail fast on bad settings; migrate the core's tables after Django's ``migrate``."""
        from bharatsend_django import runtime

        runtime.config()
        post_migrate.connect(_migrate_core, sender=self, dispatch_uid="bharatsend_migrate")


def _migrate_core(sender: AppConfig, using: str = "default", **_kwargs: Any) -> None:
    """``manage.py migrate`` on the database the core lives in also migrates the core."""
    from bharatsend_django import runtime

    conf = runtime.config()
    if not conf.migrate_on_migrate:
        return
    if conf.database_alias is not None and using != conf.database_alias:
        return
    if conf.database_alias is None and using != "default":
        return
    runtime.reset()  # the test runner may have switched the database since startup
    runtime.facade().migrate()
