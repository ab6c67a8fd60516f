"""SQLite and PostgreSQL storage on SQLAlchemy Core, with Alembic migrations.

Importing this package creates nothing: build a storage with
``SqlStorage.from_url(...)``, then call ``migrate()`` once per deployment.
PostgreSQL needs the driver extra: ``pip install "bharatsend-core[postgres]"``.
"""

from bharatsend_core.adapters.sqlalchemy.storage import SqlStorage, SqlUnitOfWork
from bharatsend_core.adapters.sqlalchemy.tables import metadata

__all__ = ["SqlStorage", "SqlUnitOfWork", "metadata"]
