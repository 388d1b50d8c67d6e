"""PostgreSQL access for the pipeline: connections resolved from Airflow connections (the postgres provider),
and the versioned migrations of the integration's own schema, applied on start under an advisory lock."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from include.omono_xero_sync import settings

SQL_DIR = Path(__file__).parent / "sql"
_MIGRATION_LOCK = 7_340_241   # advisory lock id: one migrator at a time


def dsn(conn_id: str) -> str:
    """A libpq URI for an Airflow connection (works in tasks, the api-server and plain processes)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    uri = PostgresHook(postgres_conn_id=conn_id).get_uri()
    scheme, _, rest = uri.partition("://")
    return f"postgresql://{rest}"


@contextmanager
def connect(conn_id: str | None = None) -> Generator[psycopg.Connection, None, None]:
    """A connection with dict rows; commits when the block ends cleanly, rolls back otherwise."""
    with psycopg.connect(dsn(conn_id or settings.STATE_CONN_ID), row_factory=dict_row,
                         application_name="omono-xero-sync") as conn:
        yield conn


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations in sql/migrations that this database has not seen; returns those applied."""
    applied: list[str] = []
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {settings.STATE_SCHEMA}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {settings.STATE_SCHEMA}.schema_migrations "
                 "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    done = {r["version"] for r in conn.execute(f"SELECT version FROM {settings.STATE_SCHEMA}.schema_migrations")}
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        if path.stem in done:
            continue
        conn.execute(path.read_text())
        conn.execute(f"INSERT INTO {settings.STATE_SCHEMA}.schema_migrations (version) VALUES (%s)", (path.stem,))
        applied.append(path.stem)
    conn.commit()
    return applied


def install_omono_schema(conn: psycopg.Connection) -> None:
    """The demo Omono schema plus the change-log triggers the sync relies on (idempotent)."""
    conn.execute((SQL_DIR / "omono" / "schema.sql").read_text())
    conn.execute((SQL_DIR / "omono" / "change_log.sql").read_text())
    conn.commit()
