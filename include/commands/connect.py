"""Connect (or disconnect) the Xero organisation: the small command that obtains the first refresh token.

    python -m include.commands.connect            # authorization-code consent, stores the token set
    python -m include.commands.connect --forget   # disconnect: forget the tokens, keep every record's state

It reads the Airflow connection `xero_default` (client id, secret, and in extra: tenant_id, api_url,
identity_url, login_url, redirect_uri, scopes). It opens Xero's consent page (prints the address to open in a
browser and waits on the redirect URI for the code); against the local emulator the consent is approved at
once. The token set is stored encrypted in xero_sync.oauth_tokens and never printed."""

from __future__ import annotations

import argparse
import secrets
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import httpx

from include.omono_xero_sync import db, settings
from include.omono_xero_sync.consent import authorize_url, exchange_code, organisations
from include.omono_xero_sync.xero_api import TokenStore, XeroAuthError
from include.omono_xero_sync.xero_hook import XeroHook


def _wait_for_code(redirect: str, state: str) -> str:
    """Serve the redirect URI once and return the code Xero sends back to it."""
    target = urlparse(redirect)
    found: dict[str, str] = {}

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            query = parse_qs(urlparse(self.path).query)
            found.update({k: v[0] for k, v in query.items()})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"omono-xero-sync is connected to Xero. You can close this window.")

        def log_message(self, *args: object) -> None:
            pass

    with HTTPServer((target.hostname or "localhost", target.port or 80), Callback) as server:
        while "code" not in found and "error" not in found:
            server.handle_request()
    if found.get("state") != state or "code" not in found:
        raise SystemExit(f"Xero did not grant access: {found.get('error', 'state mismatch')}")
    return found["code"]


def connect(conn_id: str = settings.XERO_CONN_ID) -> list[dict]:
    from airflow.sdk import BaseHook

    xero = XeroHook(conn_id).settings()
    extra = BaseHook.get_connection(conn_id).extra_dejson
    with db.connect() as conn:
        db.migrate(conn)
        store = TokenStore(conn, xero)
        if xero.grant == "client_credentials":
            store.valid_token()
            conn.commit()
            return []
        state = secrets.token_urlsafe(16)
        url, redirect = authorize_url(xero, extra, state)
        consent = httpx.get(url, follow_redirects=False, timeout=30)
        location = consent.headers.get("location", "")
        if consent.status_code in (302, 303) and location.startswith(redirect):   # approved at once (emulator)
            code = parse_qs(urlparse(location).query)["code"][0]
        else:
            print(f"Open this address in a browser, sign in to Xero and allow access:\n\n  {url}\n")
            code = _wait_for_code(redirect, state)
        try:
            tokens = exchange_code(xero, code, redirect)
        except XeroAuthError as exc:
            raise SystemExit(str(exc)) from exc
        store.save(tokens)
        conn.commit()
        tenants = organisations(xero, tokens["access_token"])
    return tenants


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.commands.connect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conn-id", default=settings.XERO_CONN_ID)
    parser.add_argument("--forget", action="store_true",
                        help="disconnect: forget the stored tokens; every record stays marked as synced")
    args = parser.parse_args(argv)
    if args.forget:
        from include.omono_xero_sync import lifecycle

        lifecycle.main(["disconnect"])
        return
    tenants = connect(args.conn_id)
    print("Connected. The token set is stored encrypted in xero_sync.oauth_tokens.")
    for t in tenants:
        print(f"  organisation: {t['tenantName']}  tenant id: {t['tenantId']}")
    if tenants:
        print("Put the tenant id of the organisation to sync in the connection's extra as \"tenant_id\".")


if __name__ == "__main__":
    main(sys.argv[1:])
