"""Import a bank file (P1, P2): every payment identified and booked, or set aside.

1. the format is told by the content; the file's control totals are checked before
   anything is booked (a file that fails them books nothing, see the blob trigger);
2. each payment is identified: the organisation by the account paid to, the subscriber
   and demand by decoding the KID with that organisation's scheme;
3. what cannot be identified (unknown account, reference that fails its check digit or
   names no subscriber, wrong currency) goes to *requires processing*, never dropped;
4. identified payments are booked per subscriber in one transaction each
   (``account.receive_payment``), subscribers in parallel.

Idempotent: a payment's id is the file's digest plus the payment's place in the file,
and its row is *created* in the subscriber's partition, so importing a file again, or
finishing an import that died half-way, books nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from stdnum.exceptions import ValidationError

from ..adapters.accounts import partition_key
from ..adapters.codec import dumps, loads, to_jsonable
from ..adapters.tables import ConcurrencyConflict, TooManyEntities, prefix_filter
from ..domain.account import Changes, Event, apply_mandate, receive_payment, refund
from ..domain.catalogue import Catalogue, Organization
from ..domain.ledger import EntryKind
from ..domain.payments import BookedPayment, MatchType, PaymentState, ReceivedPayment
from ..formats import bgmax, ocr_giro
from ..formats.detect import BankFileFormat, detect
from ..formats.payments import IncomingPayment
from .context import Context
from .issuing import publish
from .queries import NotFound

log = logging.getLogger(__name__)
PAYMENTS_PER_COMMIT = 10  # at most ~7 entities each, with room for the subscriber row and outbox
CHUNK = 2000  # payments identified and booked at a time: memory stays flat however long the file


@dataclass
class ImportResult:
    file: str
    format: str
    payments: int = 0
    booked: int = 0
    already_booked: int = 0
    requires_processing: int = 0
    amount_booked_minor: int = 0
    mandates: int = 0
    mandates_unmatched: int = 0
    awaiting_approval: int = 0


def read(data: bytes) -> tuple[BankFileFormat, Iterator[IncomingPayment], list[ocr_giro.MandateRecord]]:
    """The payments (and AvtaleGiro mandates) of a bank file, after its control totals are checked.

    Raises before anything is yielded if the format is unknown or the totals are off.
    BgMax is read as a stream twice (totals, then payments); netsgiro parses an OCR file
    once, whole.
    """
    kind = detect(data)
    if kind is BankFileFormat.BGMAX:
        for _ in bgmax.payments(bgmax.decode_lines([data])):  # pass 1: the totals
            pass
        return kind, bgmax.payments(bgmax.decode_lines([data])), []
    transmission = ocr_giro.read(data.decode("iso-8859-1"))
    return kind, ocr_giro.payments_of(transmission), list(ocr_giro.mandates_of(transmission))


def chunks(items: Iterator[IncomingPayment], size: int) -> Iterator[list[IncomingPayment]]:
    chunk: list[IncomingPayment] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_bank_file(ctx: Context, tenant: str, name: str, data: bytes) -> ImportResult:
    kind, incoming, mandates = read(data)
    digest = hashlib.sha256(data).hexdigest()[:20]
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    result = ImportResult(name, kind.value)
    for chunk in chunks(incoming, CHUNK):
        _import_chunk(ctx, tenant, name, digest, chunk, catalogue, today, result)
    import_mandates(ctx, tenant, mandates, catalogue, today, result)
    log.info("imported %s for %s: %s", name, tenant, result)
    return result


def _import_chunk(ctx: Context, tenant: str, name: str, digest: str, chunk: list[IncomingPayment],
                  catalogue: Catalogue, today: date, result: ImportResult) -> None:
    result.payments += len(chunk)
    by_subscriber: dict[int, list[ReceivedPayment]] = defaultdict(list)
    for payment in chunk:
        pid = f"{digest}.{payment.line_id}"
        identified = identify(catalogue, pid, payment)
        if isinstance(identified, str):
            set_aside(ctx, tenant, pid, payment, identified, name)
            result.requires_processing += 1
        elif catalogue.organizations[identified[1].organization_id].manual_payment_approval:
            await_approval(ctx, tenant, identified[0], identified[1], name)
            result.awaiting_approval += 1
        else:
            by_subscriber[identified[0]].append(identified[1])
    outbox: list[Event] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda item: book(ctx, tenant, item[0], item[1], name, today, outbox),
                                 by_subscriber.items()))
    publish(ctx, tenant, outbox)  # one bus batch per chunk
    for booked, already, aside, amount in outcomes:
        result.booked += booked
        result.already_booked += already
        result.requires_processing += aside
        result.amount_booked_minor += amount


def import_mandates(ctx: Context, tenant: str, mandates: list[ocr_giro.MandateRecord], catalogue: Catalogue,
                    today: date, result: ImportResult) -> None:
    """AvtaleGiro agreement records onto the subscribers' payment agreements (P5)."""
    for record in mandates:
        org = catalogue.organization_by_account(record.payee_account)
        try:
            ref = org.kid.decode(record.kid) if org else None
        except ValidationError:
            ref = None
        if org is None or ref is None or not _apply_mandate(ctx, tenant, ref.subscriber_no, org.id, record, today):
            log.warning("AvtaleGiro mandate %s (KID %s) matches no subscriber", record.line_id, record.kid)
            result.mandates_unmatched += 1
        else:
            result.mandates += 1


def _apply_mandate(ctx: Context, tenant: str, subscriber_no: int, organization_id: str,
                   record: ocr_giro.MandateRecord, today: date) -> bool:
    for _ in range(10):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return False
        changes = apply_mandate(loaded.account, organization_id, record.kid, record.registration != "deleted",
                                record.notify, today)
        if changes.empty:
            return True
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        publish(ctx, tenant, [*loaded.outbox, *changes.events])
        return True
    raise ConcurrencyConflict(f"mandate for subscriber {subscriber_no} kept conflicting")


def identify(catalogue: Catalogue, pid: str, payment: IncomingPayment) -> tuple[int, ReceivedPayment] | str:
    """(subscriber number, payment) or the reason it cannot be identified."""
    org = catalogue.organization_by_account(payment.payee_account or "")
    if org is None:
        return f"paid to account {payment.payee_account}, which belongs to no organisation"
    if payment.currency != org.currency:
        return f"paid in {payment.currency}; {org.id} keeps its books in {org.currency}"
    if not payment.reference:
        return "no reference (KID/OCR) on the payment"
    try:
        ref = org.kid.decode(payment.reference)
    except ValidationError as exc:
        return f"reference {payment.reference} is not a KID of {org.id}: {exc}"
    return ref.subscriber_no, ReceivedPayment(pid, org.id, payment.currency, payment.amount_minor,
                                              payment.payment_date, payment.source, MatchType.EXTERNAL_IDENTIFIER,
                                              payment.reference, ref.demand_no)


def await_approval(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str) -> None:
    """An identified payment of an organisation that approves payments by hand (state AwaitingApproval)."""
    ctx.storage.insert("Payments", {"PartitionKey": f"aa|{tenant}", "RowKey": payment.id, "Body": dumps(payment),
                                    "SubscriberNo": subscriber_no, "File": file, "Amount": payment.amount_minor})


def awaiting_approval(ctx: Context, tenant: str) -> list[dict[str, object]]:
    rows = ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"aa|{tenant}"})
    return [{"payment_id": r["RowKey"], "subscriber_no": r["SubscriberNo"], "file": r["File"],
             "amount_minor": r["Amount"], "state": PaymentState.AWAITING_APPROVAL.value} for r in rows
            if not r.get("ApprovedBy")]


def approve(ctx: Context, tenant: str, payment_id: str, approved_by: str) -> ImportResult:
    """Approve an identified payment: it is booked (once, however often approved)."""
    row = ctx.storage.get("Payments", f"aa|{tenant}", payment_id)
    if row is None:
        raise NotFound(f"no payment {payment_id} awaits approval")
    payment = loads(ReceivedPayment, row["Body"])
    result = _book_one(ctx, tenant, int(row["SubscriberNo"]), payment, row["File"],
                       ctx.today(ctx.catalogue.get(tenant)))
    _mark(ctx, row, ApprovedBy=approved_by)
    return result


def set_aside(ctx: Context, tenant: str, pid: str, payment: IncomingPayment, reason: str, file: str) -> None:
    """Put a payment on the requires-processing list (once, however often it is imported)."""
    ctx.storage.insert("Payments", {"PartitionKey": f"rp|{tenant}", "RowKey": pid, "Body": dumps(payment),
                                    "Reason": reason, "File": file, "Amount": payment.amount_minor})


def book(ctx: Context, tenant: str, subscriber_no: int, payments: list[ReceivedPayment], file: str,
         today: date, outbox: list[Event] | None = None) -> tuple[int, int, int, int]:
    """Book one subscriber's payments; returns (booked, already booked, set aside, amount booked).

    Outbox events are sent at once, or appended to ``outbox`` for the caller to send in
    one batch (list.extend is atomic under the GIL, so threads may share it).
    """
    catalogue = ctx.catalogue.get(tenant)
    booked = already = amount = aside = 0
    per_commit = PAYMENTS_PER_COMMIT
    pending = list(payments)
    for _ in range(10 + 2 * len(payments)):
        if not pending:
            break
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            for p in pending:
                set_aside(ctx, tenant, p.id, _as_incoming(p), f"KID names subscriber {subscriber_no}, who does not "
                          "exist", file)
            return booked, already, len(pending), amount
        chunk = pending[:per_commit]
        changes = Changes(loaded.account)
        for p in chunk:
            step = receive_payment(changes.account, p, catalogue, today)
            changes = replace(step, ledger=changes.ledger + step.ledger, events=changes.events + step.events,
                              payments=changes.payments + step.payments)
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except TooManyEntities as exc:  # nothing was sent: one payment at a time, or set aside if one is too big
            if len(chunk) > 1:
                per_commit = 1
                continue
            set_aside(ctx, tenant, chunk[0].id, _as_incoming(chunk[0]), "settles more open invoices at once than one "
                      f"transaction can book ({exc}): customer service books it in parts", file)
            aside += 1
            pending = pending[1:]
            continue
        except ConcurrencyConflict:
            done = ctx.accounts.booked(tenant, subscriber_no, [p.id for p in chunk])
            already += len(done)
            pending = [p for p in pending if p.id not in done]
            continue
        events = [*loaded.outbox, *changes.events]
        if outbox is None:
            publish(ctx, tenant, events)
        else:
            outbox.extend(events)
        booked += len(chunk)
        amount += sum(p.amount_minor for p in chunk)
        pending = pending[len(chunk):]
    return booked, already, aside, amount


def _as_incoming(p: ReceivedPayment) -> IncomingPayment:
    return IncomingPayment(p.source, p.id, p.amount_minor, p.currency, p.reference, p.payment_date)


# ---- customer service: requires processing, manual payments, refunds, search (P2, P4) ----

def requires_processing(ctx: Context, tenant: str) -> list[dict[str, object]]:
    rows = ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"rp|{tenant}"})
    return [{"payment_id": r["RowKey"], "reason": r["Reason"], "file": r["File"], "amount_minor": r["Amount"],
             "payment": json.loads(r["Body"])} for r in rows if not r.get("ResolvedTo")]


def resolve(ctx: Context, tenant: str, payment_id: str, subscriber_no: int, organization_id: str,
            invoice_number: int | None, today: date | None = None) -> ImportResult:
    """Assign a set-aside payment to a subscriber (and invoice), which books it."""
    row = ctx.storage.get("Payments", f"rp|{tenant}", payment_id)
    if row is None:
        raise NotFound(f"no payment {payment_id} requires processing")
    incoming = loads(IncomingPayment, row["Body"])
    payment = _assigned(ctx, tenant, payment_id, subscriber_no, organization_id, invoice_number,
                        incoming.amount_minor, incoming.payment_date, incoming.source, incoming.reference)
    result = _book_one(ctx, tenant, subscriber_no, payment, row["File"],
                       today or ctx.today(ctx.catalogue.get(tenant)))
    _mark(ctx, row, ResolvedTo=subscriber_no)
    return result


def register_payment(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, amount_minor: int,
                     payment_date: date, external_id: str, invoice_number: int | None = None,
                     comment: str = "") -> ImportResult:
    """A payment registered by hand (P4); ``external_id`` makes registering it twice harmless."""
    payment = _assigned(ctx, tenant, f"manual.{external_id}", subscriber_no, organization_id, invoice_number,
                        amount_minor, payment_date, "manual", comment or None)
    return _book_one(ctx, tenant, subscriber_no, payment, "manual", ctx.today(ctx.catalogue.get(tenant)))


def book_refund(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, amount_minor: int,
                external_reference: str, comment: str) -> bool:
    """Book a refund once per external reference; False if it was booked before."""
    catalogue = ctx.catalogue.get(tenant)
    org = _organization(catalogue, organization_id)
    for _ in range(10):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            raise NotFound(f"subscriber {subscriber_no}")
        refund_id = f"{org.id}.{external_reference}"
        changes = refund(loaded.account, refund_id, org.id, org.currency, amount_minor, ctx.today(catalogue),
                         external_reference, comment)
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except ConcurrencyConflict:
            _, ledger = ctx.accounts.history(tenant, subscriber_no)
            if any(e.kind is EntryKind.REFUND and e.reference == external_reference and e.organization_id == org.id
                   for e in ledger):
                return False
            continue
        publish(ctx, tenant, [*loaded.outbox, *changes.events])
        return True
    raise ConcurrencyConflict(f"refund for subscriber {subscriber_no} kept conflicting")


def search(ctx: Context, tenant: str, date_from: date | None = None, date_to: date | None = None,
           subscriber_no: int | None = None, invoice_number: int | None = None,
           source: str | None = None) -> list[dict[str, object]]:
    """Booked payments by date range, subscriber, invoice and source (customer service, not a hot path)."""
    if subscriber_no is not None:
        pk = partition_key(tenant, subscriber_no)
        rows = ctx.storage.query("Subscribers", "PartitionKey eq @pk and RowKey ge '1|pay|' and RowKey lt '1|pay}'",
                                 {"pk": pk})
    else:
        query, params = prefix_filter(f"{tenant}|")
        rows = (r for r in ctx.storage.query("Subscribers", query, params) if r["RowKey"].startswith("1|pay|"))
    found = []
    for row in rows:
        booked = loads(BookedPayment, row["Body"])
        p = booked.payment
        numbers = {a.demand_no for a in booked.allocations}
        if ((date_from and p.payment_date < date_from) or (date_to and p.payment_date > date_to)
                or (source and p.source != source)):
            continue
        if invoice_number is not None and not _pays_invoice(ctx, tenant, row["PartitionKey"], numbers,
                                                            invoice_number):
            continue
        found.append({"subscriber_no": int(row["PartitionKey"].rsplit("|", 1)[1])} | to_jsonable(booked))
    return found


def _pays_invoice(ctx: Context, tenant: str, pk: str, demand_nos: set[int], invoice_number: int) -> bool:
    subscriber_no = int(pk.rsplit("|", 1)[1])
    return any((inv := ctx.accounts.invoice(tenant, subscriber_no, d)) is not None and inv.number == invoice_number
               for d in demand_nos)


def _mark(ctx: Context, row: dict[str, Any], **done: object) -> None:
    """Record on a requires-processing or awaiting-approval row that it has been dealt with."""
    ctx.storage.upsert("Payments", {**{k: v for k, v in row.items() if k != "etag"}, **done})


def _organization(catalogue: Catalogue, organization_id: str) -> Organization:
    org = catalogue.organizations.get(organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id}")
    return org


def _assigned(ctx: Context, tenant: str, payment_id: str, subscriber_no: int, organization_id: str,
              invoice_number: int | None, amount_minor: int, payment_date: date, source: str,
              reference: str | None) -> ReceivedPayment:
    """A payment customer service assigned to a subscriber (and perhaps an invoice) by hand."""
    org = _organization(ctx.catalogue.get(tenant), organization_id)
    demand_no = _demand_of(ctx, tenant, subscriber_no, invoice_number)
    match_type = MatchType.SUBSCRIBER_AND_INVOICE if demand_no else MatchType.NO_INVOICE
    return ReceivedPayment(payment_id, org.id, org.currency, amount_minor, payment_date, source, match_type,
                           reference, demand_no)


def _demand_of(ctx: Context, tenant: str, subscriber_no: int, invoice_number: int | None) -> int | None:
    if invoice_number is None:
        return None
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    for demand in loaded.account.open_demands.values():
        if demand.invoice_number == invoice_number:
            return demand.demand_no
    return None  # paid or unknown: the payment is booked without an invoice match


def _book_one(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str,
              today: date) -> ImportResult:
    if ctx.accounts.load(tenant, subscriber_no) is None:
        raise NotFound(f"subscriber {subscriber_no}")
    booked, already, _aside, amount = book(ctx, tenant, subscriber_no, [payment], file, today)
    return ImportResult(file, payment.source, 1, booked, already, 0, amount)
