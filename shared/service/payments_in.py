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
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date

from stdnum.exceptions import ValidationError

from ..adapters.codec import dumps
from ..adapters.tables import ConcurrencyConflict
from ..domain.account import Changes, receive_payment
from ..domain.catalogue import Catalogue
from ..domain.payments import MatchType, ReceivedPayment
from ..formats import bgmax, ocr_giro
from ..formats.detect import BankFileFormat, detect
from ..formats.payments import IncomingPayment
from .context import Context
from .issuing import publish

log = logging.getLogger(__name__)
PAYMENTS_PER_COMMIT = 10  # at most ~7 entities each, with room for the subscriber row and outbox


@dataclass
class ImportResult:
    file: str
    format: str
    payments: int = 0
    booked: int = 0
    already_booked: int = 0
    requires_processing: int = 0
    amount_booked_minor: int = 0


def read(data: bytes) -> tuple[BankFileFormat, list[IncomingPayment]]:
    """The payments of a bank file; raises if the format is unknown or its totals are off."""
    kind = detect(data)
    if kind is BankFileFormat.BGMAX:
        return kind, list(bgmax.payments(bgmax.decode_lines([data])))
    return kind, list(ocr_giro.payments(data.decode("iso-8859-1")))


def import_bank_file(ctx: Context, tenant: str, name: str, data: bytes) -> ImportResult:
    kind, incoming = read(data)
    digest = hashlib.sha256(data).hexdigest()[:20]
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    result = ImportResult(name, kind.value, payments=len(incoming))
    by_subscriber: dict[int, list[ReceivedPayment]] = defaultdict(list)
    for payment in incoming:
        pid = f"{digest}.{payment.line_id}"
        identified = identify(catalogue, pid, payment)
        if isinstance(identified, str):
            set_aside(ctx, tenant, pid, payment, identified, name)
            result.requires_processing += 1
        else:
            by_subscriber[identified[0]].append(identified[1])
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda item: book(ctx, tenant, item[0], item[1], name, today), by_subscriber.items()))
    for booked, already, aside, amount in outcomes:
        result.booked += booked
        result.already_booked += already
        result.requires_processing += aside
        result.amount_booked_minor += amount
    log.info("imported %s for %s: %s", name, tenant, result)
    return result


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


def set_aside(ctx: Context, tenant: str, pid: str, payment: IncomingPayment, reason: str, file: str) -> None:
    """Put a payment on the requires-processing list (once, however often it is imported)."""
    ctx.storage.insert("Payments", {"PartitionKey": f"rp|{tenant}", "RowKey": pid, "Body": dumps(payment),
                                    "Reason": reason, "File": file, "Amount": payment.amount_minor})


def book(ctx: Context, tenant: str, subscriber_no: int, payments: list[ReceivedPayment], file: str,
         today: date) -> tuple[int, int, int, int]:
    """Book one subscriber's payments; returns (booked, already booked, set aside, amount booked)."""
    catalogue = ctx.catalogue.get(tenant)
    booked = already = amount = 0
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
        chunk = pending[:PAYMENTS_PER_COMMIT]
        changes = Changes(loaded.account)
        for p in chunk:
            step = receive_payment(changes.account, p, catalogue, today)
            changes = replace(step, ledger=changes.ledger + step.ledger, events=changes.events + step.events,
                              payments=changes.payments + step.payments)
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except ConcurrencyConflict:
            done = ctx.accounts.booked(tenant, subscriber_no, [p.id for p in chunk])
            already += len(done)
            pending = [p for p in pending if p.id not in done]
            continue
        publish(ctx, tenant, [*loaded.outbox, *changes.events])
        booked += len(chunk)
        amount += sum(p.amount_minor for p in chunk)
        pending = pending[len(chunk):]
    return booked, already, 0, amount


def _as_incoming(p: ReceivedPayment) -> IncomingPayment:
    return IncomingPayment(p.source, p.id, p.amount_minor, p.currency, p.reference, p.payment_date)
