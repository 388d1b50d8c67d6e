"""Who may do what on these pages, and proof that a form was sent from one of them.

- Reading needs read access to the sync DAG's runs, changing anything edit access (Airflow's auth manager). A
  mounted app inherits none of Airflow's protection, so every route declares its dependency.
- The browser sends Airflow's session cookie (`_token`, SameSite=Lax) with a form posted from any page of the same
  site: another port of this host or another subdomain of the company's domain. So every state-changing request
  made with that cookie must (1) come from this origin (Origin, else Referer) and (2) carry the form token: an HMAC,
  under Airflow's own signing key, of a random per-browser value kept in a cookie and the user's name (a signed
  double submit). Another page can neither read the token nor forge one. A request with `Authorization: Bearer`
  carries no ambient credential and needs neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, HTTPException, Request

DAG_ID = "omono_xero_sync"
NONCE_COOKIE = "omono_xero_sync_form"
TOKEN_FIELD = "form_token"

# Module-level so tests can override them (app.dependency_overrides).
can_read = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID)
can_edit = requires_access_dag("PUT", DagAccessEntity.RUN, param_dag_id=DAG_ID)
can_read_run = requires_access_dag("GET", DagAccessEntity.RUN)


class FormRefused(HTTPException):
    """A state-changing request that did not come from one of these pages (or whose page is stale)."""

    def __init__(self) -> None:
        super().__init__(403, "form_refused")


@dataclass(frozen=True)
class Session:
    """What every page needs to know about the person looking at it."""

    user: str
    can_edit: bool
    form_token: str
    new_nonce: str | None          # set as a cookie with the page when this browser had none yet


def _key() -> bytes:
    from airflow.api_fastapi.auth.tokens import get_signing_key

    return hashlib.sha256(b"omono-xero-sync form token:" + get_signing_key("api", "secret_key").encode()).digest()


def _token(nonce: str, user: str) -> str:
    return hmac.new(_key(), f"{nonce}|{user}".encode(), hashlib.sha256).hexdigest()


def _may_edit(user: object) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_dag(method="PUT", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=DAG_ID), user=user)


def session(request: Request, user: GetUserDep) -> Session:
    nonce = request.cookies.get(NONCE_COOKIE)
    new = None if nonce else secrets.token_urlsafe(24)
    return Session(user.get_name(), _may_edit(user), _token(nonce or new, user.get_name()), new)


SessionDep = Annotated[Session, Depends(session)]


def _origins(request: Request) -> set[str]:
    """This app's origin as the browser sees it: the request's own, and Airflow's `[api] base_url` if set."""
    from airflow.configuration import conf

    own = {f"{request.url.scheme}://{request.url.netloc}"}
    base = urlsplit(conf.get("api", "base_url", fallback="") or "")
    return own | ({f"{base.scheme}://{base.netloc}"} if base.netloc else set())


def _sender(request: Request) -> str | None:
    if origin := request.headers.get("origin"):
        return origin
    referer = urlsplit(request.headers.get("referer", ""))
    return f"{referer.scheme}://{referer.netloc}" if referer.netloc else None


async def check_form(request: Request, user: GetUserDep) -> None:
    """Refuse a cookie-authenticated change that was not posted by one of these pages (see the module's doc)."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    if _sender(request) not in _origins(request):
        raise FormRefused()
    nonce = request.cookies.get(NONCE_COOKIE, "")
    sent = str((await request.form()).get(TOKEN_FIELD, ""))
    if not nonce or not hmac.compare_digest(sent.encode(), _token(nonce, user.get_name()).encode()):
        raise FormRefused()


def login_redirect_wanted(exc: HTTPException) -> bool:
    """A browser without a valid session on a page is sent to Airflow's login page, not shown JSON."""
    return exc.status_code == 401 or (exc.status_code == 403 and exc.detail == "Invalid JWT token")


def login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))
