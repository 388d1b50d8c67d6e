"""One writer per Xero organisation, across processes and machines.

Bills and purchase credit notes have no unique number in Xero, so two runs that plan the same pending bill at
once would both create it. Every step that writes to Xero (account creation, each push, allocation) therefore
runs under a PostgreSQL session advisory lock keyed by the organisation, taken in the integration's state
database on a connection of its own: whatever else runs at the same time (a backfill beside the scheduler, a
second deployment on the same state, an `airflow dags test` by hand) waits, then plans from the state the first
writer left. A task killed with `kill -9` loses its connection and PostgreSQL releases the lock at once.
Who holds it is written to `xero_sync.write_lock`, so the one waiting can say for whom."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Generator
from contextlib import contextmanager

import psycopg

from include.omono_xero_sync import db, settings

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA


class OrganisationBusy(Exception):
    """Another run kept the organisation longer than this one may wait; nothing was sent by this one."""


def lock_key(organisation: str) -> int:
    """A stable signed 64-bit advisory-lock key for one Xero organisation."""
    digest = hashlib.sha256(f"omono-xero-sync:{organisation}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def exclusive(organisation: str, holder: str, wait_seconds: float | None = None) -> Generator[None, None, None]:
    """Hold the organisation's write lock for the block; wait for it (saying for whom) up to `wait_seconds`."""
    wait = settings.LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    key = lock_key(organisation)
    with psycopg.connect(db.dsn(settings.STATE_CONN_ID), autocommit=True,
                         application_name="omono-xero-sync write lock") as conn:
        _acquire(conn, key, organisation, holder, wait)
        try:
            yield
        finally:
            conn.execute(f"DELETE FROM {S}.write_lock WHERE organisation = %s", (organisation,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _acquire(conn: psycopg.Connection, key: int, organisation: str, holder: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    said = False
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        other = conn.execute(f"SELECT holder, since FROM {S}.write_lock WHERE organisation = %s",
                             (organisation,)).fetchone()
        who = f"{other[0]} (since {other[1]:%H:%M:%S %Z})" if other else "another run"
        if time.monotonic() >= deadline:
            raise OrganisationBusy(f"{who} is still writing to this Xero organisation; this run waited "
                                   f"{wait:.0f} s and sent nothing. The next attempt carries on.")
        if not said:
            log.info("Waiting for %s to finish writing to this Xero organisation", who)
            said = True
        time.sleep(settings.LOCK_POLL_SECONDS)
    conn.execute(f"INSERT INTO {S}.write_lock (organisation, holder) VALUES (%s, %s) ON CONFLICT (organisation) "
                 "DO UPDATE SET holder = EXCLUDED.holder, since = now()", (organisation, holder))
