"""Documents (L7) as stored: find a subscriber's documents and make each a ``Document``.

A document is made from its stored demand (the invoice, credit note or reminder row) and
the ``Letter`` stored with it. A demand issued before letters were stored has none; its
letter is made from the catalogue and the subscriber as they are now (``letter_of``),
the only case where a document can read differently later.

``preview`` is the next invoice of a subscription as the invoice run would issue it
today (manual: "invoice preview"), from the same draft (``account.next_drafts``), with
no number, KID or demand yet.
"""

from __future__ import annotations

from ..domain.account import Account, ReminderDocument, next_drafts
from ..domain.catalogue import Catalogue
from ..domain.documents import (
    Document,
    of_credit_note,
    of_invoice,
    of_reminder,
)
from ..domain.invoicing import CreditNote, Invoice
from ..domain.letters import Letter
from ..ports import History, NotFound
from .context import Context


def letter_of(account: Account, catalogue: Catalogue, organization_id: str, subscription_id: str,
              stored: Letter | None) -> Letter:
    """The letter stored with a demand, or (issued before letters were stored) today's."""
    if stored is not None:
        return stored
    org = catalogue.organizations.get(organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} of a document is no longer in the catalogue")
    return account.letter(org, account.subscriptions.get(subscription_id))


def invoice_document(account: Account, catalogue: Catalogue, invoice: Invoice) -> Document:
    d = invoice.draft
    return of_invoice(invoice, letter_of(account, catalogue, d.organization_id, d.subscription_id, invoice.letter))


def credit_note_document(account: Account, catalogue: Catalogue, note: CreditNote,
                         invoice: Invoice | None) -> Document:
    letter = letter_of(account, catalogue, note.organization_id, note.subscription_id, note.letter)
    return of_credit_note(note, letter, invoice)


def reminder_document(account: Account, catalogue: Catalogue, doc: ReminderDocument,
                      invoice: Invoice | None) -> Document:
    letter = letter_of(account, catalogue, doc.organization_id, doc.subscription_id, doc.letter)
    return of_reminder(doc.reminder, doc.invoice_number, doc.currency, letter, invoice)


def documents_in(account: Account, catalogue: Catalogue, history: History) -> list[Document]:
    """Every stored document of a subscriber, in the order issued (invoices, then the
    credit notes and reminders that refer to them)."""
    by_number = {i.number: i for i in history.invoices}
    out = [invoice_document(account, catalogue, i) for i in history.invoices]
    out += [credit_note_document(account, catalogue, c, by_number.get(c.invoice_number))
            for c in history.credit_notes]
    out += [reminder_document(account, catalogue, r, by_number.get(r.invoice_number)) for r in history.reminders]
    return out


def _account(ctx: Context, tenant: str, subscriber_no: int) -> Account:
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    return loaded.account


def documents(ctx: Context, tenant: str, subscriber_no: int) -> list[Document]:
    """A subscriber's documents (two queries: the partition's head and its history)."""
    account = _account(ctx, tenant, subscriber_no)
    return documents_in(account, ctx.catalogue.get(tenant), ctx.accounts.documents(tenant, subscriber_no))


def document(ctx: Context, tenant: str, subscriber_no: int, document_id: str) -> Document:
    """One stored document by its id (``inv-…``, ``crn-…``, ``rem-…``); ``NotFound`` if none."""
    account = _account(ctx, tenant, subscriber_no)
    catalogue = ctx.catalogue.get(tenant)
    kind, _, key = document_id.partition("-")
    if kind == "inv" and key.isdigit():
        invoice = ctx.accounts.invoice(tenant, subscriber_no, int(key))
        if invoice is not None:
            return invoice_document(account, catalogue, invoice)
    elif kind == "rem" and key.isdigit():
        reminder = ctx.accounts.reminder(tenant, subscriber_no, int(key))
        if reminder is not None:
            invoice = ctx.accounts.invoice(tenant, subscriber_no, reminder.invoice_demand_no)
            return reminder_document(account, catalogue, reminder, invoice)
    elif kind == "crn" and key.isdigit():
        history = ctx.accounts.documents(tenant, subscriber_no)
        for found in documents_in(account, catalogue, history):
            if found.id == document_id:
                return found
    raise NotFound(f"subscriber {subscriber_no} has no document {document_id}")


def preview(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str) -> Document:
    """The next invoice of a subscription before it is issued: the draft the invoice run
    would issue, as a document without number, KID or demand (they are given at issue)."""
    account = _account(ctx, tenant, subscriber_no)
    catalogue = ctx.catalogue.get(tenant)
    draft = next((d for d in next_drafts(account, catalogue) if d.subscription_id == subscription_id), None)
    if draft is None:
        raise NotFound(f"subscription {subscription_id} of subscriber {subscriber_no} has no next invoice")
    org = catalogue.organizations[draft.organization_id]
    letter = account.letter(org, account.subscriptions.get(subscription_id))
    return of_invoice(Invoice(0, 0, "", draft, 0, letter), letter)
