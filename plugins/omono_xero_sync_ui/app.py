"""The FastAPI app the Airflow plugin mounts at /xero-sync: server-rendered pages behind Airflow's own auth manager
(security.py). A browser always gets a page: no session sends it to Airflow's login page, a refusal or an
address it cannot use gets a plain explanation (fixed texts by key: nothing from the address is echoed), never
FastAPI's JSON. The JSON routes under /api answer in JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from omono_xero_sync_ui import connect_pages, log_pages, recon_pages, setup_pages
from omono_xero_sync_ui.security import login_redirect_wanted, login_url
from omono_xero_sync_ui.web import HERE, message

UNKNOWN = ("This address is not understood", "It holds a filter, page number or record this page does not know. "
           "Open the page again from the menu above.")
TEXTS = {
    "unknown_filter": UNKNOWN,
    "no_record": ("Not found", "No such record has been through the sync."),
    "no_page": ("Not found", "There is no such page."),
    "other_dag": ("No Xero sync log", "Only the runs of the DAG omono_xero_sync have a Xero sync log."),
    "form_refused": ("Not sent from this page", "The form was not sent from one of these pages, or the page was "
                     "open too long. Nothing was changed: reload the page and try again."),
    "cannot_retry": ("Nothing to retry", "Only a record Xero refused, or one that was skipped, can be retried. "
                     "Held records are checked again on every run anyway."),
    "cannot_skip": ("Nothing to skip", "Only a held record or one Xero refused can be skipped."),
}
BY_STATUS = {403: ("Not allowed", "You can read these pages but not change anything: ask an Airflow admin for "
                                  "edit access to the DAG's runs."),
             404: TEXTS["no_page"]}


def _is_page(request: Request) -> bool:
    return "/ui/" in request.url.path


async def http_error(request: Request, exc: HTTPException) -> Response:
    if not _is_page(request):
        return await http_exception_handler(request, exc)
    if login_redirect_wanted(exc):
        return RedirectResponse(login_url(request), 303)
    title, text = TEXTS.get(str(exc.detail)) or BY_STATUS.get(exc.status_code) or UNKNOWN
    return message(request, title, text, exc.status_code)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not _is_page(request):
        return await request_validation_exception_handler(request, exc)
    return message(request, *UNKNOWN, 400)


app = FastAPI(title="omono-xero-sync", docs_url=None, redoc_url=None, openapi_url=None,
              exception_handlers={HTTPException: http_error, RequestValidationError: validation_error})
for module in (log_pages, setup_pages, connect_pages, recon_pages):
    app.include_router(module.router)
app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
