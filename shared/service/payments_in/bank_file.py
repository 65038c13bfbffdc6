"""Importing a bank file's records: identified, booked, set aside or put to approval (P1, P2).

Each record is identified: the organisation by the account paid to and the currency, the
subscriber and demand by the KID decoded with that organisation's scheme. Payments are
booked per subscriber (``booking.book``), reversals against the payment they take back;
whatever cannot be identified, every deduction and every unreadable record goes to
*requires processing* with its reason and raw line; a payment of an organisation that
approves payments by hand awaits approval. The import report (``domain.import_report``)
says where each record landed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date

from stdnum.exceptions import ValidationError

from ...adapters.imports import key_of
from ...domain.catalogue import Catalogue
from ...domain.import_report import ImportReport, Landing, MandateLanding, Outcome, Reason, Total, build
from ...domain.payments import MatchType, PaymentKind, ReceivedPayment
from ...formats import read_bank_file
from ...formats.payments import BankFile, IncomingPayment, MandateRecord, RecordKind, UnreadableRecord
from ...ports import AwaitingPayment, Handling, ImportJournal, MandateAside, SetAside
from ..buckets import grouped
from ..context import Context
from ..unit_of_work import UnitOfWork
from .booking import book_in_partition, book_mandate, book_reversal
from .identification import Failed, identify

log = logging.getLogger(__name__)

CHUNK = 2000  # records identified and booked at a time
Record = IncomingPayment | UnreadableRecord


class TransmissionConflict(ValueError):
    """A transmission identity already imported with other content."""


@dataclass
class _Import:
    """One import of one file: where it books, and where its records landed so far."""

    tenant: str
    file: str
    key: str
    catalogue: Catalogue
    today: date
    landings: list[Landing] = field(default_factory=list)
    handled: frozenset[str] = frozenset()  # set-aside records customer service took (resumed imports only)


def import_bank_file(ctx: Context, tenant: str, name: str, data: bytes) -> ImportReport:
    """Read, identify, book and report one bank file; raises if the file cannot be read."""
    bank = read_bank_file(data)
    imports = ctx.imports
    key = key_of(bank.identity)
    done, resumed = _claim_transmissions(imports, tenant, key, bank, name)
    created = ctx.clock.now().isoformat()
    totals = [Total(t.currency, t.records, t.amount_minor) for t in bank.totals]
    if len(done) == len(bank.transmissions()):
        report = build(f"{key}~dup~{hashlib.sha256(data).hexdigest()[:16]}", name, bank.format, bank.identity,
                       bank.content_digest, created, [_duplicate(r, bank) for r in bank.payments], totals,
                       duplicate_of=next(iter(done.values())))
        imports.save(tenant, report)
        log.info("bank file %s for %s is transmission %s again: nothing booked; %s", name, tenant, bank.identity,
                 report.summary_line())
        return report
    catalogue = ctx.catalogue.get(tenant)
    job = _Import(tenant, name, key, catalogue, ctx.today(catalogue))
    if resumed:  # what customer service resolved since the import died is theirs: never booked again
        job.handled = _handled(ctx, tenant, key)
    job.landings += [_duplicate(r, bank) for r in bank.payments if bank.transmission_of(r) in done]
    fresh = (r for r in bank.payments if bank.transmission_of(r) not in done)
    for chunk in _chunks(fresh, CHUNK):
        _import_chunk(ctx, job, chunk, _currency_default(bank))
    mandates = import_mandates(ctx, job, bank.mandates)
    report = build(key, name, bank.format, bank.identity, bank.content_digest, created, job.landings, totals,
                   mandates)
    imports.save(tenant, report)
    for identity, digest, _ in bank.transmissions():
        if identity not in done:
            imports.imported(tenant, key_of(identity), digest, name, key)
    log.info("imported %s for %s (transmission %s): %s", name, tenant, bank.identity, report.summary_line())
    return report


def _claim_transmissions(imports: ImportJournal, tenant: str, key: str, bank: BankFile,
                         name: str) -> tuple[dict[str, str], bool]:
    """Take each transmission the file holds for this import (``key``): the transmissions
    imported before, by this file or another, with the import that did (their records are
    duplicates), and whether any was taken before (an import resumed). Raises
    TransmissionConflict, giving back what it took, when one was imported with other content
    or is being imported from another file."""
    taken: list[str] = []
    done: dict[str, str] = {}
    refused = ""
    for identity, digest, _ in bank.transmissions():
        claim = imports.claim(tenant, key_of(identity), digest, name, key)
        if claim.fresh:
            taken.append(key_of(identity))
        if claim.digest != digest:
            refused = (f"transmission {identity} was imported before (file {claim.file}) with other content; the "
                       "same identity with different content is refused")
        elif claim.state == "imported":
            done[identity] = claim.report_id
        elif claim.report_id != key:
            refused = (f"transmission {identity} is being imported from file {claim.file}; drop this file again, "
                       "under another name, when that import has finished")
        if refused:
            for taken_key in taken:
                imports.release(tenant, taken_key)
            raise TransmissionConflict(refused)
    return done, len(taken) < len(bank.transmissions())


def _handled(ctx: Context, tenant: str, key: str) -> frozenset[str]:
    """Ids of this import's set-aside records that customer service resolved (or is resolving)."""
    return frozenset(a.id for a in ctx.inbox.set_asides(tenant, f"{key}.") if a.hold.state is not Handling.OPEN)


def _currency_default(bank: BankFile) -> str:
    """The currency of a record that does not say (an unreadable one): the file's, if it has one."""
    currencies = {t.currency for t in bank.totals}
    return currencies.pop() if len(currencies) == 1 else "unknown"


def _duplicate(record: Record, bank: BankFile) -> Landing:
    kind = record.kind.value
    return Landing(record.line_id, record.currency or _currency_default(bank), kind, record.amount_minor,
                   Outcome.DUPLICATE)


def _chunks(items: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _Identified:
    """A chunk's records after identification: what is to be booked, per subscriber."""

    payments: dict[int, list[ReceivedPayment]] = field(default_factory=lambda: defaultdict(list))
    reversals: dict[int, list[ReceivedPayment]] = field(default_factory=lambda: defaultdict(list))
    records: dict[str, IncomingPayment] = field(default_factory=dict)
    unidentified: list[tuple[ReceivedPayment, Failed]] = field(default_factory=list)  # reversals without a KID match


def _unit_of_work(ctx: Context, job: _Import, collect: bool = False) -> UnitOfWork:
    """The import's session with the unit of work: its catalogue and day, read once per file."""
    return UnitOfWork(ctx, job.tenant, job.today, collect=collect, catalogue=job.catalogue)


def _import_chunk(ctx: Context, job: _Import, chunk: list[Record], currency: str) -> None:
    found = _Identified()
    for record in chunk:
        _sort(ctx, job, record, found, currency)
    _book_payments(ctx, job, found)
    _book_reversals(ctx, job, found)  # after the payments: a file may pay and reverse


def _sort(ctx: Context, job: _Import, record: Record, found: _Identified, currency: str) -> None:
    """Set a record aside with its reason, put it to approval, or queue it for booking."""
    pid = f"{job.key}.{record.line_id}"
    if pid in job.handled:
        job.landings.append(Landing(record.line_id, record.currency or currency, record.kind.value,
                                    record.amount_minor, Outcome.ALREADY_BOOKED))
        return
    if isinstance(record, UnreadableRecord):
        _aside(ctx, job, pid, record, Reason.UNREADABLE, f"unreadable: {record.reason}", currency)
        return
    found.records[pid] = record
    if record.kind is RecordKind.DEDUCTION:
        _aside(ctx, job, pid, record, Reason.DEDUCTION, f"a deduction (BgMax TK21) of {record.amount_minor} "
               f"{record.currency} with reference {record.reference}: for customer service to settle")
        return
    identified = identify(job.catalogue, pid, record)
    if isinstance(identified, Failed):
        if record.kind is RecordKind.REVERSAL:  # perhaps of a payment customer service resolved by hand
            found.unidentified.append((ReceivedPayment(
                pid, "", record.currency, record.amount_minor, record.payment_date, record.source,
                MatchType.EXTERNAL_IDENTIFIER, record.reference, kind=PaymentKind.REVERSAL), identified))
            return
        _aside(ctx, job, pid, record, identified.reason, identified.text)
    elif record.kind is RecordKind.REVERSAL:
        found.reversals[identified[0]].append(replace(identified[1], kind=PaymentKind.REVERSAL))
    elif job.catalogue.organizations[identified[1].organization_id].manual_payment_approval:
        await_approval(ctx, job.tenant, identified[0], identified[1], job.file)
        job.landings.append(_landing(record, Outcome.AWAITING_APPROVAL))
    else:
        found.payments[identified[0]].append(identified[1])


def _book_payments(ctx: Context, job: _Import, found: _Identified) -> None:
    """The chunk's payments by the partition of the subscriber they identify (a bucket of
    subscribers, ``buckets.grouped``), each partition read once and committed in as few
    transactions as the limits allow (``booking.book_in_partition``); the partitions in
    parallel in one unit of work, one bus batch for the chunk's outbox."""
    groups = grouped(ctx, job.tenant, list(found.payments))
    with _unit_of_work(ctx, job, collect=True) as uow, ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda group: book_in_partition(uow, {n: found.payments[n] for n in group}),
                                 groups))
    for outcome in outcomes:
        for pid, (where, reason, why) in outcome.items():
            _landed(ctx, job, found.records[pid], pid, where, reason or Reason.NO_SUCH_SUBSCRIBER, why)


def _book_reversals(ctx: Context, job: _Import, found: _Identified) -> None:
    """Each reversal against the payment it takes back: in the partition its KID names, else in
    that of a subscriber customer service resolved a payment of the same KID and amount to."""
    queue: list[tuple[ReceivedPayment, int | None, str]] = [
        (reversal, subscriber_no, "") for subscriber_no, items in found.reversals.items() for reversal in items]
    queue += [(reversal, None, f"reversal of a payment we cannot find: {failed.text}")
              for reversal, failed in found.unidentified]
    with _unit_of_work(ctx, job) as uow:
        for reversal, subscriber_no, why in queue:
            record = found.records[reversal.id]
            where = Outcome.SET_ASIDE
            if subscriber_no is not None:
                where, why = book_reversal(uow, subscriber_no, reversal)
            if where is Outcome.SET_ASIDE:
                for other in _resolved_to(ctx, job.tenant, record, subscriber_no):
                    where, _ = book_reversal(uow, other, reversal)
                    if where is not Outcome.SET_ASIDE:
                        break
            _landed(ctx, job, record, reversal.id, where, Reason.REVERSAL_NOT_FOUND, why)


def _resolved_to(ctx: Context, tenant: str, reversal: IncomingPayment, tried: int | None) -> list[int]:
    """Subscribers customer service resolved a payment of the reversal's KID, amount and account to
    (oldest first). Reads the requires-processing rows, only for a reversal not found otherwise."""
    found: list[int] = []
    for aside in ctx.inbox.set_asides(tenant):
        if aside.kind != "payment" or not aside.resolved_to or aside.hold.state is not Handling.DONE:
            continue
        if same_payment(aside.record, reversal) and aside.resolved_to not in (*found, tried):
            found.append(aside.resolved_to)
    return found


def same_payment(record: IncomingPayment | UnreadableRecord | MandateAside, payment: IncomingPayment) -> bool:
    """A set-aside record of the same KID, amount, account and currency as ``payment``."""
    return (isinstance(record, IncomingPayment) and record.reference == payment.reference
            and record.amount_minor == payment.amount_minor and record.payee_account == payment.payee_account
            and record.currency == payment.currency)


def _landed(ctx: Context, job: _Import, record: IncomingPayment, pid: str, where: Outcome, reason: Reason,
            why: str) -> None:
    if where is Outcome.SET_ASIDE:
        _aside(ctx, job, pid, record, reason, why)
    else:
        job.landings.append(_landing(record, where))


def _landing(record: IncomingPayment, outcome: Outcome) -> Landing:
    return Landing(record.line_id, record.currency, record.kind.value, record.amount_minor, outcome)


def _aside(ctx: Context, job: _Import, pid: str, record: Record, reason: Reason, text: str,
           currency: str = "") -> None:
    set_aside(ctx, job.tenant, pid, record, reason, text, job.file, job.key)
    kind = record.kind.value
    job.landings.append(Landing(record.line_id, record.currency or currency, kind, record.amount_minor,
                                Outcome.SET_ASIDE, reason, text, record.raw[:200]))


def import_mandates(ctx: Context, job: _Import, mandates: Sequence[MandateRecord]) -> list[MandateLanding]:
    """AvtaleGiro agreement records onto the subscribers' payment agreements (P5); what
    matches no subscriber goes to requires processing with the reason."""
    out = []
    with _unit_of_work(ctx, job) as uow:
        for record in mandates:
            out.append(_import_mandate(ctx, job, uow, record))
    return out


def _import_mandate(ctx: Context, job: _Import, uow: UnitOfWork, record: MandateRecord) -> MandateLanding:
    org = job.catalogue.organization_by_account(record.payee_account, "NOK")
    if org is None:
        why = (Reason.MANDATE_UNKNOWN_ACCOUNT, f"mandate for account {record.payee_account}, which belongs to no "
               "NOK organisation")
    else:
        try:
            ref = org.kid.decode(record.kid)
        except ValidationError as exc:
            why = (Reason.MANDATE_NOT_A_KID, f"KID {record.kid} is not a KID of {org.id}: {exc}")
        else:
            if book_mandate(uow, ref.subscriber_no, org.id, record):
                return MandateLanding(record.line_id, record.kid, True)
            why = (Reason.MANDATE_NO_SUCH_SUBSCRIBER, f"KID {record.kid} names subscriber {ref.subscriber_no} "
                   f"of {org.id}, who does not exist")
    _mandate_aside(ctx, job, record, *why)
    return MandateLanding(record.line_id, record.kid, False, *why)


def _mandate_aside(ctx: Context, job: _Import, record: MandateRecord, reason: Reason, text: str) -> None:
    log.warning("AvtaleGiro mandate %s of %s set aside: %s", record.line_id, job.file, text)
    mandate = MandateAside(record.kid, record.registration, record.notify, record.payee_account)
    ctx.inbox.set_aside(job.tenant, SetAside(f"{job.key}.m{record.line_id}", "mandate", mandate, reason.value, text,
                                             job.file, job.key, 0, "NOK"))


def await_approval(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str) -> None:
    """An identified payment of an organisation that approves payments by hand (state AwaitingApproval)."""
    ctx.inbox.await_approval(tenant, AwaitingPayment(payment, subscriber_no, file, payment.currency))


def set_aside(ctx: Context, tenant: str, pid: str, record: Record, reason: Reason, text: str, file: str,
              report_id: str = "") -> None:
    """Put a record on the requires-processing list (once, however often it is imported)."""
    kind = record.kind.value if isinstance(record, IncomingPayment) else "unreadable"
    ctx.inbox.set_aside(tenant, SetAside(pid, kind, record, reason.value, text, file, report_id,
                                         record.amount_minor or 0, record.currency or "", record.raw[:1000]))
