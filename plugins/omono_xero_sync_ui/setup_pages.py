"""Setting the integration up: Mappings, Readiness (the traffic lights and Re-run checks) and General options
(options, alert e-mail and its test, the connection, Disconnect and Reset)."""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from omono_xero_sync_ui import forms, queries
from omono_xero_sync_ui.databases import OmonoDb, StateDb
from omono_xero_sync_ui.security import Session, SessionDep, can_edit, can_read, check_form
from omono_xero_sync_ui.web import PROBLEMS, done_text, page, redirect

router = APIRouter()
EDIT = [Depends(can_edit), Depends(check_form)]


# -- mappings ---------------------------------------------------------------------------------------------------
def _mappings(request: Request, session: Session, conn: Any, rows: dict, errors: list[str] | None = None
              ) -> HTMLResponse:
    ref = queries.reference_data(conn)
    return page(request, "mappings.html", session, status_code=422 if errors else 200, rows=rows,
                accounts=queries.active_accounts(ref), tax_rates=queries.active_tax_rates(ref), errors=errors or [],
                done=done_text(request) if not errors else None)


@router.get("/ui/mappings", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def mappings_page(request: Request, conn: StateDb, omono: OmonoDb, session: SessionDep) -> HTMLResponse:
    return _mappings(request, session, conn, queries.mapping_rows(omono, conn))


@router.post("/ui/mappings", response_class=HTMLResponse, dependencies=EDIT)
async def save_mappings(request: Request, conn: StateDb, omono: OmonoDb, session: SessionDep) -> Response:
    ref = queries.reference_data(conn)
    checked = forms.mappings(await request.form(), queries.mapping_rows(omono, conn), queries.active_accounts(ref),
                             queries.active_tax_rates(ref))
    if checked.errors:                                   # nothing half-saved; the user's edits stay in the form
        return _mappings(request, session, conn, checked.shown, checked.errors)
    with conn.transaction():
        for change in checked.changes:
            _apply(conn, *change)
    return redirect(request, "mappings_page", {"done": "mappings_saved"})


def _apply(conn: Any, what: str, kind: str, code: str, target: str | None, *account: Any) -> None:
    """Save one mapping; no target removes it (the documents using the code are then held until it is mapped)."""
    from include.omono_xero_sync import state

    if what == "account":
        (state.put_account_mapping(conn, kind, code, target, *account) if target
         else state.delete_account_mapping(conn, kind, code))
    else:
        state.put_tax_mapping(conn, kind, code, target) if target else state.delete_tax_mapping(conn, kind, code)


# -- readiness --------------------------------------------------------------------------------------------------
def _checks(conn: Any, omono: Any, info: dict) -> list[Any]:
    """The pipeline's traffic lights on what was last read from Xero, with the first one saying whether Xero is
    connected now (tokens stored), not when it was last read."""
    from include.omono_xero_sync import reference

    try:
        checks = reference.readiness(omono, conn, reference.load(conn))
    except RuntimeError:                                 # Xero's settings never read
        checks = []
    light = reference.Check("connection", "Connection to Xero", True, f"connected to '{info['name']}'")
    if not info["connected"]:
        gone = info["last_disconnect"]
        light = reference.Check("connection", "Connection to Xero", False, "not connected" + (
            f" (disconnected by {gone['by']} on {gone['at'][:16].replace('T', ' ')} UTC)" if gone else ""),
            "Connect to Xero on General options. Nothing is sent until then.")
    elif not checks:
        light = dataclasses.replace(light, detail="connected; Xero's settings not read yet: re-run the checks")
    return [light, *[c for c in checks if c.key != "connection"]]


@router.get("/ui/readiness", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def readiness_page(request: Request, conn: StateDb, omono: OmonoDb, session: SessionDep) -> HTMLResponse:
    info = queries.connection_info(conn)
    return page(request, "readiness.html", session, checks=_checks(conn, omono, info), info=info,
                problem=PROBLEMS.get(request.query_params.get("problem", "")), done=done_text(request))


def read_reference(conn: Any) -> str | None:
    """Re-read Xero's settings now (4 calls), as Omono's "Re-Run Status Checks" does; returns a problem key."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from include.omono_xero_sync import reference, xero_api
    from include.omono_xero_sync.xero_hook import XeroHook

    try:
        reference.save(conn, reference.read_from_xero(XeroHook().get_conn(conn)))
    except AirflowNotFoundException:
        return "not_configured"
    except xero_api.XeroAuthError:
        return "not_connected"
    except xero_api.XeroError:
        return "xero_unreachable"
    return None


@router.post("/ui/readiness", dependencies=EDIT)
def rerun_checks(request: Request, conn: StateDb) -> Response:
    problem = read_reference(conn)
    return redirect(request, "readiness_page", {"problem": problem} if problem else {"done": "checks_read"})


# -- general options --------------------------------------------------------------------------------------------
def _settings(request: Request, session: Session, conn: Any, values: dict | None = None,
              errors: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    from include.omono_xero_sync import alerts, entities, settings, state

    return page(request, "settings.html", session, status_code=status_code, errors=errors or [],
                values=values or state.all_settings(conn), documents=entities.DOCUMENTS,
                intervals=list(settings.SYNC_INTERVALS), statuses=forms.STATUSES,
                info=queries.connection_info(conn), smtp_ok=alerts.smtp_configured(), smtp_conn=alerts.SMTP_CONN_ID,
                done=None if errors else done_text(request),
                problem=PROBLEMS.get(request.query_params.get("problem", "")))


@router.get("/ui/settings", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def settings_page(request: Request, conn: StateDb, session: SessionDep) -> HTMLResponse:
    return _settings(request, session, conn)


@router.post("/ui/settings", response_class=HTMLResponse, dependencies=EDIT)
async def save_settings(request: Request, conn: StateDb, session: SessionDep) -> Response:
    from include.omono_xero_sync import state

    checked = forms.general_options(await request.form())
    if checked.errors:
        return _settings(request, session, conn, checked.shown, checked.errors, 422)
    with conn.transaction():
        for key, value in checked.changes:
            state.put_setting(conn, key, value, session.user)
    return redirect(request, "settings_page", {"done": "saved"})


@router.post("/ui/test-email", response_class=HTMLResponse, dependencies=EDIT)
def send_test_email(request: Request, conn: StateDb, session: SessionDep) -> Response:
    """Send a short e-mail to the saved alert address through Airflow's SMTP connection, as an alert would go."""
    from include.omono_xero_sync import alerts, state

    to = state.get_setting(conn, "alert_email")
    problem = None if to else "Save an alert e-mail address first."
    if to and not alerts.smtp_configured():
        problem = f"Airflow has no SMTP connection '{alerts.SMTP_CONN_ID}': add it (Admin > Connections) first."
    if problem is None:
        try:
            alerts.send(to, "[omono-xero-sync] test e-mail", f"<p>This is a test of the Omono → Xero sync's failure "
                        f"alerts, sent by {html.escape(session.user)} from General options.</p>")
        except Exception as exc:   # noqa: BLE001 - any SMTP or network failure is the answer the user asked for
            problem = f"The test e-mail could not be sent: {type(exc).__name__}: {exc}"
    if problem:
        return _settings(request, session, conn, errors=[problem], status_code=502 if to else 422)
    return redirect(request, "settings_page", {"done": "test_sent"})


@router.get("/ui/disconnect", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
def disconnect_confirm(request: Request, conn: StateDb, session: SessionDep) -> HTMLResponse:
    return page(request, "disconnect.html", session, info=queries.connection_info(conn))


@router.post("/ui/disconnect", dependencies=EDIT)
def disconnect(request: Request, conn: StateDb, session: SessionDep) -> Response:
    from include.omono_xero_sync import lifecycle

    lifecycle.disconnect(conn, session.user)
    return redirect(request, "settings_page", {"done": "disconnected"})


@router.post("/ui/reset", response_class=HTMLResponse, dependencies=EDIT)
async def reset(request: Request, conn: StateDb, session: SessionDep) -> Response:
    from include.omono_xero_sync import lifecycle

    try:
        done = lifecycle.reset(conn, str((await request.form()).get("confirm", "")), session.user)
    except lifecycle.NotConfirmed as exc:
        return _settings(request, session, conn, errors=[str(exc)], status_code=422)
    return redirect(request, "settings_page", {"done": "reset", "n": done["records"]})
