"""My page's personal data and group endpoints over HTTP (the functions called as the host
calls them, on Azurite, with the development issuer's subscriber tokens): profile, e-mail
change by code, GDPR export and erasure, group members; bad input is a 4xx problem and
changes nothing, another subscriber's ids are 404, a merchant token is 401."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from devhost import issuer
from shared.service import customer_service as cs
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import function, http, order
from tests.integration.test_merchant import call
from tests.service.my_data_support import install_group_plan, last_code, link_holder
from tests.service.test_personal_data import pay_first_invoice


def my(name: str, method: str, token: str | None, route: dict[str, str], body: Any = None,
       headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    response = function(name)(http(method, "/api/my", body, headers=hdrs | (headers or {}), route=route))
    raw = response.get_body()
    return response.status_code, json.loads(raw) if raw else None, response.mimetype


def setup(ctx: Context, shop: str, n: int = 1, plan: str = "digital-monthly") -> tuple[str, int, str]:
    placed = place_order(ctx, order(shop, n, plan=plan))
    link_holder(ctx, shop, placed.subscriber_no, f"kari{n}")
    return issuer.subscriber_token(shop, f"kari{n}"), placed.subscriber_no, placed.subscription_id


def test_profile_read_and_patch_and_bad_input_changes_nothing(ctx: Context, shop: str) -> None:
    token, n, _ = setup(ctx, shop)
    route = {"tenant": shop, "subscriber_no": str(n)}
    status, body, _ = my("my_profile", "GET", token, route)
    assert status == 200 and body["email"] == "kari1@example.no" and body["erased"] is None
    status, body, _ = my("my_profile_change", "PATCH", token, route, {"city": "Bergen", "phone": "+47 912 34 567"})
    assert status == 200 and (body["city"], body["phone"]) == ("Bergen", "+47 912 34 567")
    for bad in ({"email": "x@example.no"}, {"phone": "call me"}, {"name": ""}, {"country": "Norway"},
                {"name": None}, {"city": "x" * 101}, {"address": "a\x00b"}):
        status, _problem, media = my("my_profile_change", "PATCH", token, route, bad)
        assert status == 422 and media == "application/problem+json", bad
    assert my("my_profile", "GET", token, route)[1]["city"] == "Bergen"


def test_another_subscribers_ids_are_404_and_a_merchant_token_is_401(ctx: Context, shop: str) -> None:
    token, _n, _ = setup(ctx, shop)
    _other_token, other, other_sub = setup(ctx, shop, 2)
    route = {"tenant": shop, "subscriber_no": str(other)}
    for name, method, body in (("my_profile", "GET", None), ("my_profile_change", "PATCH", {"name": "Mine"}),
                               ("my_email_change", "POST", {"email": "me@example.no"}),
                               ("my_email_confirm", "POST", {"code": "123456"}), ("my_export", "GET", None),
                               ("my_erase", "POST", None)):
        assert my(name, method, token, route, body)[0] == 404, name
    group_route = route | {"subscription_id": other_sub}
    assert my("my_group_members", "GET", token, group_route)[0] == 404
    assert my("my_group_invite", "POST", token, group_route, {"email": "a@example.no"})[0] == 404
    assert my("my_profile", "GET", issuer.token(shop, ["admin"]), route)[0] == 401
    assert ctx.accounts.load(shop, other).account.subscriber.name == "Kari Nordmann 2"  # type: ignore[union-attr]


def test_email_change_by_code_over_http(ctx: Context, shop: str) -> None:
    token, n, _ = setup(ctx, shop)
    route = {"tenant": shop, "subscriber_no": str(n)}
    status, body, _ = my("my_email_change", "POST", token, route, {"email": "ny@example.no"},
                         {"Accept-Language": "en"})
    assert (status, body) == (202, {"sent": True})
    assert my("my_email_change", "POST", token, route, {"email": "not an address"})[0] == 422
    status, _, _ = my("my_email_confirm", "POST", token, route, {"code": last_code(ctx, shop, "ny@example.no")})
    assert status == 200 and my("my_profile", "GET", token, route)[1]["email"] == "ny@example.no"
    assert ctx.emails.find(shop, "ny@example.no") == n and ctx.emails.find(shop, "kari1@example.no") is None
    _other_token, _other, _ = setup(ctx, shop, 2)  # kari2@example.no is a subscriber's: the same answer as a free one
    assert my("my_email_change", "POST", token, route, {"email": "kari2@example.no"})[:2] == (202, {"sent": True})


def test_export_and_erase_over_http(ctx: Context, shop: str) -> None:
    token, n, sub = setup(ctx, shop)
    route = {"tenant": shop, "subscriber_no": str(n)}
    status, problem, _ = my("my_erase", "POST", token, route)
    assert status == 422 and "owing" in problem["detail"] and "active" in problem["detail"]
    status, data, _ = my("my_export", "GET", token, route)
    assert status == 200 and data["subscriptions"][0]["id"] == sub and data["invoices"][0]["number"] >= 1
    assert {"profile", "ledger", "payments", "agreements", "deliveries", "logins", "reminders"} <= set(data)
    pay_first_invoice(ctx, shop, n)
    cs.stop(ctx, shop, n, sub, True, None, None, "moving")
    ctx.clock.set(oslo_morning(date(2026, 2, 6)))  # type: ignore[attr-defined]
    status, done, _ = my("my_erase", "POST", token, route)
    assert status == 200 and done["erased"] == "2026-02-06" and "ledger" in done["kept"]
    assert my("my_profile", "GET", token, route)[0] == 404  # the login's link went with the data


def test_group_members_over_http(ctx: Context, shop: str) -> None:
    plan = install_group_plan(ctx, shop, 1)
    token, n, sub = setup(ctx, shop, plan=plan)
    route = {"tenant": shop, "subscriber_no": str(n), "subscription_id": sub}
    status, seat, _ = my("my_group_invite", "POST", token, route, {"email": "per@example.no", "role": "user"})
    assert status == 201 and seat["kind"] == "invitation"
    status, problem, _ = my("my_group_invite", "POST", token, route, {"email": "eva@example.no"})
    assert status == 422 and "seats" in problem["detail"]
    assert my("my_group_invite", "POST", token, route, {"email": "eva@example.no", "role": "owner"})[0] == 422
    per = issuer.subscriber_token(shop, "per", email="per@example.no")
    status, taken, _ = my("my_invitation_accept", "POST", per, {"tenant": shop},
                          {"code": last_code(ctx, shop, "per@example.no")})
    assert status == 200 and taken == {"subscriber": n, "subscription_id": sub, "role": "user"}
    status, listed, _ = my("my_group_members", "GET", token, route)
    assert status == 200 and listed["used"] == 1 and listed["members"][0]["kind"] == "member"
    _, overview = call("subscriber_overview", "GET", issuer.token(shop, ["reader"]), {"subscriber_no": str(n)})
    assert {(x["email"], x["role"]) for x in overview["logins"]} == {("kari1@example.no", "holder"),
                                                                      ("per@example.no", "user")}
    member = listed["members"][0]["id"]
    assert my("my_group_remove", "DELETE", token, route | {"member": member})[0] == 204
    assert my("my_group_members", "GET", token, route)[1]["used"] == 0


def test_code_tries_are_limited_per_login_across_my_pages_code_endpoints(ctx: Context, shop: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token, n, _ = setup(ctx, shop)
    monkeypatch.setenv("ABONNO_CODE_RATE_LIMIT", "3/901")  # a bucket of its own
    route = {"tenant": shop, "subscriber_no": str(n)}
    assert my("my_email_confirm", "POST", token, route, {"code": "123456"})[0] == 422
    assert my("my_invitation_accept", "POST", token, {"tenant": shop}, {"code": "123456",
                                                                        "email": "a@example.no"})[0] == 422
    assert my("my_email_confirm", "POST", token, route, {"code": "123456"})[0] == 422
    status, problem, _ = my("my_invitation_accept", "POST", token, {"tenant": shop}, {"code": "123456"})
    assert status == 429 and problem["title"] == "Too many requests"
    other = setup(ctx, shop, 2)[0]  # another login has its own bucket
    assert my("my_invitation_accept", "POST", other, {"tenant": shop}, {"code": "123456",
                                                                        "email": "a@example.no"})[0] == 422
