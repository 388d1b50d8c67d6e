"""The real xero-python SDK wired to an emulator URL, with tokens obtained exactly as from Xero: the consent
redirect gives a code, the token endpoint exchanges it, `/connections` lists the tenants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.identity import IdentityApi

DEMO_CLIENT_ID = "OMONO-DEMO-APP"
DEMO_CLIENT_SECRET = "emulator-demo-secret"  # the emulator fixture's published demo value, not a secret
CUSTOM_CLIENT_ID = "OMONO-DEMO-CUSTOM"
CUSTOM_CLIENT_SECRET = "emulator-custom-secret"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
UK_TENANT = "7f9b8c3e-2a4d-4e6b-9f1a-3c5d7e9f0b21"
NZ_TENANT = "3a1e5c7d-9b2f-4d8a-8c6e-1f3b5d7a9c40"


class EmulatorToken(OAuth2Token):
    """OAuth2Token whose refresh goes to the emulator's token endpoint instead of identity.xero.com."""

    def __init__(self, token_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_url = token_url

    def call_refresh_token_api(self, token_api: Any) -> dict:
        token_api.refresh_token_url = self.token_url
        return super().call_refresh_token_api(token_api)


def authorization_code_tokens(base_url: str, scope: str | None = None) -> dict:
    """Consent (auto-approved by the emulator) → code → token set."""
    params = {"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "s1"}
    if scope:
        params["scope"] = scope
    consent = httpx.get(f"{base_url}/identity/connect/authorize", params=params, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    code = parse_qs(urlparse(consent.headers["location"]).query)["code"][0]
    reply = httpx.post(f"{base_url}/connect/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})
    assert reply.status_code == 200, reply.text
    return reply.json()


@dataclass
class Sdk:
    base_url: str
    api_client: ApiClient
    tokens: dict = field(default_factory=dict)

    @property
    def accounting(self) -> AccountingApi:
        return AccountingApi(self.api_client, base_url=f"{self.base_url}/api.xro/2.0")

    @property
    def identity(self) -> IdentityApi:
        return IdentityApi(self.api_client, base_url=self.base_url)


def sdk_for(base_url: str, token_set: dict, client_id: str = DEMO_CLIENT_ID,
            client_secret: str = DEMO_CLIENT_SECRET) -> Sdk:
    import time

    holder: dict = {}
    token = EmulatorToken(f"{base_url}/connect/token", client_id=client_id, client_secret=client_secret)
    config = Configuration()          # a copy of xero-python's process-wide default: set the token on it
    config.oauth2_token = token
    api_client = ApiClient(config, pool_threads=1,
                           oauth2_token_getter=lambda: holder["token"],
                           oauth2_token_saver=lambda t: holder.update(token=t))
    stored = {k: v for k, v in token_set.items() if k in {"access_token", "refresh_token", "expires_in",
                                                           "token_type", "id_token"}}
    stored["scope"] = token_set.get("scope", "").split()
    stored["expires_at"] = time.time() + token_set["expires_in"]
    holder["token"] = stored
    return Sdk(base_url, api_client, holder)
