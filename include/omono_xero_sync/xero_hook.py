"""The Airflow connection to one Xero organisation, as Airflow providers expose theirs: a hook that reads the
connection and hands out the client the pipeline uses (`XeroHook().get_conn(state_conn)`).

Connection: login = the Xero app's client id, password = its client secret; extra: `tenant_id`, `api_url`
(default https://api.xero.com/api.xro/2.0), `identity_url` (default https://identity.xero.com), `grant`
(`authorization_code`, or `client_credentials` for a custom connection), optional `scopes`, `redirect_uri`,
and optionally a first `refresh_token`."""

from __future__ import annotations

from typing import Any

import psycopg
from airflow.sdk import BaseHook

from include.omono_xero_sync import settings
from include.omono_xero_sync.state import get_setting
from include.omono_xero_sync.xero_api import DEFAULT_SCOPES, TokenStore, XeroAuthError, XeroClient, XeroSettings


class XeroHook(BaseHook):
    conn_name_attr = "xero_conn_id"
    default_conn_name = settings.XERO_CONN_ID
    conn_type = "xero"
    hook_name = "Xero"

    def __init__(self, xero_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.xero_conn_id = xero_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How Airflow's connection form shows a Xero connection."""
        return {"hidden_fields": ["host", "schema", "port"],
                "relabeling": {"login": "Client id", "password": "Client secret"},
                "placeholders": {"extra": '{"tenant_id": "…", "api_url": "https://api.xero.com/api.xro/2.0"}'}}

    def settings(self, state_conn: psycopg.Connection | None = None) -> XeroSettings:
        """The connection's values, checked; the secret never appears in a repr or a log. With the state database,
        the organisation chosen on General options (setting `xero_tenant`, written when someone connects in the
        Airflow UI) applies when the connection's extra names none: a tenant id in the extra wins (configuration as
        code), and a custom connection is bound to its one organisation."""
        conn = self.get_connection(self.xero_conn_id)
        extra = conn.extra_dejson
        if not conn.login or not conn.password:
            raise XeroAuthError(f"The Airflow connection '{self.xero_conn_id}' needs the Xero app's client id (login) "
                                "and client secret (password).")
        scopes = extra.get("scopes") or DEFAULT_SCOPES
        tenant = str(extra.get("tenant_id", ""))
        if not tenant and state_conn is not None and extra.get("grant") != "client_credentials":
            tenant = (get_setting(state_conn, "xero_tenant") or {}).get("id", "")
        return XeroSettings(conn_id=self.xero_conn_id, client_id=conn.login, client_secret=conn.password,
                            tenant_id=tenant,
                            api_url=str(extra.get("api_url", "https://api.xero.com/api.xro/2.0")).rstrip("/"),
                            identity_url=str(extra.get("identity_url", "https://identity.xero.com")).rstrip("/"),
                            grant=str(extra.get("grant", "authorization_code")),
                            scopes=tuple(scopes.split() if isinstance(scopes, str) else scopes),
                            bootstrap_refresh_token=extra.get("refresh_token"))

    def get_conn(self, state_conn: psycopg.Connection | None = None) -> XeroClient:
        """The client for this organisation, its tokens kept in the integration's state database."""
        xero = self.settings(state_conn)
        return XeroClient(xero, TokenStore(state_conn, xero))
