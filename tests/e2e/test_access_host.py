"""End to end: access claims through ``abonno host`` as a separate process (M1; issue 12).

An order over HTTP makes a subscriber; a login is linked to it in its partition (as the
sign-in's confirmation does); the commit's ``AccessChanged`` goes through the ``access``
queue to the host's access worker, which builds the login's row; the paywall's ``GET
access/{tenant}/me`` then answers the products, the API connector puts them into a token,
and after the unlink the worker takes them away again. The merchant sets a campus range and
the site lookup answers by IP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import requests

from devhost import issuer
from devhost.azurite import Azurite
from devhost.demo import catalogue
from shared import bootstrap
from shared.clock import SettableClock
from shared.domain.account import Changes
from shared.domain.identity import LoginLink, Role, login_key
from shared.service.unit_of_work import change
from tests.e2e import running_host

START = "2026-03-02T08:00:00+00:00"
CONNECTOR = {"username": "e2e-connector", "password": "e2e-connector-password"}


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_host(azurite, tmp_path_factory.mktemp("host"), START,
                      {"ABONNO_CONNECTOR_CREDENTIALS": json.dumps({"*": CONNECTOR})}) as url:
        yield url


def eventually(probe: Callable[[], Any], expected: Any, seconds: float = 45) -> Any:
    """``probe()`` until it returns ``expected`` (the host's worker polls its queues)."""
    deadline = time.monotonic() + seconds
    while (got := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.25)
    return got


@pytest.mark.e2e
def test_a_linked_login_gets_its_products_through_the_access_queue_and_loses_them_when_unlinked(
        host: str, azurite: Azurite) -> None:
    tenant = f"acc{int(time.time() * 1000) % 10**9}"
    admin = {"Authorization": f"Bearer {issuer.token(tenant, ['admin'])}"}
    for segment, item_id, body in catalogue():
        requests.put(f"{host}/api/merchant/catalogue/{segment}/{item_id}", json=body, headers=admin,
                     timeout=30).raise_for_status()
    form = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Kari Leser", "email": "kari@example.no"}
    assert requests.post(f"{host}/api/salesposter/{tenant}/orders", data=form, timeout=30).status_code == 201
    (found,) = requests.get(f"{host}/api/merchant/subscribers", params={"q": "kari@example.no"}, headers=admin,
                            timeout=30).json()
    n = found["number"]

    ctx = bootstrap.connect(azurite.connection_string, SettableClock(datetime.fromisoformat(START)))
    login = login_key(issuer.SUBSCRIBER_ISSUER.format(tenant=tenant), "kari-oid")
    link = LoginLink(login, Role.HOLDER, "kari@example.no", datetime.fromisoformat(START).date())
    change(ctx, tenant, n, lambda seen: Changes(replace(seen.account, logins={link.key: link})))

    me = {"Authorization": f"Bearer {issuer.subscriber_token(tenant, 'kari-oid')}"}

    def products() -> Any:
        return requests.get(f"{host}/api/access/{tenant}/me", headers=me, timeout=10).json()

    assert eventually(products, {"products": ["avis", "kryssord"], "as_of": "2026-03-02"}) == {
        "products": ["avis", "kryssord"], "as_of": "2026-03-02"}

    basic = {"Authorization": "Basic " + base64.b64encode(
        f"{CONNECTOR['username']}:{CONNECTOR['password']}".encode()).decode()}
    answer = requests.post(f"{host}/api/access/{tenant}/connector", headers=basic, timeout=10,
                           json={"objectId": "kari-oid", "step": "PreTokenIssuance", "email": "kari@example.no"})
    assert answer.status_code == 200 and answer.json()["extension_Products"] == "avis kryssord"
    assert requests.post(f"{host}/api/access/{tenant}/connector", json={"objectId": "kari-oid"},
                         timeout=10).status_code == 401

    change(ctx, tenant, n, lambda seen: Changes(replace(seen.account, logins={})))
    assert eventually(products, {"products": [], "as_of": "2026-03-02"}) == {"products": [], "as_of": "2026-03-02"}

    ranges = requests.put(f"{host}/api/merchant/subscribers/{n}/ip-ranges", json={"ranges": ["203.0.113.0/25"]},
                          headers=admin, timeout=30)
    assert ranges.status_code == 200 and ranges.json()["ranges"] == ["203.0.113.0/25"]
    inside = requests.get(f"{host}/api/access/{tenant}/sites", params={"ip": "203.0.113.9"}, headers=basic, timeout=10)
    outside = requests.get(f"{host}/api/access/{tenant}/sites", params={"ip": "203.0.113.200"}, headers=basic,
                           timeout=10)
    assert inside.json()["products"] == ["avis", "kryssord"] and outside.json()["products"] == []
    doc = requests.get(f"{host}/api/openapi.json", timeout=10).json()
    assert {"/api/access/{tenant}/me", "/api/access/{tenant}/connector", "/api/access/{tenant}/sites",
            "/api/merchant/subscribers/{subscriber_no}/ip-ranges"} <= set(doc["paths"])
