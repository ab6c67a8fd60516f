"""One number's recent messages: an index on messages (tenant_id, phone, created_at).

The per-number limit (SMS-pumping defence) counts a tenant's messages to one
number in a trailing window on every accept, and ``GET /v1/sms`` filters by
phone; both read one range of this index. A frozen copy of what ``tables.py``
added at this revision (migrations never import the live tables). On a large
PostgreSQL table consider building it by hand first with
``CREATE INDEX CONCURRENTLY`` under the same name; this revision then skips it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ix_messages_tenant_id_phone_created_at."""
    op.create_index(
        "ix_messages_tenant_id_phone_created_at",
        "messages",
        ["tenant_id", "phone", "created_at"],
        if_not_exists=True,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_messages_tenant_id_phone_created_at", table_name="messages")
