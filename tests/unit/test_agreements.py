"""What the provider's word means for an agreement (``domain.agreements``): pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.agreements import (
    VIPPS_PRODUCT_NAME,
    AgreementStatus,
    Charge,
    ChargeState,
    PaymentAgreement,
    Provider,
    Verdict,
    activated,
    agreement_key,
    agreement_of_initial_charge,
    card_expired,
    card_verdict,
    charge_id,
    ended,
    initial_charge_id,
    initial_taken,
    interval_of,
    notice_due,
    on_invoice,
    product_text,
    reusable_card,
    stop_day,
    stop_due,
    stopped_by,
    vipps_verdict,
    watch_days,
)
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.subscriptions import Subscription

DAY = date(2026, 1, 5)
PENDING = PaymentAgreement("a1000-s1", Provider.VIPPS, "avisa", "s1", AgreementStatus.PENDING, DAY, 34800, "NOK",
                           provider_id="agr_1", order={"plan_id": "digital-monthly"}, initial_charge_id="i1000-s1")
ACTIVE = activated(PENDING, DAY)
CARD = replace(activated(replace(PENDING, provider=Provider.SWEDBANKPAY), DAY, "tok", "492500******0004",
                         date(2026, 3, 31)))
VIPPS_STATUSES = ["PENDING", "ACTIVE", "STOPPED", "EXPIRED"]


@pytest.mark.parametrize(("status", "taken", "verdict"), [
    ("PENDING", False, Verdict.WAIT),
    ("ACTIVE", False, Verdict.ACTIVATE),  # a first period that is free has no initial charge
    ("ACTIVE", True, Verdict.ACTIVATE),
    ("STOPPED", False, Verdict.REJECT),  # a declined draft reads STOPPED
    ("STOPPED", True, Verdict.ACTIVATE),  # approved, then stopped before we saw it: place, then stop
    ("EXPIRED", False, Verdict.EXPIRE),
])
def test_a_pending_agreement_follows_what_vipps_says(status: str, taken: bool, verdict: Verdict) -> None:
    assert vipps_verdict(PENDING, status, taken) is verdict


@pytest.mark.parametrize(("status", "verdict"), [("ACTIVE", Verdict.NONE), ("STOPPED", Verdict.STOP),
                                                 ("PENDING", Verdict.NONE)])
def test_an_active_agreement_is_only_ever_stopped(status: str, verdict: Verdict) -> None:
    assert vipps_verdict(ACTIVE, status, True) is verdict


@given(st.sampled_from(list(AgreementStatus)), st.sampled_from(VIPPS_STATUSES), st.booleans())
def test_a_final_agreement_never_changes_and_an_active_one_never_goes_back(
        local: AgreementStatus, remote: str, taken: bool) -> None:
    verdict = vipps_verdict(replace(PENDING, status=local), remote, taken)
    if local.final:
        assert verdict is Verdict.NONE
    if local is AgreementStatus.ACTIVE:
        assert verdict in (Verdict.NONE, Verdict.STOP)


@pytest.mark.parametrize(("status", "verdict"), [("Initialized", Verdict.WAIT), ("Paid", Verdict.ACTIVATE),
                                                 ("Aborted", Verdict.REJECT), ("Failed", Verdict.REJECT),
                                                 ("Cancelled", Verdict.REJECT)])
def test_a_card_checkout_follows_its_payment_order(status: str, verdict: Verdict) -> None:
    assert card_verdict(replace(PENDING, provider=Provider.SWEDBANKPAY), status) is verdict
    assert card_verdict(CARD, status) is Verdict.NONE  # active: the payment order's later life is not the checkout's


def test_only_money_reserved_or_taken_proves_the_payer_approved() -> None:
    assert [s for s in ChargeState if initial_taken(s)] == [
        ChargeState.RESERVED, ChargeState.CHARGED, ChargeState.PARTIALLY_REFUNDED, ChargeState.REFUNDED]


@pytest.mark.parametrize(("frequency", "interval"), [
    (Frequency.MONTHLY, ("MONTH", 1)), (Frequency.QUARTERLY, ("MONTH", 3)), (Frequency.HALF_YEARLY, ("MONTH", 6)),
    (Frequency.YEARLY, ("YEAR", 1)), (Frequency.WEEKLY, ("WEEK", 1)), (Frequency.FOUR_WEEKLY, ("WEEK", 4))])
def test_a_billing_frequency_is_a_vipps_interval(frequency: Frequency, interval: tuple[str, int]) -> None:
    assert interval_of(frequency) == interval


@given(st.text())
def test_product_texts_fit_vipps_limits(text: str) -> None:
    out = product_text(text, VIPPS_PRODUCT_NAME)
    assert len(out) <= VIPPS_PRODUCT_NAME and "\n" not in out
    if len(" ".join(text.split())) <= VIPPS_PRODUCT_NAME:
        assert out == " ".join(text.split())


def test_ending_an_agreement_drops_its_order_and_records_who_stopped_it() -> None:
    assert ended(PENDING, Verdict.REJECT, DAY).status is AgreementStatus.REJECTED
    assert ended(PENDING, Verdict.EXPIRE, DAY, "user").stopped_by == ""
    stopped = ended(replace(ACTIVE, stop_on=DAY), Verdict.STOP, DAY, stopped_by("USER"))
    assert (stopped.status, stopped.stopped_by, stopped.order, stopped.stop_on) == (
        AgreementStatus.STOPPED, "user", None, None)
    assert [stopped_by(a) for a in ("MERCHANT", "USER", "")] == ["merchant", "user", "provider"]


def test_only_the_subscriptions_on_the_stopped_agreement_go_to_invoice() -> None:
    on = Subscription("s1", "p", "avisa", Frequency.MONTHLY, DAY, PaymentType.VIPPS, agreement="a1000-s1")
    other = replace(on, id="s2", agreement="a1000-s2")
    (switched,) = on_invoice({"s1": on, "s2": other}, "a1000-s1")
    assert (switched.id, switched.payment_type, switched.agreement) == ("s1", PaymentType.INVOICE, None)


def test_the_stop_day_is_never_before_the_period_ends_or_an_open_charge_can_settle() -> None:
    charge = Charge("c1000-3-1", Provider.VIPPS, "a1000-s1", "avisa", 3, 34800, "NOK", date(2026, 2, 5), 2, 1)
    assert stop_day(date(2026, 2, 5), [], DAY) == date(2026, 2, 5)
    assert stop_day(date(2026, 2, 5), [charge], DAY) == date(2026, 2, 8)  # due + 2 retry days + 1
    assert stop_day(date(2026, 1, 1), [], DAY) == DAY  # never in the past
    scheduled = replace(ACTIVE, stop_on=date(2026, 2, 5))
    assert not stop_due(scheduled, date(2026, 2, 4)) and stop_due(scheduled, date(2026, 2, 5))
    assert not stop_due(replace(scheduled, provider=Provider.SWEDBANKPAY), date(2026, 2, 5))


def test_watches_poll_a_pending_agreement_a_week_and_mark_the_stop_and_the_expiry_notice() -> None:
    assert watch_days(PENDING, DAY) == {date(2026, 1, 6)}
    assert watch_days(PENDING, date(2026, 1, 12)) == set()  # a week: left to the provider's expiry
    assert watch_days(replace(ACTIVE, stop_on=date(2026, 2, 5)), DAY) == {date(2026, 2, 5)}
    assert watch_days(CARD, DAY) == {date(2026, 3, 1), date(2026, 4, 1)}  # the notice; the day after expiry
    assert watch_days(replace(CARD, expiry_noticed=True), DAY) == {date(2026, 4, 1)}
    assert not notice_due(CARD, date(2026, 2, 28)) and notice_due(CARD, date(2026, 3, 1))
    assert not card_expired(CARD, date(2026, 3, 31)) and card_expired(CARD, date(2026, 4, 1))


def test_a_valid_card_agreement_of_the_organisation_is_reusable_until_it_expires() -> None:
    cards = {CARD.key: CARD, "a1000-s9": replace(CARD, key="a1000-s9", organization_id="other")}
    assert reusable_card(cards, "avisa", DAY) == CARD
    assert reusable_card(cards, "avisa", date(2026, 4, 1)) is None  # expired
    assert reusable_card({ACTIVE.key: ACTIVE}, "avisa", DAY) is None  # a Vipps agreement is never reused


def test_an_initial_charge_id_names_its_agreement_and_no_other_id_does() -> None:
    assert agreement_of_initial_charge(initial_charge_id(1000, "895ed0e286dc5f6d")) == agreement_key(
        1000, "895ed0e286dc5f6d")
    for other in (charge_id(1000, 7, 1), agreement_key(1000, "895ed0e286dc5f6d"), "i", "ix-1", "chr-123", ""):
        assert agreement_of_initial_charge(other) is None
