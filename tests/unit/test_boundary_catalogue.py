"""Defence in depth: a catalogue item checks its own bounds (``check_bounds``) and the
catalogue store runs it on every write, whichever path makes the item (HTTP, a test, a
migration), so nothing the invoice run cannot compute with is ever stored. Any single
field pushed outside its bound is refused with CatalogueError naming the field."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.calendar import Frequency
from shared.domain.catalogue import (
    BillingPlan,
    CatalogueError,
    DunningProcess,
    Fee,
    Organization,
    PaymentType,
    PricePoint,
    Product,
    SubscriptionPlan,
)
from shared.domain.dunning import ReminderStep
from shared.service.context import Context

ORG = Organization("avisa", "Avisa Nordvest AS", "NOK")
PRODUCT = Product("avis", "Avisa", 2500, (PricePoint(Frequency.MONTHLY, date(2026, 1, 1), 29900),))
BILLING = BillingPlan("monthly-14", "Monthly", Frequency.MONTHLY, 14)
PLAN = SubscriptionPlan("digital", "Digital", "avisa", "monthly-14", ("avis",))
DUNNING = DunningProcess("standard", "Standard", reminders=(ReminderStep(7, 10, 3500),))

OUT_OF_BOUNDS: list[tuple[Any, str, Any]] = [
    (ORG, "id", "a/b"), (ORG, "id", "x" * 65), (ORG, "id", "a\nb"), (ORG, "time_zone", "Europe/Olso"),
    (ORG, "time_zone", "../../etc/passwd"), (ORG, "country", "no"), (ORG, "name", "x" * 201), (ORG, "name", ""),
    (ORG, "order_blockage_minor", -1), (ORG, "order_blockage_minor", 10**11 + 1), (ORG, "invoice_series", "a|b"),
    (ORG, "stop_codes", tuple(str(i) for i in range(101))), (ORG, "bank_account", "1" * 65),
    (PRODUCT, "vat_rate_bp", 10_001), (PRODUCT, "vat_rate_bp", -1), (PRODUCT, "id", "a#b"),
    (PRODUCT, "description", "x" * 2001),
    (BILLING, "lead_days", 10**9), (BILLING, "lead_days", -1), (BILLING, "due_days", 367),
    (BILLING, "fees", tuple(Fee(PaymentType.INVOICE, 1) for _ in range(21))),
    (PLAN, "product_ids", ("a?b",)), (PLAN, "valid_from", date(9999, 12, 31)), (PLAN, "organization_id", ""),
    (DUNNING, "stop_notice_days", 10**6), (DUNNING, "reminders", (ReminderStep(7, 10, 10**12),)),
    (DUNNING, "reminders", (ReminderStep(-1, 10, 0),)),
]


@pytest.mark.parametrize(("item", "field", "value"), OUT_OF_BOUNDS,
                         ids=[f"{type(i).__name__}.{f}={str(v)[:20]!r}" for i, f, v in OUT_OF_BOUNDS])
def test_a_value_out_of_bounds_is_refused_when_the_item_is_made(item: Any, field: str, value: Any) -> None:
    with pytest.raises(CatalogueError):
        replace(item, **{field: value}).check_bounds()


@given(st.integers().filter(lambda n: not 0 <= n <= 10**11))
def test_a_price_outside_business_limits_is_refused(amount: int) -> None:
    with pytest.raises(CatalogueError, match="amount_minor"):
        replace(PRODUCT, prices=(PricePoint(Frequency.MONTHLY, date(2026, 1, 1), amount),)).check_bounds()


@given(st.integers().filter(lambda n: not 0 <= n <= 366))
def test_lead_days_outside_a_year_are_refused(days: int) -> None:
    with pytest.raises(CatalogueError, match=r"lead_days|negative"):
        replace(BILLING, lead_days=days).check_bounds()


def test_the_items_within_bounds_pass() -> None:
    for item in (ORG, PRODUCT, BILLING, PLAN, DUNNING):
        item.check_bounds()


def test_the_store_refuses_to_write_an_item_out_of_bounds(ctx: Context, tenant: str) -> None:
    with pytest.raises(CatalogueError, match="lead_days"):
        ctx.catalogue.put(tenant, "billing_plan", replace(BILLING, lead_days=10**9))
    assert ctx.catalogue.get(tenant).billing_plans == {}
