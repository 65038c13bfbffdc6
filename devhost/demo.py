"""The end-to-end demo: a tenant, orders through the sales poster over HTTP, months of
renewals on the test clock, and a summary that checks itself.

Everything goes through the app as a customer would use it: the catalogue through the
merchant API with a bearer token, orders through the sales poster endpoint, renewals
through the invoice timer, the bus and the billing worker.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from dateutil.relativedelta import relativedelta
from tqdm import tqdm

from . import issuer
from .azurite import Azurite
from .bank import SimulatedBank


def catalogue(org_id: str = "avisa") -> list[tuple[str, str, dict[str, Any]]]:
    """A newspaper: one NOK organisation, a 0 % VAT paper, a 25 % VAT crossword app."""
    start = "2020-01-01"
    return [
        ("organizations", org_id, {"name": "Avisa Nordvest AS", "currency": "NOK", "time_zone": "Europe/Oslo",
                                   "organization_number": "974760673", "bank_account": "86011117947",
                                   "kid": {"length": 15, "modulus": "MOD10", "prefix": "", "subscriber_digits": 7}}),
        ("products", "avis", {"name": "Avisa Nordvest digital", "vat_rate_bp": 0, "prices": [
            {"frequency": "monthly", "valid_from": start, "amount_minor": 29900},
            {"frequency": "yearly", "valid_from": start, "amount_minor": 299000}]}),
        ("products", "kryssord", {"name": "Kryssord-appen", "vat_rate_bp": 2500, "prices": [
            {"frequency": "monthly", "valid_from": start, "amount_minor": 4900},
            {"frequency": "yearly", "valid_from": start, "amount_minor": 49000}]}),
        ("dunning-processes", "standard", {
            "name": "Two reminders, then payment stop", "consume_partial_payments": True,
            "write_off_fee_on_exact_match": True,
            "reminders": [{"delay_days": 7, "min_due_days": 10, "fee_minor": 0},
                          {"delay_days": 5, "min_due_days": 10, "fee_minor": 3500}],
            "stop_rule": {"delay_days": 10, "threshold_minor": 10000, "cause": "Stopped due to lack of payment"},
            "stop_notice_days": 5, "notice_channel": "sms",
            "balance_invoice": {"days_after_stop": 1, "min_owed_minor": 9000}}),
        ("billing-plans", "monthly-14", {"name": "Monthly, 14 days", "frequency": "monthly", "lead_days": 14,
                                         "fees": [{"payment_type": "invoice", "amount_minor": 3900,
                                                   "from_period": 2}], "dunning_process_id": "standard"}),
        ("billing-plans", "yearly-14", {"name": "Yearly, 14 days", "frequency": "yearly", "lead_days": 14}),
        ("plans", "digital-monthly", {"name": "Digital monthly", "organization_id": org_id,
                                      "billing_plan_id": "monthly-14", "product_ids": ["avis", "kryssord"]}),
        ("plans", "digital-yearly", {"name": "Digital yearly", "organization_id": org_id,
                                     "billing_plan_id": "yearly-14", "product_ids": ["avis", "kryssord"]}),
    ]


def _order(i: int, tenant: str, today: datetime, rng: random.Random) -> dict[str, Any]:
    yearly = rng.random() < 0.15
    start = (today + timedelta(days=rng.choice([0, 0, 0, 1, 3, 7, 10, 15, 20]))).date()
    return {"templatePackageId": "digital-yearly" if yearly else "digital-monthly", "PTY": "1",
            "name": f"Demo Subscriber {i}", "email": f"subscriber{i}@{tenant}.example.no",
            "phone": f"+47 4{rng.randrange(10**7):07d}", "address": f"Storgata {i % 200 + 1}",
            "postal_code": "6003", "city": "Ålesund", "start_date": start.isoformat(), "order_ref": f"demo-{i}"}


def import_totals(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The import reports' totals: records of distinct transmissions and where they landed."""
    def count(report: dict[str, Any], outcome: str) -> int:
        return sum(c.get(outcome, {}).get("count", 0) for c in report["by_currency"].values())

    fresh = [r for r in reports if r["status"] != "duplicate"]
    duplicates = [r for r in reports if r["status"] == "duplicate"]
    return {
        "import_records": sum(c["records"] for r in fresh for c in r["by_currency"].values()),
        "import_booked": sum(count(r, "booked") for r in fresh),
        "import_already_booked": sum(count(r, "already_booked") for r in fresh),
        "import_set_aside": sum(count(r, "set_aside") for r in fresh),
        "import_reversed": sum(count(r, "reversed") for r in fresh),
        "import_duplicate_files": sum(1 for r in duplicates if count(r, "booked") == 0),
        "imports_add_up": all(r["balanced"] and r["status"] == "imported" for r in fresh),
    }


def run_demo(subscribers: int, months: int, quiet: bool = False, port: int = 0) -> dict[str, Any]:
    """Orders through the sales poster, then ``months`` of days on the test clock, each with
    the bank's OCR file and a tick of the host; returns the figures and their checks."""
    from .cli import start_host

    started = time.monotonic()
    os.environ.setdefault("ABONNO_TRUST_FORWARDED_FOR", "true")  # the demo's customers, as Front Door forwards them
    azurite = Azurite.start(in_memory=True)  # its own, on free ports: nothing else's queues or tenants
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    host, port = start_host(azurite, now, running=False, port=port)
    base = f"http://127.0.0.1:{port}/api"
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    auth = {"Authorization": f"Bearer {issuer.token(tenant, ['admin'])}"}
    end = (now + relativedelta(months=months)).date()
    try:
        for segment, item_id, body in catalogue():
            session.put(f"{base}/merchant/catalogue/{segment}/{item_id}", json=body, headers=auth).raise_for_status()
        _place_orders(session, base, tenant, now, subscribers)
        orders_s = time.monotonic() - started
        bank = SimulatedBank(azurite.connection_string, tenant, account="86011117947")
        paid = _live(host, bank, now.date(), end)
        summary = session.get(f"{base}/merchant/reports/summary", headers=auth).json()
        reports = session.get(f"{base}/merchant/payments/imports", headers=auth).json()
    finally:
        host.shutdown()
        azurite.stop()
    imports = import_totals(reports)
    checks = _checks(summary, imports, bank)
    return {
        "tenant": tenant,
        "orders_placed": subscribers,
        "subscribers": summary["subscribers"],
        "subscriptions_active": summary["subscriptions_active"],
        "invoices_issued": summary["invoices_issued"],
        "invoice_number_first": summary["invoice_number_first"],
        "invoice_number_last": summary["invoice_number_last"],
        "amount_invoiced_minor": summary["amount_invoiced_minor"],
        "currency": summary["currency"],
        "ledger_balance_minor_total": summary["ledger_balance_minor_total"],
        "payments_imported": paid,
        "amount_paid_minor": summary["amount_paid_minor"],
        "invoices_paid": summary["invoices_paid"],
        "invoices_open": summary["invoices_open"],
        "requires_processing": summary["requires_processing"],
        "bank_files": bank.files + bank.resent,
        **{k: v for k, v in imports.items() if k != "import_already_booked"},
        "reminders_issued": summary["reminders_issued"],
        "reminder_fees_minor": summary["reminder_fees_minor"],
        "payment_stops": summary["payment_stops"],
        "credit_notes": summary["credit_notes"],
        "balance_invoices": summary["balance_invoices"],
        "clock_start": now.date().isoformat(),
        "clock_end": end.isoformat(),
        "orders_s": round(orders_s, 2),
        "elapsed_s": round(time.monotonic() - started, 2),
        "checks": checks,
        "consistent": all(checks.values()),
    }


def _place_orders(session: requests.Session, base: str, tenant: str, now: datetime, subscribers: int) -> None:
    """Each customer posts the sales poster's form from an address of their own, 8 at a time."""
    rng = random.Random(2026)
    orders = [_order(i, tenant, now, rng) for i in range(1, subscribers + 1)]

    def post(order: dict[str, Any]) -> int:
        client = zlib.crc32(order["email"].encode()) & 0xFFFFFF
        headers = {"X-Forwarded-For": f"10.{client >> 16}.{(client >> 8) & 255}.{client & 255}"}
        response = session.post(f"{base}/salesposter/{tenant}/orders", data=order, headers=headers)  # a form post
        response.raise_for_status()
        return response.status_code

    bar = tqdm(total=len(orders), desc="orders", unit="order", file=sys.stderr, disable=None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(post, orders):
            bar.update()
    bar.close()


def _live(host: Any, bank: SimulatedBank, day: date, end: date) -> int:
    """Day after day until ``end``: the bank's OCR file of the day, then the host's tick (which
    imports it and runs the timers). Returns the payments the bank sent."""
    bar = tqdm(total=(end - day).days, desc="days", unit="day", file=sys.stderr, disable=None)
    paid = 0
    while day < end:
        bank.learn()
        paid += bank.pay(day)  # today's OCR file; the next tick's drain imports it
        day += timedelta(days=1)
        host.tick(day)
        bar.update()
    bar.close()
    return paid


def _checks(summary: dict[str, Any], imports: dict[str, Any], bank: SimulatedBank) -> dict[str, bool]:
    """What must hold whatever the figures are."""
    first, last, issued = summary["invoice_number_first"], summary["invoice_number_last"], summary["invoices_issued"]
    # invoices and credit notes share one series: every number from first to last, none twice
    consecutive = summary["number_series_gapless"] and (issued == 0 or last - first + 1 == issued
                                                        + summary["credit_notes"])
    # the ledger is what was paid, credited and written off less what was invoiced, charged and fees
    balanced = summary["ledger_balance_minor_total"] == (
        summary["amount_paid_minor"] + summary["amount_credited_minor"] + summary["amount_written_off_minor"]
        - summary["amount_invoiced_minor"] - summary["amount_charged_minor"] - summary["reminder_fees_minor"]
        - summary["amount_reversed_minor"])
    # every record the bank sent landed in exactly one place, each file's report adds up to its
    # control totals, and a file sent twice booked nothing the second time
    accounted = (imports["import_records"] == bank.records and imports["imports_add_up"]
                 and imports["import_booked"] + imports["import_already_booked"] == summary["payments_booked"]
                 and imports["import_set_aside"] == summary["requires_processing"]
                 and imports["import_duplicate_files"] == bank.resent)
    return {"number_series": bool(consecutive), "ledger": balanced, "bank_records": accounted}
