"""Logs at INFO carry no e-mail address (GDPR): an order over HTTP, an invoice run, a
dunning visit and the notices they send are logged with ids and counts only. Every
logger is captured, the Azure SDK's request logging included."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest

from functions import notification_worker
from shared.adapters.bus import BusMessage
from shared.service.billing import bill_one, start_invoice_run
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order

EMAIL = re.compile(r"[\w.+-]+(@|%40)[\w-]+\.[\w.-]+", re.IGNORECASE)


def test_an_order_and_a_billing_run_log_no_email_address(ctx: Context, shop: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    placed = place_order(ctx, order(shop, 3, email="kari.nordmann@example.no"))
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, date(2026, 1, 22), placed.subscriber_no) == 1
    start_invoice_run(ctx, shop)
    reminder = {"step": 1, "invoice_number": 1, "amount_minor": 34800, "currency": "NOK", "due_date": "2026-02-01",
                "name": "Kari Nordmann", "channel": "email", "to": "kari.nordmann@example.no",
                "organization_id": "avisa", "day": "2026-01-22"}
    notification_worker.handle(BusMessage("n1", {"tenant": shop, "type": "ReminderIssued",
                                                 "payload": reminder}).encode().encode())
    logged = [r.getMessage() for r in caplog.records]
    assert logged, "nothing was logged: the test would prove nothing"
    leaks = [m for m in logged if EMAIL.search(m)]
    assert not leaks, leaks[:3]
