"""Alembic environment: migrations run on the connection migrate() hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from flowbuilder.runtime.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line: make a connection from the configured URL
    connection = create_engine(config.get_main_option("sqlalchemy.url") or "").connect()
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
