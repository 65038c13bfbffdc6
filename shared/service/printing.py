"""The print channel's daily batch (L7, D3; manual: invoice delivery by print).

Delivery puts each document that goes by post into the print queue of its day
(``PrintQueue``, with the addressee's postal code). Once a day ``print_batch`` makes, for
every organisation with letters that day, what the print house takes:

* ``print/{tenant}/{day}/{organization}.pdf``: every letter, in postal-code order (the
  queue's order), merged into one PDF (``shared.documents.print_batch``), streamed into a
  block blob: neither the batch nor its documents are ever held whole;
* ``{organization}.csv``: the manifest, one row per letter (sequence, first page, pages,
  subscriber, name, postal code, document, kind, number, amount), then the letters set
  aside with the reason;
* ``{organization}.json``: the batch's report (counts, pages, bytes, amounts per currency,
  the letters set aside), written last: the mark that the day's batch is made.

Each letter is the stored document (``documents.document``: what the manifest says) and
its PDF as delivery stored it when it queued the letter, rendered again (the same bytes:
rendering is deterministic) when that file is missing. Up to ``AHEAD`` letters are read
and rendered ahead in a thread pool, in order, so storage round trips overlap.

**Idempotent per day.** A batch whose report exists is not made again: a second run of the
day writes nothing. A run cut short leaves no report; the next run makes the day's batch
again from the start and overwrites the PDF and the manifest (a streamed file appears only
whole, when it is committed). **One bad letter never stops the batch**: a letter whose
document cannot be read or rendered, or whose PDF cannot be read, is left out, listed in
the manifest's and the report's set-aside part with the reason, and recorded as needing
attention for its subscriber (run ``print``, ref the document) once the batch is made.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, BinaryIO

from ..documents.print_batch import Merger, UnreadablePdf
from ..domain.documents import Document, Kind
from ..ports import TENANT_RUN, PrintItem
from . import documents
from .context import Context
from .isolation import reason, record

log = logging.getLogger(__name__)
PRINT_RUN = "print"  # the attention rows' run
CATCH_UP = 7  # days back the timer makes a batch not made yet (a day the timer missed)
AHEAD = 16  # letters read and rendered ahead of the merge, in parallel (bounded: memory stays flat)
WORKERS = 8
PROGRESS = 1000  # a log line every this many letters
PDF, CSV, JSON = "application/pdf", "text/csv; charset=utf-8", "application/json"
COLUMNS = ("sequence", "page_from", "pages", "subscriber_no", "name", "postal_code", "document_id", "kind",
           "number", "amount_minor", "currency", "set_aside")


@dataclass(frozen=True)
class SetAside:
    subscriber_no: int
    document_id: str
    name: str
    postal_code: str
    reason: str


@dataclass(frozen=True)
class Batch:
    """One organisation's print batch of a day, as its report says."""

    organization_id: str
    day: date
    letters: int
    pages: int
    pdf_bytes: int  # the merged PDF's size
    amounts_minor: dict[str, int]  # per currency: what the letters ask to be paid (credit notes negative)
    set_aside: tuple[SetAside, ...] = ()
    made_now: bool = True  # False: made by an earlier run, nothing written this time

    def to_json(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "made_now"}
        body["day"] = self.day.isoformat()
        return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True).encode()

    @staticmethod
    def from_json(data: bytes) -> Batch:
        body = json.loads(data)
        return Batch(body["organization_id"], date.fromisoformat(body["day"]), body["letters"], body["pages"],
                     body["pdf_bytes"], body["amounts_minor"], tuple(SetAside(**s) for s in body["set_aside"]), False)


def print_due(ctx: Context, tenant: str) -> list[Batch]:
    """The timer's use case: the batches of the last ``CATCH_UP`` closed days not made yet
    (yesterday's in the tenant's time zone, normally; the days before only if a run was missed)."""
    yesterday = ctx.today(ctx.catalogue.get(tenant)) - timedelta(days=1)
    batches = [b for back in range(CATCH_UP - 1, -1, -1)
               for b in print_batch(ctx, tenant, yesterday - timedelta(days=back))]
    if ctx.attention.find(tenant, PRINT_RUN, TENANT_RUN) is not None:
        ctx.attention.resolve(tenant, PRINT_RUN, TENANT_RUN)  # the tenant's run went through again
    return batches


def print_batch(ctx: Context, tenant: str, day: date) -> list[Batch]:
    """Every organisation's print batch of ``day`` (made once; see the module)."""
    return [_organization(ctx, tenant, day, org) for org in ctx.print_queue.organizations(tenant, day)]


def _organization(ctx: Context, tenant: str, day: date, org: str) -> Batch:
    done = ctx.print_files.get(tenant, day, f"{org}.json")
    if done is not None:
        return Batch.from_json(done)
    log.info("print batch of %s/%s on %s: started", tenant, org, day)
    with (ctx.print_files.open(tenant, day, f"{org}.pdf", PDF) as pdf_out,
          ctx.print_files.open(tenant, day, f"{org}.csv", CSV) as csv_out):
        tally = _Tally(Merger(pdf_out), _Manifest(csv_out))
        for item, made in _letters(ctx, tenant, ctx.print_queue.items(tenant, day, org)):
            tally.add(item, made)
        tally.close()
    batch = Batch(org, day, tally.letters, tally.merger.page_count, tally.merger.position, tally.amounts,
                  tuple(tally.set_aside))
    for aside in batch.set_aside:  # told once the files are written (a run cut short before told nobody)
        record(ctx, tenant, PRINT_RUN, aside.subscriber_no, day, NotPrinted(aside.reason), ref=aside.document_id)
    ctx.print_files.put(tenant, day, f"{org}.json", batch.to_json(), JSON)
    log.info("print batch of %s/%s on %s: %d letters, %d pages, %d bytes, %d set aside", tenant, org, day,
             batch.letters, batch.pages, batch.pdf_bytes, len(batch.set_aside))
    return batch


class NotPrinted(Exception):
    """A letter left out of the print batch (its attention row's reason)."""


Made = tuple[Document, bytes] | Exception


def _letters(ctx: Context, tenant: str, items: Iterator[PrintItem]) -> Iterator[tuple[PrintItem, Made]]:
    """Each item with its document and PDF (or what went wrong), in the queue's order,
    ``AHEAD`` of them fetched in parallel."""
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="print") as pool:
        ahead: deque[tuple[PrintItem, Future[tuple[Document, bytes]]]] = deque()
        for item in items:
            ahead.append((item, pool.submit(_letter, ctx, tenant, item)))
            if len(ahead) >= AHEAD:
                yield _outcome(*ahead.popleft())
        while ahead:
            yield _outcome(*ahead.popleft())


def _outcome(item: PrintItem, future: Future[tuple[Document, bytes]]) -> tuple[PrintItem, Made]:
    try:
        return item, future.result()
    except Exception as exc:  # this letter's alone
        return item, exc


def _letter(ctx: Context, tenant: str, item: PrintItem) -> tuple[Document, bytes]:
    document = documents.document(ctx, tenant, item.subscriber_no, item.document_id)
    stored = ctx.document_files.get(tenant, item.subscriber_no, item.document_id, "pdf")
    return document, stored if stored is not None else documents.render(ctx, tenant, document)


def amount_of(document: Document) -> int:
    """What the letter asks to be paid; a credit note's (negative) total."""
    return document.total_minor if document.kind is Kind.CREDIT_NOTE else document.amount_due_minor


@dataclass
class _Tally:
    merger: Merger
    manifest: _Manifest
    letters: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)

    def add(self, item: PrintItem, made: Made) -> None:
        if isinstance(made, Exception):
            self._aside(item, reason(made))
            return
        document, pdf = made
        first = self.merger.page_count + 1
        try:
            pages = self.merger.add(pdf)
        except UnreadablePdf as exc:
            self._aside(item, reason(exc))
            return
        self.letters += 1
        amount = amount_of(document)
        self.amounts[document.currency] = self.amounts.get(document.currency, 0) + amount
        self.manifest.row(self.letters, first, pages, item.subscriber_no, item.name, item.postal_code, document.id,
                          document.kind.value, document.number, amount, document.currency, "")
        if (self.letters + len(self.set_aside)) % PROGRESS == 0:
            log.info("print batch: %d letters, %d pages, %d set aside so far", self.letters, self.merger.page_count,
                     len(self.set_aside))

    def _aside(self, item: PrintItem, why: str) -> None:
        self.set_aside.append(SetAside(item.subscriber_no, item.document_id, item.name, item.postal_code, why))
        log.warning("print batch: %s of subscriber %s set aside: %s", item.document_id, item.subscriber_no, why)

    def close(self) -> None:
        self.merger.close()
        for aside in self.set_aside:
            self.manifest.row("", "", 0, aside.subscriber_no, aside.name, aside.postal_code, aside.document_id, "",
                              "", "", "", aside.reason)


class _Manifest:
    """The CSV manifest, written row by row to its stream (UTF-8, CRLF as RFC 4180)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.row(*COLUMNS)

    def row(self, *values: Any) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerow(values)
        self.out.write(text.getvalue().encode())
