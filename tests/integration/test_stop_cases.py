"""The five stop cases of manual 6.4, through the customer-service HTTP API on the test
clock, with the invoice and dunning runs (timer, bus, worker) every day and payments
as bank files. Each case asserts every document (invoices, credit notes, reminders,
balance invoice), its VAT per rate, and every ledger entry: nothing else is produced.

The cases live side by side, one tenant each, on one timeline (the runs every day to
10 Feb, then on the days something happens and weekly), lived once for the module.

The demo catalogue: a 0 % paper (299.00) and a 25 % crossword app (49.00) monthly,
renewals add a 39.00 fee split over both rates (33.51 at 0 %, 5.49 at 25 %); the
dunning process reminds 7 days after the due date, again 5 days after reminder 1 falls
due (35.00 fee), stops 10 days after that and sends a balance invoice a day after a stop.
Ordered 5 Jan 2026: January's invoice (5 Jan - 4 Feb) is due 19 Jan, February's is
issued 22 Jan and due 5 Feb.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from devhost import issuer
from devhost.azurite import Azurite
from functions.notification_worker import handle as notify
from functions.run_worker import handle as work
from shared import bootstrap
from shared.adapters.bus import NOTICES, QUEUES, RUN_WORK
from shared.clock import SettableClock
from shared.service import delivery
from shared.service.billing import start_invoice_run
from shared.service.context import Context
from shared.service.dunning import start_dunning_run
from shared.service.orders import place_order
from tests.conftest import make_context, oslo_morning
from tests.fixtures import install_catalogue, order
from tests.integration.test_merchant import call
from tests.service.test_dunning_run import drain, pay_kid

JAN = [(0, 29900, 0), (2500, 4900, 980)]  # (VAT rate, gross, VAT): 348.00, VAT 9.80
FEB = [(0, 29900 + 3351, 0), (2500, 4900 + 549, 980 + 110)]  # 387.00 with the fee, VAT 10.90


def neg(parts: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    return [(r, -g, -v) for r, g, v in parts]


def rates(lines: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for li in lines:
        g, v = out.get(li["vat_rate_bp"], (0, 0))
        out[li["vat_rate_bp"]] = (g + li["gross_minor"], v + li["vat_minor"])
    return [(r, g, v) for r, (g, v) in sorted(out.items())]


class Case:
    """One subscriber of a tenant of its own, ordering on 5 Jan 2026; ``script`` says what
    happens to it on which day (after that day's runs)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.shop = ctx, f"t{uuid.uuid4().hex[:10]}"
        install_catalogue(ctx, self.shop)
        placed = place_order(ctx, order(self.shop, 1))
        self.n, self.sub = placed.subscriber_no, placed.subscription_id
        self.token = issuer.token(self.shop, ["admin"])
        self.script: dict[date, Callable[[], None]] = {}
        self.answers: list[tuple[int, Any]] = []  # what the stop calls answered

    def view(self) -> Any:
        return call("subscriber_overview", "GET", self.token, {"subscriber_no": str(self.n)})[1]

    def pay(self, invoice_number: int) -> Callable[[], None]:
        def pay() -> None:
            invoice = next(i for i in self.view()["invoices"] if i["number"] == invoice_number)
            on = self.ctx.today(self.ctx.catalogue.get(self.shop))
            pay_kid(self.ctx, self.shop, invoice["kid"], invoice["amount_due_minor"], on)
        return pay

    def stop(self, reason: str) -> Callable[[], None]:
        def stop() -> None:
            route = {"subscriber_no": str(self.n), "subscription_id": self.sub}
            self.answers.append(call("subscription_stop", "POST", self.token, route, {"reason": reason}))
        return stop

    def credit(self, invoice_number: int) -> Callable[[], None]:
        def credit() -> None:
            route = {"subscriber_no": str(self.n), "invoice_number": str(invoice_number)}
            assert call("invoice_credit_note", "POST", self.token, route, {"reason": "Wrong price"})[0] == 201
        return credit

    def documents(self) -> dict[str, Any]:
        """Everything the subscriber has been sent and every ledger entry, compactly."""
        v = self.view()
        for inv in v["invoices"]:  # every document is the sum of its lines, every part net + VAT
            assert inv["total_minor"] == sum(li["gross_minor"] for li in inv["draft"]["lines"])
        for c in v["credit_notes"]:
            assert c["total_minor"] == -sum(li["gross_minor"] for li in c["lines"])
        for e in v["ledger"]:
            assert all(p["net_minor"] + p["vat_minor"] == p["gross_minor"] for p in e["vat"])
        return {
            "invoices": [(i["number"], i["draft"]["kind"], i["draft"]["due_date"], i["total_minor"],
                          rates(i["draft"]["lines"])) for i in v["invoices"]],
            "credit_notes": [(c["number"], c["invoice_number"], c["total_minor"], rates(c["lines"]))
                             for c in v["credit_notes"]],
            "reminders": [(r["invoice_number"], r["reminder"]["step"], r["reminder"]["produced"],
                           r["reminder"]["amount_minor"]) for r in v["reminders"]],
            "ledger": [(e["kind"], e["amount_minor"], [(p["rate_bp"], p["gross_minor"], p["vat_minor"])
                                                       for p in e["vat"]]) for e in v["ledger"]],
            "balance": v["balances"]["avisa"],
            "open": [d["invoice_number"] for d in v["open_demands"]],
            "stop_date": next(s["stop_date"] for s in v["subscriptions"] if s["id"] == self.sub),
            "notices": self.notices(),
        }

    def notices(self) -> list[str]:
        """The reminders and stop notices delivered (the delivery log), by document id."""
        rows = delivery.log(self.ctx, self.shop, self.n)
        return sorted(d.document_id for d in rows if d.document_id[:4] in ("rem-", "stp-") and d.status == "sent")


DAILY_UNTIL, LAST = date(2026, 2, 10), date(2026, 4, 10)


def live(ctx: Context, cases: dict[str, Case]) -> None:
    """The timers, the bus and the workers, day by day, and each case's script."""
    on = date(2026, 1, 5)
    while on <= LAST:
        if on <= DAILY_UNTIL or on.weekday() == 0 or on == LAST or any(on in c.script for c in cases.values()):
            ctx.clock.set(oslo_morning(on))  # type: ignore[attr-defined]
            for c in cases.values():
                start_invoice_run(ctx, c.shop)
            drain(ctx, RUN_WORK, work)
            for c in cases.values():
                start_dunning_run(ctx, c.shop)
            drain(ctx, RUN_WORK, work)
            drain(ctx, NOTICES, notify)
            for c in cases.values():
                if on in c.script:
                    c.script[on]()
        on += timedelta(days=1)


@pytest.fixture(scope="module")
def lived(azurite: Azurite) -> Iterator[dict[str, Case]]:
    ctx = make_context(azurite.connection_string, SettableClock(oslo_morning(date(2026, 1, 5))))
    for queue in QUEUES:
        ctx.bus.service.get_queue_client(queue).clear_messages()  # type: ignore[attr-defined]
    bootstrap.set_context(ctx)
    cases = {name: Case(ctx) for name in ("1", "2", "2-current", "3", "4", "5")}
    cases["1"].script = {date(2026, 1, 10): cases["1"].pay(1), date(2026, 1, 12): cases["1"].stop("Moving abroad")}
    cases["2"].script = {date(2026, 1, 10): cases["2"].pay(1), date(2026, 1, 25): cases["2"].stop("Too expensive")}
    cases["2-current"].script = {date(2026, 1, 27): cases["2-current"].stop("Too expensive"),
                                 date(2026, 2, 15): cases["2-current"].pay(5)}
    cases["3"].script = {date(2026, 1, 10): cases["3"].pay(1), date(2026, 1, 25): cases["3"].pay(2),
                         date(2026, 1, 26): cases["3"].stop("Too expensive")}
    cases["4"].script = {date(2026, 1, 10): cases["4"].pay(1), date(2026, 1, 24): cases["4"].credit(2),
                         date(2026, 1, 25): cases["4"].stop("Not wanted")}
    cases["5"].script = {date(2026, 1, 10): cases["5"].pay(1), date(2026, 1, 12): cases["5"].stop("Moving"),
                         date(2026, 2, 10): cases["5"].stop("Moving again")}
    live(ctx, cases)
    yield cases
    bootstrap.set_context(None)


def test_case_1_a_stop_before_the_renewal_invoice_runs_to_the_end_date_and_invoices_nothing_more(
        lived: dict[str, Case]) -> None:
    case = lived["1"]
    assert [(status, body["events"]) for status, body in case.answers] == [(200, ["SubscriptionStopped"])]
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN)],  # no February invoice
        "credit_notes": [], "reminders": [],
        "ledger": [("invoice", -34800, JAN), ("payment", 34800, [])],
        "balance": 0, "open": [], "stop_date": "2026-02-05", "notices": [],
    }


def test_case_2_a_stop_when_the_renewal_is_issued_and_unpaid_credits_it_line_for_line(
        lived: dict[str, Case]) -> None:
    case = lived["2"]
    assert [(status, body["events"]) for status, body in case.answers] == [
        (200, ["CreditNoteIssued", "SubscriptionStopped"])]
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN), (2, "subscription", "2026-02-05", 38700, FEB)],
        "credit_notes": [(3, 2, 38700, neg(FEB))],  # February credited, nothing of it delivered: no charge
        "reminders": [],
        "ledger": [("invoice", -34800, JAN), ("payment", 34800, []), ("invoice", -38700, FEB),
                   ("credit_note", 38700, neg(FEB))],
        "balance": 0, "open": [], "stop_date": "2026-02-05", "notices": [],
    }
    view = case.view()
    assert view["credit_notes"][0]["lines"] == [
        {k: -v if k.endswith("_minor") else v for k, v in li.items()}
        for li in view["invoices"][1]["draft"]["lines"]]  # the invoice's lines, negated


def test_case_2_an_unpaid_current_invoice_is_credited_charged_billed_once_and_never_reminded_after(
        lived: dict[str, Case]) -> None:
    """The finding: stopping at period end while January's invoice was unpaid gave no credit
    note, and January was reminded with a fee after the subscription ended."""
    case = lived["2-current"]  # January reminded on 26 Jan (19 Jan + 7), February issued 22 Jan; stop 27 Jan
    assert [(status, body["events"]) for status, body in case.answers] == [
        (200, ["CreditNoteIssued", "CreditNoteIssued", "SubscriptionStopped"])]
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN), (2, "subscription", "2026-02-05", 38700, FEB),
                     (5, "balance", "2026-02-20", 34800, JAN)],  # 6 Feb, a day after the stop: January's VAT
        "credit_notes": [(3, 1, 34800, neg(JAN)), (4, 2, 38700, neg(FEB))],
        "reminders": [(1, 1, "2026-01-26", 34800)],  # before the stop only: no reminder 2, no fee
        "ledger": [("invoice", -34800, JAN), ("invoice", -38700, FEB),
                   ("credit_note", 34800, neg(JAN)), ("charge", -34800, JAN),  # January delivered whole
                   ("credit_note", 38700, neg(FEB)),  # February: nothing delivered, nothing charged
                   ("payment", 34800, [])],  # the balance invoice, paid by its KID on 15 Feb
        "balance": 0, "open": [], "stop_date": "2026-02-05",
        "notices": ["rem-00000003"],  # invoice 1's first reminder; never "payment stop in 5 days"
    }
    lines = case.view()["invoices"][2]["draft"]["lines"]
    assert [(li["description"], li["vat_rate_bp"], li["gross_minor"], li["vat_minor"]) for li in lines] == [
        ("Delivered before the stop, VAT 0 %", 0, 29900, 0), ("Delivered before the stop, VAT 25 %", 2500, 4900, 980)]


def test_case_3_a_stop_when_the_renewal_is_paid_runs_to_the_end_of_the_paid_period(lived: dict[str, Case]) -> None:
    case = lived["3"]
    assert [(status, body["events"]) for status, body in case.answers] == [(200, ["SubscriptionStopped"])]
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN), (2, "subscription", "2026-02-05", 38700, FEB)],
        "credit_notes": [], "reminders": [],
        "ledger": [("invoice", -34800, JAN), ("payment", 34800, []), ("invoice", -38700, FEB),
                   ("payment", 38700, [])],
        "balance": 0, "open": [], "stop_date": "2026-03-05", "notices": [],  # February paid: delivered to its end
    }


def test_case_4_a_stop_when_the_renewal_was_credited_credits_nothing_more(lived: dict[str, Case]) -> None:
    case = lived["4"]
    assert [(status, body["events"]) for status, body in case.answers] == [(200, ["SubscriptionStopped"])]
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN), (2, "subscription", "2026-02-05", 38700, FEB)],
        "credit_notes": [(3, 2, 38700, neg(FEB))],  # by customer service on 24 Jan; the stop adds none
        "reminders": [],
        "ledger": [("invoice", -34800, JAN), ("payment", 34800, []), ("invoice", -38700, FEB),
                   ("credit_note", 38700, neg(FEB))],
        "balance": 0, "open": [], "stop_date": "2026-02-05", "notices": [],
    }


def test_case_5_a_stop_after_the_end_date_takes_no_action(lived: dict[str, Case]) -> None:
    case = lived["5"]
    (first, again) = case.answers
    assert first[0] == 200 and again[0] == 422 and "no action" in again[1]["detail"]  # on 10 Feb
    assert case.documents() == {
        "invoices": [(1, "subscription", "2026-01-19", 34800, JAN)], "credit_notes": [], "reminders": [],
        "ledger": [("invoice", -34800, JAN), ("payment", 34800, [])],
        "balance": 0, "open": [], "stop_date": "2026-02-05", "notices": [],
    }
