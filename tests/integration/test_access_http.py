"""Access claims through the functions (M1): ``GET access/{tenant}/me`` with a subscriber's
token, the identity provider's API connector in Azure AD B2C's and Entra External ID's
formats with the tenant's HTTP Basic credentials, the site lookup by IP, and the merchant
endpoint that sets a subscriber's IP ranges. On Azurite."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from devhost import issuer
from shared import bootstrap
from shared.adapters.connector_auth import ConnectorCredentials
from shared.domain.account import Changes
from shared.domain.identity import LoginLink, Role, login_key
from shared.service import access
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import change
from tests.fixtures import function, http, order
from tests.integration.test_merchant import call as merchant

SUBJECT = "0f5c2d1e-kari"
PASSWORD = "s3cret-connector-pass"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "_connector", ConnectorCredentials({
        "*": {"username": "connector-{tenant}", "password": PASSWORD + "-{tenant}"}}))


def basic(tenant: str, password: str | None = None) -> dict[str, str]:
    pair = f"connector-{tenant}:{password if password is not None else PASSWORD + '-' + tenant}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def call(name: str, method: str, tenant: str, headers: dict[str, str] | None = None, body: Any = None,
         params: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    response = function(name)(http(method, f"/api/access/{tenant}", body, headers=headers, route={"tenant": tenant},
                                   params=params))
    raw = response.get_body()
    return response.status_code, json.loads(raw) if raw else None, response.headers


def linked(ctx: Context, tenant: str, subject: str = SUBJECT) -> int:
    """A subscriber on the monthly plan, linked to the login of ``subject`` and its row built."""
    n = place_order(ctx, order(tenant)).subscriber_no
    login = login_key(issuer.SUBSCRIBER_ISSUER.format(tenant=tenant), subject)
    made = LoginLink(login, Role.HOLDER, "kari@example.no", ctx.today(ctx.catalogue.get(tenant)))
    change(ctx, tenant, n, lambda seen: Changes(replace(seen.account, logins={made.key: made})))
    access.refresh_login(ctx, tenant, login, (n,))
    return n


def bearer(tenant: str, subject: str = SUBJECT) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.subscriber_token(tenant, subject)}"}


def test_me_answers_the_products_of_the_linked_login_and_an_empty_list_for_one_linked_to_nothing(
        ctx: Context, shop: str) -> None:
    linked(ctx, shop)
    status, body, _ = call("access_me", "GET", shop, bearer(shop))
    assert status == 200 and body == {"products": ["avis", "kryssord"], "as_of": "2026-01-05"}
    status, body, _ = call("access_me", "GET", shop, bearer(shop, "nobody"))
    assert status == 200 and body == {"products": [], "as_of": "2026-01-05"}


def test_me_refuses_no_token_a_merchant_token_and_another_tenants_subscriber_token(ctx: Context, shop: str) -> None:
    linked(ctx, shop)
    assert call("access_me", "GET", shop)[0] == 401
    assert call("access_me", "GET", shop, {"Authorization": f"Bearer {issuer.token(shop, ['admin'])}"})[0] == 401
    assert call("access_me", "GET", shop, bearer("another-tenant"))[0] == 401


def test_the_b2c_api_connector_continues_with_the_products_of_the_user(ctx: Context, shop: str) -> None:
    linked(ctx, shop)
    request = {"email": "kari@example.no", "objectId": SUBJECT, "step": "PreTokenIssuance", "client_id": "abc",
               "ui_locales": "nb-NO", "extension_123_Custom": "x", "identities": [{"issuer": "x"}]}
    status, body, _ = call("access_connector", "POST", shop, basic(shop), request)
    assert status == 200 and body == {"version": "1.0.0", "action": "Continue", "extension_Products": "avis kryssord",
                                      "extension_ProductsAsOf": "2026-01-05"}
    status, body, _ = call("access_connector", "POST", shop, basic(shop), {"step": "PostAttributeCollection"})
    assert status == 200 and body == {"version": "1.0.0", "action": "Continue"}  # no user yet: nothing to add


def test_the_external_id_token_issuance_start_gets_provide_claims_for_token(ctx: Context, shop: str) -> None:
    linked(ctx, shop)
    request = {"type": "microsoft.graph.authenticationEvent.tokenIssuanceStart", "source": "/tenants/x/applications/y",
               "data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartCalloutData", "tenantId": "x",
                        "authenticationContext": {"correlationId": "c", "client": {"ip": "30.51.176.110"},
                                                  "user": {"id": SUBJECT, "mail": "kari@example.no"}}}}
    status, body, _ = call("access_connector", "POST", shop, basic(shop), request)
    assert status == 200
    (action,) = body["data"]["actions"]
    assert body["data"]["@odata.type"] == "microsoft.graph.onTokenIssuanceStartResponseData"
    assert action["@odata.type"] == "microsoft.graph.tokenIssuanceStart.provideClaimsForToken"
    assert action["claims"] == {"products": ["avis", "kryssord"], "productsAsOf": "2026-01-05"}


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic !!!"}, {"Authorization": "Bearer abc"},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}])
def test_the_connector_without_valid_basic_credentials_is_401_with_a_challenge_before_the_body_is_read(
        ctx: Context, shop: str, headers: dict[str, str]) -> None:
    status, body, response_headers = call("access_connector", "POST", shop, headers, "not json at all")
    assert status == 401 and body["status"] == 401 and response_headers["WWW-Authenticate"].startswith("Basic")


def test_one_tenants_connector_credentials_open_nothing_of_another_and_a_wrong_password_is_401(
        ctx: Context, shop: str) -> None:
    linked(ctx, shop)
    assert call("access_connector", "POST", shop, basic("another"), {"objectId": SUBJECT})[0] == 401
    assert call("access_connector", "POST", shop, basic(shop, PASSWORD), {"objectId": SUBJECT})[0] == 401
    assert call("access_sites", "GET", shop, basic("another"), params={"ip": "192.0.2.1"})[0] == 401
    bootstrap._connector = ConnectorCredentials({"avisa": {"username": "u", "password": "p"}})  # no default
    assert call("access_connector", "POST", shop, basic(shop), {"objectId": SUBJECT})[0] == 401


def test_a_bad_connector_body_is_a_problem_and_changes_nothing(ctx: Context, shop: str) -> None:
    for bad in ({"objectId": "x" * 200}, {"objectId": "a b"}, {"type": "microsoft.graph.authenticationEvent."
                                                               "tokenIssuanceStart", "data": {}}, [1, 2]):
        status, body, _ = call("access_connector", "POST", shop, basic(shop), bad)
        assert status in (400, 422) and body["status"] == status


def test_a_site_lookup_answers_by_ip_after_the_merchant_sets_the_ranges(ctx: Context, shop: str) -> None:
    n = place_order(ctx, order(shop)).subscriber_no
    admin = issuer.token(shop, ["admin"])
    route = {"subscriber_no": str(n)}
    status, body = merchant("subscriber_ip_ranges", "PUT", admin, route, {"ranges": ["192.0.2.17/24"]})
    assert status == 200 and body == {"subscriber_no": n, "ranges": ["192.0.2.0/24"]}
    status, body, _ = call("access_sites", "GET", shop, basic(shop), params={"ip": "192.0.2.99"})
    assert status == 200 and body == {"products": ["avis", "kryssord"], "as_of": "2026-01-05"}
    assert call("access_sites", "GET", shop, basic(shop), params={"ip": "198.51.100.7"})[1]["products"] == []
    assert call("access_sites", "GET", shop, basic(shop), params={"ip": "not-an-ip"})[0] == 400
    assert call("access_sites", "GET", shop, basic(shop))[0] == 400
    assert call("access_sites", "GET", shop, params={"ip": "192.0.2.99"})[0] == 401
    assert merchant("subscriber_ip_ranges", "PUT", admin, route, {"ranges": []})[0] == 200
    assert call("access_sites", "GET", shop, basic(shop), params={"ip": "192.0.2.99"})[1]["products"] == []


def test_ip_ranges_need_an_admin_valid_ranges_and_a_subscriber_of_the_tenant(ctx: Context, shop: str) -> None:
    n = place_order(ctx, order(shop)).subscriber_no
    route = {"subscriber_no": str(n)}
    admin = issuer.token(shop, ["admin"])
    assert merchant("subscriber_ip_ranges", "PUT", issuer.token(shop, ["reader"]), route, {"ranges": []})[0] == 403
    assert merchant("subscriber_ip_ranges", "PUT", None, route, {"ranges": []})[0] == 401
    for bad in (["10.0.0.0/4"], ["300.1.1.1/24"], ["x"], ["192.0.2.0/24"] * 51):
        status, body = merchant("subscriber_ip_ranges", "PUT", admin, route, {"ranges": bad})
        assert status == 422 and body["errors"], bad
    assert merchant("subscriber_ip_ranges", "PUT", admin, {"subscriber_no": "999999"}, {"ranges": []})[0] == 404
    other = issuer.token("another-tenant", ["admin"])
    assert merchant("subscriber_ip_ranges", "PUT", other, route, {"ranges": ["192.0.2.0/24"]})[0] == 404
    assert ctx.access.sites(shop)[1] is None  # nothing was written by any refused call
