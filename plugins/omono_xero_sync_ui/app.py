"""The FastAPI app mounted by the Airflow plugin at /xero-sync. Server-rendered pages (Jinja2, no CDN), each
behind Airflow's own auth manager: reading needs read access to the sync DAG's runs, changing anything needs
edit access. A mounted app inherits none of Airflow's protection, so every route declares its dependency."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from omono_xero_sync_ui import queries

DAG_ID = "omono_xero_sync"
HERE = Path(__file__).parent
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")

# Module-level so tests can override them (app.dependency_overrides).
can_read = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID)
can_edit = requires_access_dag("PUT", DagAccessEntity.RUN, param_dag_id=DAG_ID)
can_read_run = requires_access_dag("GET", DagAccessEntity.RUN)


def state_db() -> Iterator[Any]:
    from include.omono_xero_sync import db

    with db.connect() as conn:
        yield conn


def omono_db() -> Iterator[Any]:
    from include.omono_xero_sync import db, settings

    with db.connect(settings.OMONO_CONN_ID) as conn:
        yield conn


def current_user(user: GetUserDep) -> str:
    return user.get_name()


StateDb = Annotated[Any, Depends(state_db)]
OmonoDb = Annotated[Any, Depends(omono_db)]
User = Annotated[str, Depends(current_user)]

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["STATUSES"] = STATUSES
templates.env.filters["combine_page"] = lambda params, page: urlencode(
    {**{k: v for k, v in params.items() if v not in (None, "")}, "page": page})
router = APIRouter()


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


# -- sync log ---------------------------------------------------------------------------------------------------
def _filters(entity: str | None, action: str | None, q: str | None, page: int, task_id: str | None = None
             ) -> queries.Filters:
    from include.omono_xero_sync import entities

    if entity and entity not in entities.BY_NAME:
        raise HTTPException(422, f"Unknown entity '{entity}'; one of {', '.join(entities.BY_NAME)}.")
    if action and action not in queries.ACTIONS:
        raise HTTPException(422, f"Unknown action '{action}'; one of {', '.join(queries.ACTIONS)}.")
    return queries.Filters(entity or None, action or None, (q or "").strip() or None, task_id, page)


@router.get("/ui/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[Depends(can_read_run)])
def run_page(request: Request, dag_id: str, run_id: str, conn: StateDb, entity: str | None = None,
             action: str | None = None, q: str | None = None, page: int = 1, task_id: str | None = None
             ) -> HTMLResponse:
    from include.omono_xero_sync import entities

    f = _filters(entity, action, q, page, task_id)
    data = queries.run_log(conn, dag_id, run_id, f)
    return _page(request, "run_log.html", dag_id=dag_id, run_id=run_id, f=f, entities=entities.ALL,
                 actions=queries.ACTIONS, **data)


@router.get("/ui/task/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[Depends(can_read_run)])
def task_page(request: Request, dag_id: str, run_id: str, task_id: str, conn: StateDb, entity: str | None = None,
              action: str | None = None, q: str | None = None, page: int = 1) -> HTMLResponse:
    return run_page(request, dag_id, run_id, conn, entity, action, q, page, task_id)


@router.get("/api/runs/{dag_id}/{run_id}", dependencies=[Depends(can_read_run)])
def run_json(dag_id: str, run_id: str, conn: StateDb, entity: str | None = None, action: str | None = None,
             q: str | None = None, page: int = 1, task_id: str | None = None) -> dict[str, Any]:
    data = queries.run_log(conn, dag_id, run_id, _filters(entity, action, q, page, task_id))
    return {"counts": data["counts"], "total": data["total"], "page": data["page"], "pages": data["pages"],
            "rows": [{k: (str(v) if k in {"xero_id", "created_at"} and v is not None else v) for k, v in r.items()}
                     for r in data["rows"]],
            "unresolved_from_earlier_runs": [{"entity": r["entity"], "omono_number": r["omono_number"],
                                              "status": r["status"], "messages": r["last_messages"]}
                                             for r in data["earlier"]]}


@router.get("/ui/latest", dependencies=[Depends(can_read)])
def latest(request: Request, conn: StateDb) -> Any:
    run = queries.latest_run(conn)
    if run is None:
        return _page(request, "message.html", title="Sync log", message="No sync has run yet. Trigger the DAG "
                     f"'{DAG_ID}' (Sync Now) to start.")
    return RedirectResponse(request.url_for("run_page", dag_id=run["dag_id"], run_id=run["run_id"]), 303)


# -- one record -------------------------------------------------------------------------------------------------
@router.get("/ui/records/{entity}/{omono_id}", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def record_page(request: Request, entity: str, omono_id: int, conn: StateDb) -> HTMLResponse:
    row = queries.record(conn, entity, omono_id)
    if row is None:
        raise HTTPException(404, f"No {entity} {omono_id} has been synced.")
    return _page(request, "record.html", r=row)


@router.post("/ui/records/{entity}/{omono_id}/{verb}", dependencies=[Depends(can_edit)])
def record_action(request: Request, entity: str, omono_id: int, verb: str, conn: StateDb, user: User) -> Any:
    if verb not in {"retry", "skip"} or queries.record(conn, entity, omono_id) is None:
        raise HTTPException(404, "No such record or action.")
    (queries.retry if verb == "retry" else queries.skip)(conn, entity, omono_id, user)
    return RedirectResponse(request.url_for("record_page", entity=entity, omono_id=omono_id), 303)


# -- mappings ---------------------------------------------------------------------------------------------------
@router.get("/ui/mappings", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def mappings_page(request: Request, conn: StateDb, omono: OmonoDb, errors: list[str] | None = None,
                  saved: bool = False) -> HTMLResponse:
    ref = queries.reference_data(conn)
    return _page(request, "mappings.html", status_code=422 if errors else 200, rows=queries.mapping_rows(omono, conn),
                 accounts=[a for a in ref.get("accounts", []) if a.get("Status") == "ACTIVE" and a.get("Code")],
                 tax_rates=[t for t in ref.get("tax_rates", []) if t.get("Status") == "ACTIVE"],
                 errors=errors or [], saved=saved)


@router.post("/ui/mappings", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
async def save_mappings(request: Request, conn: StateDb, omono: OmonoDb) -> Any:
    from include.omono_xero_sync import state

    form = await request.form()
    ref = queries.reference_data(conn)
    accounts = {a["Code"].upper() for a in ref.get("accounts", []) if a.get("Status") == "ACTIVE" and a.get("Code")}
    tax_types = {t["TaxType"] for t in ref.get("tax_rates", []) if t.get("Status") == "ACTIVE"}
    rows = queries.mapping_rows(omono, conn)
    errors: list[str] = []
    account_changes, tax_changes = [], []
    for kind in ("sales", "purchase"):
        for row in rows[kind]:
            create = form.get(f"{kind}:{row['code']}:create") == "on"
            new_code = str(form.get(f"{kind}:{row['code']}:new_code", "") or "").strip()
            code = new_code if create and new_code else str(form.get(f"{kind}:{row['code']}", "") or "").strip()
            name = str(form.get(f"{kind}:{row['code']}:name", "") or "").strip() or None
            if not code:
                continue
            if create:
                if not name:
                    errors.append(f"{kind.capitalize()} code {row['code']}: give the new Xero account a name.")
                    continue
                if len(code) > 10:
                    errors.append(f"{kind.capitalize()} code {row['code']}: a Xero account code has at most 10 "
                                  f"characters ('{code}' has {len(code)}).")
                    continue
            elif code.upper() not in accounts:
                errors.append(f"{kind.capitalize()} code {row['code']}: '{code}' is not an active account in Xero. "
                              "Choose one from the list, or tick 'create in Xero'.")
                continue
            account_changes.append((kind, row["code"], code, create, name))
    for row in rows["tax"]:
        for kind in ("sales", "purchase"):
            tax = str(form.get(f"tax:{kind}:{row['code']}", "") or "").strip()
            if not tax:
                continue
            if tax not in tax_types:
                errors.append(f"Tax rate {row['code']} ({kind}): '{tax}' is not an active Xero tax rate.")
                continue
            tax_changes.append((kind, row["code"], tax))
    if errors:                                        # nothing half-saved
        return mappings_page(request, conn, omono, errors=errors)
    with conn.transaction():
        for kind, code, account, create, name in account_changes:
            state.put_account_mapping(conn, kind, code, account, create, name)
        for kind, code, tax in tax_changes:
            state.put_tax_mapping(conn, kind, code, tax)
    return RedirectResponse(str(request.url_for("mappings_page")) + "?saved=true", 303)


# -- readiness and options --------------------------------------------------------------------------------------
@router.get("/ui/readiness", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def readiness_page(request: Request, conn: StateDb, omono: OmonoDb, error: str | None = None) -> HTMLResponse:
    from include.omono_xero_sync import reference

    try:
        checks = reference.readiness(omono, conn, reference.load(conn))
    except RuntimeError:
        checks = []
    return _page(request, "readiness.html", checks=checks, info=queries.connection_info(conn), error=error)


@router.post("/ui/readiness", dependencies=[Depends(can_edit)])
def rerun_checks(request: Request, conn: StateDb) -> Any:
    """Re-read Xero's reference data now (4 calls), as Omono's "Re-Run Status Checks" does."""
    from include.omono_xero_sync import reference
    from include.omono_xero_sync.xero_api import XeroError, client_for

    target = str(request.url_for("readiness_page"))
    try:
        reference.save(conn, reference.read_from_xero(client_for(conn)))
    except XeroError as exc:
        return RedirectResponse(f"{target}?{urlencode({'error': str(exc)})}", 303)
    return RedirectResponse(target, 303)


@router.get("/ui/settings", response_class=HTMLResponse, dependencies=[Depends(can_read)])
def settings_page(request: Request, conn: StateDb, errors: list[str] | None = None, saved: bool = False
                  ) -> HTMLResponse:
    from include.omono_xero_sync import entities, settings, state

    return _page(request, "settings.html", status_code=422 if errors else 200, values=state.all_settings(conn),
                 documents=entities.DOCUMENTS, intervals=list(settings.SYNC_INTERVALS),
                 info=queries.connection_info(conn), errors=errors or [], saved=saved)


@router.post("/ui/settings", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
async def save_settings(request: Request, conn: StateDb, user: User) -> Any:
    from include.omono_xero_sync import entities, settings, state

    form = await request.form()
    values: dict[str, Any] = {}
    errors: list[str] = []
    for e in entities.DOCUMENTS:
        status = str(form.get(f"status.{e.name}", ""))
        if status not in STATUSES:
            errors.append(f"{e.label}: the status must be one of {', '.join(STATUSES)}.")
        values[f"status.{e.name}"] = status
    interval = str(form.get("sync_interval", ""))
    if interval not in settings.SYNC_INTERVALS:
        errors.append(f"Sync interval '{interval}' is not one of {', '.join(settings.SYNC_INTERVALS)}.")
    values["sync_interval"] = interval
    values["credit_check"] = form.get("credit_check") == "on"
    values["auto_create_accounts"] = form.get("auto_create_accounts") == "on"
    email = str(form.get("alert_email", "") or "").strip()
    if email and not EMAIL.match(email):
        errors.append(f"'{email}' is not an e-mail address.")
    values["alert_email"] = email or None
    if errors:
        return settings_page(request, conn, errors=errors)
    with conn.transaction():
        for key, value in values.items():
            state.put_setting(conn, key, value, user)
    return RedirectResponse(str(request.url_for("settings_page")) + "?saved=true", 303)


@router.post("/ui/disconnect", dependencies=[Depends(can_edit)])
def disconnect(request: Request, conn: StateDb, user: User) -> Any:
    from include.omono_xero_sync import lifecycle

    lifecycle.disconnect(conn, user)
    return RedirectResponse(str(request.url_for("settings_page")) + "?saved=true", 303)


@router.post("/ui/reset", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
async def reset(request: Request, conn: StateDb, user: User) -> Any:
    from include.omono_xero_sync import lifecycle

    form = await request.form()
    try:
        lifecycle.reset(conn, str(form.get("confirm", "")), user)
    except lifecycle.NotConfirmed as exc:
        return settings_page(request, conn, errors=[str(exc)])
    return RedirectResponse(str(request.url_for("settings_page")) + "?saved=true", 303)


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


app = FastAPI(title="omono-xero-sync", docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(router)
app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
