"""The sync log: one row per record per run (what was sent, what Xero answered, the messages), read by the
run summary and the Airflow UI plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import settings

S = settings.STATE_SCHEMA
NEEDS_ATTENTION = ("held", "failed")


@dataclass
class RunContext:
    """Who is writing: the Airflow dag/run/task, and whether this run only rehearses (dry run)."""

    dag_id: str
    run_id: str
    task_id: str
    dry_run: bool = False
    params: dict = field(default_factory=dict)


@dataclass
class LogRow:
    entity: str
    omono_id: int
    omono_number: str | None
    action: str
    xero_id: str | None = None
    messages: list[str] = field(default_factory=list)
    sent: Any = None
    answer: Any = None
    attempt: Attempt | None = None


@dataclass(frozen=True)
class Attempt:
    """How Xero answered one call, for the record page: the HTTP status, the endpoint and Xero's correlation id
    (which Xero support asks for)."""

    http_status: int | None
    endpoint: str
    correlation_id: str | None


def write(conn: psycopg.Connection, ctx: RunContext, rows: list[LogRow]) -> None:
    """One statement for the batch."""
    if not rows:
        return
    conn.execute(
        f"INSERT INTO {S}.sync_log (dag_id, run_id, task_id, entity, omono_id, omono_number, action, xero_id, "
        "messages, sent, answer, dry_run, http_status, endpoint, correlation_id) SELECT %(dag)s, %(run)s, %(task)s, "
        "r->>'entity', (r->>'omono_id')::bigint, r->>'omono_number', r->>'action', (r->>'xero_id')::uuid, "
        "r->'messages', NULLIF(r->'sent', 'null'), NULLIF(r->'answer', 'null'), %(dry)s, (r->>'http_status')::int, "
        "r->>'endpoint', r->>'correlation_id' FROM jsonb_array_elements(%(rows)s) AS r",
        {"dag": ctx.dag_id, "run": ctx.run_id, "task": ctx.task_id, "dry": ctx.dry_run,
         "rows": Jsonb([{"entity": r.entity, "omono_id": r.omono_id, "omono_number": r.omono_number,
                         "action": r.action, "xero_id": r.xero_id, "messages": r.messages, "sent": r.sent,
                         "answer": r.answer, **(r.attempt.__dict__ if r.attempt else {})} for r in rows])})


def counts(conn: psycopg.Connection, dag_id: str, run_id: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute(f"SELECT entity, action, count(*) AS n FROM {S}.sync_log WHERE dag_id = %s AND "
                          "run_id = %s GROUP BY entity, action", (dag_id, run_id)):
        out.setdefault(r["entity"], {})[r["action"]] = r["n"]
    return out


def unresolved(conn: psycopg.Connection) -> list[dict]:
    """What needs attention, with its latest messages: records held or refused, refused allocations, and the
    differences the latest reconciliation found (until the next one)."""
    return conn.execute(
        f"SELECT entity, omono_id, omono_number, status, last_messages, last_run_id FROM {S}.record_state "
        f"WHERE status IN ('held', 'failed') UNION ALL SELECT a.entity, a.omono_id, s.omono_number, 'failed', "
        f"a.messages, a.run_id FROM {S}.allocations a JOIN {S}.record_state s ON s.entity = a.entity AND "
        f"s.omono_id = a.omono_id WHERE a.status = 'failed' UNION ALL SELECT d.entity, coalesce(d.omono_id, 0), "
        f"d.omono_number, 'failed', jsonb_build_array('Reconciliation: ' || d.message), r.run_id FROM "
        f"{S}.reconciliation_differences d JOIN {S}.reconciliations r ON r.id = d.reconciliation_id WHERE r.id = "
        f"(SELECT max(id) FROM {S}.reconciliations) ORDER BY 1, 3").fetchall()


def last_numbers(conn: psycopg.Connection, entity: str, omono_ids: list[int]) -> dict[int, str]:
    """The number each record last had in the log (kept across a reset): what a record deleted in Omono is called
    once the state that knew it is gone."""
    if not omono_ids:
        return {}
    return {r["omono_id"]: r["omono_number"] for r in conn.execute(
        f"SELECT DISTINCT ON (omono_id) omono_id, omono_number FROM {S}.sync_log WHERE entity = %s AND omono_id = "
        "ANY(%s) AND omono_number IS NOT NULL ORDER BY omono_id, id DESC", (entity, omono_ids))}


def rows_for_run(conn: psycopg.Connection, dag_id: str, run_id: str) -> list[dict]:
    return conn.execute(f"SELECT * FROM {S}.sync_log WHERE dag_id = %s AND run_id = %s ORDER BY id",
                        (dag_id, run_id)).fetchall()


def record_task(conn: psycopg.Connection, ctx: RunContext, calls: int, problem: str | None) -> None:
    """What a task spent and, if it failed, why (the caller's connection is its own, committed by the caller)."""
    conn.execute(f"INSERT INTO {S}.run_tasks (dag_id, run_id, task_id, calls, problem) VALUES (%s, %s, %s, %s, %s) "
                 "ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET calls = run_tasks.calls + EXCLUDED.calls, "
                 "problem = EXCLUDED.problem, updated_at = now()",
                 (ctx.dag_id, ctx.run_id, ctx.task_id, calls, problem))


def run_tasks(conn: psycopg.Connection, dag_id: str, run_id: str) -> list[dict]:
    return conn.execute(f"SELECT task_id, calls, problem FROM {S}.run_tasks WHERE dag_id = %s AND run_id = %s "
                        "ORDER BY updated_at", (dag_id, run_id)).fetchall()


def not_sent(conn: psycopg.Connection) -> dict[str, int]:
    """Records not in Xero yet and not red: pending, sending (outcome unknown) or waiting (for the budget)."""
    return {r["status"]: r["n"] for r in conn.execute(
        f"SELECT status, count(*) AS n FROM {S}.record_state WHERE status IN ('pending', 'sending', 'waiting') "
        "GROUP BY status")}


def prune(conn: psycopg.Connection, days: int) -> int:
    """The log's retention (General options `log_retention_days`): rows older than that go, with the runs' task
    records; what is still unresolved is in record_state, not in old rows, so nothing that needs attention is lost."""
    gone = conn.execute(f"DELETE FROM {S}.sync_log WHERE created_at < now() - make_interval(days => %s)",
                        (days,)).rowcount
    conn.execute(f"DELETE FROM {S}.run_tasks WHERE updated_at < now() - make_interval(days => %s)", (days,))
    return gone
