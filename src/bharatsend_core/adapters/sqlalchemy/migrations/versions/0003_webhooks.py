"""Webhooks: endpoints, the event outbox and the log of delivery attempts.

A frozen copy of what ``tables.py`` added at this revision (migrations never
import the live tables). Three new tables, nothing changed in the old ones.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Text-keyed tables keep their rows in the primary key's B-tree on SQLite.
_KEYED = {"sqlite_with_rowid": False}


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    # tables.UtcDateTime stores as this.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create webhook_endpoints, webhook_outbox and webhook_attempts."""
    op.create_table(
        "webhook_endpoints",
        _text("id"),
        _text("tenant_id"),
        _text("url"),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        _time("created_at"),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _text("disabled_reason", nullable=True),
        _time("failing_since", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
        **_KEYED,
    )
    op.create_index(
        "ix_webhook_endpoints_tenant_id_created_at",
        "webhook_endpoints",
        ["tenant_id", "created_at"],
    )

    op.create_table(
        "webhook_outbox",
        _text("event_id"),
        _text("endpoint_id"),
        _text("tenant_id"),
        _text("event_type"),
        sa.Column("payload", sa.JSON(), nullable=False),
        _time("created_at"),
        _text("state"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("next_attempt_at", nullable=True),
        _text("owner", nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("event_id", "endpoint_id", name="pk_webhook_outbox"),
        **_KEYED,
    )
    op.create_index(
        "ix_webhook_outbox_tenant_id_created_at",
        "webhook_outbox",
        ["tenant_id", "created_at"],
    )
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_webhook_outbox_pending_next_attempt_at",
        "webhook_outbox",
        ["next_attempt_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )

    op.create_table(
        "webhook_attempts",
        _text("event_id"),
        _text("endpoint_id"),
        sa.Column("number", sa.Integer(), nullable=False),
        _time("at"),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_snippet", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "endpoint_id", "number", name="pk_webhook_attempts"),
        **_KEYED,
    )


def downgrade() -> None:
    """Drop what this revision created."""
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_outbox_pending_next_attempt_at", table_name="webhook_outbox")
    op.drop_index("ix_webhook_outbox_tenant_id_created_at", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_index("ix_webhook_endpoints_tenant_id_created_at", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
