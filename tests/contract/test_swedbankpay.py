"""The Swedbank Pay port's contract, asserted against the HTTP adapter talking to the
simulator (``devhost/swedbankpay_sim.py``) and against the in-memory fake alike, so the
fake the service tests use cannot drift from the API: a card payment is an authorization
until captured; ``payeeReference`` is unique per payee (a second order with one is refused,
a capture or reversal tried again makes nothing twice); an unscheduled purchase fails with
the acquirer's reason for a declined card or one expired by the test clock."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    honour: Callable[[str], None]  # ... and honoured again


def simulator_rig(clock: SettableClock) -> Iterator[Rig]:
    sim = SwedbankPaySimulator(clock, {"payee-avisa": "token-avisa"})
    url = sim.start()
    client = SwedbankPayClient(url, lambda tenant: SwedbankPayCredentials("payee-avisa", "token-avisa"),
                               sleep=lambda seconds: None)

    cards = itertools.count(4925000000000004, 10000)  # a card of its own per payment: declines are per card

    def pay(order_id: str, expiry: date) -> None:
        sim.complete(order_id, str(next(cards)), f"{expiry.month:02d}/{expiry.year}")

    def decline(token: str, reason: str) -> None:
        sim.decline_card(sim.card_of_token(token), reason)

    yield Rig(client, clock, pay, sim.abort, decline, lambda token: sim.honour_card(sim.card_of_token(token)))
    sim.stop()


def fake_rig(clock: SettableClock) -> Iterator[Rig]:
    fake = FakeSwedbankPay(clock)
    yield Rig(fake, clock, lambda order_id, expiry: fake.complete(order_id, expiry), fake.abort, fake.decline,
              fake.declined.discard)


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


def test_concurrent_tries_of_one_attempt_charge_the_card_once(rig: Rig) -> None:
    token = paid_card(rig).token
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            order = rig.port.unscheduled_purchase(TENANT, token, "c7-12-1", 19900, 3980, "NOK", "Avisa digital")
            captured = rig.port.capture(TENANT, order.id, 19900, 3980, "c7-12-1")
            outcomes.append(f"captured {captured.captured_minor}")
        except ProviderRefused as exc:
            outcomes.append(f"refused {exc.status}")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["captured 19900"] + ["refused 409"] * 7


def test_concurrent_tries_of_one_capture_capture_once(rig: Rig) -> None:
    order = paid_card(rig)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        rig.port.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd").captured_minor)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [19900] * 6
    assert rig.port.payment_order(TENANT, order.id).captured_minor == 19900


# ---- the fake and the adapter+simulator answer any sequence of captures and reversals alike ----------

Step = tuple[str, int, int]  # (capture | reversal, amount, which reference)


def apply(port: SwedbankPay, order_id: str, steps: list[Step], prefix: str) -> list[str]:
    seen = []
    for kind, amount, ref in steps:
        call = port.capture if kind == "capture" else port.reversal
        try:
            after = call(TENANT, order_id, amount, 0, f"{prefix}{kind[0]}{ref}")
            seen.append(f"{after.status} {after.captured_minor} {after.reversed_minor}")
        except ProviderRefused as exc:
            seen.append(f"refused {exc.status // 100}xx")
    final = port.payment_order(TENANT, order_id)
    return [*seen, f"{final.status} {final.captured_minor} {final.reversed_minor}"]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[Rig, Rig]]:
    clock = SettableClock(START)
    sim, fake = simulator_rig(clock), fake_rig(clock)
    yield next(sim), next(fake)
    for rest in (sim, fake):
        next(rest, None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["capture", "reversal"]), st.integers(0, 300), st.integers(0, 3)),
                max_size=7))
def test_any_sequence_of_captures_and_reversals_ends_alike_on_the_fake_and_the_api(
        both: tuple[Rig, Rig], steps: list[Step]) -> None:
    prefix = f"x{next(_examples)}"
    outcomes = []
    for rig in both:
        order = rig.port.create_purchase(TENANT, purchase(f"{prefix}-a", 300))
        rig.pay(order.id, date(2030, 1, 1))
        outcomes.append(apply(rig.port, order.id, steps, prefix))
    assert outcomes[0] == outcomes[1]
    status, captured, reversed_ = outcomes[0][-1].split()
    assert 0 <= int(reversed_) <= int(captured) <= 300
    assert status == ("Reversed" if int(reversed_) == 300 else "Paid")


Event = tuple[str, int]  # (days | decline | honour | purchase | again, a number)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["days", "decline", "honour", "purchase", "again"]), st.integers(1, 40)),
                max_size=8))
def test_any_life_of_a_card_ends_alike_on_the_fake_and_the_api(both: tuple[Rig, Rig], events: list[Event]) -> None:
    """Unscheduled purchases while the clock moves past the card's expiry, the card is declined
    and honoured again, and attempts are repeated: the same answers from the fake and the API."""
    prefix = f"y{next(_examples)}"
    lives = []
    for rig in both:
        rig.clock.set(START)
        order = rig.port.create_purchase(TENANT, purchase(f"{prefix}-a"))
        rig.pay(order.id, date(2026, 2, 1))  # valid through 28 February 2026
        token, life, attempt = rig.port.payment_order(TENANT, order.id).token, [], 0
        for kind, n in events:
            if kind == "days":
                rig.clock.advance(timedelta(days=n))
            elif kind == "decline":
                rig.decline(token, "acquirercarddeclined")
            elif kind == "honour":
                rig.honour(token)
            else:
                attempt += kind == "purchase"
                try:
                    made = rig.port.unscheduled_purchase(TENANT, token, f"{prefix}-{attempt}", n * 100, 0, "NOK", "x")
                    life.append(f"{made.status} {made.failure_reason} {made.captured_minor}")
                except ProviderRefused as exc:
                    life.append(f"refused {exc.status}")
        lives.append(life)
    assert lives[0] == lives[1]


_examples = itertools.count()
