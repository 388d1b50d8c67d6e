"""Readiness and the run summary agree with the details: every code the documents use is checked, and the
summary counts what is still red, whichever run it turned red in."""

from __future__ import annotations

import httpx
import pytest

from include.omono_xero_sync import pipeline
from include.omono_xero_sync.sync_log import RunContext
from tests.support.pipeline_env import XeroOrg, db, seed
from tests.support.steps import run_steps

pytestmark = pytest.mark.integration


def test_readiness_checks_every_code_the_lines_use_even_one_missing_from_omonos_tables(
        xero_org: XeroOrg, fresh_db: str) -> None:
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoice_lines SET analysis_code = 'SA-NEW' WHERE invoice_id = 1")
    checks = {c["key"]: c for c in run_steps("r1", ("readiness",))["readiness"]["checks"]}
    assert not checks["sales_codes"]["ok"] and "SA-NEW (not mapped)" in checks["sales_codes"]["detail"]


def test_the_summary_counts_a_record_still_red_from_an_earlier_run(xero_org: XeroOrg, fresh_db: str,
                                                                  admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:
        name = conn.execute("SELECT name FROM omono.companies WHERE id = 1").fetchone()["name"]
    admin.post("/faults", json={"kind": "reject", "text": name, "method": "POST", "path": "/Contacts$"})
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    run_steps("r2", ("readiness", "extract_changes", "check_records", "push_contacts"))    # nothing new to try
    with db(fresh_db) as conn:
        text = pipeline.render_summary(conn, RunContext("omono_xero_sync", "r2", "summarise"), 0)
    companies = next(line for line in text.splitlines() if line.startswith("Companies"))
    assert companies.split()[-1] == "1"                               # red now, though r2 wrote no row for it
    attention = text.split("Needs attention:")[1]
    assert "[FAILED] Company" in attention and name[:20] in attention


def test_a_credit_note_whose_invoice_is_held_says_its_allocation_waits_for_it(xero_org: XeroOrg,
                                                                             fresh_db: str) -> None:
    seed(fresh_db, documents=30)
    with db(fresh_db) as conn:
        linked = conn.execute("SELECT c.number AS note, c.invoice_id FROM omono.credit_notes c WHERE c.kind = "
                              "'sales' AND c.invoice_id IS NOT NULL ORDER BY c.id LIMIT 1").fetchone()
        conn.execute("UPDATE omono.dispatch_invoice_lines SET analysis_code = 'SA-SAMPLES' WHERE invoice_id = %s",
                     (linked["invoice_id"],))
    run_steps("r1")
    with db(fresh_db) as conn:
        note = conn.execute("SELECT status, last_messages FROM xero_sync.record_state WHERE omono_number = %s",
                            (linked["note"],)).fetchone()
    assert note["status"] == "synced"
    assert "allocation" in " ".join(note["last_messages"]) and "SA-SAMPLES" in " ".join(note["last_messages"])
