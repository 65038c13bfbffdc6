"""The provider functions against the simulators (``rails``: the app on a local host in this
process, ``ctx``'s Vipps and Swedbank Pay adapters talking HTTP to ``devhost.vipps_sim`` and
``devhost.swedbankpay_sim`` on the test clock, their signed webhooks and callbacks coming
to the host): an order with Vipps or card waits for the payer, the webhook or callback
goes through the queue to the use case that re-reads the provider, duplicates and
reordering end in one state, a lost webhook is recovered by the timer's poll, and a
message that cannot be handled never stops the worker."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from functions import charges_worker, provider_worker
from functions.vipps_webhook import COUNTS
from shared.adapters.bus import CHARGES, PROVIDER_EVENTS, event_message
from shared.domain.agreements import AgreementStatus
from shared.domain.events import ChargeRequested
from shared.ports import BusMessage, ProviderUnavailable
from shared.service.context import Context
from tests.conftest import Rails
from tests.fixtures import function, http, install_catalogue, queued, received

ORDER = {"templatePackageId": "digital-monthly", "name": "Kari Nordmann", "address": "Storgata 1",
         "postal_code": "6003", "city": "Ålesund", "phone": "+47 412 34 567"}


def order(tenant: str, pty: str, n: int = 1) -> dict[str, Any]:
    req = http("POST", f"/api/salesposter/{tenant}/orders", ORDER | {"PTY": pty, "email": f"kari{n}@example.no"},
               route={"tenant": tenant}, form=True)
    response = function("salesposter_order")(req)
    assert response.status_code == 201, response.get_body()
    answer: dict[str, Any] = json.loads(response.get_body())
    assert answer["status"] == "awaiting_payment" and set(answer) == {"status", "redirect_url"}
    return answer


def account(ctx: Context, tenant: str, n: int = 1) -> Any:
    number = ctx.emails.find(tenant, f"kari{n}@example.no")
    assert number is not None
    loaded = ctx.accounts.load(tenant, number)
    assert loaded is not None
    return loaded.account


def booked(ctx: Context, tenant: str, n: int = 1) -> list[str]:
    number = ctx.emails.find(tenant, f"kari{n}@example.no")
    assert number is not None
    return sorted(b.payment.id for b in ctx.accounts.payments(tenant, number))


def status_page(tenant: str, key: str, accept: str = "application/json") -> Any:
    req = http("GET", f"/api/salesposter/{tenant}/checkout/{key}", headers={"Accept": accept},
               route={"tenant": tenant, "agreement_key": key})
    return function("salesposter_checkout")(req)


@pytest.fixture
def shop(ctx: Context, tenant: str, rails: Rails) -> str:
    install_catalogue(ctx, tenant)
    for queue in (PROVIDER_EVENTS, CHARGES):
        received(ctx, queue)
    return tenant


def active_vipps(ctx: Context, rails: Rails, shop: str, n: int = 1) -> tuple[str, Any]:
    """A Vipps order approved by the payer and settled through webhook, queue and worker."""
    answer = order(shop, "2", n)
    agreement_id = answer["redirect_url"].rsplit("/", 1)[-1]
    rails.sims.vipps.approve(agreement_id)
    rails.drain()
    return agreement_id, account(ctx, shop, n)


def test_a_vipps_order_is_placed_when_the_webhook_says_the_payer_approved(ctx: Context, shop: str,
                                                                          rails: Rails) -> None:
    answer = order(shop, "2")
    assert answer["redirect_url"].startswith(rails.sims.vipps.base_url)
    (agreement,) = account(ctx, shop).agreements.values()
    assert agreement.status is AgreementStatus.PENDING and not account(ctx, shop).subscriptions
    before = COUNTS["received"]
    rails.sims.vipps.approve(answer["redirect_url"].rsplit("/", 1)[-1])
    rails.drain()
    assert COUNTS["received"] >= before + 2  # activated, and the initial charge captured
    acct = account(ctx, shop)
    (sub,) = acct.subscriptions.values()
    assert sub.agreement == agreement.key and acct.agreements[agreement.key].status is AgreementStatus.ACTIVE
    assert not acct.open_demands  # the first invoice paid by the initial charge
    assert booked(ctx, shop) == [f"vipps.{agreement.initial_charge_id}"]
    page = json.loads(status_page(shop, agreement.key).get_body())
    assert page == {"status": "active", "subscription_id": sub.id, "payment_type": "vipps"}


def test_duplicated_and_reordered_webhooks_end_in_the_same_state_once(ctx: Context, shop: str, rails: Rails) -> None:
    rails.sims.vipps.duplicates, rails.sims.vipps.reorder = 1.0, 1.0
    _, acct = active_vipps(ctx, rails, shop)
    assert rails.sims.vipps.sent["delivered"] >= 4  # each event twice
    (sub,) = acct.subscriptions.values()
    assert sub.agreement and not acct.open_demands
    assert len(booked(ctx, shop)) == 1  # one payment however often the capture was told


def test_the_same_message_handled_twice_changes_nothing_the_second_time(ctx: Context, shop: str,
                                                                       rails: Rails) -> None:
    _, acct = active_vipps(ctx, rails, shop)
    (agreement,) = acct.agreements.values()
    for event_type, charge in (("recurring.agreement-activated.v1", None),
                               ("recurring.charge-captured.v1", agreement.initial_charge_id)):
        body = {"tenant": shop, "provider": "vipps", "event_type": event_type, "agreement_id": agreement.provider_id,
                "charge_id": charge}
        assert provider_worker.handle(BusMessage("m1", body).encode()) in ("agreement", "charge")
    again = account(ctx, shop)
    assert again.subscriptions == acct.subscriptions and again.agreements == acct.agreements
    assert len(booked(ctx, shop)) == 1


def test_a_lost_webhook_is_recovered_by_the_provider_timers_poll(ctx: Context, shop: str, rails: Rails) -> None:
    rails.sims.vipps.webhook_url = None  # Vipps sends nothing (or it never arrives)
    answer = order(shop, "2")
    rails.sims.vipps.approve(answer["redirect_url"].rsplit("/", 1)[-1])
    rails.drain()
    assert not account(ctx, shop).subscriptions
    rails.tick(ctx.clock.now().date() + timedelta(days=1))  # the timer polls the pending agreement
    acct = account(ctx, shop)
    assert len(acct.subscriptions) == 1 and not acct.open_demands


def test_the_return_page_tells_the_truth_before_any_webhook(ctx: Context, shop: str, rails: Rails) -> None:
    rails.sims.vipps.webhook_url = None
    answer = order(shop, "2")
    (key,) = account(ctx, shop).agreements
    assert json.loads(status_page(shop, key).get_body())["status"] == "pending"
    pending = status_page(shop, key, accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert pending.mimetype == "text/html" and b'http-equiv="refresh"' in pending.get_body()
    rails.sims.vipps.reject(answer["redirect_url"].rsplit("/", 1)[-1])
    page = json.loads(status_page(shop, key).get_body())
    assert page["status"] == "rejected" and page["subscription_id"] is None
    assert not account(ctx, shop).subscriptions  # nothing placed, no number or invoice burned


def test_an_unknown_checkout_is_404_and_a_malformed_key_400(ctx: Context, shop: str) -> None:
    assert status_page(shop, "a99999-s1").status_code == 404
    assert status_page(shop, "../x").status_code == 400


def test_a_card_order_is_placed_when_the_callback_makes_the_worker_read_it_paid(ctx: Context, shop: str,
                                                                                rails: Rails) -> None:
    answer = order(shop, "9")
    (agreement,) = account(ctx, shop).agreements.values()
    rails.sims.swedbankpay.complete(agreement.provider_id)  # the payer pays on the payment page
    rails.drain()
    assert any(c["status"] == 200 for c in rails.sims.swedbankpay.callbacks)
    acct = account(ctx, shop)
    (sub,) = acct.subscriptions.values()
    assert sub.agreement == agreement.key and not acct.open_demands
    card = acct.agreements[agreement.key]
    assert card.status is AgreementStatus.ACTIVE and card.card_mask and card.card_expiry
    assert answer["redirect_url"].startswith(rails.sims.swedbankpay.base_url)


def test_a_callback_body_is_never_trusted_only_its_payment_order_id(ctx: Context, shop: str, rails: Rails) -> None:
    order(shop, "9")
    (agreement,) = account(ctx, shop).agreements.values()
    forged = {"paymentOrder": {"id": agreement.provider_id, "instrument": "creditcard", "number": 1},
              "status": "Paid", "amount": 1}
    req = http("POST", f"/api/swedbankpay/{shop}/callback", forged, route={"tenant": shop})
    assert function("swedbankpay_callback")(req).status_code == 200
    (message,) = queued(ctx, PROVIDER_EVENTS)
    assert message.body == {"tenant": shop, "provider": "swedbankpay", "payment_order_id": agreement.provider_id}
    rails.host.drain()
    acct = account(ctx, shop)
    assert not acct.subscriptions and acct.agreements[agreement.key].status is AgreementStatus.PENDING


@pytest.mark.parametrize("body", [{"paymentOrder": {"id": "/psp/paymentorders/../../x"}},
                                  {"paymentOrder": {"id": "https://evil.example/psp/paymentorders/1"}},
                                  {"paymentOrder": {}}, {"orderReference": "x"}, {"paymentOrder": {"id": "x" * 500}}])
def test_a_callback_without_a_payment_order_id_is_422_and_queues_nothing(ctx: Context, shop: str,
                                                                         body: dict[str, Any]) -> None:
    req = http("POST", f"/api/swedbankpay/{shop}/callback", body, route={"tenant": shop})
    response = function("swedbankpay_callback")(req)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert queued(ctx, PROVIDER_EVENTS) == []


def test_the_worker_retries_a_passing_failure_and_records_a_permanent_one(ctx: Context, shop: str,
                                                                          rails: Rails) -> None:
    answer = order(shop, "2")
    agreement_id = answer["redirect_url"].rsplit("/", 1)[-1]
    body = {"tenant": shop, "provider": "vipps", "event_type": "recurring.agreement-activated.v1",
            "agreement_id": agreement_id, "charge_id": None}
    rails.sims.vipps.fail_next(20, 503)  # Vipps down, past the adapter's own retries
    with pytest.raises(ProviderUnavailable):
        provider_worker.handle(BusMessage("m1", body).encode())
    rails.sims.vipps._faults.clear()
    unknown = body | {"agreement_id": "agr_not_ours"}
    assert provider_worker.handle(BusMessage("m2", unknown).encode()) == "attention"
    rows = [a for a in ctx.attention.all(shop) if a.run == provider_worker.RUN]
    assert [r.ref for r in rows] == ["agr_not_ours"]
    assert provider_worker.handle(BusMessage("m3", {"tenant": "../x", "provider": "paypal"}).encode()) == "malformed"


def test_the_charges_worker_takes_a_batch_per_tenant_and_one_tenant_never_stops_another(
        ctx: Context, shop: str, rails: Rails) -> None:
    _, acct = active_vipps(ctx, rails, shop)
    other = "t" + shop[1:][::-1]
    install_catalogue(ctx, other)
    request = ChargeRequested(id="e-x", subscriber_no=acct.number, charge_id=f"c{acct.number}-999-1",
                              provider="vipps", organization_id="avisa", demand_no=999, amount_minor=100,
                              currency="NOK", due=ctx.clock.now().date() + timedelta(days=3))
    bodies = [event_message(other, request).encode(), b"not json", BusMessage("x", {"tenant": shop}).encode(),
              event_message(shop, request).encode()]
    done = charges_worker.handle(bodies)
    assert done == {other: 1, shop: 1}  # neither holds a demand 999: nothing made, nothing raised


def test_an_order_while_the_provider_is_down_is_503_and_the_same_post_again_makes_one_order(
        ctx: Context, shop: str, rails: Rails) -> None:
    form = ORDER | {"PTY": "2", "email": "kari1@example.no", "order_ref": "poster-77"}
    req = http("POST", f"/api/salesposter/{shop}/orders", form, route={"tenant": shop}, form=True)
    rails.sims.vipps.fail_next(20, 503)
    down = function("salesposter_order")(req)
    assert down.status_code == 503 and down.headers["Retry-After"] == "30"
    rails.sims.vipps._faults.clear()
    first = function("salesposter_order")(req)
    again = function("salesposter_order")(req)
    assert (first.status_code, again.status_code) == (201, 200)
    assert json.loads(first.get_body()) == json.loads(again.get_body())
    assert len(account(ctx, shop).agreements) == 1
    assert len(rails.sims.vipps.agreements) == 1  # the draft made once (its Idempotency-Key is the agreement key)


@pytest.mark.parametrize("tenant_of", ["shop", "a tenant with no Swedbank Pay"])
def test_anonymous_callbacks_naming_no_payment_order_of_ours_leave_no_attention_rows(
        ctx: Context, shop: str, rails: Rails, tenant_of: str) -> None:
    """Hostile review (issue 11): the callback is anonymous, so whatever it names is anyone's
    text. A payment order Swedbank Pay does not know for the tenant (or a tenant with no
    Swedbank Pay at all) is dropped with a log line: it never becomes a row on customer
    service's list (a stranger posting a thousand random ids would fill it), nor a retry."""
    tenant = shop if tenant_of == "shop" else "no-swedbank-" + shop[:20]
    for i in range(3):
        body = {"paymentOrder": {"id": f"/psp/paymentorders/00000000-0000-0000-0000-00000000000{i}", "number": i}}
        req = http("POST", f"/api/swedbankpay/{tenant}/callback", body, route={"tenant": tenant})
        assert function("swedbankpay_callback")(req).status_code == 200
    messages = queued(ctx, PROVIDER_EVENTS)
    assert len(messages) == 3
    for message in messages:
        assert provider_worker.handle(message.encode()) != "attention"
    for t in (shop, tenant):
        assert [a for a in ctx.attention.all(t) if a.run == provider_worker.RUN] == []


@pytest.mark.parametrize("pty", ["2", "9"])
def test_an_order_a_provider_refuses_is_4xx_problem_never_500(ctx: Context, shop: str, pty: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile review (issue 11), held: a tenant with no Vipps / Swedbank Pay registration (or a
    draft the provider refuses) is 422 problem+json on the anonymous order form, and no order."""
    from shared.adapters.swedbankpay import swedbankpay_from_settings
    from shared.adapters.vipps import vipps_from_settings
    for name in ("ABONNO_VIPPS_CREDENTIALS", "ABONNO_SWEDBANKPAY_CREDENTIALS"):
        monkeypatch.setenv(name, "{}")  # the production wiring, with no registration for any tenant
    monkeypatch.setattr(ctx, "vipps", vipps_from_settings())
    monkeypatch.setattr(ctx, "swedbankpay", swedbankpay_from_settings())
    req = http("POST", f"/api/salesposter/{shop}/orders", ORDER | {"PTY": pty, "email": "kari9@example.no"},
               route={"tenant": shop}, form=True)
    response = function("salesposter_order")(req)
    assert response.status_code == 422, response.get_body()
    assert response.mimetype == "application/problem+json"
    number = ctx.emails.find(shop, "kari9@example.no")
    loaded = ctx.accounts.load(shop, number) if number is not None else None
    assert loaded is None or (not loaded.account.subscriptions and not loaded.account.agreements)


@pytest.mark.parametrize("pty", ["2", "9"])
def test_the_return_page_of_a_checkout_the_provider_no_longer_shows_is_never_500(
        ctx: Context, shop: str, pty: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile review (issue 11): the payer's return page re-reads a pending checkout; a provider
    that refuses the read (the registration removed, the agreement unknown: 403, 404) must not
    make the anonymous page 500. It shows the stored status; the timer settles it later."""
    from shared.adapters.swedbankpay import swedbankpay_from_settings
    from shared.adapters.vipps import vipps_from_settings
    order(shop, pty)
    (agreement,) = account(ctx, shop).agreements.values()
    for name in ("ABONNO_VIPPS_CREDENTIALS", "ABONNO_SWEDBANKPAY_CREDENTIALS"):
        monkeypatch.setenv(name, "{}")
    monkeypatch.setattr(ctx, "vipps", vipps_from_settings())
    monkeypatch.setattr(ctx, "swedbankpay", swedbankpay_from_settings())
    for accept in ("application/json", "text/html"):
        response = status_page(shop, agreement.key, accept)
        assert response.status_code == 200, response.get_body()
    assert json.loads(status_page(shop, agreement.key).get_body())["status"] == "pending"
