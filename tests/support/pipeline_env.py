"""The real services the pipeline runs on in tests: a PostgreSQL database, Airflow's metadata DB, and a Xero
organisation in the emulator that the Airflow connection `xero_default` is connected to."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import psycopg

from tests.support.xero_sdk import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, UK_TENANT, authorization_code_tokens

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("OMONO_XERO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = f"omono_xero_sync_test_{os.getpid()}"      # one per test session: concurrent runs never collide


def create_test_database() -> str:
    """A fresh database for this test session; returns its URL and points Airflow's `omono_db` at it."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEST_DB}")
        # The tests commit tens of thousands of times; none of them needs a commit to survive a crash of the
        # server itself, so commits here don't wait for the disk (a setting of this database only).
        admin.execute(f"ALTER DATABASE {TEST_DB} SET synchronous_commit = off")
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DB}"
    info = psycopg.conninfo.conninfo_to_dict(url)
    os.environ["AIRFLOW_CONN_OMONO_DB"] = json.dumps({
        "conn_type": "postgres", "host": info.get("host", "127.0.0.1"), "port": int(info.get("port", 5432)),
        "login": info.get("user", "postgres"), "password": info.get("password"), "schema": TEST_DB})
    return url


def drop_test_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")


_SCHEMAS = "('omono', 'xero_sync')"
# What the schemas are made of (tables, columns, defaults, constraints, triggers, functions, grants, migrations): a
# test that altered any of it gets the schemas rebuilt; otherwise emptying the tables is the same fresh start.
_SHAPE = f"""SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT c.oid::regclass::text || c.relkind::text || coalesce(c.relacl::text, '') FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN {_SCHEMAS}
  UNION ALL SELECT a.attrelid::regclass::text || '.' || a.attname || format_type(a.atttypid, a.atttypmod)
    || a.attnotnull::text || coalesce(pg_get_expr(d.adbin, d.adrelid), '') FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname IN {_SCHEMAS} AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT t.tgrelid::regclass::text || t.tgname || t.tgenabled::text FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN {_SCHEMAS} AND NOT t.tgisinternal
  UNION ALL SELECT k.conname || pg_get_constraintdef(k.oid) FROM pg_constraint k
    JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname IN {_SCHEMAS}
  UNION ALL SELECT p.oid::regprocedure::text || md5(p.prosrc) || coalesce(p.proacl::text, '') FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN {_SCHEMAS}
  UNION ALL SELECT n.nspname || coalesce(n.nspacl::text, '') FROM pg_namespace n WHERE n.nspname IN {_SCHEMAS}
  UNION ALL SELECT 'migration ' || version::text FROM xero_sync.schema_migrations) s(x)"""
_pristine: dict[str, str] = {}


def reset_schemas(url: str) -> None:
    """Empty Omono's and the integration's schemas, as if just installed: the tables are emptied and the
    sequences restarted when the schemas still have the shape the migrations gave them (a tenth of the time of
    rebuilding them), else they are dropped and rebuilt."""
    from include.omono_xero_sync import db

    with psycopg.connect(url, autocommit=True) as conn:
        if url in _pristine and _shape(conn) == _pristine[url]:
            tables = [r[0] for r in conn.execute(
                f"SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname IN {_SCHEMAS} "
                "AND (schemaname, tablename) <> ('xero_sync', 'schema_migrations')")]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            conn.execute(f"SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) FROM "
                         f"pg_sequences WHERE schemaname IN {_SCHEMAS}")
            return
        conn.execute("DROP SCHEMA IF EXISTS omono CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS xero_sync CASCADE")
    with psycopg.connect(url) as conn:
        db.install_omono_schema(conn)
        db.migrate(conn)
        conn.commit()
        _pristine[url] = _shape(conn)


def _shape(conn: psycopg.Connection) -> str | None:
    try:
        return conn.execute(_SHAPE).fetchone()[0]
    except psycopg.errors.UndefinedTable:         # a test dropped the schema: rebuild
        conn.rollback()
        return None


def migrate_airflow() -> None:
    """Airflow's metadata DB, as `airflow db migrate` makes it, made in this process: the tests import Airflow
    anyway, and a command would spend its seconds importing it again."""
    from airflow.utils import db as airflow_db

    airflow_db.upgradedb()


@dataclass
class XeroOrg:
    base_url: str
    tenant_id: str = UK_TENANT

    def connect(self, url: str) -> None:
        """What `make demo` / the connect command does: store a fresh token set for `xero_default`."""
        from include.omono_xero_sync.xero_api import TokenStore
        from include.omono_xero_sync.xero_hook import XeroHook

        os.environ["AIRFLOW_CONN_XERO_DEFAULT"] = json.dumps({
            "conn_type": "generic", "login": DEMO_CLIENT_ID, "password": DEMO_CLIENT_SECRET,
            "extra": {"tenant_id": self.tenant_id, "api_url": f"{self.base_url}/api.xro/2.0",
                      "identity_url": self.base_url}})
        tokens = authorization_code_tokens(self.base_url)
        import time

        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            store = TokenStore(conn, XeroHook().settings())
            store.save({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                        "expires_at": time.time() + tokens["expires_in"], "scope": tokens["scope"].split(),
                        "token_type": "Bearer"})

    def next_day(self, admin: object, url: str) -> None:
        """An emulated day later: Xero's clock moves on (a new daily budget; the tokens expired, so a fresh
        connection), and what the integration remembers of the last minute's calls is a day old, as it would be
        (else the per-minute pacing counts days packed into one real minute, and waits)."""
        admin.post("/clock", json={"advance_seconds": 86_400}).raise_for_status()
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE xero_sync.api_usage SET updated_at = updated_at - interval '1 day'")
        self.connect(url)


@dataclass
class SyncRun:
    """One `dag.test()` run and what a user would look at afterwards."""

    dagrun: object
    task_states: dict[str, str]

    @property
    def state(self) -> str:
        return str(self.dagrun.state)


def run_sync(dag: object, **conf: object) -> SyncRun:
    # dag.test() keeps one run's conf on the DAG object for the next run in the same process, so every
    # parameter is passed every time, as the trigger form does.
    full = {"dry_run": False, "full_resync": False, "date_from": None, "date_to": None, **conf}
    with _short_dag_test_pauses():
        dagrun = dag.test(run_conf=full)
    return SyncRun(dagrun, {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()})


@contextmanager
def _short_dag_test_pauses() -> Generator[None, None, None]:
    """dag.test() pauses a second whenever no task is ready, and marks a failed task's downstream tasks
    upstream_failed one task per pass: a run that fails early idles ~12 s before it ends (a scheduler does the
    same, unseen beside a 15-minute schedule). Only that pause, asked for by Airflow's own loop, is shortened:
    every other sleep (the client's pacing and retries) keeps its length."""
    from airflow.sdk.definitions import dag as airflow_dag

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        real_sleep(0.02 if sys._getframe(1).f_code.co_filename == airflow_dag.__file__ else seconds)

    with mock.patch("time.sleep", sleep):
        yield


def db(url: str) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=psycopg.rows.dict_row)


def record_state(url: str, entity: str, number: str) -> dict | None:
    """A record's row in `xero_sync.record_state`, by Omono number: what the sync log's record page shows."""
    with db(url) as conn:
        return conn.execute("SELECT * FROM xero_sync.record_state WHERE entity = %s AND omono_number = %s",
                            (entity, number)).fetchone()


def seed(url: str, documents: int = 20, bad_share: float = 0.0) -> dict[str, int]:
    """Demo Omono data plus the demo mappings (no deliberately bad records unless asked)."""
    from include.commands import demo_data

    with db(url) as conn:
        counts = demo_data.generate(conn, documents=documents, bad_share=bad_share)
        demo_data.apply_demo_mappings(conn)
    return counts


def xero_objects(admin: object, kind: str) -> list[dict]:
    """What the demo organisation holds in the emulator (contacts, invoices, creditnotes…)."""
    return admin.get(f"/tenants/{UK_TENANT}/{kind}").json()[kind]


def api_calls(admin: object, since: int = 0) -> list[dict]:
    """Accounting API calls the emulator received for the demo organisation (exact, from its request log)."""
    rows = admin.get("/requests", params={"tenant": UK_TENANT, "since": since}).json()["requests"]
    return [r for r in rows if r["path"].startswith("/api.xro/2.0")]


def last_seq(admin: object) -> int:
    rows = admin.get("/requests").json()["requests"]
    return rows[-1]["seq"] if rows else 0
