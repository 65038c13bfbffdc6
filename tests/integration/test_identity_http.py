"""The link endpoints through the functions: the same answer whether an address is a
subscriber's or not, codes confirmed into links the session lists, rate limits per login,
a wrong code refused with one text, unlinking."""

from __future__ import annotations

import json
import uuid

import pytest

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from shared.service.context import Context
from shared.service.orders import take_order
from tests.fakes import FakeNotifier
from tests.fixtures import function, http
from tests.service.test_identity_links import code_in, order


def bearer(tenant: str, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.subscriber_token(tenant, subject, 'claimed@example.com', 'Reader')}"}


def call(name: str, method: str, tenant: str, auth: dict[str, str], body: object = None,
         route: dict[str, str] | None = None) -> tuple[int, dict[str, object] | None]:
    response = function(name)(http(method, f"/api/my/{tenant}/x", body, headers=auth,
                                   route={"tenant": tenant} | (route or {})))
    raw = response.get_body()
    return response.status_code, json.loads(raw) if raw else None


@pytest.fixture
def notices(ctx: Context) -> FakeNotifier:
    ctx.notifier = FakeNotifier()
    return ctx.notifier


def test_asking_for_a_code_answers_the_same_for_a_subscriber_and_for_nobody(ctx: Context, shop: str,
                                                                            notices: FakeNotifier) -> None:
    take_order(ctx, order(shop, "kari@example.no", "o1"))
    auth = bearer(shop, "reader-a")
    known = call("my_links", "POST", shop, auth, {"email": "kari@example.no"})
    unknown = call("my_links", "POST", shop, auth, {"email": "nobody@example.no"})
    assert known == unknown == (202, {"status": "sent"})
    assert len(notices.delivered) == 1


def test_a_confirmed_code_links_and_the_session_lists_the_subscriber(ctx: Context, shop: str,
                                                                     notices: FakeNotifier) -> None:
    take_order(ctx, order(shop, "kari@example.no", "o1"))
    number = ctx.emails.find(shop, "kari@example.no")
    auth = bearer(shop, "reader-b")
    call("my_links", "POST", shop, auth, {"email": "kari@example.no", "language": "en"})
    wrong = call("my_links_confirm", "POST", shop, auth, {"email": "kari@example.no", "code": "00000x"})
    assert wrong[0] == 422
    status, body = call("my_links_confirm", "POST", shop, auth, {"email": "kari@example.no", "code": code_in(notices)})
    assert (status, body) == (200, {"subscribers": [{"number": number, "name": "Kari Nordmann", "role": "holder"}]})
    status, session = call("my_session", "GET", shop, auth)
    assert status == 200 and session is not None and session["signed_in"] is True
    assert session["subscribers"] == [{"number": number, "name": "Kari Nordmann", "role": "holder"}]
    assert session["csrf"] is None  # a bearer caller has no cookie to protect
    again = call("my_links_confirm", "POST", shop, auth, {"email": "kari@example.no", "code": code_in(notices)})
    assert again[0] == 422  # used up
    assert call("my_unlink", "DELETE", shop, auth, route={"subscriber_no": str(number)})[0] == 204
    assert call("my_unlink", "DELETE", shop, auth, route={"subscriber_no": str(number)})[0] == 404
    other = call("my_unlink", "DELETE", shop, bearer(shop, "reader-c"), route={"subscriber_no": str(number)})
    assert other[0] == 404


def test_link_and_code_requests_are_rate_limited_per_login(ctx: Context, shop: str, notices: FakeNotifier,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABONNO_LINK_RATE_LIMIT", "3/3600")
    monkeypatch.setenv("ABONNO_CODE_RATE_LIMIT", "4/3601")
    auth, other = bearer(shop, f"r-{uuid.uuid4().hex}"), bearer(shop, f"r-{uuid.uuid4().hex}")
    asks = [call("my_links", "POST", shop, auth, {"email": f"x{i}@example.no"})[0] for i in range(5)]
    assert asks == [202, 202, 202, 429, 429]
    assert call("my_links", "POST", shop, other, {"email": "x@example.no"})[0] == 202  # each login its own bucket
    tries = [call("my_links_confirm", "POST", shop, auth, {"email": "x0@example.no", "code": "123456"})[0]
             for _ in range(6)]
    assert tries == [422, 422, 422, 422, 429, 429]


def test_the_session_of_nobody_is_signed_out_not_an_error(ctx: Context) -> None:
    status, body = call("my_session", "GET", "shop-z", {})
    assert (status, body) == (200, {"signed_in": False, "email": None, "name": None, "csrf": None,
                                    "subscribers": []})


def test_an_order_posted_with_a_subscriber_token_links_the_new_subscriber(ctx: Context, shop: str) -> None:
    form = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Kari Nordmann", "email": "kari@example.no"}
    auth = bearer(shop, "buyer-1")
    response = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form, headers=auth,
                                                  route={"tenant": shop}, form=True))
    assert response.status_code == 201, response.get_body()
    number = ctx.emails.find(shop, "kari@example.no")
    _, session = call("my_session", "GET", shop, auth)
    assert session is not None and session["subscribers"] == [{"number": number, "name": "Kari Nordmann",
                                                                "role": "holder"}]
    forged = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form,
                                                headers={"Authorization": "Bearer not-a-token"},
                                                route={"tenant": shop}, form=True))
    assert forged.status_code == 401  # a token that does not validate is refused, not ignored


def test_an_order_posted_with_the_cookie_but_no_csrf_token_links_nothing(ctx: Context, shop: str) -> None:
    from datetime import timedelta

    from shared.adapters.subscriber_auth import session_key
    from shared.ports import Session, SubscriberPrincipal

    me = SubscriberPrincipal(shop, "l" + "7" * 40, "iss", "buyer-2", None, None)
    ctx.sessions.put(Session(session_key("cookie-2"), shop, "csrf-2", ctx.clock.now() + timedelta(hours=1), me))
    form = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Ola Nordmann", "email": "ola@example.no"}
    response = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form,
                                                  headers={"Cookie": "abonno_session=cookie-2"},
                                                  route={"tenant": shop}, form=True))
    assert response.status_code == 201
    number = ctx.emails.find(shop, "ola@example.no")
    loaded = ctx.accounts.load(shop, number or 0)
    assert loaded is not None and loaded.account.logins == {}
