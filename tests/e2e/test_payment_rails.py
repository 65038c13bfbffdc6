"""End to end over HTTP: the app on the local host with the Vipps and Swedbank Pay simulators
on its test clock (``rails``), driven as the payer, the providers and an operator would:
the sales poster's order with Vipps or card answers where to send the payer; the payer
approves on the simulator's page and comes back to our checkout page; the webhook or
callback goes through the queue; the subscription is active and its first invoice paid.
Then months on the test clock (``/_dev/tick``, which runs the providers' daily batch too):
the renewal is charged and booked, a failing charge leaves the invoice to dunning, a
refund goes to the provider and is booked, and when no webhook arrives at all the
provider timer's polling finds every outcome anyway."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import requests

from devhost import issuer
from devhost.demo import catalogue
from shared.service.context import Context
from tests.conftest import Rails

FORM = {"templatePackageId": "digital-monthly", "name": "Kari Nordmann", "phone": "+47 412 34 567"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class Shop:
    """A tenant on the running host, as its operator and its subscribers see it over HTTP."""

    def __init__(self, rails: Rails, tenant: str) -> None:
        self.rails, self.url, self.tenant = rails, rails.url, tenant
        self.auth = {"Authorization": f"Bearer {issuer.token(tenant, ['admin'])}"}
        for segment, item_id, body in catalogue(extra_payment_requests=1):  # a failed charge is asked again once
            self.put(f"catalogue/{segment}/{item_id}", body)

    def put(self, path: str, body: Any) -> None:
        requests.put(f"{self.url}/api/merchant/{path}", json=body, headers=self.auth, timeout=30).raise_for_status()

    def get(self, path: str) -> Any:
        response = requests.get(f"{self.url}/api/merchant/{path}", headers=self.auth, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def order(self, email: str, pty: str) -> str:
        response = requests.post(f"{self.url}/api/salesposter/{self.tenant}/orders",
                                 data=FORM | {"PTY": pty, "email": email}, timeout=30)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "awaiting_payment"
        return str(response.json()["redirect_url"])

    def subscriber(self, email: str) -> int:
        (found,) = self.get(f"subscribers?q={email}")
        return int(found["number"])

    def tick(self, to: date) -> dict[str, Any]:
        response = requests.post(f"{self.url}/_dev/tick", json={"to": to.isoformat()}, timeout=600)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def settle(self) -> None:
        """The providers' deliveries in flight arrive, and the queues run (a tick to today)."""
        requests.post(f"{self.rails.sims.vipps.base_url}/_sim/flush", json={}, timeout=60).raise_for_status()
        self.rails.sims.swedbankpay.drain()
        self.tick(self.rails.host.clock.now().date())


def approve_in_vipps(redirect_url: str) -> requests.Response:
    """The payer opens Vipps' confirmation page and approves; Vipps sends them back to us."""
    page = requests.get(redirect_url, timeout=30)
    assert page.status_code == 200 and "Godta" in page.text
    agreement_id = redirect_url.rstrip("/").rsplit("/", 1)[-1]
    sim = redirect_url.split("/confirm/")[0]
    return requests.post(f"{sim}/_sim/agreements/{agreement_id}/approve?redirect=1", headers=BROWSER, timeout=30)


def paid(shop: Shop, number: int) -> list[str]:
    """The ids of the subscriber's booked payments (``{provider}.{charge id}`` for a charge)."""
    return sorted(p["payment"]["id"] for p in shop.get(f"payments?subscriber_no={number}"))


@pytest.fixture
def shop(ctx: Context, tenant: str, rails: Rails) -> Shop:
    return Shop(rails, tenant)


@pytest.mark.e2e
def test_vipps_order_to_active_then_renewal_charged_then_refund(shop: Shop) -> None:
    back = approve_in_vipps(shop.order("kari@example.no", "2"))
    assert back.status_code == 200 and back.url.startswith(f"{shop.url}/api/salesposter/{shop.tenant}/checkout/")
    assert "Abonnementet ditt er aktivt" in back.text  # our page, the truth read from Vipps before any webhook
    shop.settle()
    number = shop.subscriber("kari@example.no")
    view = shop.get(f"subscribers/{number}")
    ((sub_id, sub),) = [(s["id"], s) for s in view["subscriptions"]]
    assert sub["payment_type"] == "vipps" and sub["agreement"]
    assert view["open_demands"] == [] and [p[:7] for p in paid(shop, number)] == ["vipps.i"]  # the initial charge
    mine = shop.get(f"subscribers/{number}/agreements")
    assert [(a["provider"], a["status"]) for a in mine["agreements"]] == [("vipps", "active")]
    assert "token" not in mine["agreements"][0] and "order" not in mine["agreements"][0]

    shop.tick(date(2026, 2, 10))  # the renewal invoice (issued 14 days ahead), its charge due 5 February
    view = shop.get(f"subscribers/{number}")
    assert len(view["invoices"]) == 2 and view["open_demands"] == []
    renewal = [p for p in paid(shop, number) if p.startswith("vipps.c")]
    assert len(renewal) == 1, paid(shop, number)
    assert shop.rails.sims.vipps.state()["charges"].get("CHARGED") == 2
    assert shop.get(f"subscribers/{number}/agreements")["charges"] == []  # settled: no row left
    charge_id = renewal[0].removeprefix("vipps.")

    refund = {"amount_minor": 1000, "refund_id": "r-1"}
    url = f"{shop.url}/api/merchant/subscribers/{number}/charges/{charge_id}/refunds"
    first = requests.post(url, json=refund, headers=shop.auth, timeout=30)
    assert first.status_code == 201 and first.json()["status"] == "booked", first.text
    again = requests.post(url, json=refund, headers=shop.auth, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "already_booked"
    too_much = requests.post(url, json={"amount_minor": 10**7, "refund_id": "r-2"}, headers=shop.auth, timeout=30)
    assert too_much.status_code == 422
    refunds = [e for e in shop.get(f"subscribers/{number}")["ledger"] if e["kind"] == "refund"]
    assert [e["amount_minor"] for e in refunds] == [-1000]
    assert sub_id


@pytest.mark.e2e
def test_a_failing_vipps_charge_is_asked_again_then_left_to_dunning(shop: Shop) -> None:
    redirect = shop.order("ola@example.no", "2")
    agreement_id = redirect.rsplit("/", 1)[-1]
    approve_in_vipps(redirect)
    shop.settle()
    requests.post(f"{shop.rails.sims.vipps.base_url}/_sim/outcomes", json={"who": agreement_id, "outcome": "fail"},
                  timeout=30).raise_for_status()
    number = shop.subscriber("ola@example.no")
    shop.tick(date(2026, 2, 10))  # due 5 February, retried 2 days, then FAILED
    view = shop.get(f"subscribers/{number}")
    assert len(view["invoices"]) == 2 and len(view["open_demands"]) == 1
    assert shop.rails.sims.vipps.state()["charges"].get("FAILED") == 1
    (extra,) = shop.get(f"subscribers/{number}/agreements")["charges"]  # the dunning process's extra payment
    assert extra["attempt"] == 2 and extra["id"].endswith("-2")  # request (manual 7.19 step 2): a new charge
    shop.tick(date(2026, 2, 28))
    view = shop.get(f"subscribers/{number}")
    assert shop.rails.sims.vipps.state()["charges"].get("FAILED") == 2
    left = [c for c in shop.get(f"subscribers/{number}/agreements")["charges"] if c["demand_no"] == extra["demand_no"]]
    assert left == []  # no more requests for it (the next renewal's own charge may be out): ordinary dunning
    assert extra["demand_no"] in [d["demand_no"] for d in view["open_demands"]]  # still owed, and reminded
    assert [r["reminder"]["step"] for r in view["reminders"]][:1] == [1]


@pytest.mark.e2e
def test_a_card_order_then_a_renewal_charged_on_the_stored_card(shop: Shop) -> None:
    redirect = shop.order("per@example.no", "9")
    assert "Card number" in requests.get(redirect, timeout=30).text  # Swedbank Pay's payment page
    back = requests.post(redirect, data={"cardNumber": "4925000000000004", "expiryDate": "12/2030", "action": "pay"},
                         headers=BROWSER, timeout=30)  # the payer pays, and is sent back to our checkout page
    assert back.status_code == 200 and "Abonnementet ditt er aktivt" in back.text, back.text
    shop.settle()  # the callback, re-read by the worker
    number = shop.subscriber("per@example.no")
    (card,) = shop.get(f"subscribers/{number}/agreements")["agreements"]
    assert card["status"] == "active" and card["card_mask"].endswith("0004") and card["card_expiry"] == "2030-12-31"
    shop.tick(date(2026, 2, 10))
    view = shop.get(f"subscribers/{number}")
    assert len(view["invoices"]) == 2 and view["open_demands"] == []
    assert [p[:13] for p in paid(shop, number)] == ["swedbankpay.c", "swedbankpay.i"]


@pytest.mark.e2e
def test_without_any_webhook_the_provider_timer_finds_every_outcome(shop: Shop) -> None:
    requests.post(f"{shop.rails.sims.vipps.base_url}/_sim/webhooks", json={"url": ""}, timeout=30).raise_for_status()
    redirect = shop.order("lost@example.no", "2")
    agreement_id = redirect.rsplit("/", 1)[-1]
    sim = redirect.split("/confirm/")[0]
    approved = requests.post(f"{sim}/_sim/agreements/{agreement_id}/approve", timeout=30)  # no return to our page
    assert approved.json()["status"] == "ACTIVE"
    shop.settle()
    number = shop.subscriber("lost@example.no")
    assert shop.get(f"subscribers/{number}")["subscriptions"] == []  # nobody told us yet
    shop.tick(date(2026, 1, 6))  # the provider timer polls the pending agreement
    view = shop.get(f"subscribers/{number}")
    assert len(view["subscriptions"]) == 1 and view["open_demands"] == []
    shop.tick(date(2026, 2, 12))  # the renewal's charge: captured at Vipps, found by the poll after its due date
    view = shop.get(f"subscribers/{number}")
    assert len(view["invoices"]) == 2 and view["open_demands"] == [], view["open_demands"]
    assert [p[:7] for p in paid(shop, number)] == ["vipps.c", "vipps.i"]
    assert shop.rails.sims.vipps.sent["delivered"] == 0
