"""Connect to Xero from General options, as Xero's own apps do.

Standard connection (OAuth 2.0 authorization code): *Connect to Xero* sends the browser to Xero's consent page
with a random `state`, kept signed in a short-lived cookie of this browser; Xero sends it back to the redirect URI
(`/xero/callback`, served by this plugin; `redirect_uri` in the connection's extra overrides it); the code is
exchanged for tokens, which are stored encrypted (the pipeline's TokenStore); when the consent covers several
organisations the user chooses one (kept in the setting `xero_tenant`, unless the connection's extra names a
tenant). Custom connection (`"grant": "client_credentials"`): no consent, the token is fetched at once.
Either way Xero's settings are read at the end, so Readiness and General options show the organisation."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from omono_xero_sync_ui.databases import StateDb
from omono_xero_sync_ui.security import Session, SessionDep, can_edit, check_form
from omono_xero_sync_ui.setup_pages import read_reference
from omono_xero_sync_ui.web import page, redirect

router = APIRouter()
STATE_COOKIE = "omono_xero_sync_consent"
CONSENT_SECONDS = 600


def _signer() -> URLSafeTimedSerializer:
    from airflow.api_fastapi.auth.tokens import get_signing_key

    return URLSafeTimedSerializer(get_signing_key("api", "secret_key"), salt="omono-xero-sync consent")


def _xero() -> tuple[Any, dict]:
    from airflow.sdk import BaseHook

    from include.omono_xero_sync import settings
    from include.omono_xero_sync.xero_hook import XeroHook

    return XeroHook().settings(), BaseHook.get_connection(settings.XERO_CONN_ID).extra_dejson


def _callback_url(request: Request, extra: dict) -> str:
    """Where Xero sends the browser back: the extra's `redirect_uri`, else /xero/callback on this Airflow (the
    address registered with the Xero app; README, Connecting a real Xero organisation)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
    return extra.get("redirect_uri") or f"{base}/xero/callback"


def _finish(request: Request, conn: Any) -> Response:
    problem = read_reference(conn)
    return redirect(request, "settings_page", {"problem": problem} if problem else {"done": "connected"})


@router.post("/ui/connect", dependencies=[Depends(can_edit), Depends(check_form)])
def connect(request: Request, conn: StateDb, session: SessionDep) -> Response:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from include.omono_xero_sync import consent
    from include.omono_xero_sync.xero_api import XeroAuthError, forget_tokens

    try:
        xero, extra = _xero()
    except (AirflowNotFoundException, XeroAuthError):
        return redirect(request, "settings_page", {"problem": "not_configured"})
    if xero.grant == "client_credentials":           # a custom connection: no consent, one organisation
        with conn.transaction():
            forget_tokens(conn, xero.conn_id)
        return _finish(request, conn)
    state = secrets.token_urlsafe(24)
    url, callback = consent.authorize_url(xero, {**extra, "redirect_uri": _callback_url(request, extra)}, state)
    response = RedirectResponse(url, 303)
    response.set_cookie(STATE_COOKIE, _signer().dumps({"state": state, "callback": callback, "user": session.user}),
                        max_age=CONSENT_SECONDS, path=request.scope.get("root_path", "") + "/ui/connect",
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


def _consented(request: Request, user: str) -> dict | None:
    """The consent this browser started (state matches, same user, not expired), or None."""
    try:
        started = _signer().loads(request.cookies.get(STATE_COOKIE, ""), max_age=CONSENT_SECONDS)
    except BadSignature:
        return None
    if request.query_params.get("error") or not request.query_params.get("code"):
        return None
    same = secrets.compare_digest(started["state"].encode(), request.query_params.get("state", "").encode())
    return started if same and started["user"] == user else None


@router.get("/ui/connect/callback", response_class=HTMLResponse, dependencies=[Depends(can_edit)])
def consent_callback(request: Request, conn: StateDb, session: SessionDep) -> Response:
    response = _after_consent(request, conn, session)
    response.delete_cookie(STATE_COOKIE, path=request.scope.get("root_path", "") + "/ui/connect")
    return response


def _after_consent(request: Request, conn: Any, session: Session) -> Response:
    """Tokens for the consent's code, stored; then the organisation: the extra's, the only one, or the user's."""
    from include.omono_xero_sync import consent, state
    from include.omono_xero_sync.xero_api import TokenStore, XeroAuthError

    started = _consented(request, session.user)
    if started is None:
        return redirect(request, "settings_page", {"problem": "consent_refused"})
    xero, _ = _xero()
    try:
        tokens = consent.exchange_code(xero, request.query_params["code"], started["callback"])
    except XeroAuthError:
        return redirect(request, "settings_page", {"problem": "consent_refused"})
    with conn.transaction():
        TokenStore(conn, xero).save(tokens)
        state.put_setting(conn, "xero_tenant", None, session.user)     # a new consent: choose again
    tenants = consent.organisations(xero, tokens["access_token"])
    if xero.tenant_id or len(tenants) == 1:
        return _choose(request, conn, session.user, xero.tenant_id or tenants[0]["tenantId"], tenants)
    return page(request, "organisations.html", session, tenants=tenants)


def _choose(request: Request, conn: Any, user: str, tenant_id: str, tenants: list[dict]) -> Response:
    from include.omono_xero_sync import state

    chosen = next((t for t in tenants if t["tenantId"] == tenant_id), None)
    if chosen is None:
        return redirect(request, "settings_page", {"problem": "not_covered"})
    with conn.transaction():
        state.put_setting(conn, "xero_tenant", {"id": chosen["tenantId"], "name": chosen["tenantName"]}, user)
    return _finish(request, conn)


@router.post("/ui/connect/organisation", dependencies=[Depends(can_edit), Depends(check_form)])
async def choose_organisation(request: Request, conn: StateDb, session: SessionDep) -> Response:
    from include.omono_xero_sync import consent
    from include.omono_xero_sync.xero_api import TokenStore, XeroAuthError

    xero, _ = _xero()
    try:
        tenants = consent.organisations(xero, TokenStore(conn, xero).valid_token()["access_token"])
    except XeroAuthError:
        return redirect(request, "settings_page", {"problem": "not_connected"})
    return _choose(request, conn, session.user, str((await request.form()).get("tenant_id", "")), tenants)


# Xero sends the browser back to <Airflow>/xero/callback (the address registered with the Xero app), a prefix of
# its own; it hands over to the route above, under /xero-sync, where this browser's consent cookie lives.
callback_app = FastAPI(title="omono-xero-sync Xero callback", docs_url=None, redoc_url=None, openapi_url=None)


@callback_app.get("/callback")
def xero_callback(request: Request) -> RedirectResponse:
    root = request.scope.get("root_path", "")
    if not root.endswith("/xero"):
        raise HTTPException(404)
    return RedirectResponse(f"{root[:-len('/xero')]}/xero-sync/ui/connect/callback?{request.url.query}", 303)
