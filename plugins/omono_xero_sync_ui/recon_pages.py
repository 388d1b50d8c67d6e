"""The reconciliation's own pages: the latest (or any) reconciliation per entity and currency, Omono's count and
total beside Xero's, then every difference with links to both records; its CSV export; and Reconcile now."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from omono_xero_sync_ui import queries
from omono_xero_sync_ui.databases import StateDb
from omono_xero_sync_ui.security import DAG_ID, SessionDep, can_edit, can_read, check_form
from omono_xero_sync_ui.web import PROBLEMS, done_text, page, redirect

router = APIRouter()


def _shown(conn: Any, rid: int | None) -> dict[str, Any] | None:
    found = queries.reconciliation(conn, rid)
    if found is None:
        return None
    link = queries.Linker(conn)
    for d in found["differences"]:
        d["links"] = link(d["entity"], d["omono_id"], d["xero_id"]) if d["omono_id"] else \
            {"omono": None, "xero": link(d["entity"], 0, d["xero_id"])["xero"] if d["xero_id"] else None}
    return found


@router.get("/ui/reconciliation", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def latest_reconciliation(request: Request, conn: StateDb, session: SessionDep) -> HTMLResponse:
    return page(request, "reconciliation.html", session, r=_shown(conn, None), done=done_text(request),
                problem=PROBLEMS.get(request.query_params.get("problem", "")))


@router.get("/ui/reconciliation/{rid}", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def reconciliation_page(request: Request, rid: int, conn: StateDb, session: SessionDep) -> HTMLResponse:
    shown = _shown(conn, rid)
    if shown is None:
        raise HTTPException(404, "no_page")
    return page(request, "reconciliation.html", session, r=shown, done=None, problem=None)


@router.get("/ui/reconciliation/{rid}/differences.csv", dependencies=[Depends(can_read)])
def reconciliation_csv(rid: int, conn: StateDb) -> Response:
    shown = _shown(conn, rid)
    if shown is None:
        raise HTTPException(404, "no_page")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("kind", "record", "Omono number", "Xero number", "Xero id", "what", "Omono link", "Xero link"))
    for d in shown["differences"]:
        writer.writerow([queries.csv_cell(v) for v in (d["kind"], d["entity"], d["omono_number"], d["xero_number"],
                                                       d["xero_id"], d["message"], d["links"]["omono"],
                                                       d["links"]["xero"])])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="xero-reconciliation-{rid}.csv"'})


@router.post("/ui/reconciliation", dependencies=[Depends(can_edit), Depends(check_form)])
async def reconcile_now(request: Request, session: SessionDep) -> Response:
    """Reconcile now, in this request (two or a few API calls), for the range given or this month and last."""
    from include.omono_xero_sync import pipeline, xero_api
    from include.omono_xero_sync.sync_log import RunContext

    form = await request.form()
    try:
        params = {k: date.fromisoformat(str(form[k])).isoformat() if form.get(k) else None
                  for k in ("date_from", "date_to")}
    except ValueError as exc:
        raise HTTPException(422, "unknown_filter") from exc
    ctx = RunContext(DAG_ID, f"ui__{session.user}__{date.today().isoformat()}", "reconcile",
                     params={**params, "reconcile": True})
    try:
        pipeline.reconcile(ctx, force=True)
    except xero_api.XeroAuthError:
        return redirect(request, "latest_reconciliation", {"problem": "not_connected"})
    except xero_api.XeroError:
        return redirect(request, "latest_reconciliation", {"problem": "xero_unreachable"})
    return redirect(request, "latest_reconciliation", {"done": "reconciled"})
