"""The role script for production: the sync's login reads Omono and writes only customers' balances."""

from __future__ import annotations

import os
import re

import psycopg
import pytest

from include.omono_xero_sync.db import SQL_DIR

pytestmark = pytest.mark.integration


def test_the_sync_role_reads_omono_and_writes_only_customer_balances(fresh_db: str) -> None:
    role = f"oxs_ro_{os.getpid()}"
    script = (SQL_DIR / "omono" / "readonly_role.sql").read_text()
    script = re.sub(r"\bomono_xero_sync\b", role, script).replace(":password", "'ro-test-pw'")
    with psycopg.connect(fresh_db, autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute("\n".join(line for line in script.splitlines() if not line.startswith("--")))
        admin.execute("INSERT INTO omono.companies (id, name) VALUES (1, 'Acme')")
    as_role = psycopg.conninfo.make_conninfo(fresh_db, user=role, password="ro-test-pw")
    try:
        with psycopg.connect(as_role, autocommit=True) as conn:
            assert conn.execute("SELECT name FROM omono.companies").fetchone()[0] == "Acme"
            conn.execute("SELECT count(*) FROM omono.change_log")
            conn.execute("INSERT INTO omono.customer_balances VALUES (1, 10, 0, 'GBP', now())")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE omono.companies SET name = 'changed'")
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
