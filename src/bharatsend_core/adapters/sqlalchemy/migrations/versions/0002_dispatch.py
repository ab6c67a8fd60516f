"""Routes, the delivery-receipt inbox, and the route each part was submitted on.

A frozen copy of what ``tables.py`` added at this revision (migrations never
import the live tables). The new ``message_parts.route`` is nullable, so it is
a plain ``ADD COLUMN`` on both SQLite and PostgreSQL: no table rebuild.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
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
    """Create routes and receipts; add message_parts.route."""
    op.add_column("message_parts", _text("route", nullable=True))
    op.create_table(
        "routes",
        _text("name"),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_routes"),
        **_KEYED,
    )
    op.create_table(
        "receipts",
        _text("route"),
        _text("carrier_message_id"),
        _text("outcome"),
        _text("stat"),
        _text("error_code", nullable=True),
        _time("received_at"),
        _time("done_at", nullable=True),
        _text("state"),
        _text("tenant_id", nullable=True),
        _text("message_id", nullable=True),
        sa.Column("part_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("route", "carrier_message_id", "outcome", name="pk_receipts"),
        **_KEYED,
    )
    op.create_index("ix_receipts_state_received_at", "receipts", ["state", "received_at"])
    matched = sa.text("message_id IS NOT NULL")
    op.create_index(
        "ix_receipts_message_id",
        "receipts",
        ["message_id"],
        sqlite_where=matched,
        postgresql_where=matched,
    )

    waiting = sa.text("status = 'sent'")
    op.create_index(
        "ix_messages_sent_updated_at",
        "messages",
        ["updated_at"],
        sqlite_where=waiting,
        postgresql_where=waiting,
    )


def downgrade() -> None:
    """Drop what this revision created (SQLite 3.35+ drops a column in place)."""
    op.drop_index("ix_messages_sent_updated_at", table_name="messages")
    op.drop_table("receipts")
    op.drop_table("routes")
    op.drop_column("message_parts", "route")
