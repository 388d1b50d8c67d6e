"""Cost follows changes, not history: a held record nothing has changed for costs no work and adds no row, yet
stays listed; what a run staged is let go when it ends, and the sync log keeps only its retention."""

from __future__ import annotations

import httpx
import pytest

from include.omono_xero_sync import extract, pipeline, sync_log
from include.omono_xero_sync.sync_log import RunContext
from tests.support.pipeline_env import XeroOrg, db, seed
from tests.support.steps import run_steps

pytestmark = pytest.mark.integration


def _run(run_id: str) -> dict:
    result = run_steps(run_id)
    pipeline.summarise(RunContext("omono_xero_sync", run_id, "summarise"))
    return result


def _rows(url: str, run_id: str) -> int:
    with db(url) as conn:
        return conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = %s", (run_id,)).fetchone()["n"]


def test_a_held_record_nothing_changed_for_adds_no_work_and_no_row_yet_stays_listed(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=30, bad_share=0.1)
    _run("r1")
    with db(fresh_db) as conn:
        held = {r["omono_number"] for r in sync_log.unresolved(conn)}
    assert "SO-1010" in held                                          # unmapped SA-SAMPLES
    with db(fresh_db) as conn:
        before = conn.execute("SELECT omono_number, updated_at FROM xero_sync.record_state WHERE status = 'held'"
                              ).fetchall()
    _run("r2")
    with db(fresh_db) as conn:
        again = conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = 'r2' AND action = 'held'"
                             ).fetchone()["n"]
        after = conn.execute("SELECT omono_number, updated_at FROM xero_sync.record_state WHERE status = 'held'"
                             ).fetchall()
        assert {r["omono_number"] for r in sync_log.unresolved(conn)} == held
    assert again == 0 and sorted(before, key=str) == sorted(after, key=str)     # not looked at, no row
    with db(fresh_db) as conn:
        conn.execute("INSERT INTO xero_sync.account_mappings (kind, omono_code, xero_account_code) VALUES ('sales', "
                     "'SA-SAMPLES', '260')")                          # the cause is fixed: they are looked at again
    _run("r3")
    with db(fresh_db) as conn:
        assert "SO-1010" not in {r["omono_number"] for r in sync_log.unresolved(conn)}


def test_a_transaction_left_open_elsewhere_in_postgres_does_not_make_runs_read_the_same_changes_again(
        xero_org: XeroOrg, fresh_db: str) -> None:
    """An open transaction anywhere in the cluster (a report, pg_dump) holds back the change log's floor; what the
    last run read below it must not be read, checked and logged again every run while it stays open."""
    with db(fresh_db) as elsewhere:
        elsewhere.execute("BEGIN")
        elsewhere.execute("SELECT pg_current_xact_id()")          # holds the snapshot xmin back until it ends
        seed(fresh_db, documents=30, bad_share=0.1)
        _run("r1")
        assert _rows(fresh_db, "r1") > 0
        _run("r2")
        assert _rows(fresh_db, "r2") == 0
        with db(fresh_db) as conn:
            conn.execute("UPDATE omono.dispatch_invoices SET reference = 'edited' WHERE number = 'SO-1010'")
        _run("r3")
        elsewhere.execute("ROLLBACK")
    with db(fresh_db) as conn:
        logged = conn.execute("SELECT omono_number, action FROM xero_sync.sync_log WHERE run_id = 'r3'").fetchall()
    assert [(r["omono_number"], r["action"]) for r in logged] == [("SO-1010", "held")]


def test_a_large_extract_tells_the_planner_how_many_records_the_run_staged(
        xero_org: XeroOrg, fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Statistics from before the run said its queue was nearly empty, so PostgreSQL settled each batch of a 1M run
    by scanning the whole run (0.2 s a batch, the first sync's time growing with the square of its size)."""
    monkeypatch.setattr(extract, "CHUNK", 10)
    seed(fresh_db, documents=40)
    with db(fresh_db) as conn:
        conn.execute("ANALYZE xero_sync.run_queue")                       # empty, as before a first sync
    run_steps("r1", ("readiness", "extract_changes"))
    with db(fresh_db) as conn:
        staged = conn.execute("SELECT count(*) AS n FROM xero_sync.run_queue").fetchone()["n"]
        known = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'xero_sync.run_queue'::regclass"
                             ).fetchone()["reltuples"]
    assert staged > 10 and known == staged


def test_a_run_lets_go_of_what_it_staged_and_the_log_keeps_its_retention(xero_org: XeroOrg, fresh_db: str) -> None:
    seed(fresh_db, documents=20)
    with db(fresh_db) as conn:
        conn.execute("INSERT INTO xero_sync.sync_log (dag_id, run_id, task_id, entity, omono_id, action, created_at) "
                     "VALUES ('omono_xero_sync', 'ancient', 't', 'contact', 1, 'created', now() - interval '200 days')")
        conn.execute("INSERT INTO xero_sync.settings (key, value) VALUES ('log_retention_days', '180')")
    _run("r1")
    with db(fresh_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.run_queue").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = 'ancient'"
                            ).fetchone()["n"] == 0
    assert _rows(fresh_db, "r1") > 0


def test_records_are_checked_a_page_at_a_time_with_the_same_verdicts(monkeypatch: pytest.MonkeyPatch,
                                                                     xero_org: XeroOrg, fresh_db: str) -> None:
    """Issue 11 (memory): check_records reads the run's queue a page at a time (1M documents held 1.8 GB when it
    read a whole kind at once); a page boundary changes no verdict, including a document held for its company."""
    seed(fresh_db, documents=60, bad_share=0.2)
    steps = ("readiness", "extract_changes", "check_records")
    monkeypatch.setattr(pipeline, "CHECK_PAGE", 7)
    run_steps("paged", steps, params={"dry_run": True})
    monkeypatch.setattr(pipeline, "CHECK_PAGE", 25_000)
    run_steps("whole", steps, params={"dry_run": True})
    with db(fresh_db) as conn:
        verdicts = {run: {(r["entity"], r["omono_id"], tuple(r["messages"])) for r in conn.execute(
            "SELECT entity, omono_id, messages FROM xero_sync.sync_log WHERE run_id = %s AND action = 'held'",
            (run,))} for run in ("paged", "whole")}
    assert len(verdicts["whole"]) > 7 and verdicts["paged"] == verdicts["whole"]
    assert any("waits for its company" in " ".join(m) for _, _, m in verdicts["whole"])


def test_a_cursor_kept_before_snapshots_were_stored_still_reads_every_change_at_or_above_its_floor(
        xero_org: XeroOrg, fresh_db: str) -> None:
    seed(fresh_db, documents=10, bad_share=0)
    _run("r1")
    with db(fresh_db) as conn:                      # as an upgraded installation holds it: the floor alone
        conn.execute("UPDATE xero_sync.source_cursor SET snapshot = NULL, txid_floor = (SELECT min(txid) FROM "
                     "omono.change_log)")
    _run("r2")
    with db(fresh_db) as conn:
        reread = conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = 'r2' AND action = "
                              "'unchanged'").fetchone()["n"]
        documents = conn.execute("SELECT count(*) AS n FROM omono.dispatch_invoices").fetchone()["n"]
    assert reread >= documents
