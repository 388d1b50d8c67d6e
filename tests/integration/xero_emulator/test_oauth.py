"""Tokens and tenants exactly as Xero hands them out, driven through xero-python where it has a call for it."""

import httpx
import pytest
from xero_python.exceptions import HTTPStatusException

from tests.support.xero_sdk import (
    CUSTOM_CLIENT_ID,
    CUSTOM_CLIENT_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    NZ_TENANT,
    UK_TENANT,
    Sdk,
    authorization_code_tokens,
    sdk_for,
)

pytestmark = pytest.mark.integration


def _refresh(url: str, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{url}/connect/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                    "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})


def test_code_flow_gives_tokens_and_connections_list_both_demo_organisations(sdk: Sdk) -> None:
    assert sdk.tokens["token"]["refresh_token"]
    connections = sdk.identity.get_connections()
    assert {(c.tenant_id, c.tenant_name) for c in connections} == {
        (UK_TENANT, "Omono Demo Wholesale Ltd"), (NZ_TENANT, "Omono Demo Distribution (NZ)")}
    assert all(c.tenant_type == "ORGANISATION" for c in connections)


def test_each_organisation_answers_with_its_own_data(sdk: Sdk) -> None:
    uk = sdk.accounting.get_organisations(UK_TENANT).organisations[0]
    nz = sdk.accounting.get_organisations(NZ_TENANT).organisations[0]
    assert (uk.base_currency.value, nz.base_currency.value) == ("GBP", "NZD")


def test_refresh_token_rotates_and_the_old_one_works_only_within_the_grace_period(emulator_url: str,
                                                                                  admin: httpx.Client) -> None:
    first = authorization_code_tokens(emulator_url)
    second = _refresh(emulator_url, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _refresh(emulator_url, first["refresh_token"]).status_code == 200     # lost-response retry: allowed
    admin.post("/clock", json={"advance_seconds": 31 * 60})
    late = _refresh(emulator_url, first["refresh_token"])
    assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    assert _refresh(emulator_url, second["refresh_token"]).status_code == 200


def test_expired_access_token_gives_401_token_expired(emulator_url: str, admin: httpx.Client) -> None:
    tokens = authorization_code_tokens(emulator_url)
    admin.post("/clock", json={"advance_seconds": 31 * 60})
    reply = httpx.get(f"{emulator_url}/api.xro/2.0/Organisation",
                      headers={"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": UK_TENANT})
    assert reply.status_code == 401
    assert reply.json()["Detail"].startswith("TokenExpired: token expired at ")


def test_sdk_refreshes_an_expiring_token_and_hands_the_rotated_one_to_its_saver(sdk: Sdk) -> None:
    before = dict(sdk.tokens["token"])
    sdk.tokens["token"]["expires_at"] = 0          # the SDK now thinks the access token expired
    sdk.accounting.get_organisations(UK_TENANT)
    after = sdk.tokens["token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]


def test_wrong_or_missing_tenant_header_gives_403(sdk: Sdk) -> None:
    for tenant in ("00000000-0000-0000-0000-000000000001", ""):
        with pytest.raises(HTTPStatusException) as err:
            sdk.accounting.get_organisations(tenant)
        assert err.value.status == 403
        assert "AuthenticationUnsuccessful" in err.value.body.decode()


def test_missing_scope_gives_401_authorization_unsuccessful(emulator_url: str) -> None:
    tokens = authorization_code_tokens(emulator_url, scope="openid offline_access accounting.contacts.read")
    limited = sdk_for(emulator_url, tokens)
    limited.accounting.get_contacts(UK_TENANT)
    with pytest.raises(HTTPStatusException) as err:
        limited.accounting.get_organisations(UK_TENANT)
    assert err.value.status == 401
    assert "AuthorizationUnsuccessful" in err.value.body.decode()


def test_granular_scopes_of_new_apps_open_invoices(emulator_url: str) -> None:
    tokens = authorization_code_tokens(emulator_url, scope="offline_access accounting.invoices.read")
    sdk_for(emulator_url, tokens).accounting.get_invoices(UK_TENANT)


def test_custom_connection_uses_client_credentials_and_needs_no_tenant_header(emulator_url: str) -> None:
    reply = httpx.post(f"{emulator_url}/connect/token", auth=(CUSTOM_CLIENT_ID, CUSTOM_CLIENT_SECRET),
                       data={"grant_type": "client_credentials"})
    tokens = reply.json()
    assert "refresh_token" not in tokens
    custom = sdk_for(emulator_url, tokens, CUSTOM_CLIENT_ID, CUSTOM_CLIENT_SECRET)
    assert custom.accounting.get_organisations("").organisations[0].name == "Omono Demo Wholesale Ltd"


def test_wrong_client_secret_is_invalid_client(emulator_url: str) -> None:
    reply = httpx.post(f"{emulator_url}/connect/token", data={"grant_type": "client_credentials",
                                                              "client_id": CUSTOM_CLIENT_ID, "client_secret": "x"})
    assert (reply.status_code, reply.json()) == (400, {"error": "invalid_client"})


def test_deleting_a_connection_removes_access_to_that_organisation(sdk: Sdk) -> None:
    nz = next(c for c in sdk.identity.get_connections() if c.tenant_id == NZ_TENANT)
    sdk.identity.delete_connection(nz.id)
    assert [c.tenant_id for c in sdk.identity.get_connections()] == [UK_TENANT]
    with pytest.raises(HTTPStatusException) as err:
        sdk.accounting.get_organisations(NZ_TENANT)
    assert err.value.status == 403


def test_revoking_the_refresh_token_ends_the_grant(emulator_url: str) -> None:
    tokens = authorization_code_tokens(emulator_url)
    httpx.post(f"{emulator_url}/connect/revocation", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
               data={"token": tokens["refresh_token"]}).raise_for_status()
    assert _refresh(emulator_url, tokens["refresh_token"]).status_code == 400
