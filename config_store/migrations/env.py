"""Alembic environment: runs against the engine the caller hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from config_store.database import get_engine
from config_store.models import Base

# Every table of the schema is declared on Base; the delivery record's and the
# access store's modules add theirs when imported.
from dispatcher.admin import models as _access_tables  # noqa: F401
from dispatcher.delivery import models as _record_tables  # noqa: F401

target_metadata = Base.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = get_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot alter tables in place; batch mode copies them.
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
