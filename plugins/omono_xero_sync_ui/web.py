"""Rendering: Jinja2 templates (autoescaped, no CDN), the fixed texts a page shows after an action (chosen by a key
in the address, never taken from it), and the helpers every page uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from omono_xero_sync_ui.security import DAG_ID, NONCE_COOKIE, TOKEN_FIELD, Session

HERE = Path(__file__).parent

# What a page says after an action redirected to it (`?done=<key>`); `{n}` is a count passed as a number.
DONE = {
    "saved": "Saved.",
    "mappings_saved": "Saved. The next run uses these mappings.",
    "connected": "Connected to Xero: the tokens are stored encrypted and the organisation's settings were read.",
    "disconnected": "Disconnected from Xero: the tokens are forgotten. Every synced record stays synced, so "
                    "reconnecting (to this or another organisation) resends nothing.",
    "reset": "Reset: {n} record(s) were forgotten and will be sent again on the next run (Xero's copies are "
             "matched, not duplicated). The sync log is kept.",
    "test_sent": "A test e-mail was sent to the alert address. If it does not arrive, check the SMTP connection.",
    "retried": "Retry chosen: {n} record(s) will be sent again on the next run.",
    "skipped": "Skipped: {n} record(s) will not be sent again until they change in Omono or someone chooses Retry.",
    "checks_read": "Xero's settings were read again.",
    "reconciled": "Reconciled: the result is below, and every difference is red in the sync log until the next "
                  "reconciliation.",
}
# What went wrong, by key (`?problem=<key>`), for actions that redirect back.
PROBLEMS = {
    "not_connected": "Xero is not connected, or refused the stored credentials: connect again on General options.",
    "xero_unreachable": "Xero could not be reached or refused the request; try again in a minute.",
    "not_configured": "Airflow has no usable Xero connection yet: create it (Admin > Connections, README: "
                      "Connections) with the Xero app's client id as login and client secret as password.",
    "not_covered": "The consent does not cover the organisation named in the Airflow connection's extra "
                   "(tenant_id): connect again and allow access to that organisation.",
    "consent_refused": "Xero did not grant access (the consent was refused, expired or did not come from this "
                       "browser). Connect again.",
}

templates = Jinja2Templates(directory=str(HERE / "templates"))


def _pretty(value: Any) -> str:
    """JSON as a person reads it: indented, real characters (not \\u0027); autoescaping makes it safe to show."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


templates.env.filters.update(pretty=_pretty, qs=urlencode)
templates.env.globals.update(DAG_ID=DAG_ID, TOKEN_FIELD=TOKEN_FIELD)


def page(request: Request, name: str, session: Session, status_code: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {"s": session, **context}, status_code=status_code)
    if session.new_nonce:
        response.set_cookie(NONCE_COOKIE, session.new_nonce, path="/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
    return response


def message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    """A plain page for what cannot be shown (errors), usable without a session (anonymous, 404)."""
    return templates.TemplateResponse(request, "message.html", {"s": None, "title": title, "text": text},
                                      status_code=status_code)


def done_text(request: Request) -> str | None:
    """The fixed text for `?done=<key>`, with `n` (a count, digits only) filled in."""
    done, n = request.query_params.get("done", ""), request.query_params.get("n", "")
    return DONE[done].format(n=int(n) if n.isdigit() else "some") if done in DONE else None


def redirect(request: Request, route: str, query: dict[str, Any] | None = None, **path: Any) -> RedirectResponse:
    """303 to one of this app's pages (after a POST), with only the fixed keys given here in the address."""
    url = str(request.url_for(route, **path))
    clean = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return RedirectResponse(f"{url}?{urlencode(clean)}" if clean else url, 303)
