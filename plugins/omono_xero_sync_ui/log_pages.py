"""The sync log (a run's tab, a task's tab, every run by date), its CSV export, bulk Retry/Skip of its red rows,
and one record's page with Retry and Skip."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from omono_xero_sync_ui import queries
from omono_xero_sync_ui.databases import OmonoDb, StateDb
from omono_xero_sync_ui.security import DAG_ID, Session, SessionDep, can_edit, can_read, can_read_run, check_form
from omono_xero_sync_ui.web import done_text, page, redirect

router = APIRouter()
VERBS = {"retry": "retried", "skip": "skipped"}


def read_filters(params: Mapping[str, Any], **fixed: Any) -> queries.Filters:
    """Filters from an address or a form. Unknown values are refused with a fixed text (never echoed)."""
    from include.omono_xero_sync import entities

    entity, action = params.get("entity") or None, params.get("action") or None
    if (entity and entity not in entities.BY_NAME) or (action and action not in queries.ACTIONS):
        raise HTTPException(422, "unknown_filter")
    try:
        dates = {k: date.fromisoformat(params[p]) if params.get(p) else None
                 for k, p in (("date_from", "from"), ("date_to", "to"))}
        page_no = int(params.get("page") or 1)
    except ValueError as exc:
        raise HTTPException(422, "unknown_filter") from exc
    text = str(params.get("q") or "").strip()[:200] or None
    return queries.Filters(**{"run_id": params.get("run_id") or None, "task_id": params.get("task_id") or None,
                              "entity": entity, "action": action, "text": text, "page": page_no, **dates, **fixed})


def _log_page(request: Request, session: Session, conn: Any, omono: Any, f: queries.Filters) -> HTMLResponse:
    from include.omono_xero_sync import entities

    title = "Sync log, every run" if not f.run_id else f"Sync log of run {f.run_id}" + (
        f" · task {f.task_id}" if f.task_id else "")
    data = queries.log_page(conn, omono, f, red_first=f.run_id is not None)
    earlier = queries.earlier_unresolved(conn, omono, f.run_id) if f.run_id else None
    reconciled = queries.reconciliation_of_run(conn, f.dag_id, f.run_id) if f.run_id else None
    red = sum(n for c in data["counts"].values() for a, n in c.items() if a in queries.ATTENTION)
    actions = [a for a in queries.ACTIONS if a in queries.ATTENTION or any(a in c for c in data["counts"].values())]
    return page(request, "run_log.html", session, title=title, f=f, entities=entities.ALL, actions=actions,
                all_actions=queries.ACTIONS, red=red,
                history=queries.history(conn, f.dag_id), earlier=earlier, reconciled=reconciled,
                done=done_text(request), **data)


def _this_dag(dag_id: str) -> None:
    """Airflow shows the tab on every DAG's runs; only the sync's own runs have a sync log (and nothing of the
    sync is shown to someone who may read another DAG only)."""
    if dag_id != DAG_ID:
        raise HTTPException(404, "other_dag")


@router.get("/ui/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[Depends(can_read_run)])
def run_page(request: Request, dag_id: str, run_id: str, conn: StateDb, omono: OmonoDb, session: SessionDep
             ) -> HTMLResponse:
    _this_dag(dag_id)
    f = read_filters(request.query_params, dag_id=dag_id, run_id=run_id)
    return _log_page(request, session, conn, omono, f)


@router.get("/ui/task/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse,
            dependencies=[Depends(can_read_run)])
def task_page(request: Request, dag_id: str, run_id: str, task_id: str, conn: StateDb, omono: OmonoDb,
              session: SessionDep) -> HTMLResponse:
    _this_dag(dag_id)
    f = read_filters(request.query_params, dag_id=dag_id, run_id=run_id, task_id=task_id)
    return _log_page(request, session, conn, omono, f)


@router.get("/ui/log", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def log_page(request: Request, conn: StateDb, omono: OmonoDb, session: SessionDep) -> HTMLResponse:
    f = read_filters(request.query_params, dag_id=DAG_ID)
    return _log_page(request, session, conn, omono, f)


CSV_HEADER = ("time (UTC)", "run", "task", "record", "number", "company", "document date", "currency", "total",
              "action", "Xero id", "messages")


@router.get("/ui/log.csv", dependencies=[Depends(can_read)])
def log_csv(request: Request, conn: StateDb, omono: OmonoDb) -> Response:
    f = read_filters(request.query_params, dag_id=DAG_ID)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in queries.all_rows(conn, omono, f):
        o = r["omono"]
        writer.writerow([queries.csv_cell(v) for v in (
            f"{r['created_at']:%Y-%m-%d %H:%M:%S}", r["run_id"], r["task_id"], r["label"], r["omono_number"],
            o.get("company"), o.get("date"), o.get("currency"), o.get("total"), r["action"], r["xero_id"],
            " ".join(r["messages"]))])
    name = f"xero-sync-log-{f.run_id or 'all-runs'}.csv".replace(":", "-").replace("+", "")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/runs/{dag_id}/{run_id}", dependencies=[Depends(can_read_run)])
def run_json(request: Request, dag_id: str, run_id: str, conn: StateDb, omono: OmonoDb) -> dict[str, Any]:
    _this_dag(dag_id)
    f = read_filters(request.query_params, dag_id=dag_id, run_id=run_id)
    data = queries.log_page(conn, omono, f, red_first=True)
    keep = ("id", "task_id", "entity", "omono_id", "omono_number", "action", "xero_id", "messages", "dry_run",
            "created_at", "omono")
    return {"counts": data["counts"], "total": data["total"], "page": data["page"], "pages": data["pages"],
            "rows": [{k: r[k] for k in keep} for r in data["rows"]],
            "unresolved_from_earlier_runs": [{"entity": r["entity"], "omono_number": r["omono_number"],
                                              "status": r["status"], "messages": r["last_messages"]}
                                             for r in queries.earlier_unresolved(conn, omono, run_id)]}


@router.get("/ui/latest", dependencies=[Depends(can_read)])
def latest(request: Request, conn: StateDb, session: SessionDep) -> Response:
    run = queries.latest_run(conn)
    if run is None:
        return page(request, "message.html", session, title="Sync log", text=f"No sync has run yet. Trigger the "
                    f"DAG '{DAG_ID}' (Sync Now) to start.")
    return RedirectResponse(request.url_for("run_page", dag_id=run["dag_id"], run_id=run["run_id"]), 303)


# -- one record -------------------------------------------------------------------------------------------------
def _record_or_404(conn: Any, omono: Any, entity: str, omono_id: int) -> dict:
    row = queries.record(conn, omono, entity, omono_id) if entity in queries.OMONO_PATHS else None
    if row is None:
        raise HTTPException(404, "no_record")
    return row


@router.get("/ui/records/{entity}/{omono_id}", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def record_page(request: Request, entity: str, omono_id: int, conn: StateDb, omono: OmonoDb, session: SessionDep
                ) -> HTMLResponse:
    return page(request, "record.html", session, r=_record_or_404(conn, omono, entity, omono_id),
                done=done_text(request))


@router.post("/ui/records/{entity}/{omono_id}/{verb}", dependencies=[Depends(can_edit), Depends(check_form)])
def record_action(request: Request, entity: str, omono_id: int, verb: str, conn: StateDb, omono: OmonoDb,
                  session: SessionDep) -> Response:
    _record_or_404(conn, omono, entity, omono_id)
    if verb not in VERBS:
        raise HTTPException(404, "no_record")
    if not _act(conn, verb, [(entity, omono_id)], session.user):
        raise HTTPException(409, f"cannot_{verb}")
    return redirect(request, "record_page", {"done": VERBS[verb], "n": 1}, entity=entity, omono_id=omono_id)


def _act(conn: Any, verb: str, keys: list[tuple[str, int]], user: str) -> int:
    from include.omono_xero_sync import state
    from include.omono_xero_sync.sync_log import RunContext

    with conn.transaction():
        return (state.retry if verb == "retry" else state.skip)(conn, keys, user, RunContext(DAG_ID, "ui", "ui"))


# -- bulk Retry / Skip of the filtered red rows ------------------------------------------------------------------
def _bulk_counts(conn: Any, omono: Any, f: queries.Filters, verb: str) -> tuple[list[tuple[str, int]], dict]:
    from include.omono_xero_sync import state

    keys = queries.red_records(conn, omono, f)
    now = queries.statuses(conn, keys)
    wanted = state.RETRYABLE if verb == "retry" else state.SKIPPABLE
    return keys, {"acting": sum(n for s, n in now.items() if s in wanted),
                  "other": {s: n for s, n in now.items() if s not in wanted}}


@router.get("/ui/bulk/{verb}", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
def bulk_confirm(request: Request, verb: str, conn: StateDb, omono: OmonoDb, session: SessionDep) -> HTMLResponse:
    if verb not in VERBS:
        raise HTTPException(404, "no_page")
    f = read_filters(request.query_params, dag_id=DAG_ID)
    _, counted = _bulk_counts(conn, omono, f, verb)
    return page(request, "bulk.html", session, verb=verb, f=f, **counted)


@router.post("/ui/bulk/{verb}", dependencies=[Depends(can_edit), Depends(check_form)])
async def bulk_act(request: Request, verb: str, conn: StateDb, omono: OmonoDb, session: SessionDep) -> Response:
    if verb not in VERBS:
        raise HTTPException(404, "no_page")
    f = read_filters(await request.form(), dag_id=DAG_ID)
    keys, _ = _bulk_counts(conn, omono, f, verb)
    n = _act(conn, verb, keys, session.user)
    return redirect(request, "log_page", {**f.params(page=None), "done": VERBS[verb], "n": n})
