"""Xero's authorization-code consent, the steps both the UI's Connect page and `make connect` take.

Kept in the pipeline's package because the UI (shipped with it) uses it; the interactive command that waits on
a redirect lives in `include/commands/connect.py`, which the Docker image does not ship."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx

from include.omono_xero_sync.xero_api import XeroAuthError, XeroSettings

DEFAULT_REDIRECT = "http://localhost:8080/xero/callback"


def authorize_url(xero: XeroSettings, extra: dict, state: str) -> tuple[str, str]:
    """Xero's consent address for this app and the redirect URI it will send the code to."""
    login = extra.get("login_url") or (
        f"{xero.identity_url}/identity/connect/authorize" if "identity.xero.com" not in xero.identity_url
        else "https://login.xero.com/identity/connect/authorize")
    redirect = extra.get("redirect_uri", DEFAULT_REDIRECT)
    query = {"response_type": "code", "client_id": xero.client_id, "redirect_uri": redirect,
             "scope": " ".join(("openid", "profile", "email", *xero.scopes)), "state": state}
    return f"{login}?{urlencode(query)}", redirect


def exchange_code(xero: XeroSettings, code: str, redirect: str) -> dict:
    """The token set for a consent's code, shaped as TokenStore keeps it (never printed)."""
    reply = httpx.post(xero.token_url, auth=(xero.client_id, xero.client_secret), timeout=30,
                       data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect})
    if reply.status_code != 200:
        raise XeroAuthError(f"Xero refused the code exchange ({reply.status_code} {reply.text[:100]}).")
    body = reply.json()
    return {"access_token": body["access_token"], "refresh_token": body.get("refresh_token"),
            "expires_at": time.time() + int(body["expires_in"]), "scope": body["scope"].split(),
            "token_type": "Bearer"}


def organisations(xero: XeroSettings, access_token: str) -> list[dict]:
    """The organisations (tenants) a consent covers, from Xero's /connections."""
    return httpx.get(f"{xero.api_url.split('/api.xro')[0]}/connections", timeout=30,
                     headers={"Authorization": f"Bearer {access_token}"}).json()
