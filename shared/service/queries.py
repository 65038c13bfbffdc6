"""Read models for the merchant API: subscriber overview (manual 6.8), search (S1,
manual 4 "Search function": any column contains), and the tenant summary.

Search and summary scan the tenant's partitions: they serve customer service and the
demo, never the billing hot path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..adapters.codec import demand_json, to_jsonable
from ..domain.account import Account, next_drafts
from ..domain.dunning_visit import order_blocked
from ..domain.invoicing import DocumentKind, Invoice
from ..domain.ledger import EntryKind, LedgerEntry
from ..domain.subscriptions import StopKind, SubscriptionStatus
from ..ports import Handling, History, NotFound, SetAside
from . import documents
from .context import Context


def overview(ctx: Context, tenant: str, subscriber_no: int) -> dict[str, Any]:
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    history = ctx.accounts.documents(tenant, subscriber_no)
    log = documents.delivery_log(ctx, tenant, subscriber_no)
    account = loaded.account
    return {
        "subscriber": to_jsonable(account.subscriber),
        "balances": dict(account.balances),
        "subscriptions": [to_jsonable(s) | {"status": s.status_on(today).value}
                          for s in account.subscriptions.values()],
        "invoices": [_invoice(i) for i in history.invoices],
        "open_demands": [demand_json(d) for d in account.open_demands.values()],
        "reminders": [to_jsonable(r) for r in history.reminders],
        "credit_notes": [to_jsonable(c) for c in history.credit_notes],
        "corrections": [to_jsonable(c) for c in account.corrections],
        "order_blocked": {org: why for org in sorted({s.organization_id for s in account.subscriptions.values()}
                                                     | set(account.order_blocks))
                          if org in catalogue.organizations
                          and (why := order_blocked(account, catalogue, org)) is not None},
        "draft_invoices": [to_jsonable(d) | {"total_minor": d.total_minor}
                           for d in next_drafts(account, catalogue)],
        "ledger": [to_jsonable(e) for e in history.ledger],
        "documents": documents.listed(account, catalogue, history, log,
                                      documents.stop_notices(ctx, tenant, subscriber_no, log)),
        "logins": [{"login": k.login, "role": k.role.value, "email": k.email, "linked": k.linked.isoformat(),
                    "subscription_id": k.subscription_id} for k in account.logins.values()],  # M1, S10: who is linked
        "invitations": [to_jsonable(i) for i in account.invitations.values()],  # S10: group seats offered
    }


def _invoice(invoice: Invoice) -> dict[str, Any]:
    found: dict[str, Any] = to_jsonable(invoice)
    return found | {"total_minor": invoice.total_minor, "vat_minor": invoice.draft.vat_minor,
                    "amount_due_minor": invoice.amount_due_minor}


def find_by_kid(ctx: Context, tenant: str, kid: str) -> dict[str, Any]:
    """The subscriber and invoice a KID refers to: decoded, then one point read (no index).

    Organisations of one tenant have distinct prefixes or lengths (manual 7.23), so at
    most one organisation's scheme decodes a given KID.
    """
    from stdnum.exceptions import ValidationError

    for org in ctx.catalogue.get(tenant).organizations.values():
        try:
            ref = org.kid.decode(kid)
        except ValidationError:
            continue
        invoice = ctx.accounts.invoice(tenant, ref.subscriber_no, ref.demand_no)
        if invoice is not None and invoice.draft.organization_id == org.id:
            return {"organization_id": org.id, "subscriber_no": ref.subscriber_no, "demand_no": ref.demand_no,
                    "invoice": _invoice(invoice)}
        reminder = ctx.accounts.reminder(tenant, ref.subscriber_no, ref.demand_no)
        if reminder is not None and reminder.organization_id == org.id:  # a reminder's KID pays its invoice
            return {"organization_id": org.id, "subscriber_no": ref.subscriber_no, "demand_no": ref.demand_no,
                    "reminder": to_jsonable(reminder)}
    raise NotFound(f"no invoice or reminder with KID {kid}")


def search(ctx: Context, tenant: str, text: str, limit: int = 50) -> list[dict[str, Any]]:
    needle = text.strip().lower()
    hits = []
    for loaded, _history in ctx.accounts.scan_tenant(tenant):
        if needle in loaded.account.subscriber.searchable_text():
            hits.append(to_jsonable(loaded.account.subscriber))
            if len(hits) >= limit:
                break
    return hits


@dataclass
class Summary:
    subscribers: int = 0
    subscriptions_active: int = 0
    invoices_issued: int = 0
    invoice_number_first: int | None = None
    invoice_number_last: int | None = None
    amount_invoiced_minor: int | None = 0
    ledger_balance_minor_total: int | None = 0
    payments_booked: int = 0
    amount_paid_minor: int | None = 0
    invoices_open: int = 0
    invoices_paid: int = 0
    requires_processing: int = 0
    requires_processing_minor: int | None = 0
    currency: str | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    reminders_issued: int = 0
    reminder_fees_minor: int | None = 0
    payment_stops: int = 0
    credit_notes: int = 0
    amount_credited_minor: int | None = 0
    balance_invoices: int = 0
    amount_charged_minor: int | None = 0
    amount_written_off_minor: int | None = 0
    amount_reversed_minor: int | None = 0
    number_series_gapless: bool = True  # invoices and credit notes of each organisation are first..last, once each
    by_currency: dict[str, dict[str, int]] = field(default_factory=dict)


MONEY = ("amount_invoiced_minor", "ledger_balance_minor_total", "amount_paid_minor", "requires_processing_minor",
         "reminder_fees_minor", "amount_credited_minor", "amount_charged_minor", "amount_written_off_minor",
         "amount_reversed_minor")


LEDGER_FIGURES = {EntryKind.WRITE_OFF: "amount_written_off_minor", EntryKind.CHARGE: "amount_charged_minor",
                  EntryKind.PAYMENT: "amount_paid_minor", EntryKind.REVERSAL: "amount_reversed_minor"}


def summary(ctx: Context, tenant: str) -> Summary:
    """The tenant's figures. Money is summed per currency (``by_currency``); the top-level
    amounts are that currency's when the tenant has one, and null when it has several (øre
    and euro cents never add up)."""
    catalogue = ctx.catalogue.get(tenant)
    tally = _Tally(ctx.today(catalogue))
    for loaded, history in ctx.accounts.scan_tenant(tenant):
        tally.subscriber(loaded.account, history)
    for aside in ctx.inbox.set_asides(tenant):
        tally.set_aside(aside)
    return tally.close({o.currency for o in catalogue.organizations.values()})


@dataclass
class _Tally:
    """The summary as the tenant's partitions are read; money per currency until ``close``."""

    today: date
    result: Summary = field(default_factory=Summary)
    money: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    series: dict[str, list[int]] = field(default_factory=dict)  # organisation -> invoice and credit note numbers

    def add(self, currency: str, what: str, amount: int) -> None:
        self.money.setdefault(currency, Counter())[what] += amount

    def subscriber(self, account: Account, history: History) -> None:
        self.result.subscribers += 1
        self._documents(history)
        self._ledger(history.ledger)
        for sub in account.subscriptions.values():
            self.statuses[sub.status_on(self.today).value] += 1
            self.result.payment_stops += int(sub.stop_kind is StopKind.PAYMENT)
        self.result.invoices_open += len(account.open_demands)

    def _documents(self, history: History) -> None:
        result = self.result
        result.reminders_issued += len(history.reminders)
        for r in history.reminders:
            self.add(r.currency, "reminder_fees_minor", r.reminder.fee_minor)
        result.credit_notes += len(history.credit_notes)
        for c in history.credit_notes:
            self.add(c.currency, "amount_credited_minor", c.total_minor)
            self.series.setdefault(c.organization_id, []).append(c.number)
        result.invoices_issued += len(history.invoices)
        for i in history.invoices:
            self.series.setdefault(i.draft.organization_id, []).append(i.number)
            if i.draft.kind is DocumentKind.BALANCE:
                result.balance_invoices += 1
            else:
                self.add(i.draft.currency, "amount_invoiced_minor", i.total_minor)

    def _ledger(self, ledger: Sequence[LedgerEntry]) -> None:
        for e in ledger:
            self.add(e.currency, "ledger_balance_minor_total", e.amount_minor)
            what = LEDGER_FIGURES.get(e.kind)
            if what is not None:
                self.add(e.currency, what, e.amount_minor if e.kind is EntryKind.PAYMENT else abs(e.amount_minor))
            self.result.payments_booked += int(e.kind is EntryKind.PAYMENT)

    def set_aside(self, aside: SetAside) -> None:
        if aside.hold.state is not Handling.DONE and aside.kind != "mandate":
            self.result.requires_processing += 1
            self.add(aside.currency or "unknown", "requires_processing_minor", aside.amount_minor)

    def close(self, org_currencies: set[str]) -> Summary:
        """The figures: the series checked, the money per currency and, for one currency, at the top."""
        result = self.result
        result.invoices_paid = result.invoices_issued - result.invoices_open - result.credit_notes  # credited: not paid
        issued = [n for ns in self.series.values() for n in ns]  # the series: credit notes take invoice numbers too
        result.invoice_number_first, result.invoice_number_last = min(issued, default=None), max(issued, default=None)
        result.number_series_gapless = all(sorted(ns) == list(range(min(ns), max(ns) + 1))
                                           for ns in self.series.values())
        result.subscriptions_active = self.statuses[SubscriptionStatus.ACTIVE.value]
        result.by_status = dict(self.statuses)
        result.by_currency = {c: {m: self.money[c][m] for m in MONEY} for c in sorted(self.money)}
        only = next(iter(result.by_currency.values()), dict.fromkeys(MONEY, 0))
        for m in MONEY:
            setattr(result, m, only[m] if len(self.money) <= 1 else None)
        currencies = sorted(set(self.money) | org_currencies)
        result.currency = currencies[0] if len(currencies) == 1 else ",".join(currencies) or None
        return result
