"""Delivery (L7, D3; manual 16 "Invoice, Email, EHF", 6.19 "Send SMS", 7.12 EHF): every
issued document reaches the subscriber once per channel, and the subscriber's delivery
log says how.

The notification worker hands each message of the ``notices`` queue to ``deliver``: an
``InvoiceIssued``, ``CreditNoteIssued``, ``ReminderIssued`` or ``PaymentStopNotice``
event, written to the outbox in the transaction that issued the document (which renders
nothing). ``deliver`` reads the stored document (a point read by its demand number; a
stop notice is made from the event and today's letter), chooses the channel
(``letters.choose_channel``: the subscription's choice, else the organisation's default;
EHF only to an organisation the access point can reach, and only invoices and credit
notes; a reminder or stop notice the dunning process sends by SMS stays SMS) and sends:

* **e-mail**: the PDF attached, a short text and HTML body in the letter's language,
  the subject with the number, from the organisation's contact e-mail (or the configured
  sender);
* **EHF**: the UBL document through the access point; the PDF and the XML are stored too;
* **print**: an item in the day's print queue (the daily print batch merges them);
* **SMS**: a text with a time-limited signed link to the stored PDF.

**Exactly once per document and channel.** Each (document, channel, attempt) has a row in
the subscriber's delivery log (``DeliveryLog``), *claimed by create* before anything is
sent: the first handler of a message creates the row (status ``queued``) and sends; a
redelivered or concurrent copy of the message finds the row and sends nothing (a row
that failed finds its print fallback done, or does it). The channel is chosen again on
each handling, so a subscriber who changed channel between two deliveries of the same
message gets the document by the new channel too: once per channel. A copy that
finds the row ``queued`` while its claim is fresh (another handler is sending now) waits
up to ``WAIT`` for it to finish, and if it has not, raises ``DeliveryInProgress`` (a
transient failure: the bus tries the message again later). A handler whose send fails
releases its claim before it raises, so the redelivery takes the row at once; a claim
older than ``LEASE`` belongs to a handler that died and is taken over. Taking a row is an
update under its ETag: of two takers one wins.

If the process dies *after* the provider accepted the mail and *before* the row says
``sent``, the mail is sent again when the message is redelivered: delivery is at least
once in that window only. The repeat carries the same ``Message-ID`` (and, on ACS,
the same operation id), so mail clients and ACS recognise it as the same message; an EHF
file of the same name is never written twice; a print item or SMS file of the same key is
the same item.

**Failures.** A mail refused for good (SMTP 5xx, an invalid address, ACS refusing it) is
marked ``failed`` and the document goes to print (the channel of last resort: a second
row, channel ``print``), and customer service sees it: the log row's status and reason,
and a row in the attention list (run ``delivery``, resolved when a resend gets through).
A passing failure (the SMTP server down, a 4xx, a timeout) raises, and the bus delivers
the message again; on the message's ``MAIL_ATTEMPTS``-th delivery (below the queues'
max delivery count: 5 on the local host, 10 on Service Bus) it falls back to print
instead of being dead-lettered. A bounce reported later (``bounced``) does the same.
Anything else that cannot succeed (a message naming no document we have, a channel
without an address) is recorded as needing attention and its message completes, so one
bad message never blocks the queue (``isolation``).

``resend`` (customer service) delivers a document again, synchronously, as a new
attempt (attempt + 1) on the channel given or chosen, to the address given if any;
``log`` reads the delivery log.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from ..adapters.bus import event_of
from ..adapters.codec import dumps
from ..documents.ehf import can_be_ehf, render_ehf, why_not_ehf
from ..domain.account import Account
from ..domain.calendar import local_date
from ..domain.catalogue import Catalogue, Channel, Organization
from ..domain.documents import (
    Document,
    Kind,
    credit_note_document_id,
    invoice_document_id,
    of_stop_notice,
    reminder_document_id,
)
from ..domain.events import CreditNoteIssued, Event, InvoiceIssued, PaymentStopNotice, ReminderIssued
from ..domain.letters import choose_channel
from ..ports import (
    Attachment,
    BusMessage,
    ConcurrencyConflict,
    Delivery,
    DeliveryStatus,
    Mail,
    MailRefused,
    MailUnavailable,
    NotFound,
    Notice,
    PrintItem,
    Unavailable,
    transient,
)
from . import documents, notices
from .context import Context
from .documents import (
    NoEhfForm,
    documents_in,
    invoice_document,
    letter_of,
)
from .isolation import reason, record

logger = logging.getLogger(__name__)
TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")

DELIVERY_RUN = "notice"  # attention rows: a delivery that failed, or a message that could not be handled
LEASE = timedelta(seconds=60)  # a claim older than this belongs to a handler that died (sends time out at 20 s)
WAIT = 5.0  # seconds a copy of a message waits for the handler that holds the claim
LINK_VALID = timedelta(days=7)  # how long an SMS link reads the PDF (a user-delegation SAS lives 7 days at most)
MAIL_ATTEMPTS = 5  # the message delivery on which a mail that cannot get through goes to print instead
PDF = "application/pdf"
FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


class DeliveryInProgress(Unavailable):
    """Another handler holds the claim on this delivery and has not finished: try later."""


class DeliveryFailed(Exception):
    """What customer service is shown for a document that did not get through by its channel."""


class NoRecipient(ValueError):
    """The chosen channel has no address to send to (no e-mail, no phone)."""


@dataclass(frozen=True)
class Found:
    """A stored document with what choosing its channel needs."""

    document: Document
    account: Account
    organization: Organization
    subscription_id: str | None


# ---- the worker's use case -----------------------------------------------------------------------


def deliver(ctx: Context, message_id: str, body: dict[str, Any], delivery_count: int = 1) -> list[Delivery] | None:
    """Deliver the document of one ``notices`` message (see the module docstring); the rows
    written or found. A failure a retry will not change is recorded as needing attention for
    its subscriber and None returned, so the message completes; a passing one raises."""
    try:
        return _deliver(ctx, message_id, body, delivery_count >= MAIL_ATTEMPTS)
    except Exception as exc:
        tenant, number = body.get("tenant"), (body.get("payload") or {}).get("subscriber_no")
        if transient(exc) or not (isinstance(tenant, str) and TENANT.match(tenant) and isinstance(number, int)):
            raise
        record(ctx, tenant, DELIVERY_RUN, number, ctx.clock.now().date(), exc, ref=message_id)
        return None


def _deliver(ctx: Context, message_id: str, body: dict[str, Any], last: bool) -> list[Delivery]:
    if "tenant" not in body or "subscriber_no" not in (body.get("payload") or {}):
        raise KeyError("a notices message names its tenant and subscriber")  # for the poison queue
    event = event_of(BusMessage(message_id, body))
    if not isinstance(event, (InvoiceIssued, CreditNoteIssued, ReminderIssued, PaymentStopNotice)):
        return []  # not a document
    tenant = body["tenant"]
    found = _found(ctx, tenant, event)
    channel, to = route(ctx, tenant, found, _event_channel(event), _event_to(event))
    return _send_once(ctx, tenant, found, channel, to, 1, last)  # handled before: its row says so


def _event_channel(event: Event) -> str | None:
    return str(event.channel) if isinstance(event, (ReminderIssued, PaymentStopNotice)) else None


def _event_to(event: Event) -> str:
    return event.to if isinstance(event, (ReminderIssued, PaymentStopNotice)) else ""


def _resume(ctx: Context, tenant: str, found: Found, rows: list[Delivery], last: bool) -> list[Delivery]:
    out: list[Delivery] = []
    for row in rows:
        if row.status is DeliveryStatus.QUEUED:
            out += _send_once(ctx, tenant, found, Channel(row.channel), row.recipient, row.attempt, last)
        elif row.status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED) and row.channel != Channel.PRINT:
            out += [row, *_fall_back(ctx, tenant, found, row)]
        else:
            out.append(row)
    return _unique(out)


def _unique(rows: list[Delivery]) -> list[Delivery]:
    seen: dict[tuple[str, int], Delivery] = {}
    for row in rows:
        seen[(row.channel, row.attempt)] = row
    return list(seen.values())


# ---- customer service --------------------------------------------------------------------------


def resend(ctx: Context, tenant: str, subscriber_no: int, document_id: str, channel: Channel | str | None = None,
           to: str | None = None) -> Delivery:
    """Deliver a document again as a new attempt (the document's last attempt + 1) on
    ``channel`` (else the one chosen now), to ``to`` if given (else the subscriber's
    address); synchronous. A mail refused for good falls back to print, as a first delivery
    does; the row of the new attempt is returned."""
    found = _found_by_id(ctx, tenant, subscriber_no, document_id)
    rows = ctx.deliveries.list(tenant, subscriber_no, document_id)
    attempt = max((d.attempt for d in rows), default=0) + 1
    if channel is None:
        chosen, address = route(ctx, tenant, found, None, "")
    else:
        chosen, address = Channel(channel), _address(found, Channel(channel), "")
    not_ehf = why_not_ehf(found.document) if chosen is Channel.EHF else None
    if not_ehf is not None:  # refused before a row is claimed: a claimed row would stay queued
        raise NoEhfForm(f"document {document_id} has no EHF form: {not_ehf}")
    if chosen in (Channel.EMAIL, Channel.SMS) and not (to or address):  # refused before a row is claimed
        what = "e-mail address" if chosen is Channel.EMAIL else "phone number"
        raise NoRecipient(f"subscriber {subscriber_no} has no {what} to send to: give one")
    done = _send_once(ctx, tenant, found, chosen, to or address, attempt, last=True)
    mine = next(d for d in done if d.attempt == attempt and d.channel == chosen)
    if mine.status is DeliveryStatus.SENT:
        ctx.attention.resolve(tenant, DELIVERY_RUN, subscriber_no, document_id)
    return mine


def log(ctx: Context, tenant: str, subscriber_no: int, document_id: str | None = None) -> list[Delivery]:
    """The subscriber's delivery log (of one document): every attempt on every channel, by
    document, channel and attempt."""
    return ctx.deliveries.list(tenant, subscriber_no, document_id)


def bounced(ctx: Context, tenant: str, subscriber_no: int, document_id: str, attempt: int, why: str) -> list[Delivery]:
    """A mail the provider accepted came back (a bounce or an ACS delivery report): the
    row becomes ``bounced`` and the document goes to print, once."""
    row = ctx.deliveries.get(tenant, subscriber_no, document_id, Channel.EMAIL, attempt)
    if row is None:
        raise NotFound(f"subscriber {subscriber_no} has no e-mail delivery {attempt} of {document_id}")
    found = _found_by_id(ctx, tenant, subscriber_no, document_id)
    if row.status is DeliveryStatus.SENT:
        row = ctx.deliveries.update(tenant, subscriber_no, replace(row, status=DeliveryStatus.BOUNCED,
                                                                   at=ctx.clock.now(), reason=why[:300]))
    return [row, *_fall_back(ctx, tenant, found, row)]


# ---- finding the document ------------------------------------------------------------------------


def _organization(catalogue: Catalogue, organization_id: str) -> Organization:
    org = catalogue.organizations.get(organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} is no longer in the catalogue")
    return org


def _found(ctx: Context, tenant: str, event: Event) -> Found:
    """The stored document an event reports, read by its key (one point read)."""
    assert isinstance(event, (InvoiceIssued, CreditNoteIssued, ReminderIssued, PaymentStopNotice))
    catalogue = ctx.catalogue.get(tenant)
    org = _organization(catalogue, event.organization_id)
    if isinstance(event, InvoiceIssued) and event.demand_no:  # the most frequent: account and invoice in one read
        loaded, invoice = ctx.accounts.load_with_invoice(tenant, event.subscriber_no, event.demand_no)
        if loaded is None:
            raise NotFound(f"subscriber {event.subscriber_no}")
        if invoice is not None:
            d = invoice.draft
            return Found(invoice_document(loaded.account, catalogue, invoice), loaded.account,
                         _organization(catalogue, d.organization_id), d.subscription_id)
    account = documents.account_of(ctx, tenant, event.subscriber_no)
    if isinstance(event, PaymentStopNotice):
        return _stop_notice(ctx, tenant, account, catalogue, org, event)
    if isinstance(event, InvoiceIssued) and event.demand_no:
        return _found_by_id(ctx, tenant, account.number, invoice_document_id(event.demand_no), account, catalogue)
    if isinstance(event, ReminderIssued) and event.demand_no:
        return _found_by_id(ctx, tenant, account.number, reminder_document_id(event.demand_no), account, catalogue)
    if isinstance(event, CreditNoteIssued):
        return _found_by_id(ctx, tenant, account.number, credit_note_document_id(event.credit_note_number), account,
                            catalogue)
    return _found_in_history(ctx, tenant, account, catalogue, event)  # sent before events named the demand


def _found_in_history(ctx: Context, tenant: str, account: Account, catalogue: Catalogue, event: Event) -> Found:
    """An event written before it carried its demand number: its document found among the
    subscriber's documents (one query) by invoice number (and reminder step)."""
    history = ctx.accounts.documents(tenant, account.number)
    for doc in documents_in(account, catalogue, history):
        if isinstance(event, InvoiceIssued) and doc.kind.is_invoice and doc.number == event.invoice_number:
            return _found_by_id(ctx, tenant, account.number, doc.id, account, catalogue)
        if (isinstance(event, ReminderIssued) and doc.kind is Kind.REMINDER
                and doc.invoice_number == event.invoice_number and doc.reminder_step == event.step):
            return _found_by_id(ctx, tenant, account.number, doc.id, account, catalogue)
    raise NotFound(f"subscriber {account.number} has no document for event {event.id}")


def _stop_notice(ctx: Context, tenant: str, account: Account, catalogue: Catalogue, org: Organization,
                 event: PaymentStopNotice) -> Found:
    """A stop notice is no stored demand: it is made from its event and today's letter,
    and kept as a file (``.json``) so a resend says the same."""
    demand = next((d for d in account.open_demands.values() if d.terms.invoice_number == event.invoice_number), None)
    subscription_id = demand.terms.subscription_id if demand else None
    letter = letter_of(account, catalogue, org.id, subscription_id or "", None)
    document = of_stop_notice(event, letter)
    ctx.document_files.put(tenant, account.number, document.id, "json", dumps(document).encode(),
                           "application/json")
    return Found(document, account, org, subscription_id)


def _found_by_id(ctx: Context, tenant: str, subscriber_no: int, document_id: str, account: Account | None = None,
                 catalogue: Catalogue | None = None) -> Found:
    account = account or documents.account_of(ctx, tenant, subscriber_no)
    catalogue = catalogue or ctx.catalogue.get(tenant)
    found = documents.find(ctx, tenant, account, catalogue, document_id)
    return Found(found.document, account, _organization(catalogue, found.organization_id), found.subscription_id)


# ---- choosing the channel ------------------------------------------------------------------------


def ehf_scheme(country: str) -> str:
    """The PEPPOL endpoint scheme of an organisation number: 0007 in Sweden, 0192 in Norway."""
    return "0007" if country == "SE" else "0192"


def route(ctx: Context, tenant: str, found: Found, event_channel: str | None, event_to: str) -> tuple[Channel, str]:
    """The channel a document goes by, and to which address."""
    account, org, document = found.account, found.organization, found.document
    if document.kind in (Kind.REMINDER, Kind.STOP_NOTICE) and event_channel == Channel.SMS:
        return Channel.SMS, event_to or account.subscriber.phone or ""
    subscriber = account.subscriber
    orgnr = subscriber.organization_number
    can_receive = bool(org.ehf_enabled and orgnr and can_be_ehf(document)
                       and ctx.access_point.can_receive(tenant, ehf_scheme(subscriber.country), orgnr))
    channel = choose_channel(org, subscriber, account.subscriptions.get(found.subscription_id or ""), can_receive)
    return channel, _address(found, channel, event_to if event_channel == Channel.EMAIL else "")


def _address(found: Found, channel: Channel, given: str) -> str:
    subscriber = found.account.subscriber
    if channel is Channel.EMAIL:
        return given or subscriber.email
    if channel is Channel.SMS:
        return given or subscriber.phone or ""
    if channel is Channel.EHF:
        return f"{ehf_scheme(subscriber.country)}:{subscriber.organization_number or ''}"
    buyer = found.document.letter.buyer
    return ", ".join(p for p in (buyer.name, buyer.address, " ".join(filter(None, (buyer.postal_code, buyer.city))))
                     if p)


# ---- sending once --------------------------------------------------------------------------------


def _send_once(ctx: Context, tenant: str, found: Found, channel: Channel, to: str, attempt: int,
               last: bool) -> list[Delivery]:
    """Claim the row of (document, channel, attempt) and send, unless another handler has.
    A handler that fails after claiming releases its claim before it raises."""
    now = ctx.clock.now()
    number, document = found.account.number, found.document
    row, fresh = ctx.deliveries.claim(tenant, number, Delivery(document.id, channel, attempt, DeliveryStatus.QUEUED,
                                                               now, to, claimed_at=now))
    if not fresh:
        row = _take(ctx, tenant, number, row)
        if row.status in FINAL:
            return _resume(ctx, tenant, found, [row], last) if row.status is not DeliveryStatus.SENT else [row]
    try:
        return _send_row(ctx, tenant, found, row, last)
    except Exception:
        _release(ctx, tenant, number, row)
        raise


def _send_row(ctx: Context, tenant: str, found: Found, row: Delivery, last: bool) -> list[Delivery]:
    """Send the claimed row's document by its channel and record how it went."""
    channel = Channel(row.channel)
    try:
        provider_id = _send(ctx, tenant, found, channel, row.recipient, row.attempt)
    except MailRefused as exc:
        return _failed(ctx, tenant, found, row, exc)
    except MailUnavailable as exc:
        if last:
            return _failed(ctx, tenant, found, row, exc)
        raise  # the bus delivers the message again
    except NoRecipient as exc:
        if channel is Channel.PRINT:
            raise
        return _failed(ctx, tenant, found, row, exc)
    except Exception as exc:  # a document that cannot be made (rendered, addressed) by this channel
        if transient(exc):
            raise
        return _failed(ctx, tenant, found, row, exc)
    # a failure to record is a mail sent and not recorded: the redelivery sends it again (the same Message-ID)
    sent = ctx.deliveries.update(tenant, found.account.number, replace(
        row, status=DeliveryStatus.SENT, at=ctx.clock.now(), provider_id=provider_id))
    logger.info("document %s of subscriber %s delivered by %s (attempt %s)", row.document_id, found.account.number,
                channel, row.attempt)
    return [sent]


def _release(ctx: Context, tenant: str, subscriber_no: int, row: Delivery) -> None:
    """Give the claim up (this handler failed and raises): the redelivered message takes the
    row at once instead of waiting out the lease. If even this fails, the lease runs out."""
    try:
        ctx.deliveries.update(tenant, subscriber_no, replace(row, claimed_at=None))
    except Exception:
        logger.warning("could not release the claim on %s of subscriber %s", row.document_id, subscriber_no)


def _take(ctx: Context, tenant: str, subscriber_no: int, row: Delivery) -> Delivery:
    """A row someone claimed before: as it ends (sent, failed) if its handler finishes within
    ``WAIT``; taken if its handler released it (it failed and raised) or its claim is older
    than ``LEASE`` (it died); else ``DeliveryInProgress``."""
    deadline = time.monotonic() + WAIT
    while True:
        if row.status in FINAL:
            return row
        now = ctx.clock.now()
        if row.claimed_at is None or now - row.claimed_at > LEASE:  # released, or its holder died
            try:
                return ctx.deliveries.update(tenant, subscriber_no, replace(row, claimed_at=now))
            except ConcurrencyConflict:
                pass  # another handler took it over first: see what it does
        elif time.monotonic() > deadline:
            raise DeliveryInProgress(f"delivery of {row.document_id} by {row.channel} is being sent by another "
                                     "handler")
        else:
            time.sleep(0.05)
        again = ctx.deliveries.get(tenant, subscriber_no, row.document_id, row.channel, row.attempt)
        if again is None:
            raise ConcurrencyConflict(f"delivery row of {row.document_id} vanished")
        row = again


def _failed(ctx: Context, tenant: str, found: Found, row: Delivery, exc: Exception) -> list[Delivery]:
    why = reason(exc)
    failed = ctx.deliveries.update(tenant, found.account.number,
                                   replace(row, status=DeliveryStatus.FAILED, at=ctx.clock.now(), reason=why))
    logger.warning("document %s of subscriber %s not delivered by %s: %s", row.document_id, found.account.number,
                row.channel, why)
    return [failed, *_fall_back(ctx, tenant, found, failed)]


def _fall_back(ctx: Context, tenant: str, found: Found, failed: Delivery) -> list[Delivery]:
    """A failed or bounced delivery: the document goes to print (once per attempt), and
    customer service is told (an attention row for the subscriber, ref the document)."""
    number = found.account.number
    if failed.channel == Channel.PRINT:  # the channel of last resort: nothing to fall back to, a person must look
        record(ctx, tenant, DELIVERY_RUN, number, ctx.clock.now().date(),
               DeliveryFailed(f"print delivery of {failed.document_id} failed: {failed.reason}"),
               ref=failed.document_id)
        return []
    printed = ctx.deliveries.get(tenant, number, failed.document_id, Channel.PRINT, failed.attempt)
    if printed is not None and printed.status in FINAL:
        return [printed]  # fallen back before (a redelivered message): told before
    record(ctx, tenant, DELIVERY_RUN, number, ctx.clock.now().date(),
           DeliveryFailed(f"{failed.channel} delivery of {failed.document_id} {failed.status}: {failed.reason}; "
                          "sent to print"), ref=failed.document_id)
    return _send_once(ctx, tenant, found, Channel.PRINT, _address(found, Channel.PRINT, ""), failed.attempt,
                      last=True)


# ---- the channels --------------------------------------------------------------------------------


def _send(ctx: Context, tenant: str, found: Found, channel: Channel, to: str, attempt: int) -> str:
    """Send by one channel; the provider's id of what was sent."""
    if channel is Channel.EMAIL:
        return _email(ctx, tenant, found, to, attempt)
    if channel is Channel.SMS:
        return _sms(ctx, tenant, found, to, attempt)
    if channel is Channel.EHF:
        return _ehf(ctx, tenant, found)
    return _print(ctx, tenant, found)


def pdf_of(ctx: Context, tenant: str, found: Found) -> bytes:
    return documents.render(ctx, tenant, found.document)


def message_id(tenant: str, subscriber_no: int, document_id: str, attempt: int) -> str:
    """The Message-ID of a document's mail: the same for a repeat of the same attempt."""
    return f"<{document_id}.{attempt}.{subscriber_no}.{tenant}@abonno>"


def _email(ctx: Context, tenant: str, found: Found, to: str, attempt: int) -> str:
    if not to or "@" not in to:
        raise NoRecipient(f"subscriber {found.account.number} has no e-mail address")
    document = found.document
    text = notices.mail(document)
    branding = document.letter.seller.branding
    pdf = pdf_of(ctx, tenant, found)
    sender = branding.contact_email or ctx.mail_sender
    mail = Mail(message_id(tenant, found.account.number, document.id, attempt), sender, to, text.subject,
                text.text, text.html, (Attachment(f"{document.id}.pdf", PDF, pdf),),
                sender_name=document.letter.seller.party.name, reply_to=branding.contact_email or "")
    return ctx.mailer.send(mail)


def _sms(ctx: Context, tenant: str, found: Found, to: str, attempt: int) -> str:
    if not to:
        raise NoRecipient(f"subscriber {found.account.number} has no phone number")
    number, document = found.account.number, found.document
    ctx.document_files.put(tenant, number, document.id, "pdf", pdf_of(ctx, tenant, found), PDF)
    link = ctx.document_files.link(tenant, number, document.id, "pdf", LINK_VALID)
    notice_id = f"{number:010d}-{document.id}-sms-{attempt}"
    ctx.notifier.send(Notice(notice_id, tenant, Channel.SMS.value, to, notices.what(document),
                             notices.sms(document, link), document.letter.seller.party.name,
                             _day(ctx, found).isoformat()))
    return notice_id


def _ehf(ctx: Context, tenant: str, found: Found) -> str:
    number, document = found.account.number, found.document
    pdf = pdf_of(ctx, tenant, found)
    ubl = render_ehf(document, pdf)
    ctx.document_files.put(tenant, number, document.id, "pdf", pdf, PDF)
    ctx.document_files.put(tenant, number, document.id, "xml", ubl, "application/xml")
    return ctx.access_point.send(tenant, _day(ctx, found), f"{number:010d}-{document.id}.xml", ubl)


def _print(ctx: Context, tenant: str, found: Found) -> str:
    number, document = found.account.number, found.document
    ctx.document_files.put(tenant, number, document.id, "pdf", pdf_of(ctx, tenant, found), PDF)
    buyer = document.letter.buyer
    day = _day(ctx, found)
    ctx.print_queue.add(tenant, day, PrintItem(found.organization.id, number, document.id, buyer.postal_code or "",
                                               buyer.name))
    return f"print/{tenant}/{day.isoformat()}"


def _day(ctx: Context, found: Found) -> date:
    return local_date(ctx.clock.now(), found.organization.time_zone)
