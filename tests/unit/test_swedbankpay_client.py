"""The Swedbank Pay adapter's HTTP manners against the simulator: the v3.1 headers and a
correlation id on every call, back-off with jitter on 429 (honouring Retry-After) and 5xx
then ``ProviderUnavailable``, problem+json -> ``ProviderRefused``, a capture tried again
after its answer was lost makes nothing twice, an id from a callback body never steers a
request, our ids survive the payeeReference alphabet, and no secret reaches the log."""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from devhost.swedbankpay_sim import DROP, SwedbankPaySimulator
from shared.adapters.swedbankpay import (
    PayeeReferenceUsed,
    SwedbankPayClient,
    SwedbankPayCredentials,
    card_expiry,
    our_reference,
    payee_reference,
)
from shared.clock import SettableClock
from shared.ports import CardPurchase, ProviderRefused, ProviderUnavailable

TENANT = "avisa"
CREDENTIALS = SwedbankPayCredentials("payee-avisa", "secret-bearer-token")
PURCHASE = CardPurchase("a7-0123abcd", 19900, 3980, "NOK", "Avisa digital", "https://shop.example.no/done",
                        "https://shop.example.no/cancelled", "https://abonno.example.no/callback")


@pytest.fixture
def sim() -> Iterator[SwedbankPaySimulator]:
    simulator = SwedbankPaySimulator(SettableClock(datetime(2026, 1, 5, tzinfo=UTC)),
                                     {CREDENTIALS.payee_id: CREDENTIALS.token})
    simulator.start()
    yield simulator
    simulator.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(sim: SwedbankPaySimulator, sleeps: Sleeps | None = None, retries: int = 4) -> SwedbankPayClient:
    return SwedbankPayClient(sim.base_url, lambda tenant: CREDENTIALS, retries=retries,
                             sleep=sleeps if sleeps is not None else Sleeps())


def test_every_call_says_v3_1_with_the_bearer_token_and_a_correlation_id(sim: SwedbankPaySimulator) -> None:
    order = client(sim).create_purchase(TENANT, PURCHASE)
    client(sim).payment_order(TENANT, order.id)
    (post_method, _, post), (get_method, get_target, get), (_, info_target, _) = sim.requests
    assert (post_method, get_method) == ("POST", "GET")
    assert post["Content-Type"] == "application/json;version=3.1"
    assert get["Accept"] == "application/json;version=3.1" and "Content-Type" not in get
    assert post["Authorization"] == get["Authorization"] == "Bearer secret-bearer-token"
    assert post["Session-Id"] != get["Session-Id"] and post["X-Request-Id"]
    assert get_target == f"{order.id}?$expand=paid"
    assert info_target == f"{order.id}/payeeinfo"  # not paid: the reference is read from payeeInfo


def test_the_purchase_body_follows_payment_request_3_1(sim: SwedbankPaySimulator) -> None:
    order = client(sim).create_purchase(TENANT, PURCHASE)
    stored = sim.orders[order.id.rsplit("/", 1)[1]]
    assert (stored.operation, stored.generate_token, stored.payee_reference, stored.order_reference) == \
        ("Purchase", True, "a7XD0123abcd", "a7-0123abcd")
    assert stored.urls == {"hostUrls": ["https://shop.example.no"], "completeUrl": PURCHASE.complete_url,
                           "cancelUrl": PURCHASE.cancel_url, "callbackUrl": PURCHASE.callback_url}
    assert (stored.amount, stored.vat, stored.currency, stored.version) == (19900, 3980, "NOK", "3.1")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_busy_or_failing_answers_are_tried_again_with_growing_jittered_waits(sim: SwedbankPaySimulator,
                                                                            status: int) -> None:
    sleeps = Sleeps()
    sim.fail_next(status, times=3)
    order = client(sim, sleeps).create_purchase(TENANT, PURCHASE)
    assert order.status == "Initialized" and len(sim.requests) == 4
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 * 2 ** i for i, s in enumerate(sleeps))
    sessions = {headers["Session-Id"] for _m, _t, headers in sim.requests}
    attempts = {headers["X-Request-Id"] for _m, _t, headers in sim.requests}
    assert len(sessions) == 1 and len(attempts) == 4  # one call, four tries


def test_retry_after_is_honoured(sim: SwedbankPaySimulator) -> None:
    sleeps = Sleeps()
    sim.fail_next(429, times=2, retry_after="7")
    client(sim, sleeps).create_purchase(TENANT, PURCHASE)
    assert sleeps == [7.0, 7.0]


def test_after_the_retries_the_provider_is_unavailable_and_nothing_was_made(sim: SwedbankPaySimulator) -> None:
    sim.fail_next(503, times=5)
    with pytest.raises(ProviderUnavailable):
        client(sim, retries=4).create_purchase(TENANT, PURCHASE)
    assert sim.orders == {}
    assert client(sim).create_purchase(TENANT, PURCHASE).status == "Initialized"  # the bus's next try


def test_no_answer_at_all_is_unavailable() -> None:
    port = _free_port()
    sleeps = Sleeps()
    dead = SwedbankPayClient(f"http://127.0.0.1:{port}", lambda tenant: CREDENTIALS, timeout=0.5, retries=2,
                             sleep=sleeps)
    with pytest.raises(ProviderUnavailable):
        dead.payment_order(TENANT, "/psp/paymentorders/5adc265f-f87f-4313-577e-08d3dca1a26c")
    assert len(sleeps) == 2


def test_a_problem_is_refused_with_its_detail(sim: SwedbankPaySimulator) -> None:
    bad = CardPurchase("a7-0123abcd", -5, 0, "NOK", "x", "https://s.no/d", "https://s.no/c", "https://s.no/cb")
    with pytest.raises(ProviderRefused) as refused:
        client(sim).create_purchase(TENANT, bad)
    assert refused.value.status == 400 and "amount" in refused.value.detail
    wrong = SwedbankPayClient(sim.base_url, lambda tenant: SwedbankPayCredentials("payee-avisa", "wrong"))
    with pytest.raises(ProviderRefused) as refused:
        wrong.create_purchase(TENANT, PURCHASE)
    assert refused.value.status == 401


def test_a_used_payee_reference_is_its_own_refusal(sim: SwedbankPaySimulator) -> None:
    client(sim).create_purchase(TENANT, PURCHASE)
    with pytest.raises(PayeeReferenceUsed) as refused:
        client(sim).create_purchase(TENANT, PURCHASE)
    assert refused.value.status == 409 and len(sim.orders) == 1


def test_a_capture_whose_answer_was_lost_is_found_not_made_again(sim: SwedbankPaySimulator) -> None:
    adapter = client(sim)
    order = adapter.create_purchase(TENANT, PURCHASE)
    sim.complete(order.id)
    adapter.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd")  # went through; say its answer was lost
    again = adapter.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd")
    assert again.captured_minor == 19900
    assert [t.kind for t in sim.orders[order.id.rsplit("/", 1)[1]].transactions] == ["Authorization", "Capture"]
    other = adapter.create_purchase(TENANT, CardPurchase("a8-ffff", 500, 100, "NOK", "x", "https://s.no/d",
                                                         "https://s.no/c", "https://s.no/cb"))
    sim.complete(other.id)
    with pytest.raises(PayeeReferenceUsed):  # the reference is another order's capture: not ours to claim
        adapter.capture(TENANT, other.id, 500, 100, "a7-0123abcd")
    assert adapter.payment_order(TENANT, other.id).captured_minor == 0


@pytest.mark.parametrize("hostile", ["https://evil.example/psp/paymentorders/x", "/psp/paymentorders/../../admin",
                                     "/psp/paymentorders/abc?$expand=all", "", "/psp/paymentorders/"])
def test_an_id_from_a_callback_body_never_steers_a_request(sim: SwedbankPaySimulator, hostile: str) -> None:
    with pytest.raises(ProviderRefused) as refused:
        client(sim).payment_order(TENANT, hostile)
    assert refused.value.status == 404 and sim.requests == []


def test_no_secret_is_logged(sim: SwedbankPaySimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = client(sim)
    order = adapter.create_purchase(TENANT, PURCHASE)
    sim.complete(order.id)
    token = adapter.payment_order(TENANT, order.id).token
    sim.fail_next(503)
    adapter.unscheduled_purchase(TENANT, token, "c7-1-1", 100, 20, "NOK", "x")
    text = caplog.text + repr(CREDENTIALS)
    assert "swedbankpay POST /psp/paymentorders" in caplog.text
    assert CREDENTIALS.token not in text and token not in text and "4925000000000004" not in text


@given(st.text(alphabet=string.ascii_letters + string.digits + "-", max_size=40))
def test_our_ids_survive_the_payee_reference_alphabet(ours: str) -> None:
    reference = payee_reference(ours)
    assert set(reference) <= set(string.ascii_letters + string.digits)
    assert our_reference(reference) == ours


@given(st.text(alphabet=string.ascii_letters + string.digits + "-", max_size=20),
       st.text(alphabet=string.ascii_letters + string.digits + "-", max_size=20))
def test_two_ids_never_share_a_payee_reference(a: str, b: str) -> None:
    assert (payee_reference(a) == payee_reference(b)) == (a == b)


@pytest.mark.parametrize("text, last", [("12/2026", date(2026, 12, 31)), ("02/2028", date(2028, 2, 29)),
                                        ("02/27", date(2027, 2, 28)), ("4/2026", None), ("13/2026", None),
                                        ("", None)])
def test_a_card_expiry_is_the_last_day_of_its_month(text: str, last: date | None) -> None:
    assert card_expiry(text) == last


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_requests_session_is_reused(sim: SwedbankPaySimulator) -> None:
    session = requests.Session()
    adapter = SwedbankPayClient(sim.base_url, lambda tenant: CREDENTIALS, session=session)
    assert adapter.session is session
    assert adapter.create_purchase(TENANT, PURCHASE).status == "Initialized"


def test_a_decline_answered_as_a_problem_is_a_failed_purchase() -> None:
    sim = SwedbankPaySimulator(SettableClock(datetime(2026, 1, 5, tzinfo=UTC)),
                               {CREDENTIALS.payee_id: CREDENTIALS.token}, declines_as_problem=True)
    sim.start()
    try:
        adapter = client(sim)
        order = adapter.create_purchase(TENANT, PURCHASE)
        sim.complete(order.id)
        token = adapter.payment_order(TENANT, order.id).token
        sim.decline_card(sim.card_of_token(token), "acquirerinsufficientfunds")
        failed = adapter.unscheduled_purchase(TENANT, token, "c7-1-1", 100, 20, "NOK", "x")
        assert (failed.status, failed.failure_reason, failed.payee_reference, failed.id) == \
            ("Failed", "acquirerinsufficientfunds", "c7-1-1", "")
        with pytest.raises(PayeeReferenceUsed):  # the attempt was made: never again
            adapter.unscheduled_purchase(TENANT, token, "c7-1-1", 100, 20, "NOK", "x")
    finally:
        sim.stop()


def test_a_dropped_connection_is_tried_again(sim: SwedbankPaySimulator) -> None:
    sleeps = Sleeps()
    sim.fail_next(DROP, times=2)
    assert client(sim, sleeps).create_purchase(TENANT, PURCHASE).status == "Initialized"
    assert len(sleeps) == 2 and len(sim.orders) == 1


def test_a_capture_or_reversal_whose_answer_is_lost_in_transit_is_done_once(sim: SwedbankPaySimulator) -> None:
    adapter = client(sim)
    order = adapter.create_purchase(TENANT, PURCHASE)
    sim.complete(order.id)
    sim.lose_next_answers(1)
    assert adapter.capture(TENANT, order.id, 19900, 3980, "a7-0123abcd").captured_minor == 19900
    sim.lose_next_answers(1)
    assert adapter.reversal(TENANT, order.id, 500, 100, "r1").reversed_minor == 500
    kinds = [(t.kind, t.amount) for t in sim.orders[order.id.rsplit("/", 1)[1]].transactions]
    assert kinds == [("Authorization", 19900), ("Capture", 19900), ("Reversal", 500)]


def test_an_unscheduled_purchase_whose_answer_is_lost_is_never_made_twice(sim: SwedbankPaySimulator) -> None:
    """The API cannot be asked for a payment order by its payeeReference: the retry is refused as
    a used reference, and the attempt's authorization (never captured) lapses at the bank."""
    adapter = client(sim)
    order = adapter.create_purchase(TENANT, PURCHASE)
    sim.complete(order.id)
    token = adapter.payment_order(TENANT, order.id).token
    sim.lose_next_answers(1)
    with pytest.raises(PayeeReferenceUsed):
        adapter.unscheduled_purchase(TENANT, token, "c7-1-1", 19900, 3980, "NOK", "x")
    unscheduled = [o for o in sim.orders.values() if o.operation == "UnscheduledPurchase"]
    assert [(o.status, o.captured) for o in unscheduled] == [("Paid", 0)]


def test_a_retry_after_longer_than_we_wait_hands_the_message_back_to_the_bus(sim: SwedbankPaySimulator) -> None:
    sleeps = Sleeps()
    sim.fail_next(429, times=1, retry_after="120")
    with pytest.raises(ProviderUnavailable):
        client(sim, sleeps).create_purchase(TENANT, PURCHASE)
    assert sleeps == [] and len(sim.requests) == 1 and sim.orders == {}
