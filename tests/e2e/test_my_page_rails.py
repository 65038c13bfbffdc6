"""End to end over HTTP: a subscriber paying by invoice moves the running subscription to Vipps
on My page. The app on the local host with the Vipps simulator on its test clock: My page's
API answers where to approve, the payer approves in Vipps and comes back to our checkout page,
the webhook goes through the queue, and the next renewal is charged on the agreement."""

from __future__ import annotations

from datetime import date

import requests

from shared.service.context import Context
from tests.conftest import Rails
from tests.e2e.test_payment_rails import FORM, Shop, approve_in_vipps, paid
from tests.my_page import access_rows_on, link


def test_a_running_invoice_subscription_moves_to_vipps_and_its_renewal_is_charged(ctx: Context,
                                                                                  rails: Rails) -> None:
    access_rows_on(ctx)
    shop = Shop(rails, "mypagevipps")
    ordered = requests.post(f"{shop.url}/api/salesposter/{shop.tenant}/orders",
                            data=FORM | {"PTY": "1", "email": "kari@example.no"}, timeout=30)
    assert ordered.status_code == 201, ordered.text
    number = shop.subscriber("kari@example.no")
    (sub,) = [s["id"] for s in shop.get(f"subscribers/{number}")["subscriptions"]]
    me = {"Authorization": f"Bearer {link(ctx, shop.tenant, 'kari', number)}"}
    mine = f"{shop.url}/api/my/{shop.tenant}/subscribers/{number}"

    asked = requests.put(f"{mine}/subscriptions/{sub}/payment", json={"method": "vipps"}, headers=me, timeout=30)
    assert asked.status_code == 200, asked.text
    assert asked.json()["payment"] == {"type": "invoice", "agreement": {"provider": "vipps", "status": "pending"}}
    back = approve_in_vipps(asked.json()["redirect_url"])
    assert back.status_code == 200 and "Abonnementet ditt er aktivt" in back.text  # read from Vipps at once
    shop.settle()
    (shown,) = requests.get(f"{mine}/subscriptions", headers=me, timeout=30).json()["subscriptions"]
    assert shown["payment"] == {"type": "vipps", "agreement": {"provider": "vipps", "status": "active"}}

    shop.tick(date(2026, 2, 10))  # February's invoice (made 22 January), charged on the agreement on 5 February
    assert [p for p in paid(shop, number) if p.startswith("vipps.c")], paid(shop, number)
    documents = requests.get(f"{mine}/invoices", headers=me, timeout=30).json()["documents"]
    february = next(d for d in documents if d["kind"] == "invoice")  # newest first
    assert (february["issued"], february["status"], february["open_minor"]) == ("2026-01-22", "paid", 0)
