"""The Swedbank Pay port's contract, asserted against the HTTP adapter talking to the
simulator (``devhost/swedbankpay_sim.py``) and against the in-memory fake alike, so the
fake the service tests use cannot drift from the API: a card payment is an authorization
until captured; ``payeeReference`` is unique per payee (a second order with one is refused,
a capture or reversal tried again makes nothing twice); an unscheduled purchase fails with
the acquirer's reason for a declined card or one expired by the test clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from devhost.swedbankpay_sim import SwedbankPaySimulator
from shared.adapters.swedbankpay import SwedbankPayClient, SwedbankPayCredentials
from shared.clock import SettableClock
from shared.ports import CardPaymentOrder, CardPurchase, ProviderRefused, SwedbankPay
from tests.fakes import FakeSwedbankPay

TENANT = "avisa"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Rig:
    """The port, and what the payer and the card's bank do to it."""

    port: SwedbankPay
    clock: SettableClock
    pay: Callable[[str, date], None]  # the payer pays the order with a card valid through that month
    abort: Callable[[str], None]
    decline: Callable[[str, str], None]  # the card behind a token is declined, with the acquirer's reason


def simulator_rig(clock: SettableClock) -> Iterator[Rig]:
    sim = SwedbankPaySimulator(clock, {"payee-avisa": "token-avisa"})
    url = sim.start()
    client = SwedbankPayClient(url, lambda tenant: SwedbankPayCredentials("payee-avisa", "token-avisa"),
                               sleep=lambda seconds: None)

    def pay(order_id: str, expiry: date) -> None:
        sim.complete(order_id, "4925000000000004", f"{expiry.month:02d}/{expiry.year}")

    def decline(token: str, reason: str) -> None:
        sim.decline_card(sim.card_of_token(token), reason)

    yield Rig(client, clock, pay, sim.abort, decline)
    sim.stop()


def fake_rig(clock: SettableClock) -> Iterator[Rig]:
    fake = FakeSwedbankPay(clock)
    yield Rig(fake, clock, lambda order_id, expiry: fake.complete(order_id, expiry), fake.abort, fake.decline)


@pytest.fixture(params=["simulator", "fake"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    clock = SettableClock(START)
    yield from (simulator_rig if request.param == "simulator" else fake_rig)(clock)


def purchase(reference: str = "a7-0123abcd", amount: int = 19900) -> CardPurchase:
    return CardPurchase(reference, amount, amount // 5, "NOK", "Avisa digital, first month",
                        "https://shop.example.no/done", "https://shop.example.no/cancelled",
                        "https://abonno.example.no/api/swedbankpay/avisa/callback")


def paid_card(rig: Rig, reference: str = "a7-0123abcd", expiry: date = date(2027, 3, 31)) -> CardPaymentOrder:
    order = rig.port.create_purchase(TENANT, purchase(reference))
    rig.pay(order.id, expiry)
    return rig.port.payment_order(TENANT, order.id)


def test_a_purchase_waits_for_the_payer_on_the_payment_page(rig: Rig) -> None:
    order = rig.port.create_purchase(TENANT, purchase())
    assert (order.status, order.amount_minor, order.currency, order.payee_reference) == \
        ("Initialized", 19900, "NOK", "a7-0123abcd")
    assert order.redirect_url.startswith("http")
    read = rig.port.payment_order(TENANT, order.id)
    assert (read.id, read.status, read.payee_reference, read.captured_minor, read.token) == \
        (order.id, "Initialized", "a7-0123abcd", 0, "")


def test_a_paid_purchase_is_an_authorization_with_a_token_and_the_card(rig: Rig) -> None:
    order = paid_card(rig, expiry=date(2028, 2, 1))
    assert (order.status, order.captured_minor, order.reversed_minor) == ("Paid", 0, 0)
    assert order.token and order.card_mask.endswith("0004") and "*" in order.card_mask
    assert order.card_expiry == date(2028, 2, 29)  # 02/2028: valid through the last day of February (leap year)
    assert order.payee_reference == "a7-0123abcd"


def test_capture_takes_the_authorized_amount_once(rig: Rig) -> None:
    order = paid_card(rig)
    captured = rig.port.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd")
    assert (captured.status, captured.captured_minor) == ("Paid", 19900)
    again = rig.port.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd")  # a retry: nothing twice
    assert again.captured_minor == 19900
    with pytest.raises(ProviderRefused):  # another capture: nothing left to capture
        rig.port.capture(TENANT, order.id, 100, 0, "a7-0123abcd-2")
    assert rig.port.payment_order(TENANT, order.id).captured_minor == 19900


def test_a_capture_above_the_authorization_is_refused(rig: Rig) -> None:
    order = paid_card(rig)
    with pytest.raises(ProviderRefused):
        rig.port.capture(TENANT, order.id, 19901, 3980, "cap1")
    assert rig.port.payment_order(TENANT, order.id).captured_minor == 0


def test_a_payee_reference_makes_one_payment_order(rig: Rig) -> None:
    first = rig.port.create_purchase(TENANT, purchase())
    with pytest.raises(ProviderRefused) as refused:
        rig.port.create_purchase(TENANT, purchase())
    assert refused.value.status == 409
    assert rig.port.payment_order(TENANT, first.id).status == "Initialized"


def test_an_aborted_purchase_keeps_its_reference(rig: Rig) -> None:
    order = rig.port.create_purchase(TENANT, purchase())
    rig.abort(order.id)
    read = rig.port.payment_order(TENANT, order.id)
    assert (read.status, read.payee_reference, read.token, read.captured_minor) == ("Aborted", "a7-0123abcd", "", 0)


def test_an_unscheduled_purchase_is_authorized_then_captured(rig: Rig) -> None:
    token = paid_card(rig).token
    order = rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital, February")
    assert (order.status, order.captured_minor, order.payee_reference, order.failure_reason) == \
        ("Paid", 0, "c7-12-1", "")
    captured = rig.port.capture(TENANT, order.id, 19900, 3980, "c7-12-1")
    assert captured.captured_minor == 19900
    read = rig.port.payment_order(TENANT, order.id)
    assert (read.status, read.captured_minor, read.payee_reference) == ("Paid", 19900, "c7-12-1")


def test_an_unscheduled_purchase_per_attempt_reference_is_made_once(rig: Rig) -> None:
    token = paid_card(rig).token
    rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital")
    with pytest.raises(ProviderRefused) as refused:  # the same attempt again: never a second charge
        rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital")
    assert refused.value.status == 409
    second = rig.port.unscheduled_purchase(TENANT, token, "c7-12-2", 19900, 3980, "NOK", "Avisa digital")
    assert second.status == "Paid"


def test_a_declined_card_fails_the_unscheduled_purchase_with_the_acquirers_reason(rig: Rig) -> None:
    token = paid_card(rig).token
    rig.decline(token, "acquirerinsufficientfunds")
    order = rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital")
    assert (order.status, order.failure_reason, order.captured_minor) == ("Failed", "acquirerinsufficientfunds", 0)
    read = rig.port.payment_order(TENANT, order.id)
    assert (read.status, read.failure_reason, read.payee_reference) == \
        ("Failed", "acquirerinsufficientfunds", "c7-12-1")
    with pytest.raises(ProviderRefused):
        rig.port.capture(TENANT, order.id, 19900, 3980, "c7-12-1")


@pytest.mark.parametrize("days, status", [(0, "Paid"), (1, "Failed")])
def test_a_card_expires_after_the_last_day_of_its_month_by_the_test_clock(rig: Rig, days: int, status: str) -> None:
    token = paid_card(rig, expiry=date(2026, 3, 1)).token  # 03/2026: valid through 31 March
    rig.clock.set(datetime(2026, 3, 31, 23, 0, tzinfo=UTC) + timedelta(days=days))
    order = rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital")
    assert order.status == status
    assert order.failure_reason == ("acquirercardexpired" if status == "Failed" else "")


def test_reversals_give_back_up_to_what_was_captured_once_each(rig: Rig) -> None:
    order = paid_card(rig)
    rig.port.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd")
    part = rig.port.reversal(TENANT, order.id, 5000, 1000, "r1")
    assert (part.status, part.captured_minor, part.reversed_minor) == ("Paid", 19900, 5000)
    again = rig.port.reversal(TENANT, order.id, 5000, 1000, "r1")  # the same refund tried again
    assert again.reversed_minor == 5000
    with pytest.raises(ProviderRefused):
        rig.port.reversal(TENANT, order.id, 15000, 3000, "r2")  # above what is left (14 900)
    rest = rig.port.reversal(TENANT, order.id, 14900, 2980, "r3")
    assert (rest.status, rest.reversed_minor) == ("Reversed", 19900)
    read = rig.port.payment_order(TENANT, order.id)
    assert (read.status, read.captured_minor, read.reversed_minor) == ("Reversed", 19900, 19900)


def test_a_reversal_of_an_uncaptured_authorization_is_refused(rig: Rig) -> None:
    order = paid_card(rig)
    with pytest.raises(ProviderRefused):
        rig.port.reversal(TENANT, order.id, 100, 0, "r1")


def test_an_unknown_payment_order_or_token_is_refused(rig: Rig) -> None:
    with pytest.raises(ProviderRefused) as refused:
        rig.port.payment_order(TENANT, "/psp/paymentorders/5adc265f-f87f-4313-577e-08d3dca1a26c")
    assert refused.value.status == 404
    with pytest.raises(ProviderRefused) as refused:
        rig.port.unscheduled_purchase(TENANT, "0b6c2a4e-0000-4000-8000-000000000000", "c7-12-1", 100, 0, "NOK", "x")
    assert refused.value.status == 400
