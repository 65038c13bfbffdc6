"""Hostile review of issue 12: an unpaid invoice closes access on every restart of its subscription."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.account import Account
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.demands import DemandTerms, OpenDemand
from shared.domain.identity import blocked_from
from shared.domain.subscriptions import Subscriber, Subscription


@given(hops=st.integers(1, 6), grace=st.integers(0, 30), owing=st.integers(0, 6))
def test_an_unpaid_invoice_of_any_earlier_link_of_a_restart_chain_closes_access(
        hops: int, grace: int, owing: int) -> None:
    """A subscription restarted (My page restart, pause) again and again stays closed while an
    invoice of any subscription it continues is unpaid past grace, not only of the one before."""
    owing = owing % (hops + 1)
    base = Subscription("s0", "p", "o", Frequency.MONTHLY, date(2026, 1, 1), PaymentType.INVOICE)
    subs = {"s0": base} | {f"s{i}": replace(base, id=f"s{i}", resumes=f"s{i - 1}") for i in range(1, hops + 1)}
    owed = OpenDemand(1, DemandTerms(1, "o", f"s{owing}", date(2026, 1, 15)), open_minor=100)
    account = Account(Subscriber(1, "A", "a@example.no"), subs, open_demands={1: owed})
    assert blocked_from(account, subs[f"s{hops}"], grace) == date(2026, 1, 16) + timedelta(days=grace)
