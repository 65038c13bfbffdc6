"""The end-to-end demo: a tenant, orders through the sales poster over HTTP, months of
renewals on the test clock, and a summary that checks itself.

Everything goes through the app as a customer would use it: the catalogue through the
merchant API with a bearer token, orders through the sales poster endpoint, renewals
through the invoice timer, the bus and the billing worker. Orders are paid on three rails:
about half with Vipps MobilePay Recurring, 15 % by card (Swedbank Pay), the rest by
invoice with KID; the payers act on the providers' simulators (``devhost.providers``, on
the host's clock), which the app talks to over HTTP and which send their webhooks to it.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
import urllib.parse
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from dateutil.relativedelta import relativedelta
from pypdf import PdfReader
from stdnum.no import orgnr
from tqdm import tqdm

from . import demo_self_service, issuer
from .azurite import Azurite
from .bank import SimulatedBank
from .mailbox import Mailbox

EHF_OUTBOX, PRINT = "ehf-outbox", "print"  # the access point's and the print batches' containers
OTHER_MAIL_SETTINGS = ("ABONNO_ACS_EMAIL_ENDPOINT", "ABONNO_ACS_EMAIL_CONNECTION", "ABONNO_SMTP_USER",
                       "ABONNO_SMTP_PASSWORD", "ABONNO_SMTP_STARTTLS")  # what would send the mails elsewhere


BRANDING = {"colour": "#0B5394", "footer": "Takk for at du leser Avisa Nordvest! Spørsmål om abonnementet? "
                                         "Skriv til oss eller ring kundeservice hverdager 08-16.",
            "contact_email": "kundeservice@avisa-nordvest.example.no", "contact_phone": "+47 70 11 22 33"}


def logo() -> bytes:
    """Avisa Nordvest's logo: its name in white on its colour, a PNG (Pillow, which reportlab
    brings; the same bytes every time for the same Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (600, 140), BRANDING["colour"])
    ImageDraw.Draw(image).text((30, 30), "Avisa Nordvest", fill="white", font=ImageFont.load_default(size=64))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def catalogue(org_id: str = "avisa", ehf: bool = False,
              extra_payment_requests: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """A newspaper: one NOK organisation, a 0 % VAT paper, a 25 % VAT crossword app. ``ehf``:
    the organisation sends EHF to subscribers with an organisation number (the demo's does;
    the tests' and benchmarks' newspaper does not unless a test turns it on).
    ``extra_payment_requests``: after a failed Vipps or card charge, the dunning process asks
    for a new charge this many times before reminders with KID (the demo's asks once)."""
    start = "2020-01-01"
    return [
        ("organizations", org_id, {"name": "Avisa Nordvest AS", "currency": "NOK", "time_zone": "Europe/Oslo",
                                   "organization_number": "974760673", "bank_account": "86011117947",
                                   "kid": {"length": 15, "modulus": "MOD10", "prefix": "", "subscriber_digits": 7},
                                   "address": "Notenesgata 14", "postal_code": "6002", "city": "Ålesund",
                                   "branding": BRANDING, "document_channel": "email", "ehf_enabled": ehf}),
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
            "stop_notice_days": 5, "notice_channel": "sms", "extra_payment_requests": extra_payment_requests,
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
    return {"templatePackageId": "digital-yearly" if yearly else "digital-monthly", "PTY": rail(i),
            "name": f"Demo Subscriber {i}", "email": f"subscriber{i}@{tenant}.example.no",
            "phone": f"+47 4{rng.randrange(10**7):07d}", "address": f"Storgata {i % 200 + 1}",
            "postal_code": "6003", "city": "Ålesund", "start_date": start.isoformat(), "order_ref": f"demo-{i}",
            **_delivery(i, tenant)}


VIPPS, CARD, INVOICE = "2", "9", "1"  # the sales poster's PTY codes


def rail(i: int) -> str:
    """How subscriber ``i`` pays (by its number, so the orders' random draws stay as they were):
    half by Vipps, 15 % by card, the rest by invoice with KID. The companies (EHF) and those
    who asked for paper pay by invoice."""
    slot = i % 20
    if slot in (0, 1, 2, 4, 5, 6, 8, 9, 10, 11):
        return VIPPS
    if slot in (12, 14, 15):
        return CARD
    return INVOICE


def vipps_payer(i: int) -> str:
    """What Vipps payer ``i`` does with the agreement in the app: most approve, some decline,
    some never answer (it expires)."""
    return "reject" if i % 9 == 4 else "ignore" if i % 9 == 8 else "approve"


def vipps_charges(i: int) -> tuple[str, int]:
    """How Vipps payer ``i``'s renewal charges go at Vipps: most are charged; some fail every
    attempt (the extra payment request fails too: dunning with KID), some fail a day and are
    charged on the retry."""
    return ("fail", 0) if i % 7 == 3 else ("fail_days", 1) if i % 7 == 5 else ("succeed", 0)


def stops_in_app(i: int) -> bool:
    """Vipps payer ``i`` stops the agreement in the Vipps app mid-run (to invoice from the next period)."""
    return i % 50 == 6


def card_payer(i: int) -> str:
    """What card payer ``i`` does on the payment page: pays (most), cancels, or tries a card
    that is declined and then cancels."""
    return "cancel" if i % 140 == 75 else "declined" if i % 140 == 135 else "pay"


def card_of(i: int, today: date) -> tuple[str, str]:
    """Card payer ``i``'s card number and expiry (MM/YYYY): one in nine card payers' card runs
    out at the end of next month (a notice ahead, then its renewals get no charge and go to
    dunning); the rest are valid for years."""
    number = f"4925{i:011d}"
    expiry = today + relativedelta(months=1)
    return number, (f"{expiry:%m/%Y}" if i % 60 == 12 else "12/2099")


def card_declined_later(i: int) -> bool:
    """Two in nine card payers' card is declined for want of funds from the run's tenth day."""
    return i % 60 in (14, 35)


def _delivery(i: int, tenant: str) -> dict[str, str]:
    """How subscriber ``i`` receives documents (by its number, so the random draws of the
    orders, and every figure they make, stay what they were): one in twenty is a company with
    an organisation number (EHF, the organisation sends EHF), one in ten asked for paper, one
    in fifty gave an address its mail server refuses (the e-mail fails and the document is
    printed), the rest get e-mail."""
    if i % 20 == 7:
        return {"name": f"Demo Bedrift {i} AS", "organization_number": organisation_number(i),
                "buyer_reference": f"PO-{i}"}
    if i % 10 == 3:
        return {"delivery": "print"}
    if i % 50 == 21:
        return {"email": refused_address(i, tenant)}
    return {}


def organisation_number(i: int) -> str:
    """A valid Norwegian organisation number (MOD11) of demo company ``i``."""
    for base in range(91_000_000 + 17 * i, 92_000_000):
        for check in "0123456789":
            if orgnr.is_valid(f"{base}{check}"):
                return f"{base}{check}"
    raise ValueError(i)


def refused_address(i: int, tenant: str) -> str:
    return f"moved-away{i}@{tenant}.example.no"


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
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    mailbox = local_smtp(azurite, {refused_address(i, tenant) for i in range(1, subscribers + 1)
                                   if "email" in _delivery(i, tenant)})
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    for setting in PROVIDER_SETTINGS:  # never a real provider: the host starts the simulators when none is named
        os.environ.pop(setting, None)
    host, port = start_host(azurite, now, running=False, port=port)
    providers = Providers.of(host.providers, tenant)
    base = f"http://127.0.0.1:{port}/api"
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    auth = {"Authorization": f"Bearer {issuer.token(tenant, ['admin'])}"}
    end = (now + relativedelta(months=months)).date()
    try:
        for segment, item_id, body in catalogue(ehf=True, extra_payment_requests=1):
            session.put(f"{base}/merchant/catalogue/{segment}/{item_id}", json=body, headers=auth).raise_for_status()
        session.put(f"{base}/merchant/catalogue/organizations/avisa/logo", data=logo(),
                    headers=auth | {"Content-Type": "image/png"}).raise_for_status()
        answers = _place_orders(session, base, tenant, now, subscribers)
        providers.pay(session, answers, now.date())  # the payers at Vipps' app and Swedbank Pay's payment page
        orders_s = time.monotonic() - started
        bank = SimulatedBank(azurite.connection_string, tenant, account="86011117947")
        paid = _live(host, bank, now.date(), end, providers)
        providers.forge(session, base)  # what is not Vipps' is turned away
        readers = [f"subscriber{i}@{tenant}.example.no" for i in range(1, subscribers + 1)
                   if rail(i) == INVOICE and not _delivery(i, tenant)]  # readers paying by invoice, by e-mail
        mine, mine_ok, why = demo_self_service.run(session, base, tenant, azurite.connection_string, readers)
        for failure in why:
            print(f"self-service: {failure}", file=sys.stderr)
        host.drain()  # what the readers' stops and restarts issued (a credit note ...) is delivered before counting
        summary = session.get(f"{base}/merchant/reports/summary", headers=auth).json()
        reports = session.get(f"{base}/merchant/payments/imports", headers=auth).json()
        booked = {source: session.get(f"{base}/merchant/payments", params={"source": source}, headers=auth).json()
                  for source in ("vipps", "swedbankpay")}
        stopped = {key: session.get(f"{base}/merchant/subscribers/{number}", headers=auth).json()
                   for key, number in providers.stopped_in_app().items()}
        documents = _documents(session, base, auth, answers, providers.subscribers())
        sent = Sent(len(mailbox.mails(tenant)), **_outboxes(azurite, tenant))
        rails = providers.figures(booked, stopped)
    finally:
        host.shutdown()
        host.providers.stop()
        mailbox.down()
        azurite.stop()
    imports = import_totals(reports)
    delivered = delivery_totals(documents)
    checks = (_checks(summary, imports, bank, rails["provider_payments_booked"])
              | _delivery_checks(summary, documents, delivered, sent, end) | rails.pop("checks")
              | {"self_service": mine_ok})
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
        "documents_rendered": delivered["documents_delivered"],
        "emails_sent": sent.emails,
        "ehf_sent": sent.ehf_files,
        "print_pages": sent.print_pages,
        "print_letters": sent.print_letters,
        "sms_sent": delivered["sent"].get("sms", 0),
        "deliveries_failed": delivered["failed"],
        "deliveries_by_channel": delivered["sent"],
        **rails,
        **mine,
        "clock_start": now.date().isoformat(),
        "clock_end": end.isoformat(),
        "orders_s": round(orders_s, 2),
        "elapsed_s": round(time.monotonic() - started, 2),
        "checks": checks,
        "consistent": all(checks.values()),
    }


def local_smtp(azurite: Azurite, refuse: set[str]) -> Mailbox:
    """The demo's own mail server (aiosmtpd, ``devhost.mailbox``) on a free port, the app
    pointed at it: started by every run whatever runs already (so a second run, or a setting
    that names a real mail server, never sends the demo's mails anywhere else). It keeps
    each mail in Azurite's ``mailbox`` container and refuses ``refuse`` (550: the mailbox
    does not exist)."""
    box = Mailbox(blobs=BlobServiceClient.from_connection_string(azurite.connection_string))
    box.refuse = {address.lower() for address in refuse}
    box.up()
    for setting in OTHER_MAIL_SETTINGS:
        os.environ.pop(setting, None)
    os.environ["ABONNO_SMTP_HOST"], os.environ["ABONNO_SMTP_PORT"] = "127.0.0.1", str(box.port)
    return box


def _place_orders(session: requests.Session, base: str, tenant: str, now: datetime,
                  subscribers: int) -> list[dict[str, Any]]:
    """Each customer posts the sales poster's form from an address of their own, 8 at a time;
    the sales poster's answers (what to pay: the first invoice's KID)."""
    rng = random.Random(2026)
    orders = [_order(i, tenant, now, rng) for i in range(1, subscribers + 1)]

    def post(order: dict[str, Any]) -> dict[str, Any]:
        client = zlib.crc32(order["email"].encode()) & 0xFFFFFF
        headers = {"X-Forwarded-For": f"10.{client >> 16}.{(client >> 8) & 255}.{client & 255}"}
        response = session.post(f"{base}/salesposter/{tenant}/orders", data=order, headers=headers)  # a form post
        response.raise_for_status()
        return dict(response.json())

    bar = tqdm(total=len(orders), desc="orders", unit="order", file=sys.stderr, disable=None)
    answers = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for answer in pool.map(post, orders):
            answers.append(answer)
            bar.update()
    bar.close()
    return answers


def _live(host: Any, bank: SimulatedBank, day: date, end: date, providers: Providers | None = None) -> int:
    """Day after day until ``end``: the bank's OCR file of the day, then the host's tick (which
    imports it and runs the timers), then the providers' day (Vipps charges what is due and
    sends its webhooks; payers stop agreements, cards are declined). Returns the payments the
    bank sent."""
    bar = tqdm(total=(end - day).days, desc="days", unit="day", file=sys.stderr, disable=None)
    paid = 0
    first = day
    while day < end:
        bank.learn()
        paid += bank.pay(day)  # today's OCR file; the next tick's drain imports it
        day += timedelta(days=1)
        host.tick(day)
        if providers is not None:
            providers.day(day, (day - first).days)  # its webhooks are queued; the next tick's drain books them
        bar.update()
    if providers is not None:
        providers.settle()
        host.drain()  # the last day's webhooks, booked before anything is counted
    bar.close()
    return paid


def _checks(summary: dict[str, Any], imports: dict[str, Any], bank: SimulatedBank,
            provider_payments: int = 0) -> dict[str, bool]:
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
    # control totals, and a file sent twice booked nothing the second time (the other payments
    # booked are the providers' charges)
    accounted = (imports["import_records"] == bank.records and imports["imports_add_up"]
                 and imports["import_booked"] + imports["import_already_booked"]
                 == summary["payments_booked"] - provider_payments
                 and imports["import_set_aside"] == summary["requires_processing"]
                 and imports["import_duplicate_files"] == bank.resent)
    return {"number_series": bool(consecutive), "ledger": balanced, "bank_records": accounted}


# ---- documents and their delivery ------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What left the system, counted where it arrived: the mails the SMTP server received, the
    UBL files in the access point's outbox, the daily print batches (their merged PDFs' pages,
    and the letters and letters set aside their reports list)."""

    emails: int = 0
    ehf_files: int = 0
    print_pages: int = 0
    print_letters: int = 0
    print_set_aside: int = 0
    print_report_pages: int = 0
    print_days: tuple[str, ...] = ()


DEMANDS = ("invoice", "additional", "balance", "credit_note", "reminder")  # issued demands (not stop notices)


def _documents(session: requests.Session, base: str, auth: dict[str, str],
               answers: list[dict[str, Any]], others: set[int] | None = None) -> list[dict[str, Any]]:
    """Every document of every subscriber with its delivery log, through the merchant API
    (subscribers found by the KID of their order's first invoice, and ``others``: those who
    ordered with Vipps or a card, by their agreement's key)."""
    kids = [a["payment"]["kid"] for a in answers if a.get("payment")]

    def subscriber(kid: str) -> int:
        response = session.get(f"{base}/merchant/kid/{kid}", headers=auth)
        response.raise_for_status()
        return int(response.json()["subscriber_no"])

    def documents(number: int) -> list[dict[str, Any]]:
        response = session.get(f"{base}/merchant/subscribers/{number}/documents", headers=auth)
        if not response.ok:
            raise RuntimeError(f"documents of subscriber {number}: {response.status_code} {response.text[:500]}")
        return list(response.json())

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = sorted(set(pool.map(subscriber, kids)) | (others or set()))
        return [d for listed in pool.map(documents, numbers) for d in listed]


def _outboxes(azurite: Azurite, tenant: str) -> dict[str, Any]:
    """What arrived in the access point's outbox and the print batches of ``tenant``."""
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    printed = blobs.get_container_client(PRINT)
    pages = letters = aside = report_pages = 0
    days = set()
    for name in _blob_names(blobs, PRINT, tenant):  # {tenant}/{day}/{organisation}.pdf, .csv, .json
        data = printed.download_blob(name).readall()
        if name.endswith(".pdf"):
            pages += len(PdfReader(io.BytesIO(data)).pages)
        elif name.endswith(".json"):
            report = json.loads(data)
            letters, aside = letters + report["letters"], aside + len(report["set_aside"])
            report_pages += report["pages"]
            days.add(report["day"])
    return {"ehf_files": len(_blob_names(blobs, EHF_OUTBOX, tenant)), "print_pages": pages,
            "print_letters": letters, "print_set_aside": aside, "print_report_pages": report_pages,
            "print_days": tuple(sorted(days))}


def _blob_names(blobs: BlobServiceClient, container: str, tenant: str) -> list[str]:
    try:
        return [b.name for b in blobs.get_container_client(container).list_blobs(name_starts_with=f"{tenant}/")]
    except ResourceNotFoundError:  # nothing was ever sent that way
        return []


def delivery_totals(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The delivery logs' totals: documents delivered (each rendered to be sent), deliveries
    sent per channel, deliveries that failed or bounced."""
    rows = [r for d in documents for r in d["deliveries"]]
    sent = Counter(r["channel"] for r in rows if r["status"] == "sent")
    printed = Counter(r["at"][:10] for r in rows if r["status"] == "sent" and r["channel"] == "print")
    return {"documents_delivered": sum(1 for d in documents if d["deliveries"]), "sent": dict(sorted(sent.items())),
            "failed": sum(1 for r in rows if r["status"] in ("failed", "bounced")),
            "queued": sum(1 for r in rows if r["status"] == "queued"), "printed_by_day": printed}


def _delivery_checks(summary: dict[str, Any], documents: list[dict[str, Any]], delivered: dict[str, Any],
                     sent: Sent, last_day: date) -> dict[str, bool]:
    """Every issued demand reached its subscriber once, or its failure is recorded; what the
    logs say was sent is what arrived."""
    demands = [d for d in documents if d["kind"] in DEMANDS]
    issued = summary["invoices_issued"] + summary["credit_notes"] + summary["reminders_issued"]

    def once(document: dict[str, Any]) -> bool:
        statuses = Counter(r["status"] for r in document["deliveries"])
        return statuses["queued"] == 0 and (statuses["sent"] == 1 or (statuses["sent"] == 0 and (
            statuses["failed"] + statuses["bounced"]) > 0))

    by_channel = delivered["sent"]
    return {
        # every issued demand is listed, and each has exactly one successful delivery or a recorded failure
        "documents_delivered": len(demands) == issued and all(once(d) for d in demands),
        # the mails the SMTP server received are the e-mail deliveries the logs say were sent, and so on
        "emails_received": sent.emails == by_channel.get("email", 0),
        "ehf_files": sent.ehf_files == by_channel.get("ehf", 0),
        # every letter sent to print on a day whose batch the print timer has made (each day's,
        # the next morning; not yet the last day's) is in that batch, printed or set aside, and
        # the merged PDFs have the pages the batch reports say
        "print_batches": sent.print_letters + sent.print_set_aside == sum(
            n for day, n in delivered["printed_by_day"].items() if day in sent.print_days)
        and sent.print_pages == sent.print_report_pages
        and set(delivered["printed_by_day"]) - set(sent.print_days) <= {last_day.isoformat()},
    }


# ---- payment providers: Vipps MobilePay Recurring and Swedbank Pay cards (issue 11) ---------------

# what would send the demo's payers and charges to a real provider
PROVIDER_SETTINGS = ("ABONNO_VIPPS_URL", "ABONNO_VIPPS_CREDENTIALS", "ABONNO_SWEDBANKPAY_URL",
                     "ABONNO_SWEDBANKPAY_CREDENTIALS", "ABONNO_PUBLIC_URL")
DECLINED_CARD = "4000000000000002"  # the simulator's always-declined card
STOP_DAY, DECLINE_DAY = 20, 10  # days into the run: a payer stops in the app; a card starts being declined


@dataclass
class Providers:
    """The demo's Vipps and Swedbank Pay: the simulators (``devhost/vipps_sim.py``,
    ``devhost/swedbankpay_sim.py``) on the host's test clock, and the payers who use them.
    The app talks HTTP to them as it would to the providers' test environments; Vipps'
    webhooks go, signed, to the host's ``vipps_webhook`` function (sometimes twice, sometimes
    out of order); Swedbank Pay's callbacks to ``swedbankpay_callback``."""

    vipps: Any
    card: Any
    tenant: str
    secret: str = field(repr=False)  # the tenant's webhook secret at the simulator
    vipps_payers: dict[int, str] = field(default_factory=dict)  # subscriber i -> Vipps agreement id
    card_payers: dict[int, str] = field(default_factory=dict)  # subscriber i -> card number
    keys: dict[int, str] = field(default_factory=dict)  # subscriber i -> our agreement key
    returned: Counter[str] = field(default_factory=Counter)  # what the checkout page said when the payer came back
    orders: int = 0
    forged: int = 0
    forged_rejected: int = 0
    counted: Counter[str] = field(default_factory=Counter)  # the webhook function's counts before the run

    @classmethod
    def of(cls, simulators: Any, tenant: str) -> Providers:
        """The host's simulators (``devhost.providers``: every tenant is a merchant of both), with
        Vipps sending one webhook in ten twice and holding one in ten back behind the next."""
        from functions import vipps_webhook

        simulators.vipps.duplicates, simulators.vipps.reorder = 0.1, 0.1
        return cls(simulators.vipps, simulators.swedbankpay, tenant, simulators.secret,
                   counted=Counter(vipps_webhook.COUNTS))

    # -- the payers ------------------------------------------------------------------------------

    def pay(self, session: requests.Session, answers: list[dict[str, Any]], today: date) -> None:
        """Each order awaiting payment: its payer follows the redirect, approves, declines or
        ignores the Vipps agreement, pays or cancels on the card payment page, and (unless they
        ignored it) comes back to the checkout page, which shows what the provider says."""
        self.orders = len(answers)
        waiting = [(i, a["redirect_url"]) for i, a in enumerate(answers, 1) if a.get("status") == "awaiting_payment"]

        def one(item: tuple[int, str]) -> None:
            i, url = item
            client = zlib.crc32(f"payer{i}".encode()) & 0xFFFFFF
            headers = {"Accept": "application/json",
                       "X-Forwarded-For": f"10.{client >> 16}.{(client >> 8) & 255}.{client & 255}"}
            back = self._vipps(session, i, url, headers) if rail(i) == VIPPS else self._card(session, i, url, headers,
                                                                                             today)
            if back is not None:
                back.raise_for_status()
                self.returned[str(back.json().get("status"))] += 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, waiting))

    def _vipps(self, session: requests.Session, i: int, url: str, headers: dict[str, str]) -> requests.Response | None:
        agreement_id = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]  # .../confirm/{agreementId}
        self.vipps_payers[i] = agreement_id
        self.keys[i] = self.vipps.agreements[agreement_id].external_id
        behaviour = vipps_payer(i)
        if behaviour == "ignore":  # never answers: Vipps expires the draft (the simulator, by the clock)
            return None
        session.get(url).raise_for_status()  # the confirmation page
        # its button; Vipps sends the payer back to the merchant's redirect URL: our checkout page
        back = session.post(f"{self.vipps.base_url}/_sim/agreements/{agreement_id}/{behaviour}?redirect=1",
                            headers=headers)
        self.vipps.charge_outcome(agreement_id, *vipps_charges(i))  # the renewals (the first period is charged)
        return back

    def _card(self, session: requests.Session, i: int, url: str, headers: dict[str, str],
              today: date) -> requests.Response | None:
        token = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]  # .../checkout/{token}
        order = next(o for o in list(self.card.orders.values()) if o.checkout_token == token)
        self.keys[i] = urllib.parse.urlsplit(str(order.urls.get("completeUrl"))).path.rstrip("/").rsplit("/", 1)[-1]
        session.get(url).raise_for_status()  # the payment page
        number, expiry = card_of(i, today)
        behaviour = card_payer(i)
        if behaviour == "declined":  # the card is declined: the page asks for another; the payer gives up
            session.post(url, data={"cardNumber": DECLINED_CARD, "expiryDate": "12/2099"}).raise_for_status()
        if behaviour in ("declined", "cancel"):
            return session.post(url, data={"action": "cancel"}, headers=headers)
        self.card_payers[i] = number
        return session.post(url, data={"cardNumber": number, "expiryDate": expiry}, headers=headers)

    # -- the days --------------------------------------------------------------------------------

    def day(self, today: date, n: int) -> None:
        """What the payers do on day ``n`` of the run (the host's tick runs the providers' batch
        of each day itself: drafts expire, charges due are charged, retried or failed): one
        stops the agreement in the Vipps app, a card starts being declined; the webhooks are
        delivered before the host's next tick drains what they queued."""
        if n == STOP_DAY:
            for i, agreement_id in self.vipps_payers.items():
                if stops_in_app(i):
                    self.vipps.user_stop(agreement_id)
        if n == DECLINE_DAY:
            for i, number in self.card_payers.items():
                if card_declined_later(i):
                    self.card.decline_card(number, "acquirerinsufficientfunds")
        self.settle()

    def settle(self) -> None:
        self.vipps.flush()
        self.card.drain()

    def forge(self, session: requests.Session, base: str) -> None:
        """Three webhooks that are not Vipps': signed with another secret, a body changed after
        signing, and a genuine one replayed an hour later. Each must get 401 and change nothing."""
        from shared.adapters.vipps import sign_webhook

        path = f"/api/vipps/{self.tenant}/webhook"
        address = urllib.parse.urlsplit(base).netloc
        now = self.vipps.clock.now()
        body = json.dumps({"msn": self.tenant, "eventType": "recurring.charge-captured.v1",
                           "agreementId": next(iter(self.vipps_payers.values()), "agr_x"), "chargeId": "c1-1-1",
                           "eventId": str(uuid.uuid4())}).encode()
        attempts = [(sign_webhook("not-the-secret", path, address, now, body), body),
                    (sign_webhook(self.secret, path, address, now, body), body.replace(b"captured", b"failed")),
                    (sign_webhook(self.secret, path, address, now - timedelta(hours=1), body), body)]
        for headers, sent in attempts:
            headers.pop("host")
            answer = session.post(f"http://{address}{path}", data=sent, headers=headers | {
                "Content-Type": "application/json"})
            self.forged += 1
            self.forged_rejected += answer.status_code == 401

    # -- what happened ---------------------------------------------------------------------------

    def subscribers(self) -> set[int]:
        """The subscriber numbers of the orders made with Vipps or a card (their agreement keys name them)."""
        from shared.domain.agreements import parse_agreement_key

        return {n for key in self.keys.values() if (n := parse_agreement_key(key)) is not None}

    def stopped_in_app(self) -> dict[str, int]:
        """The agreements their payers stopped in the Vipps app: agreement key -> subscriber number."""
        from shared.domain.agreements import parse_agreement_key

        with self.vipps._lock:
            keys = [a.external_id for a in self.vipps.agreements.values()
                    if a.status == "STOPPED" and a.actor == "USER"]
        return {key: n for key in keys if (n := parse_agreement_key(key)) is not None}

    def figures(self, booked: dict[str, list[dict[str, Any]]],
                stopped: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The providers' figures, as the simulators saw them, and the checks: every charge they
        captured is booked exactly once on a ledger, for what was captured, and nothing else is
        booked as theirs; every webhook Vipps delivered was taken and every forged one refused;
        a subscription whose agreement the payer stopped in the app is paid by invoice now
        (``stopped``: the merchant API's overview of those subscribers, by agreement key)."""
        from functions import vipps_webhook
        from shared.adapters.swedbankpay import our_reference

        with self.vipps._lock:
            agreements = Counter(a.status for a in self.vipps.agreements.values())
            charges = list(self.vipps.charges.values())
            delivered = self.vipps.sent["delivered"]
        with self.card._lock:
            orders = list(self.card.orders.values())
        vipps_captured = {c.id: c.captured for c in charges if c.captured > 0}
        card_captured = {_card_charge(our_reference(o.payee_reference)): o.captured for o in orders if o.captured > 0}

        def ledger(source: str) -> tuple[Counter[str], dict[str, int]]:
            """Charge id -> how often it is booked, and for how much (payment ids ``{source}.{charge id}``)."""
            prefix = f"{source}."
            ids = [(b["payment"]["id"][len(prefix):], b["payment"]["amount_minor"]) for b in booked[source]]
            return Counter(i for i, _ in ids), dict(ids)

        (vipps_booked, vipps_amounts), (card_booked, card_amounts) = ledger("vipps"), ledger("swedbankpay")
        once = (set(vipps_booked.values()) <= {1} and set(card_booked.values()) <= {1}
                and vipps_amounts == vipps_captured and card_amounts == card_captured)
        counts = vipps_webhook.COUNTS - self.counted  # this run's (the function's counts are the process's)
        return {
            "orders_by_rail": dict(sorted(Counter({VIPPS: "vipps", CARD: "card", INVOICE: "invoice"}[rail(i)]
                                                  for i in range(1, self.orders + 1)).items())),
            "checkout_returns": dict(sorted(self.returned.items())),
            "vipps_agreements_active": agreements.get("ACTIVE", 0),
            "vipps_agreements": dict(sorted(agreements.items())),
            "vipps_stopped_in_app": len(stopped),
            "vipps_charges_captured": len(vipps_captured),
            "vipps_charges_failed": sum(1 for c in charges if c.status == "FAILED"),
            "card_charges_captured": len(card_captured),
            "card_charges_failed": sum(1 for o in orders if o.operation == "UnscheduledPurchase"
                                       and o.status == "Failed"),
            "provider_payments_booked": sum(vipps_booked.values()) + sum(card_booked.values()),
            "webhooks_received": counts["received"],
            "webhooks_rejected": counts["rejected"],
            "checks": {
                # every charge the simulators captured is on a ledger exactly once, for the amount captured
                "provider_charges_booked": once,
                # every webhook Vipps delivered was taken (more, if an answer was lost and Vipps
                # sent it again), and every forged one turned away
                "webhooks": (counts["received"] >= delivered > 0
                             and self.forged_rejected == self.forged == counts["rejected"]),
                # the payer stopped it in the app: the subscription goes on, paid by invoice with KID
                "stopped_to_invoice": all(
                    any(sub["id"] == key.split("-", 1)[1] and sub["payment_type"] == "invoice"
                        and not sub.get("agreement") for sub in overview["subscriptions"])
                    for key, overview in stopped.items()),
            },
        }


def _card_charge(reference: str) -> str:
    """The charge id a card payment order is booked under: a renewal's payee reference is its
    charge id; a checkout's purchase (the agreement key ``a{n}-{sub}``) is booked as the
    agreement's initial charge ``i{n}-{sub}``."""
    from shared.domain.agreements import initial_charge_id, parse_agreement_key

    number = parse_agreement_key(reference)
    return initial_charge_id(number, reference.split("-", 1)[1]) if number is not None else reference
