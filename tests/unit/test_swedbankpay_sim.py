"""The Swedbank Pay simulator's own behaviour: the callback v3.1 sent to the order's
callbackUrl when the payer pays (seeded duplicates, retried while the merchant refuses it,
none for unscheduled card purchases), the payment page, the ``/_sim`` controls over HTTP,
and the standalone server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from devhost.swedbankpay_sim import SwedbankPaySimulator
from shared.adapters.swedbankpay import SwedbankPayClient, SwedbankPayCredentials
from shared.clock import SettableClock
from shared.ports import CardPurchase

TENANT = "avisa"
CREDENTIALS = SwedbankPayCredentials("payee-avisa", "token-avisa")


class Merchant:
    """A callback endpoint that answers the statuses it is given (then 200) and keeps the bodies."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                merchant.bodies.append(json.loads(body))
                self.send_response(merchant.statuses.pop(0) if merchant.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/swedbankpay/avisa/callback"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    m = Merchant()
    yield m
    m.stop()


def simulator(**options: Any) -> SwedbankPaySimulator:
    sim = SwedbankPaySimulator(SettableClock(datetime(2026, 1, 5, tzinfo=UTC)),
                               {CREDENTIALS.payee_id: CREDENTIALS.token}, **options)
    sim.start()
    return sim


def purchase(callback_url: str, reference: str = "a7-0123abcd") -> CardPurchase:
    return CardPurchase(reference, 19900, 3980, "NOK", "Avisa digital", "https://shop.example.no/done",
                        "https://shop.example.no/cancelled", callback_url)


def adapter(sim: SwedbankPaySimulator) -> SwedbankPayClient:
    return SwedbankPayClient(sim.base_url, lambda tenant: CREDENTIALS)


def test_paying_posts_the_v3_1_callback_to_the_orders_callback_url(merchant: Merchant) -> None:
    sim = simulator()
    try:
        order = adapter(sim).create_purchase(TENANT, purchase(merchant.url))
        sim.complete(order.id)
        sim.drain()
        (body,) = merchant.bodies
        assert set(body) == {"paymentOrder", "orderReference"}
        assert body["orderReference"] == "a7-0123abcd"
        assert body["paymentOrder"]["id"] == order.id and isinstance(body["paymentOrder"]["number"], int)
        assert [c["status"] for c in sim.callbacks] == [200]
    finally:
        sim.stop()


def test_callbacks_come_twice_when_the_seed_says_so_and_are_retried_until_accepted() -> None:
    merchant = Merchant(statuses=[500, 503])
    sim = simulator(callback_duplicates=1.0)
    try:
        order = adapter(sim).create_purchase(TENANT, purchase(merchant.url))
        sim.complete(order.id)
        sim.drain()
        assert len(merchant.bodies) == 4  # two copies; the first two answers refused and retried
        assert sorted(c["status"] for c in sim.callbacks) == [200, 200, 500, 503]
        assert all(b == merchant.bodies[0] for b in merchant.bodies)
    finally:
        sim.stop()
        merchant.stop()


def test_a_declined_attempt_on_the_page_calls_back_and_leaves_the_order_open(merchant: Merchant) -> None:
    sim = simulator()
    try:
        order = adapter(sim).create_purchase(TENANT, purchase(merchant.url))
        assert sim.complete(order.id, "4000000000000002") == "Initialized"
        sim.drain()
        assert len(merchant.bodies) == 1  # "look": the GET says still Initialized
        assert adapter(sim).payment_order(TENANT, order.id).status == "Initialized"
        assert sim.complete(order.id, "4925000000000004", "01/2026") == "Paid"  # valid through 31 January
    finally:
        sim.stop()


def test_an_expired_card_on_the_page_is_a_failed_attempt(merchant: Merchant) -> None:
    sim = simulator()
    try:
        order = adapter(sim).create_purchase(TENANT, purchase(merchant.url))
        assert sim.complete(order.id, "4925000000000004", "12/2025") == "Initialized"
    finally:
        sim.stop()


def test_unscheduled_card_purchases_send_no_callback(merchant: Merchant) -> None:
    sim = simulator()
    try:
        client = adapter(sim)
        order = client.create_purchase(TENANT, purchase(merchant.url))
        sim.complete(order.id)
        sim.drain()
        token = client.payment_order(TENANT, order.id).token
        client.unscheduled_purchase(TENANT, token, "c7-1-1", 19900, 3980, "NOK", "Avisa digital")
        sim.drain()
        assert len(merchant.bodies) == 1
    finally:
        sim.stop()


def test_the_payment_page_pays_or_cancels_and_sends_the_payer_back(merchant: Merchant) -> None:
    sim = simulator()
    try:
        client = adapter(sim)
        order = client.create_purchase(TENANT, purchase(merchant.url))
        page = requests.get(order.redirect_url, timeout=5)
        assert page.status_code == 200 and "Avisa digital" in page.text and "199,00 NOK" in page.text
        declined = requests.post(order.redirect_url, data={"action": "pay", "cardNumber": "4000000000009995",
                                                           "expiryDate": "12/2030"}, allow_redirects=False, timeout=5)
        assert declined.status_code == 200 and "declined" in declined.text
        paid = requests.post(order.redirect_url, data={"action": "pay", "cardNumber": "5226600159865967",
                                                       "expiryDate": "12/2030"}, allow_redirects=False, timeout=5)
        assert (paid.status_code, paid.headers["Location"]) == (303, "https://shop.example.no/done")
        read = client.payment_order(TENANT, order.id)
        assert (read.status, read.card_mask) == ("Paid", "522660******5967")

        other = client.create_purchase(TENANT, purchase(merchant.url, "a8-beef"))
        cancel = requests.post(other.redirect_url, data={"action": "cancel"}, allow_redirects=False, timeout=5)
        assert (cancel.status_code, cancel.headers["Location"]) == (303, "https://shop.example.no/cancelled")
        assert client.payment_order(TENANT, other.id).status == "Aborted"
    finally:
        sim.stop()


def test_the_controls_work_over_http(merchant: Merchant) -> None:
    sim = simulator()
    try:
        client = adapter(sim)
        order = client.create_purchase(TENANT, purchase(merchant.url))
        guid = order.id.rsplit("/", 1)[1]
        done = requests.post(f"{sim.base_url}/_sim/paymentorders/{guid}/complete",
                             json={"cardNumber": "4925000000000004", "expiryDate": "03/2027"}, timeout=5).json()
        token = done["paymentOrder"]["paid"]["tokens"][0]["token"]
        assert requests.post(f"{sim.base_url}/_sim/cards/4925000000000004/decline",
                             json={"reason": "acquirercardstolen"}, timeout=5).status_code == 200
        failed = client.unscheduled_purchase(TENANT, token, "c7-1-1", 100, 0, "NOK", "x")
        assert (failed.status, failed.failure_reason) == ("Failed", "acquirercardstolen")
        requests.post(f"{sim.base_url}/_sim/cards/4925000000000004/honour", timeout=5)
        assert client.unscheduled_purchase(TENANT, token, "c7-1-2", 100, 0, "NOK", "x").status == "Paid"
        requests.post(f"{sim.base_url}/_sim/faults", json={"status": 503, "times": 1}, timeout=5)
        assert requests.get(f"{sim.base_url}{order.id}", timeout=5,
                            headers={"Authorization": f"Bearer {CREDENTIALS.token}"}).status_code == 503
        sim.drain()
        callbacks = requests.get(f"{sim.base_url}/_sim/callbacks", timeout=5).json()["callbacks"]
        assert [c["body"]["paymentOrder"]["id"] for c in callbacks] == [order.id]
        other = client.create_purchase(TENANT, purchase(merchant.url, "a8-beef"))
        requests.post(f"{sim.base_url}/_sim/paymentorders/{other.id.rsplit('/', 1)[1]}/abort", timeout=5)
        assert client.payment_order(TENANT, other.id).status == "Aborted"
    finally:
        sim.stop()


def test_the_merchant_can_abort_an_initialized_order_with_patch(merchant: Merchant) -> None:
    sim = simulator()
    try:
        order = adapter(sim).create_purchase(TENANT, purchase(merchant.url))
        headers = {"Authorization": f"Bearer {CREDENTIALS.token}", "Content-Type": "application/json;version=3.1"}
        body = {"paymentorder": {"operation": "Abort", "abortReason": "CancelledByConsumer"}}
        answer = requests.patch(f"{sim.base_url}{order.id}", json=body, headers=headers, timeout=5)
        assert answer.json()["paymentOrder"]["status"] == "Aborted"
        again = requests.patch(f"{sim.base_url}{order.id}", json=body, headers=headers, timeout=5)
        assert again.status_code == 403 and again.headers["Content-Type"] == "application/problem+json"
    finally:
        sim.stop()


def test_another_payees_order_or_token_is_not_found() -> None:
    sim = SwedbankPaySimulator(SettableClock(), {"payee-a": "ta", "payee-b": "tb"})
    sim.start()
    try:
        a = SwedbankPayClient(sim.base_url, lambda tenant: SwedbankPayCredentials("payee-a", "ta"))
        b = SwedbankPayClient(sim.base_url, lambda tenant: SwedbankPayCredentials("payee-b", "tb"))
        order = a.create_purchase(TENANT, purchase("https://x.example/cb"))
        sim.complete(order.id)
        token = a.payment_order(TENANT, order.id).token
        from shared.ports import ProviderRefused

        with pytest.raises(ProviderRefused) as refused:
            b.payment_order(TENANT, order.id)
        assert refused.value.status == 404
        with pytest.raises(ProviderRefused):
            b.unscheduled_purchase(TENANT, token, "c1-1-1", 100, 0, "NOK", "x")
        assert b.create_purchase(TENANT, purchase("https://x.example/cb")).status == "Initialized"  # own references
    finally:
        sim.stop()


def test_it_runs_standalone() -> None:
    process = subprocess.Popen([sys.executable, "-m", "devhost.swedbankpay_sim", "--port", "0", "--token", "t1"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["token"] == "t1"
        merchants = requests.get(f"{started['url']}/_sim/merchants", timeout=5).json()["merchants"]
        assert merchants == [{"payeeId": "abonno-payee", "token": "t1"}]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_app_settings_point_the_app_at_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.swedbankpay import swedbankpay_from_settings

    sim = simulator()
    try:
        for name, value in sim.app_settings("avisa", "bladet").items():
            monkeypatch.setenv(name, value)
        port = swedbankpay_from_settings()
        assert port.create_purchase("bladet", purchase("https://x.example/cb")).status == "Initialized"
        from shared.ports import ProviderRefused

        with pytest.raises(ProviderRefused) as refused:  # a tenant with no payee configured
            port.create_purchase("other", purchase("https://x.example/cb"))
        assert refused.value.status == 403
    finally:
        sim.stop()


def test_the_standalone_clock_can_be_set_to_expire_a_card() -> None:
    sim = simulator()
    try:
        client = adapter(sim)
        order = client.create_purchase(TENANT, purchase("https://x.example/cb"))
        sim.complete(order.id, "4925000000000004", "06/2026")
        token = client.payment_order(TENANT, order.id).token
        moved = requests.post(f"{sim.base_url}/_sim/clock", json={"now": "2026-07-01T00:00:00+00:00"}, timeout=5)
        assert moved.json() == {"now": "2026-07-01T00:00:00Z"}
        failed = client.unscheduled_purchase(TENANT, token, "c7-1-1", 100, 0, "NOK", "x")
        assert (failed.status, failed.failure_reason) == ("Failed", "acquirercardexpired")
    finally:
        sim.stop()
