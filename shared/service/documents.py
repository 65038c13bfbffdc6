"""Documents (L7) as stored: find a subscriber's documents and make each a ``Document``.

A document is made from its stored demand (the invoice, credit note or reminder row) and
the ``Letter`` stored with it. A demand issued before letters were stored has none; its
letter is made from the catalogue and the subscriber as they are now (``letter_of``),
the only case where a document can read differently later.

``preview`` is the next invoice of a subscription as the invoice run would issue it
(manual: "invoice preview"), from the same draft (``account.next_drafts``) and with the
credit the run would apply (``account.issue`` run on it, nothing committed), with no
number or KID yet.

The merchant API's reads: ``listing`` (each document with the channel it goes by and
its delivery log), ``pdf`` (rendered with the organisation's logo, read through the
``DocumentFiles`` port by the name the letter stored), ``ehf`` (the UBL of an invoice or credit
note to an organisation; ``NoEhfForm`` otherwise) and ``preview_pdf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..adapters.codec import loads
from ..documents.ehf import ehf_kinds, render_ehf, why_not_ehf
from ..documents.pdf import render_pdf
from ..domain.account import Account, ReminderDocument, issue, next_drafts
from ..domain.catalogue import Catalogue, Channel
from ..domain.documents import (
    Document,
    of_credit_note,
    of_invoice,
    of_reminder,
)
from ..domain.invoicing import CreditNote, Invoice
from ..domain.letters import Letter, choose_channel
from ..ports import Delivery, History, NotFound
from .context import Context


class NoEhfForm(Exception):
    """The document has no EHF form: EHF is for invoices and credit notes to an
    organisation (an organisation number). Answered 409: the request is fine, the
    document is what it is."""


@dataclass(frozen=True)
class Found:
    """A stored document and what it belongs to (for the channel it goes by)."""

    document: Document
    organization_id: str
    subscription_id: str


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
    return [f.document for f in found_in(account, catalogue, history)]


def found_in(account: Account, catalogue: Catalogue, history: History) -> list[Found]:
    """``documents_in`` with the organisation and subscription of each."""
    by_number = {i.number: i for i in history.invoices}
    out = [Found(invoice_document(account, catalogue, i), i.draft.organization_id, i.draft.subscription_id)
           for i in history.invoices]
    out += [Found(credit_note_document(account, catalogue, c, by_number.get(c.invoice_number)), c.organization_id,
                  c.subscription_id) for c in history.credit_notes]
    out += [Found(reminder_document(account, catalogue, r, by_number.get(r.invoice_number)), r.organization_id,
                  r.subscription_id) for r in history.reminders]
    return out


def account_of(ctx: Context, tenant: str, subscriber_no: int) -> Account:
    """The subscriber's account; ``NotFound`` if there is none."""
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    return loaded.account


def documents(ctx: Context, tenant: str, subscriber_no: int) -> list[Document]:
    """A subscriber's documents (two queries: the partition's head and its history)."""
    account = account_of(ctx, tenant, subscriber_no)
    return documents_in(account, ctx.catalogue.get(tenant), ctx.accounts.documents(tenant, subscriber_no))


def document(ctx: Context, tenant: str, subscriber_no: int, document_id: str) -> Document:
    """One stored document by its id (``inv-…``, ``crn-…``, ``rem-…``, ``stp-…``); ``NotFound`` if none."""
    return find(ctx, tenant, account_of(ctx, tenant, subscriber_no), ctx.catalogue.get(tenant), document_id).document


def find(ctx: Context, tenant: str, account: Account, catalogue: Catalogue, document_id: str) -> Found:
    """A stored document of ``account`` by its id, with its organisation and subscription:
    a point read for an invoice or a reminder (and its invoice), the history for a credit
    note, the kept file for a stop notice; ``NotFound`` if none."""
    n = account.number
    kind, _, key = document_id.partition("-")
    if kind == "inv" and key.isdigit():
        invoice = ctx.accounts.invoice(tenant, n, int(key))
        if invoice is not None:
            d = invoice.draft
            return Found(invoice_document(account, catalogue, invoice), d.organization_id, d.subscription_id)
    elif kind == "rem" and key.isdigit():
        reminder = ctx.accounts.reminder(tenant, n, int(key))
        if reminder is not None:
            invoice = ctx.accounts.invoice(tenant, n, reminder.invoice_demand_no)
            return Found(reminder_document(account, catalogue, reminder, invoice), reminder.organization_id,
                         reminder.subscription_id)
    elif kind == "crn" and key.isdigit():
        history = ctx.accounts.documents(tenant, n)
        for found in found_in(account, catalogue, history):
            if found.document.id == document_id:
                return found
    elif kind == "stp" and key.isdigit():
        notice = stop_notice(ctx, tenant, n, document_id)
        invoice = next((i for i in ctx.accounts.documents(tenant, n).invoices if i.number == notice.number),
                       None) if notice is not None else None  # the invoice it is about: its organisation
        if notice is not None and invoice is not None:
            return Found(notice, invoice.draft.organization_id, invoice.draft.subscription_id)
    raise NotFound(f"subscriber {n} has no document {document_id}")


def stop_notice(ctx: Context, tenant: str, subscriber_no: int, document_id: str) -> Document | None:
    """A "payment stop in N days" notice: no demand of its own, so its document is stored
    as it was made when it was delivered (``delivery``); None before that."""
    stored = ctx.document_files.get(tenant, subscriber_no, document_id, "json")
    return loads(Document, stored) if stored is not None else None


def preview(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str) -> Document:
    """The next invoice of a subscription before it is issued: the draft the invoice run
    would issue, issued on paper only (``issue``: the credit it would apply, its letter),
    as a document without number or KID (they are given at issue)."""
    account = account_of(ctx, tenant, subscriber_no)
    catalogue = ctx.catalogue.get(tenant)
    if subscription_id not in account.subscriptions:
        raise NotFound(f"subscriber {subscriber_no} has no subscription {subscription_id}")
    draft = next((d for d in next_drafts(account, catalogue) if d.subscription_id == subscription_id), None)
    if draft is None:
        raise NotFound(f"subscription {subscription_id} of subscriber {subscriber_no} has no next invoice")
    # the draft carries the pending corrections already: ``issue`` must not add them again
    issued = issue(replace(account, corrections=()), [draft], {draft.natural_key: 0}, catalogue, draft.issue_date)
    invoice = replace(issued.invoices[0], kid="")
    assert invoice.letter is not None
    return of_invoice(invoice, invoice.letter)


# ---- the merchant API's reads -------------------------------------------------------------------

def render(ctx: Context, tenant: str, document: Document) -> bytes:
    """The document's PDF, with the logo its letter names (left out if the blob is gone)."""
    name = document.letter.seller.branding.logo_blob
    return render_pdf(document, ctx.document_files.logo(tenant, name) if name else None)


def pdf(ctx: Context, tenant: str, subscriber_no: int, document_id: str) -> bytes:
    return render(ctx, tenant, document(ctx, tenant, subscriber_no, document_id))


def ehf(ctx: Context, tenant: str, subscriber_no: int, document_id: str) -> bytes:
    """The UBL (EHF / PEPPOL BIS Billing 3.0) of an invoice or credit note to an
    organisation, its PDF inside; ``NoEhfForm`` (with the reason) for any other document."""
    found = document(ctx, tenant, subscriber_no, document_id)
    reason = why_not_ehf(found)
    if reason is not None:
        raise NoEhfForm(f"document {document_id} has no EHF form: {reason}")
    return render_ehf(found, render(ctx, tenant, found))


def preview_pdf(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str) -> bytes:
    return render(ctx, tenant, preview(ctx, tenant, subscriber_no, subscription_id))


def channel_of(account: Account, catalogue: Catalogue, found: Found) -> Channel | None:
    """The channel a document goes by as things stand (the access point assumed to take
    EHF where the organisation sends it; a reminder or notice, which has no EHF form, by
    e-mail instead, as ``delivery.route`` does); None once its organisation left the catalogue."""
    org = catalogue.organizations.get(found.organization_id)
    if org is None:
        return None
    channel = choose_channel(org, account.subscriber, account.subscriptions.get(found.subscription_id), True)
    return Channel.EMAIL if channel is Channel.EHF and found.document.kind not in ehf_kinds else channel


def summary(found: Found, channel: Channel | None, deliveries: list[Delivery]) -> dict[str, Any]:
    """One document as the merchant API lists it: its figures, channel and delivery log."""
    d = found.document
    return {"id": d.id, "kind": d.kind.value, "number": d.number, "issue_date": d.issue_date.isoformat(),
            "due_date": d.due_date.isoformat() if d.due_date else None, "currency": d.currency,
            "total_minor": d.total_minor, "amount_due_minor": d.amount_due_minor, "kid": d.kid or None,
            "invoice_number": d.invoice_number, "organization_id": found.organization_id,
            "subscription_id": found.subscription_id or None,
            "channel": channel.value if channel else None,
            "deliveries": [delivery_json(x) for x in deliveries]}


def delivery_json(row: Delivery) -> dict[str, Any]:
    """A row of the delivery log as the merchant API shows it."""
    return {"channel": str(row.channel), "attempt": row.attempt, "status": row.status.value,
            "at": row.at.isoformat(), "recipient": row.recipient, "provider_id": row.provider_id,
            "reason": row.reason}


def listed(account: Account, catalogue: Catalogue, history: History, log: list[Delivery],
           notices: Mapping[str, Document] | None = None) -> list[dict[str, Any]]:
    """Every document of a subscriber with its channel and its rows of the delivery ``log``
    (the channel is the first delivery's, once there is one), and the stop ``notices``
    delivered (they have no demand: found by the log)."""
    by_document: dict[str, list[Delivery]] = {}
    for row in sorted(log, key=lambda r: (r.attempt, r.at)):  # oldest first: the first is the chosen channel
        by_document.setdefault(row.document_id, []).append(row)
    found = found_in(account, catalogue, history)
    invoices = {i.number: i.draft for i in history.invoices}
    for notice in (notices or {}).values():
        draft = invoices.get(notice.number)
        found.append(Found(notice, draft.organization_id if draft else "", draft.subscription_id if draft else ""))
    out = []
    for f in found:
        rows = by_document.get(f.document.id, [])
        channel = Channel(rows[0].channel) if rows else channel_of(account, catalogue, f)
        out.append(summary(f, channel, rows))
    return out


def listing(ctx: Context, tenant: str, subscriber_no: int) -> list[dict[str, Any]]:
    """A subscriber's documents with their channel and delivery log."""
    account = account_of(ctx, tenant, subscriber_no)
    history = ctx.accounts.documents(tenant, subscriber_no)
    log = delivery_log(ctx, tenant, subscriber_no)
    return listed(account, ctx.catalogue.get(tenant), history, log, stop_notices(ctx, tenant, subscriber_no, log))


def stop_notices(ctx: Context, tenant: str, subscriber_no: int, log: list[Delivery]) -> dict[str, Document]:
    """The stop notices the log names (one blob read each: a subscriber has few)."""
    ids = sorted({row.document_id for row in log if row.document_id.startswith("stp-")})
    return {i: notice for i in ids if (notice := stop_notice(ctx, tenant, subscriber_no, i)) is not None}


def delivery_log(ctx: Context, tenant: str, subscriber_no: int) -> list[Delivery]:
    """The subscriber's delivery log as ``delivery`` writes it (``delivery.log``, read
    through the port here: ``delivery`` imports this module)."""
    return ctx.deliveries.list(tenant, subscriber_no)
