"""Credit and corrections (L4-L6): credit notes, charges, corrections for the next
invoice, write-offs, additional and balance invoices.

Manual 7.15 "Credit": a credit note is a negative invoice of the whole invoice's
total. On an unpaid invoice it zeroes the demand; on a paid one the money is credit
on the ledger, which the next invoice deducts (``account.issue`` applies ledger
credit); when no invoice follows it stays on the ledger. 7.5 "Write-offs":
corrections are credits or debits for the upcoming invoice, deletable until
invoiced. 7.6 "Bulk credit": balances and overdue demands written off. 7.10
"Additional invoice": products or free lines, issued at once. 7.11 "Balance invoice":
the debt left on the ledger after a stop, which no other invoice asks for.

Every function here is pure: it takes an ``Account`` and returns ``Changes``. Numbers
for credit notes and invoices come from ``number(organization_id, natural_key)``, so a
retried operation gets the same number (the service claims them, see ``unit_of_work``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from .account import Account, Changes, Correction, issue
from .catalogue import Catalogue, CatalogueError
from .events import BalanceWrittenOff, CorrectionAdded, CreditNoteIssued
from .invoicing import CreditNote, DocumentKind, Invoice, InvoiceDraft, InvoiceLine, summary_lines, vat_parts
from .ledger import EntryKind, LedgerEntry, VatPart, merge_vat
from .letters import Letter

Number = Callable[[str, str], int]  # (organization id, natural key) -> invoice number


class CreditRefused(ValueError):
    """The credit, correction or write-off cannot be made as asked."""


def credit_note_key(invoice_number: int) -> str:
    return f"credit.{invoice_number}"


@dataclass(frozen=True, slots=True)
class CreditInvoice:
    """Credit the whole of an issued invoice (manual 7.15): the invoice as the credit note
    needs it, why, and whether its unpaid reminder fees stay owed (``keep_fees``)."""

    invoice_number: int
    demand_no: int
    organization_id: str
    currency: str
    subscription_id: str
    total_minor: int
    kind: DocumentKind
    lines: tuple[InvoiceLine, ...]  # what the credit note negates
    reason: str
    keep_fees: bool = False
    letter: Letter | None = None  # the credited invoice's: the credit note is addressed as it was

    @classmethod
    def of(cls, invoice: Invoice, reason: str, keep_fees: bool = False) -> CreditInvoice:
        d = invoice.draft
        return cls(invoice.number, invoice.demand_no, d.organization_id, d.currency, d.subscription_id,
                   invoice.total_minor, d.kind, d.lines, reason, keep_fees, invoice.letter)


def credit_invoice(account: Account, command: CreditInvoice, today: date, number: Number) -> Changes:
    """A credit note for the whole invoice: its ``lines`` negated (so the VAT of each rate
    is credited exactly as it was invoiced), +total on the ledger, the demand (and its
    reminders) closed. Unpaid reminder fees go with it (a mistaken invoice earns no fees),
    unless ``keep_fees`` (a payment stop: they stay owed on the ledger). Crediting an
    invoice twice is refused."""
    c = command
    if c.invoice_number in account.credited:
        raise CreditRefused(f"invoice {c.invoice_number} is credited already")
    if c.kind is DocumentKind.BALANCE:
        raise CreditRefused("a balance invoice asks for debt already on the ledger: write it off instead")
    if sum(li.gross_minor for li in c.lines) != c.total_minor:
        raise ValueError(f"the lines given for invoice {c.invoice_number} do not sum to its total {c.total_minor}")
    credited = tuple(-li for li in c.lines)
    note = CreditNote(number(c.organization_id, credit_note_key(c.invoice_number)), c.invoice_number, c.demand_no,
                      c.organization_id, c.currency, c.subscription_id, today, c.total_minor, c.reason, credited,
                      c.letter)
    seq = account.next_ledger_seq
    entries = [LedgerEntry(seq, c.organization_id, c.currency, today, EntryKind.CREDIT_NOTE, c.total_minor,
                           str(c.invoice_number), f"Credit note {note.number} for invoice {c.invoice_number}",
                           vat_parts(credited))]
    demand = account.open_demands.get(c.demand_no)
    if demand is not None and demand.fees_open_minor and not c.keep_fees:
        entries.append(LedgerEntry(seq + 1, c.organization_id, c.currency, today, EntryKind.WRITE_OFF,
                                   demand.fees_open_minor, str(c.invoice_number),
                                   "Reminder fees of a credited invoice"))
    moved = sum(e.amount_minor for e in entries)
    balances = {**account.balances, c.organization_id: account.balances.get(c.organization_id, 0) + moved}
    demands = {k: d for k, d in account.open_demands.items() if k != c.demand_no}
    new = replace(account, balances=balances, open_demands=demands, next_ledger_seq=seq + len(entries),
                  credited=(*account.credited, c.invoice_number))
    event = CreditNoteIssued(f"credit-note.{c.organization_id}.{note.number}", account.number, note.number,
                             c.invoice_number, c.organization_id, c.currency, c.total_minor, c.reason)
    return Changes(new, ledger=tuple(entries), events=(event,), credit_notes=(note,))


def credit_issued(account: Account, invoice: Invoice, reason: str, today: date, number: Number) -> Changes:
    """A credit note for an issued invoice (manual 7.15), mirroring its lines."""
    return credit_invoice(account, CreditInvoice.of(invoice, reason), today, number)


def charge(account: Account, organization_id: str, currency: str, vat: Sequence[VatPart], reference: str,
           text: str, today: date) -> Changes:
    """A debit on the ledger that no invoice has asked for yet (a stop's delivered days),
    of the VAT ``parts`` given: it carries them, and its amount is their sum."""
    amount_minor = sum(p.gross_minor for p in vat)
    if amount_minor <= 0:
        return Changes(account)
    entry = LedgerEntry(account.next_ledger_seq, organization_id, currency, today, EntryKind.CHARGE, -amount_minor,
                        reference, text, merge_vat(vat))
    balances = {**account.balances, organization_id: account.balances.get(organization_id, 0) - amount_minor}
    return Changes(replace(account, balances=balances, next_ledger_seq=account.next_ledger_seq + 1), ledger=(entry,))


def add_correction(account: Account, correction: Correction) -> Changes:
    if correction.amount_minor == 0:
        raise CreditRefused("a correction of zero changes nothing")
    if any(c.id == correction.id for c in account.corrections):
        return Changes(account)  # the same correction again: idempotent
    event = CorrectionAdded(f"correction.{correction.id}", account.number, correction.id,
                            correction.organization_id, correction.amount_minor, correction.text)
    return Changes(replace(account, corrections=(*account.corrections, correction)), events=(event,))


def delete_correction(account: Account, correction_id: str) -> Changes:
    """Manual 7.5: an uninvoiced correction can be deleted; an invoiced one is history."""
    kept = tuple(c for c in account.corrections if c.id != correction_id)
    if len(kept) == len(account.corrections):
        raise CreditRefused(f"no uninvoiced correction {correction_id}")
    return Changes(replace(account, corrections=kept))


def write_off(account: Account, organization_id: str, currency: str, reason: str, today: date,
              limit: int | None = None) -> Changes:
    """Write off what the subscriber owes the organisation (manual 7.6): its open demands
    and the debt no demand asks for. Credit is kept. Nothing owed, nothing written:
    running it again changes nothing. ``limit``: at most that many demands at once (the
    oldest), so one part fits a transaction; running it again writes off the rest."""
    seq = account.next_ledger_seq
    entries: list[LedgerEntry] = []
    demands = dict(account.open_demands)
    mine = sorted((d for d in account.open_demands.values() if d.terms.organization_id == organization_id),
                  key=lambda d: d.demand_no)
    for d in mine[:limit] if limit is not None else mine:
        del demands[d.demand_no]
        if d.terms.kind is DocumentKind.BALANCE:
            continue  # no ledger debit of its own: its debt is the unbilled debt written off below
        entries.append(LedgerEntry(seq, organization_id, currency, today, EntryKind.WRITE_OFF, d.open_minor,
                                   str(d.terms.invoice_number), f"Written off: {reason}"))
        seq += 1
    balance = account.balances.get(organization_id, 0) + sum(e.amount_minor for e in entries)
    new = replace(account, open_demands=demands, balances={**account.balances, organization_id: balance})
    debt = new.unbilled_debt(organization_id)
    if debt:
        entries.append(LedgerEntry(seq, organization_id, currency, today, EntryKind.WRITE_OFF, debt, "balance",
                                   f"Written off: {reason}"))
        seq += 1
        balance += debt
    if not entries:
        return Changes(account)
    amount = sum(e.amount_minor for e in entries)
    new = replace(new, balances={**account.balances, organization_id: balance}, next_ledger_seq=seq)
    event = BalanceWrittenOff(f"write-off.{organization_id}.{account.number}.{account.next_ledger_seq}",
                              account.number, organization_id, amount, reason)
    return Changes(new, ledger=tuple(entries), events=(event,))


@dataclass(frozen=True, slots=True)
class AdditionalInvoice:
    """Manual 7.10: invoice ``lines`` now, due in ``due_days``; ``ref`` names it for ever."""

    organization_id: str
    lines: tuple[InvoiceLine, ...]
    ref: str
    due_days: int


def additional_invoice(account: Account, catalogue: Catalogue, command: AdditionalInvoice, today: date,
                       number: Number) -> Changes:
    """Manual 7.10: a standalone invoice of catalogue products or free lines, issued at once."""
    if not command.lines:
        raise CreditRefused("an additional invoice needs at least one line")
    org = catalogue.organizations.get(command.organization_id)
    if org is None:
        raise CatalogueError(f"unknown organization {command.organization_id!r}")
    draft = InvoiceDraft("", 0, org.id, org.currency, today, today + timedelta(days=command.due_days),
                         command.lines, DocumentKind.ADDITIONAL, f"{account.number}.{command.ref}")
    return issue(account, [draft], {draft.natural_key: number(org.id, draft.natural_key)}, catalogue, today)


def balance_lines(debt_minor: int, charged: Sequence[VatPart]) -> tuple[InvoiceLine, ...]:
    """What a balance invoice bills, traced back: the charges for delivered days it covers,
    one line per VAT rate with their VAT as charged, and what else the ledger holds (unpaid
    reminder fees, less payments and credit: no supply, so no VAT) on a line of its own."""
    lines = summary_lines(charged, "Delivered before the stop")
    rest = debt_minor - sum(p.gross_minor for p in charged)
    if rest:
        text = "Reminder fees and other debt" if rest > 0 else "Less payments and credit on the account"
        lines += (InvoiceLine(text, 1, rest, 0, rest, 0),)
    return lines


@dataclass(frozen=True, slots=True)
class BalanceInvoice:
    """Manual 7.11: invoice what the subscriber owes the organisation that nothing else asks
    for, due in ``due_days``; ``ref`` names it; ``charged``: the delivered days it bills."""

    organization_id: str
    subscription_id: str
    due_days: int
    ref: str
    charged: tuple[VatPart, ...] = ()


def balance_invoice(account: Account, catalogue: Catalogue, command: BalanceInvoice, today: date,
                    number: Number) -> Changes:
    """Manual 7.11: one invoice for the debt left after a stop that nothing else asks for,
    with the VAT breakdown of the ``charged`` delivered days it bills."""
    c = command
    debt = account.unbilled_debt(c.organization_id)
    org = catalogue.organizations[c.organization_id]
    draft = InvoiceDraft(c.subscription_id, 0, org.id, org.currency, today, today + timedelta(days=c.due_days),
                         balance_lines(debt, merge_vat(c.charged)), DocumentKind.BALANCE, f"{account.number}.{c.ref}")
    return issue(account, [draft], {draft.natural_key: number(org.id, draft.natural_key)}, catalogue, today)
