"""Alembic environment: runs on the engine the Database hands over (no URL in an ini file)."""

from __future__ import annotations

from alembic import context

from plinth.store.db import Base, import_table_modules

import_table_modules()
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `plinth db upgrade`")
run_migrations_online()
