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
        from django.core.signals import setting_changed

        from bharatsend_django import runtime

        runtime.config()
        post_migrate.connect(_migrate_core, sender=self, dispatch_uid="bharatsend_migrate")
        setting_changed.connect(runtime.on_setting_changed, dispatch_uid="bharatsend_settings")


def _migrate_core(sender: AppConfig, using: str = "default", **_kwargs: Any) -> None:
    """``manage.py migrate`` on the database the core lives in also migrates the core."""
    from bharatsend_django import runtime

    if using != (runtime.config().database_alias or "default"):
        return
    # The test runner may have switched the database since startup (even when
    # the core is not migrated here, the facade must not keep the old one).
    runtime.reset()
    if runtime.config().migrate_on_migrate:
        runtime.facade().migrate()
