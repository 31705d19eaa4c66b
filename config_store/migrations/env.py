"""Alembic environment: runs against the engine the caller hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from config_store.models import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        from config_store.database import get_engine

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
