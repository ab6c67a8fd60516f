"""Initial schema: tenants, API keys, DLT registry, messages, ledger, dispatch queue.

A frozen copy of ``tables.py`` as it was at this revision (migrations never
import the live tables: those move on, history must not).
``tests/integration/test_migrations.py`` proves head equals ``tables.metadata``.

Revision ID: 0001
Revises:
Create Date: 2025-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=False)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    # tables.UtcDateTime stores as this.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _paise(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=False)


# Text-keyed tables keep their rows in the primary key's B-tree on SQLite.
_KEYED = {"sqlite_with_rowid": False}


def _unique_when_set(name: str, table: str, columns: list[str]) -> None:
    present = sa.text(f"{columns[-1]} IS NOT NULL")
    op.create_index(
        name, table, columns, unique=True, sqlite_where=present, postgresql_where=present
    )


def upgrade() -> None:
    """Create every table, constraint and index."""
    op.create_table(
        "tenants",
        _id("id"),
        _text("name"),
        _text("status"),
        _text("billing_point"),
        _json("rates"),
        _int("dlt_version"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        **_KEYED,
    )
    op.create_table(
        "api_keys",
        _id("id"),
        _id("tenant_id"),
        _text("mode"),
        _text("secret_hash"),
        _json("scopes"),
        _text("name"),
        _time("created_at"),
        _time("expires_at", nullable=True),
        _time("revoked_at", nullable=True),
        _time("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        **_KEYED,
    )
    op.create_index("ix_api_keys_tenant_id_created_at", "api_keys", ["tenant_id", "created_at"])

    op.create_table(
        "dlt_entities",
        _id("tenant_id"),
        _id("pe_id"),
        _text("name"),
        sa.PrimaryKeyConstraint("tenant_id", "pe_id", name="pk_dlt_entities"),
        **_KEYED,
    )
    op.create_table(
        "dlt_headers",
        _id("tenant_id"),
        _id("sender_id"),
        _id("entity_id"),
        _text("category"),
        _flag("active"),
        sa.PrimaryKeyConstraint("tenant_id", "sender_id", name="pk_dlt_headers"),
        **_KEYED,
    )
    op.create_table(
        "dlt_templates",
        _id("tenant_id"),
        _id("template_id"),
        _id("entity_id"),
        _text("category"),
        sa.Column("body", sa.Text(), nullable=False),
        _text("content_type"),
        _json("headers"),
        _flag("active"),
        _text("name"),
        _int("version"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "template_id", name="pk_dlt_templates"),
        **_KEYED,
    )
    op.create_table(
        "dlt_template_versions",
        _id("tenant_id"),
        _id("template_id"),
        _int("version"),
        _id("entity_id"),
        _text("category"),
        sa.Column("body", sa.Text(), nullable=False),
        _text("content_type"),
        _json("headers"),
        _flag("active"),
        _text("name"),
        _time("changed_at"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "template_id", "version", name="pk_dlt_template_versions"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "template_id"],
            ["dlt_templates.tenant_id", "dlt_templates.template_id"],
            name="fk_dlt_template_versions_tenant_id_template_id_dlt_templates",
            ondelete="CASCADE",
        ),
        **_KEYED,
    )
    op.create_table(
        "dlt_whitelist",
        _id("tenant_id"),
        _id("kind"),
        _id("value"),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "value", name="pk_dlt_whitelist"),
        **_KEYED,
    )

    op.create_table(
        "messages",
        _id("id"),
        _id("tenant_id"),
        _text("client_message_id", nullable=True),
        _text("fingerprint", nullable=True),
        _text("phone"),
        sa.Column("content", sa.Text(), nullable=False),
        _text("template_id"),
        _text("header"),
        _text("entity_id"),
        _text("category"),
        _text("encoding"),
        _int("segments"),
        _text("status"),
        _int("attempts"),
        _time("next_attempt_at", nullable=True),
        _time("expires_at"),
        _time("created_at"),
        _time("updated_at"),
        _text("route", nullable=True),
        _flag("possible_duplicate"),
        _text("error_code", nullable=True),
        _text("error_reason", nullable=True),
        _text("error_carrier_code", nullable=True),
        _flag("sandbox"),
        _int("priority"),
        _paise("price_paise"),
        _json("metadata"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        **_KEYED,
    )
    op.create_index("ix_messages_tenant_id_created_at", "messages", ["tenant_id", "created_at"])
    _unique_when_set(
        "uq_messages_tenant_id_client_message_id", "messages", ["tenant_id", "client_message_id"]
    )
    op.create_table(
        "message_parts",
        _id("message_id"),
        _int("idx"),
        _text("status"),
        _text("carrier_message_id", nullable=True),
        _time("submitted_at", nullable=True),
        _time("final_at", nullable=True),
        _text("error_code", nullable=True),
        _flag("outcome_unknown"),
        sa.PrimaryKeyConstraint("message_id", "idx", name="pk_message_parts"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_parts_message_id_messages",
            ondelete="CASCADE",
        ),
        **_KEYED,
    )
    known = sa.text("carrier_message_id IS NOT NULL")
    op.create_index(
        "ix_message_parts_carrier_message_id",
        "message_parts",
        ["carrier_message_id"],
        sqlite_where=known,
        postgresql_where=known,
    )
    op.create_table(
        "message_events",
        _id("message_id"),
        _int("sequence"),
        _time("at"),
        _text("kind"),
        _text("status"),
        _json("detail"),
        sa.PrimaryKeyConstraint("message_id", "sequence", name="pk_message_events"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_events_message_id_messages",
            ondelete="CASCADE",
        ),
        **_KEYED,
    )

    op.create_table(
        "ledger_accounts",
        _id("id"),
        _text("tenant_id", nullable=True),
        _paise("debits_pending"),
        _paise("debits_posted"),
        _paise("credits_pending"),
        _paise("credits_posted"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_accounts"),
        **_KEYED,
    )
    op.create_table(
        "ledger_transfers",
        sa.Column(
            "seq",
            # INTEGER PRIMARY KEY is SQLite's rowid; BIGSERIAL on PostgreSQL.
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        _id("id"),
        _text("kind"),
        _id("debit_account"),
        _id("credit_account"),
        _paise("amount"),
        _id("tenant_id"),
        _time("created_at"),
        _text("pending_id", nullable=True),
        _text("message_id", nullable=True),
        _text("reference", nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger_transfers"),
        sa.UniqueConstraint("id", name="uq_ledger_transfers_id"),
    )
    _unique_when_set("uq_ledger_transfers_pending_id", "ledger_transfers", ["pending_id"])
    op.create_index("ix_ledger_transfers_tenant_id_seq", "ledger_transfers", ["tenant_id", "seq"])

    op.create_table(
        "dispatch_queue",
        _id("message_id"),
        _id("tenant_id"),
        _time("due_at"),
        _int("priority"),
        _text("owner", nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_dispatch_queue"),
        **_KEYED,
    )
    op.create_index(
        "ix_dispatch_queue_claim_order", "dispatch_queue", [sa.text("priority DESC"), "due_at"]
    )


def downgrade() -> None:
    """Drop everything this revision created (children before parents)."""
    for table in (
        "dispatch_queue",
        "ledger_transfers",
        "ledger_accounts",
        "message_events",
        "message_parts",
        "messages",
        "dlt_whitelist",
        "dlt_template_versions",
        "dlt_templates",
        "dlt_headers",
        "dlt_entities",
        "api_keys",
        "tenants",
    ):
        op.drop_table(table)
