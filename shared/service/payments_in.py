"""Import a bank file (P1, P2): every record of it accounted for, exactly once.

1. the file is read (``formats.payments.read_bank_file``): its format told by the content,
   its control totals checked; a file that cannot be read is refused whole;
2. the transmission's identity (what the bank guarantees: Nets data sender and
   transmission number, BgMax bankgiro and creation time) is taken once per tenant with
   the digest of the decoded, line-ending-normalised content: the same transmission again
   (any encoding or line ending) books nothing and is reported as a duplicate; the same
   identity with other content is refused;
3. each record is identified: the organisation by the account paid to and the currency,
   the subscriber and demand by the KID decoded with that organisation's scheme. Payments
   are booked per subscriber in one transaction each (``account.receive_payment``);
   reversals are booked against the payment they take back (``account.reverse_payment``);
   whatever cannot be identified, every deduction and every unreadable record goes to
   *requires processing* with its reason and raw line;
4. an import report (``domain.import_report``) says where each record landed, per
   currency, and checks that against the file's control totals; it is stored, served by
   the merchant API and logged.

Idempotent and crash-safe: a payment's id is the transmission's identity plus the
record's position in the file, and its row is *created* in the subscriber's partition,
so an import that died half-way, run again, books only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from azure.core import MatchConditions
from stdnum.exceptions import ValidationError

from ..adapters.accounts import partition_key
from ..adapters.codec import dumps, loads, to_jsonable
from ..adapters.imports import MAX_ATTEMPTS, BankFileDrop, ImportLog, is_transient, key_of
from ..adapters.tables import StorageLimit, TooManyEntities, prefix_filter
from ..domain.account import (
    BookRefund,
    Changes,
    Event,
    apply_mandate,
    receive_payment,
    refund,
    reversal_target,
    reverse_payment,
)
from ..domain.catalogue import Catalogue, Organization
from ..domain.import_report import ImportReport, Landing, MandateLanding, Outcome, Reason, Total, build, rejected
from ..domain.invoicing import Invoice
from ..domain.ledger import EntryKind
from ..domain.limits import ValueOutOfRange
from ..domain.payments import BookedPayment, MatchType, PaymentKind, PaymentState, ReceivedPayment
from ..formats import read_bank_file
from ..formats.payments import BankFile, BankFileError, IncomingPayment, RecordKind, UnreadableRecord
from ..ports import ConcurrencyConflict, NotFound
from .context import Context
from .unit_of_work import index_next_visit, publish

log = logging.getLogger(__name__)
PAYMENTS_PER_COMMIT = 10  # at most ~7 entities each, with room for the subscriber row and outbox
CHUNK = 2000  # records identified and booked at a time
RESUME_AFTER = timedelta(seconds=60)  # a resolve or approval claimed this long ago and not finished may be redone
Record = IncomingPayment | UnreadableRecord
Landed = tuple[Outcome, Reason | None, str]  # where a payment landed, why it was set aside
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # what the merchant API accepts as a tenant id


class TransmissionConflict(ValueError):
    """A transmission identity already imported with other content."""


class PaymentRefused(ValueError):
    """A set-aside record that cannot be handled the way asked (a reversal resolved as a payment)."""


@dataclass
class ImportResult:
    """What booking one payment by hand did (resolve, approve, register)."""

    file: str
    format: str
    payments: int = 0
    booked: int = 0
    already_booked: int = 0
    requires_processing: int = 0
    amount_booked_minor: int = 0


@dataclass
class _Import:
    tenant: str
    file: str
    key: str
    catalogue: Catalogue
    today: date
    landings: list[Landing] = field(default_factory=list)
    handled: frozenset[str] = frozenset()  # set-aside records customer service took (resumed imports only)


# ---- the blob trigger's use case -----------------------------------------------------------

def receive_bank_file(ctx: Context, drop: BankFileDrop, name: str, data: bytes) -> ImportReport | None:
    """A file dropped at ``inbound/{name}`` (``name`` = ``{tenant}/{file}``): import it once.

    Any failure but a transient storage error ends with the file in ``rejected/`` beside an
    ``.error.txt`` report, after one attempt; the decision is kept in storage, so a host
    that restarts (or redelivers) finds it and does nothing more. A transient storage error
    is raised for the host to retry, at most ``MAX_ATTEMPTS`` times over all restarts.
    """
    imports = ImportLog(ctx.storage)
    attempts, decided = imports.attempt(name, data)
    if decided is not None:
        log.info("bank file %s was handled before (%s); nothing to do", name, decided)
        return None
    tenant, _, file = name.partition("/")
    if _quarantined(ctx, drop, name, data):
        return None
    if attempts > MAX_ATTEMPTS:
        return _reject(ctx, drop, tenant, name, data, f"the import failed {attempts - 1} times (storage unavailable "
                                                     "or the process died); not tried again", partial=True)
    try:
        report = import_bank_file(ctx, tenant, file, data)
    except Exception as exc:
        if is_transient(exc):
            raise  # the host tries again; the attempts are counted above
        refused_whole = isinstance(exc, (BankFileError, TransmissionConflict))  # raised before anything is booked
        if not refused_whole:
            log.exception("bank file %s failed part-way", name)
        return _reject(ctx, drop, tenant, name, data, f"{type(exc).__name__}: {exc}", partial=not refused_whole)
    if not report.balanced:
        drop.reject(name, data, _report_text(name, "its records did not all land somewhere: " + "; ".join(
            report.problems), report.id, partial=True))
    imports.decide(name, data, report.status.value, report.id)
    return report


def _quarantined(ctx: Context, drop: BankFileDrop, name: str, data: bytes) -> bool:
    """A file outside a tenant's folder, or for a tenant that does not exist, goes to
    ``quarantine/`` with a report; nothing is written for any tenant."""
    tenant, _, file = name.partition("/")
    if file and "/" not in file and TENANT_ID.fullmatch(tenant) and ctx.tenants.exists(tenant):
        return False
    why = (f"tenant {tenant!r} does not exist" if file and "/" not in file
           else "a bank file must be dropped in a tenant's folder: inbound/{tenant}/{file}")
    drop.quarantine(name, data, f"Bank file inbound/{name} was quarantined: {why}. Nothing was written.\n")
    ImportLog(ctx.storage).decide(name, data, "quarantined")
    log.warning("bank file %s quarantined: %s", name, why)
    return True


def _reject(ctx: Context, drop: BankFileDrop, tenant: str, name: str, data: bytes, reason: str,
            partial: bool = False) -> ImportReport:
    imports = ImportLog(ctx.storage)
    report = rejected(f"rejected.{hashlib.sha256(data).hexdigest()[:24]}", name.partition("/")[2],
                      ctx.clock.now().isoformat(), reason)
    imports.save(tenant, report)
    drop.reject(name, data, _report_text(name, reason, report.id, partial))
    imports.decide(name, data, "rejected", report.id)
    log.warning("bank file %s rejected: %s", name, reason)
    return report


def _report_text(name: str, reason: str, report_id: str = "", partial: bool = False) -> str:
    booked = ("Whatever it booked before it stopped stays booked, once; dropping the file again under another "
              "name finishes the import and books only what is missing." if partial else "Nothing was booked.")
    text = f"Bank file inbound/{name} was rejected. {booked}\n\nReason: {reason}\n"
    if report_id:
        text += f"\nImport report: GET /api/merchant/payments/imports/{report_id}\n"
    return text


# ---- the import ----------------------------------------------------------------------------

def import_bank_file(ctx: Context, tenant: str, name: str, data: bytes) -> ImportReport:
    """Read, identify, book and report one bank file; raises if the file cannot be read."""
    bank = read_bank_file(data)
    imports = ImportLog(ctx.storage)
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


def _claim_transmissions(imports: ImportLog, tenant: str, key: str, bank: BankFile,
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
    query, params = prefix_filter(f"{key}.", "RowKey")
    rows = ctx.storage.query("Payments", f"PartitionKey eq @pk and {query}", {"pk": f"rp|{tenant}", **params})
    return frozenset(r["RowKey"] for r in rows if _state(r, "ResolvedTo") != "open")


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
    """Subscribers in parallel, one bus batch for the chunk's outbox."""
    outbox: list[Event] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda item: book(ctx, job.tenant, item[0], item[1], job.file, job.today, outbox),
                                 found.payments.items()))
    publish(ctx, job.tenant, outbox)
    for outcome in outcomes:
        for pid, (where, reason, why) in outcome.items():
            _landed(ctx, job, found.records[pid], pid, where, reason or Reason.NO_SUCH_SUBSCRIBER, why)


def _book_reversals(ctx: Context, job: _Import, found: _Identified) -> None:
    """Each reversal against the payment it takes back: in the partition its KID names, else in
    that of a subscriber customer service resolved a payment of the same KID and amount to."""
    queue = [(reversal, subscriber_no, "") for subscriber_no, items in found.reversals.items() for reversal in items]
    queue += [(reversal, None, f"reversal of a payment we cannot find: {failed.text}")
              for reversal, failed in found.unidentified]
    for reversal, subscriber_no, why in queue:
        record = found.records[reversal.id]
        where = Outcome.SET_ASIDE
        if subscriber_no is not None:
            where, why = book_reversal(ctx, job, subscriber_no, reversal)
        if where is Outcome.SET_ASIDE:
            for other in _resolved_to(ctx, job.tenant, record, subscriber_no):
                where, _ = book_reversal(ctx, job, other, reversal)
                if where is not Outcome.SET_ASIDE:
                    break
        _landed(ctx, job, record, reversal.id, where, Reason.REVERSAL_NOT_FOUND, why)


def _resolved_to(ctx: Context, tenant: str, reversal: IncomingPayment, tried: int | None) -> list[int]:
    """Subscribers customer service resolved a payment of the reversal's KID, amount and account to
    (oldest first). Reads the requires-processing rows, only for a reversal not found otherwise."""
    found: list[int] = []
    for row in ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"rp|{tenant}"}):
        if row.get("Kind", "payment") != "payment" or not row.get("ResolvedTo") or _state(row, "ResolvedTo") != "done":
            continue
        body = json.loads(row["Body"])
        if (body.get("reference") == reversal.reference and body.get("amount_minor") == reversal.amount_minor
                and body.get("payee_account") == reversal.payee_account and body.get("currency") == reversal.currency
                and int(row["ResolvedTo"]) not in (*found, tried)):
            found.append(int(row["ResolvedTo"]))
    return found


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


def import_mandates(ctx: Context, job: _Import, mandates: Sequence[Any]) -> list[MandateLanding]:
    """AvtaleGiro agreement records onto the subscribers' payment agreements (P5); what
    matches no subscriber goes to requires processing with the reason."""
    out = []
    for record in mandates:
        org = job.catalogue.organization_by_account(record.payee_account, "NOK")
        if org is None:
            why = (Reason.MANDATE_UNKNOWN_ACCOUNT, f"mandate for account {record.payee_account}, which belongs to "
                   "no NOK organisation")
        else:
            try:
                ref = org.kid.decode(record.kid)
            except ValidationError as exc:
                why = (Reason.MANDATE_NOT_A_KID, f"KID {record.kid} is not a KID of {org.id}: {exc}")
            else:
                if _apply_mandate(ctx, job.tenant, ref.subscriber_no, org.id, record, job.today):
                    out.append(MandateLanding(record.line_id, record.kid, True))
                    continue
                why = (Reason.MANDATE_NO_SUCH_SUBSCRIBER, f"KID {record.kid} names subscriber {ref.subscriber_no} "
                       f"of {org.id}, who does not exist")
        _mandate_aside(ctx, job, record, *why)
        out.append(MandateLanding(record.line_id, record.kid, False, *why))
    return out


def _mandate_aside(ctx: Context, job: _Import, record: Any, reason: Reason, text: str) -> None:
    log.warning("AvtaleGiro mandate %s of %s set aside: %s", record.line_id, job.file, text)
    ctx.storage.insert("Payments", {"PartitionKey": f"rp|{job.tenant}", "RowKey": f"{job.key}.m{record.line_id}",
                                    "Body": json.dumps({"kid": record.kid, "registration": record.registration,
                                                        "notify": record.notify, "account": record.payee_account}),
                                    "Kind": "mandate", "ReasonCode": reason.value, "Reason": text,
                                    "File": job.file, "Report": job.key, "Amount": 0, "Currency": "NOK",
                                    "State": "open"})


def _apply_mandate(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, record: Any,
                   today: date) -> bool:
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


@dataclass(frozen=True)
class Failed:
    """Why a record cannot be identified."""

    reason: Reason
    text: str


def identify(catalogue: Catalogue, pid: str, payment: IncomingPayment) -> tuple[int, ReceivedPayment] | Failed:
    """(subscriber number, payment), or why it cannot be identified."""
    account = payment.payee_account or ""
    org = catalogue.organization_by_account(account, payment.currency)
    if org is None:
        other = catalogue.organization_by_account(account, None)
        if other is not None:
            return Failed(Reason.WRONG_CURRENCY, f"paid in {payment.currency} to account {account}; no "
                          f"organisation keeps its books in {payment.currency} on it")
        return Failed(Reason.UNKNOWN_ACCOUNT, f"paid to account {payment.payee_account}, which belongs to no "
                      "organisation")
    if not payment.reference:
        return Failed(Reason.NO_REFERENCE, "no reference (KID/OCR) on the payment")
    try:
        ref = org.kid.decode(payment.reference)
    except ValidationError as exc:
        return Failed(Reason.NOT_A_KID, f"reference {payment.reference} is not a KID of {org.id}: {exc}")
    return ref.subscriber_no, ReceivedPayment(pid, org.id, payment.currency, payment.amount_minor,
                                              payment.payment_date, payment.source, MatchType.EXTERNAL_IDENTIFIER,
                                              payment.reference, ref.demand_no)


def await_approval(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str) -> None:
    """An identified payment of an organisation that approves payments by hand (state AwaitingApproval)."""
    ctx.storage.insert("Payments", {"PartitionKey": f"aa|{tenant}", "RowKey": payment.id, "Body": dumps(payment),
                                    "SubscriberNo": subscriber_no, "File": file,
                                    "Amount": payment.amount_minor,
                                    "Currency": payment.currency, "State": "open"})


def awaiting_approval(ctx: Context, tenant: str) -> list[dict[str, object]]:
    rows = ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"aa|{tenant}"})
    return [{"payment_id": r["RowKey"], "subscriber_no": r["SubscriberNo"], "file": r["File"],
             "amount_minor": r["Amount"], "currency": r.get("Currency"), "state": PaymentState.AWAITING_APPROVAL.value}
            for r in rows if _state(r, "ApprovedBy") != "done"]


def approve(ctx: Context, tenant: str, payment_id: str, approved_by: str) -> ImportResult:
    """Approve an identified payment: it is booked once; a second or concurrent approval is a conflict."""
    row = ctx.storage.get("Payments", f"aa|{tenant}", payment_id)
    if row is None:
        raise NotFound(f"no payment {payment_id} awaits approval")
    payment = loads(ReceivedPayment, row["Body"])
    if row.get("ReversedBy"):
        raise ConcurrencyConflict(f"payment {payment_id} was reversed by the bank ({row['ReversedBy']}) before it "
                                  "was approved; there is nothing to book")
    _claim(ctx, row, "approved", approved_by)
    with _released_on_refusal(ctx, row):
        result = _book_one(ctx, tenant, int(row["SubscriberNo"]), payment, row["File"],
                           ctx.today(ctx.catalogue.get(tenant)))
    _done(ctx, row, ApprovedBy=approved_by)
    return result


def set_aside(ctx: Context, tenant: str, pid: str, record: Record, reason: Reason, text: str, file: str,
              report_id: str = "") -> None:
    """Put a record on the requires-processing list (once, however often it is imported)."""
    kind = record.kind.value if isinstance(record, IncomingPayment) else "unreadable"
    ctx.storage.insert("Payments", {"PartitionKey": f"rp|{tenant}", "RowKey": pid, "Body": dumps(record),
                                    "Kind": kind, "ReasonCode": reason.value, "Reason": text, "File": file,
                                    "Report": report_id, "Amount": record.amount_minor or 0,
                                    "Currency": record.currency or "", "Raw": record.raw[:1000], "State": "open"})


def book(ctx: Context, tenant: str, subscriber_no: int, payments: list[ReceivedPayment], file: str,
         today: date, outbox: list[Event] | None = None) -> dict[str, Landed]:
    """Book one subscriber's payments; where each landed (booked, already booked, or set aside
    because the subscriber does not exist) and why.

    Outbox events are sent at once, or appended to ``outbox`` for the caller to send in
    one batch (list.extend is atomic under the GIL, so threads may share it).
    """
    catalogue = ctx.catalogue.get(tenant)
    landed: dict[str, Landed] = {}
    per_commit = PAYMENTS_PER_COMMIT
    pending = list(payments)
    for _ in range(10 + 2 * len(payments)):
        if not pending:
            break
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return landed | {p.id: (Outcome.SET_ASIDE, Reason.NO_SUCH_SUBSCRIBER, f"KID {p.reference} names "
                                    f"subscriber {subscriber_no}, who does not exist") for p in pending}
        chunk = pending[:per_commit]
        changes = Changes(loaded.account)
        try:
            for p in chunk:
                step = receive_payment(changes.account, p, catalogue, today)
                changes = replace(step, ledger=changes.ledger + step.ledger, events=changes.events + step.events,
                                  payments=changes.payments + step.payments)
            ctx.accounts.commit(tenant, loaded, changes)
        except (StorageLimit, ValueOutOfRange) as exc:  # nothing was sent: one payment at a time, then set aside
            if len(chunk) > 1:
                per_commit = 1
                continue
            landed[chunk[0].id] = _unbookable(exc)
            pending = pending[1:]
            continue
        except ConcurrencyConflict:
            done = ctx.accounts.booked(tenant, subscriber_no, [p.id for p in chunk])
            landed |= {i: (Outcome.ALREADY_BOOKED, None, "") for i in done}
            pending = [p for p in pending if p.id not in done]
            continue
        events = [*loaded.outbox, *changes.events]
        if outbox is None:
            publish(ctx, tenant, events)
        else:
            outbox.extend(events)
        landed |= {p.id: (Outcome.BOOKED, None, "") for p in chunk}
        pending = pending[len(chunk):]
    if pending:
        raise ConcurrencyConflict(f"payments for subscriber {subscriber_no} kept conflicting")
    return landed


def _unbookable(exc: Exception) -> Landed:
    """Where a payment goes whose booking cannot be written (nothing was sent): set aside with the
    reason, so one payment never stops the others of its file (``book``)."""
    if isinstance(exc, TooManyEntities):
        return (Outcome.SET_ASIDE, Reason.TOO_MANY_DEMANDS, "settles more open invoices at once than one "
                f"transaction can book ({exc}): customer service books it in parts")
    return (Outcome.SET_ASIDE, Reason.CANNOT_BOOK, f"cannot be booked as it is ({exc}): for customer service")


def book_reversal(ctx: Context, job: _Import, subscriber_no: int, reversal: ReceivedPayment) -> tuple[Outcome, str]:
    """Book a reversal against the payment it takes back (same KID and amount), or say why not.
    A payment still awaiting approval is taken back before it is booked (``_reverse_awaiting``)."""
    for attempt in range(10):
        loaded = ctx.accounts.load(job.tenant, subscriber_no)
        if loaded is None:
            return Outcome.SET_ASIDE, f"reversal of a payment we cannot find: subscriber {subscriber_no} does not exist"
        booked = ctx.accounts.payments(job.tenant, subscriber_no)
        if any(b.payment.id == reversal.id for b in booked):
            return Outcome.ALREADY_BOOKED, ""
        original = reversal_target(booked, reversal.reference, reversal.amount_minor, reversal.id)
        if original is None:
            awaiting = _reverse_awaiting(ctx, job.tenant, subscriber_no, reversal, {b.payment.id for b in booked})
            if awaiting is None:  # an approval is booking it right now: look again
                time.sleep(0.05 * (attempt + 1))
                continue
            if awaiting:
                return Outcome.REVERSED, ""
            return Outcome.SET_ASIDE, (f"reversal of a payment we cannot find: no payment of {reversal.amount_minor} "
                                       f"by KID {reversal.reference} is booked for subscriber {subscriber_no}")
        reversal = replace(reversal, organization_id=original.payment.organization_id, reverses=original.payment.id)
        invoices = _invoices(ctx, job.tenant, subscriber_no, loaded.account.open_demands, original)
        changes = reverse_payment(loaded.account, reversal, original, invoices, job.today)
        index_next_visit(ctx, job.tenant, job.catalogue, changes.account, job.today)
        try:
            ctx.accounts.commit(job.tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        publish(ctx, job.tenant, [*loaded.outbox, *changes.events])
        return Outcome.REVERSED, ""
    raise ConcurrencyConflict(f"reversal for subscriber {subscriber_no} kept conflicting")


def _reverse_awaiting(ctx: Context, tenant: str, subscriber_no: int, reversal: ReceivedPayment,
                      booked: set[str]) -> bool | None:
    """Take back a payment of the same subscriber, KID and amount that awaits approval: its row
    goes from open to done (``ReversedBy``) under its ETag, so no approval can book it after.

    True if taken back (now or by this reversal before), False if there is none, None if an
    approval holds one (claimed, or done but not yet among ``booked``): the caller looks again.
    Reads the awaiting rows only for a reversal that found no booked payment (rare).
    """
    race = False
    for row in sorted(ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"aa|{tenant}"}),
                      key=lambda r: r["RowKey"]):
        if row.get("ReversedBy") == reversal.id:
            return True
        payment = loads(ReceivedPayment, row["Body"])
        if (int(row["SubscriberNo"]) != subscriber_no or payment.reference != reversal.reference
                or payment.amount_minor != reversal.amount_minor or row.get("ReversedBy") or payment.id in booked):
            continue  # another payment, taken back already, or booked (``reversal_target`` saw it)
        state = _state(row, "ApprovedBy")
        if state == "claimed" and _stale(ctx, row):
            state = "open"  # the approval died between its claim and the booking: nothing was booked
        if state in ("claimed", "done"):  # being booked, or booked since ``booked`` was read
            race = True
        elif state == "open":
            entity = {k: v for k, v in row.items() if k != "etag"} | {"State": "done", "ReversedBy": reversal.id}
            try:
                ctx.storage.transact("Payments", [("update", entity, {
                    "mode": "replace", "etag": row["etag"], "match_condition": MatchConditions.IfNotModified})])
            except ConcurrencyConflict:
                return None
            return True
    return None if race else False


def _invoices(ctx: Context, tenant: str, subscriber_no: int, open_demands: Any,
              original: BookedPayment) -> dict[int, Invoice]:
    """The invoices a reversal may reopen: those the payment paid that are no longer open."""
    found = {}
    for a in original.allocations:
        if a.demand_no not in open_demands:
            invoice = ctx.accounts.invoice(tenant, subscriber_no, a.demand_no)
            if invoice is not None:
                found[a.demand_no] = invoice
    return found


# ---- customer service: requires processing, manual payments, refunds, search (P2, P4) ----

def requires_processing(ctx: Context, tenant: str) -> list[dict[str, object]]:
    """What customer service must look at: payments, reversals, deductions and unreadable records
    set aside, and AvtaleGiro mandates that match no subscriber, each with its reason."""
    rows = ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"rp|{tenant}"})
    return [{"payment_id": r["RowKey"], "kind": r.get("Kind", "payment"), "reason_code": r.get("ReasonCode"),
             "reason": r["Reason"], "file": r["File"], "report_id": r.get("Report") or None,
             "amount_minor": r["Amount"], "currency": r.get("Currency") or None, "raw": r.get("Raw") or None,
             "state": _state(r, "ResolvedTo"), "payment": json.loads(r["Body"])}
            for r in rows if _state(r, "ResolvedTo") != "done"]


def resolve(ctx: Context, tenant: str, payment_id: str, subscriber_no: int, organization_id: str,
            invoice_number: int | None, today: date | None = None) -> ImportResult:
    """Assign a set-aside payment to a subscriber (and invoice), which books it once.

    A state transition on the requires-processing row, guarded by its ETag: of two
    concurrent resolves one wins, the other is a ``ConcurrencyConflict`` (409) and books nothing.
    """
    row = ctx.storage.get("Payments", f"rp|{tenant}", payment_id)
    if row is None:
        raise NotFound(f"no payment {payment_id} requires processing")
    if _state(row, "ResolvedTo") == "done":
        raise ConcurrencyConflict(f"payment {payment_id} was resolved already")
    today = today or ctx.today(ctx.catalogue.get(tenant))
    incoming = _resolvable(row, payment_id, today)
    reversed_by = _set_aside_reversal(ctx, tenant, incoming)
    if reversed_by:
        raise PaymentRefused(f"the bank reversed this payment (reversal {reversed_by}, set aside): there is nothing "
                             "to book")
    payment = _assigned(ctx, tenant, payment_id, subscriber_no, organization_id, invoice_number,
                        incoming.amount_minor, incoming.payment_date, incoming.source, incoming.reference)
    if payment.currency != incoming.currency:
        raise PaymentRefused(f"the payment is in {incoming.currency}; {organization_id} keeps its books in "
                             f"{payment.currency}")
    if ctx.accounts.load(tenant, subscriber_no) is None:
        raise NotFound(f"subscriber {subscriber_no}")  # before the claim: a wrong number leaves the row open
    _claim(ctx, row, "resolved", f"{subscriber_no}|{organization_id}|{invoice_number or ''}")
    with _released_on_refusal(ctx, row):
        result = _book_one(ctx, tenant, subscriber_no, payment, row["File"], today)
    _done(ctx, row, ResolvedTo=subscriber_no)
    return result


def _set_aside_reversal(ctx: Context, tenant: str, payment: IncomingPayment) -> str | None:
    """A reversal of this payment (same KID, amount, account and currency) set aside because the
    payment was not booked: the bank took the money back, so resolving the payment books nothing.
    One query of the requires-processing rows, on a call customer service makes by hand."""
    if payment.reference is None:
        return None
    for row in ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"rp|{tenant}"}):
        if row.get("Kind") != "reversal" or _state(row, "ResolvedTo") == "done":
            continue
        body = json.loads(row["Body"])
        if (body.get("reference"), body.get("amount_minor"), body.get("payee_account"), body.get("currency")) == (
                payment.reference, payment.amount_minor, payment.payee_account, payment.currency):
            return str(row["RowKey"])
    return None


def _resolvable(row: dict[str, Any], payment_id: str, today: date) -> IncomingPayment:
    """The payment a requires-processing row holds, for customer service to assign: a payment,
    or an unreadable record of a payment whose amount and currency were read (the person
    resolving it reads the raw line; its date, which may be damaged, becomes today's)."""
    kind = row.get("Kind", "payment")
    if kind == "payment":
        return loads(IncomingPayment, row["Body"])
    if kind == "unreadable":
        record = loads(UnreadableRecord, row["Body"])
        if record.kind is RecordKind.PAYMENT and record.amount_minor is not None and record.currency:
            return IncomingPayment(record.source, record.line_id, record.amount_minor, record.currency, None, today,
                                   payee_account=record.payee_account, raw=record.raw)
        kind = f"unreadable {record.kind.value}"
    raise PaymentRefused(f"{payment_id} is a {kind} set aside, not a payment; it cannot be resolved onto a "
                         "subscriber as one")


def _state(row: dict[str, Any], done_column: str) -> str:
    """open | claimed | done (rows written before states existed say done by their column)."""
    return str(row.get("State") or ("done" if row.get(done_column) else "open"))


def _claim(ctx: Context, row: dict[str, Any], what: str, target: str) -> None:
    """Move the row from open to claimed under its ETag (one winner among concurrent calls).

    A claim for the same target that was never finished (the process died between claim
    and booking) may be taken again after ``RESUME_AFTER``; booking is idempotent.
    """
    state, now = _state(row, "ResolvedTo" if what == "resolved" else "ApprovedBy"), ctx.clock.now()
    if state == "done":
        raise ConcurrencyConflict(f"payment {row['RowKey']} was {what} already")
    if state == "claimed" and not (row.get("Target") == target and row.get("ClaimedAt")
                                   and now - row["ClaimedAt"] >= RESUME_AFTER):
        raise ConcurrencyConflict(f"payment {row['RowKey']} is being {what} by another request")
    entity = {k: v for k, v in row.items() if k != "etag"} | {"State": "claimed", "Target": target, "ClaimedAt": now}
    ctx.storage.transact("Payments", [("update", entity, {"mode": "replace", "etag": row["etag"],
                                                          "match_condition": MatchConditions.IfNotModified})])


def _stale(ctx: Context, row: dict[str, Any]) -> bool:
    """A claim older than ``RESUME_AFTER``: the call that took it died before it finished."""
    claimed = row.get("ClaimedAt")
    return bool(claimed) and ctx.clock.now() - claimed >= RESUME_AFTER


@contextmanager
def _released_on_refusal(ctx: Context, row: dict[str, Any]) -> Iterator[None]:
    """A booking refused after the claim (nothing booked) leaves the row open again."""
    try:
        yield
    except (PaymentRefused, NotFound):
        ctx.storage.upsert("Payments", {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"],
                                        "State": "open", "Target": ""})
        raise


def _done(ctx: Context, row: dict[str, Any], **done: object) -> None:
    ctx.storage.upsert("Payments", {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "State": "done",
                                    **done})


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
        command = BookRefund(refund_id, org.id, org.currency, amount_minor, external_reference, comment)
        changes = refund(loaded.account, command, ctx.today(catalogue))
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
        if demand.terms.invoice_number == invoice_number:
            return demand.demand_no
    return None  # paid or unknown: the payment is booked without an invoice match


def _book_one(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str,
              today: date) -> ImportResult:
    if ctx.accounts.load(tenant, subscriber_no) is None:
        raise NotFound(f"subscriber {subscriber_no}")
    ((where, _, why),) = book(ctx, tenant, subscriber_no, [payment], file, today).values()
    if where is Outcome.SET_ASIDE:
        raise PaymentRefused(why)
    booked = where is Outcome.BOOKED
    return ImportResult(file, payment.source, 1, int(booked), int(where is Outcome.ALREADY_BOOKED), 0,
                        payment.amount_minor if booked else 0)
