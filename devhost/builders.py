"""Builders shared by the tests and the benchmarks: the demo newspaper catalogue (as a
domain ``Catalogue`` or installed for a tenant), orders, and the morning clock time.

They live here, not in ``tests/``, so the benchmarks use them without importing the test
suite (tests/test_architecture.py: ``bench/`` never imports ``tests/``); nothing deployed
imports ``devhost/``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from shared.adapters.catalogue_store import KINDS
from shared.domain.catalogue import Catalogue, PaymentType
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import PlaceOrder

from .demo import catalogue as demo_catalogue

# URL segment of the catalogue API -> (item kind, field of ``Catalogue``)
SEGMENT_FIELD = {"organizations": ("organization", "organizations"), "products": ("product", "products"),
                 "billing-plans": ("billing_plan", "billing_plans"), "plans": ("plan", "plans"),
                 "dunning-processes": ("dunning_process", "dunning_processes")}


def oslo_morning(day: date) -> datetime:
    """09:00 in Oslo on ``day``, as the UTC instant a settable clock is set to."""
    return datetime.combine(day, time(9), ZoneInfo("Europe/Oslo")).astimezone(UTC)


def newspaper() -> Catalogue:
    """The demo catalogue as a checked domain ``Catalogue`` (no storage)."""
    parts: dict[str, dict[str, object]] = {f: {} for _, f in SEGMENT_FIELD.values()}
    for segment, item_id, body in demo_catalogue():
        kind, field = SEGMENT_FIELD[segment]
        parts[field][item_id] = TypeAdapter(KINDS[kind]).validate_python(body | {"id": item_id})
    return Catalogue(**parts).check()  # type: ignore[arg-type]


def install_catalogue(ctx: Context, tenant: str) -> None:
    """The demo catalogue stored for ``tenant`` through the catalogue use case."""
    for segment, item_id, body in demo_catalogue():
        kind = SEGMENT_FIELD[segment][0]
        put_item(ctx, tenant, kind, TypeAdapter(KINDS[kind]).validate_python(body | {"id": item_id}))


def order(tenant: str, n: int = 1, plan: str = "digital-monthly", start: date | None = None,
          ref: str | None = None, email: str | None = None) -> PlaceOrder:
    """Order number ``n`` of Kari Nordmann ``n`` on ``plan``, paid by invoice."""
    return PlaceOrder(tenant=tenant, plan_id=plan, payment_type=PaymentType.INVOICE, name=f"Kari Nordmann {n}",
                      email=email or f"kari{n}@example.no", start_date=start, order_ref=ref)
