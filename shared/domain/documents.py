"""Documents (L7): what a subscriber receives for every demand, as data.

Every demand has a document: an invoice (a subscription period, an additional invoice,
a balance invoice), a credit note (referring to the invoice it credits), a reminder
(its own KID and fee, referring to the original invoice) and the "payment stop in N
days" notice. A ``Document`` is made from the stored demand alone (``of_invoice``,
``of_credit_note``, ``of_reminder``, ``of_stop_notice``); the renderers
(``shared.documents``: PDF, EHF) turn it into bytes and read nothing else, so the same
stored demand and template version give the same bytes years later.

What a document says besides the demand (who sells, to whom, in which language, how
it is paid) is the ``Letter`` stored on the demand when it was issued (``letters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .dunning import Reminder
from .events import PaymentStopNotice
from .invoicing import CreditNote, DocumentKind, Invoice, InvoiceLine, vat_parts
from .ledger import VatPart
from .letters import Letter


class Kind(StrEnum):
    INVOICE = "invoice"
    ADDITIONAL = "additional"  # manual 7.10
    BALANCE = "balance"  # manual 7.11
    CREDIT_NOTE = "credit_note"  # manual 7.15
    REMINDER = "reminder"  # manual 7.9
    STOP_NOTICE = "stop_notice"  # manual 7.7 / 6.19: "payment stop in N days"

    @property
    def is_invoice(self) -> bool:
        return self in (Kind.INVOICE, Kind.ADDITIONAL, Kind.BALANCE)


@dataclass(frozen=True, slots=True)
class Document:
    """One document as its renderers see it: every figure it shows is here."""

    id: str  # unique in the subscriber's partition: names the delivery log and the files
    kind: Kind
    number: int  # the invoice or credit note number; a reminder and a notice show their invoice's
    issue_date: date
    currency: str
    letter: Letter
    lines: tuple[InvoiceLine, ...] = ()
    vat: tuple[VatPart, ...] = ()
    total_minor: int = 0  # gross, VAT included (negative on a credit note as the lines are)
    credit_applied_minor: int = 0  # paid from the subscriber's balance (ledger billing)
    amount_due_minor: int = 0  # what the payment part asks for
    due_date: date | None = None
    kid: str = ""
    period: tuple[date, date] | None = None  # first and last day delivered
    invoice_number: int | None = None  # the invoice a credit note, reminder or notice refers to
    invoice_issue_date: date | None = None
    reason: str = ""  # of a credit note
    reminder_step: int = 0
    fee_minor: int = 0  # a reminder's fee
    stop_date: date | None = None  # a stop notice's

    @property
    def vat_minor(self) -> int:
        return sum(p.vat_minor for p in self.vat)

    @property
    def net_minor(self) -> int:
        return self.total_minor - self.vat_minor


INVOICE_KINDS = {DocumentKind.SUBSCRIPTION: Kind.INVOICE, DocumentKind.ADDITIONAL: Kind.ADDITIONAL,
                 DocumentKind.BALANCE: Kind.BALANCE}


def invoice_document_id(demand_no: int) -> str:
    return f"inv-{demand_no:08d}"


def credit_note_document_id(number: int) -> str:
    return f"crn-{number:010d}"


def reminder_document_id(demand_no: int) -> str:
    return f"rem-{demand_no:08d}"


def stop_notice_document_id(invoice_number: int) -> str:
    return f"stp-{invoice_number:010d}"


def of_invoice(invoice: Invoice, letter: Letter) -> Document:
    d = invoice.draft
    span = d.span
    return Document(invoice_document_id(invoice.demand_no), INVOICE_KINDS[d.kind], invoice.number, d.issue_date,
                    d.currency, letter, d.lines, vat_parts(d.lines), d.total_minor, invoice.credit_applied_minor,
                    invoice.amount_due_minor, d.due_date, invoice.kid,
                    (span[0], span[1].fromordinal(span[1].toordinal() - 1)) if span else None)


def of_credit_note(note: CreditNote, letter: Letter, invoice: Invoice | None = None) -> Document:
    """A credit note: its lines are the credited invoice's, negated; nothing is to be paid."""
    return Document(credit_note_document_id(note.number), Kind.CREDIT_NOTE, note.number, note.issue_date,
                    note.currency, letter, note.lines, note.vat, -note.total_minor,
                    invoice_number=note.invoice_number,
                    invoice_issue_date=invoice.draft.issue_date if invoice else None, reason=note.reason)


def of_reminder(reminder: Reminder, invoice_number: int, currency: str, letter: Letter,
                invoice: Invoice | None = None) -> Document:
    """A reminder: a demand of its own (its KID and due date) for what is still owed on
    its invoice, the reminder fee included; it names the original invoice."""
    return Document(reminder_document_id(reminder.demand_no), Kind.REMINDER, invoice_number, reminder.produced,
                    currency, letter, total_minor=reminder.amount_minor, amount_due_minor=reminder.amount_minor,
                    due_date=reminder.due_date, kid=reminder.kid, invoice_number=invoice_number,
                    invoice_issue_date=invoice.draft.issue_date if invoice else None,
                    reminder_step=reminder.step, fee_minor=reminder.fee_minor)


def of_stop_notice(notice: PaymentStopNotice, letter: Letter) -> Document:
    """"Payment stop in N days" (manual 7.7): what is owed, how to pay it, and the stop date."""
    return Document(stop_notice_document_id(notice.invoice_number), Kind.STOP_NOTICE, notice.invoice_number,
                    notice.day, notice.currency, letter, total_minor=notice.owed_minor,
                    amount_due_minor=notice.owed_minor, due_date=notice.stop_date, kid=notice.kid,
                    invoice_number=notice.invoice_number, stop_date=notice.stop_date)
