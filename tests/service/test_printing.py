"""The print channel's daily batch (D3; ``shared.service.printing``): the letters delivery
sent to print on a day become one PDF per organisation in postal-code order and a CSV
manifest that adds up; a day is made once; a run cut short is made again cleanly; a
letter that cannot be made is set aside and the rest printed. On the fakes and on Azurite."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
from pypdf import PdfReader

from devhost.builders import install_catalogue
from functions.print_timer import print_timer
from shared import bootstrap
from shared.adapters.bus import NOTICES
from shared.documents.print_batch import merge
from shared.domain.catalogue import Channel
from shared.ports import PrintItem, Unavailable
from shared.service import delivery
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.isolation import needs_attention
from shared.service.orders import place_order
from shared.service.printing import PRINT_RUN, print_batch
from tests.fakes import FakeContext
from tests.fixtures import order, received

DAY = date(2026, 1, 5)  # the ``clock`` fixture's morning
CODES = ("5003", "0150", None, "10001", "0150", "9990")


def printed_by_post(ctx: Context, shop: str, codes: tuple[str | None, ...] = CODES) -> None:
    """The organisation sends by post; one order per postal code, each first invoice delivered."""
    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", replace(org, document_channel=Channel.PRINT))
    for n, code in enumerate(codes, start=1):
        place_order(ctx, replace(order(shop, n), address=f"Gate {n}", postal_code=code, city="By"))
    while messages := received(ctx, NOTICES):
        for m in messages:
            delivery.deliver(ctx, m.id, m.body)


def files(ctx: Context, shop: str, day: date = DAY) -> tuple[bytes, list[dict[str, str]], dict[str, object]]:
    pdf, manifest, report = (ctx.print_files.get(shop, day, f"avisa.{s}") for s in ("pdf", "csv", "json"))
    assert pdf is not None and manifest is not None and report is not None
    return pdf, list(csv.DictReader(io.StringIO(manifest.decode()))), json.loads(report)


@pytest.mark.fakes
def test_the_days_letters_are_one_pdf_in_postal_code_order_with_a_manifest_that_adds_up(
        ctx: Context, shop: str) -> None:
    printed_by_post(ctx, shop)
    (batch,) = print_batch(ctx, shop, DAY)
    pdf, rows, report = files(ctx, shop)
    printed = [r for r in rows if not r["set_aside"]]
    assert [r["postal_code"] for r in printed] == ["", "0150", "0150", "5003", "9990", "10001"]
    assert [int(r["sequence"]) for r in printed] == list(range(1, 7))
    # each letter starts on the page after the one before ends; the pages add up to the PDF's
    pages = PdfReader(io.BytesIO(pdf)).pages
    ends = 1
    for r in printed:
        assert int(r["page_from"]) == ends
        ends += int(r["pages"])
    assert ends - 1 == len(pages) == batch.pages == report["pages"]
    # every letter's first page is that subscriber's invoice, in the manifest's order
    for r in printed:
        text = pages[int(r["page_from"]) - 1].extract_text()
        assert r["name"].startswith("Kari Nordmann") and r["name"] in text
        assert r["kind"] == "invoice" and int(r["number"]) > 0 and r["document_id"].startswith("inv-")
    total = sum(int(r["amount_minor"]) for r in printed)
    assert report["amounts_minor"] == {"NOK": total} and total > 0
    assert report["letters"] == batch.letters == 6 and report["set_aside"] == []
    assert report["pdf_bytes"] == len(pdf)


@pytest.mark.fakes
def test_a_second_run_of_the_day_writes_nothing(ctx: Context, shop: str) -> None:
    printed_by_post(ctx, shop, ("0150", "5003"))
    (first,) = print_batch(ctx, shop, DAY)
    before = files(ctx, shop)
    writes = _writes(ctx, shop)
    (again,) = print_batch(ctx, shop, DAY)
    assert first.made_now and not again.made_now
    assert replace(again, made_now=True) == first
    assert files(ctx, shop) == before
    assert _writes(ctx, shop) == writes  # not written again (the same etags on Azurite)


def _writes(ctx: Context, shop: str) -> object:
    if isinstance(ctx, FakeContext):
        return ctx.print_files.writes
    container = bootstrap.blob_service().get_container_client("print")
    return {b.name: b.etag for b in container.list_blobs(name_starts_with=f"{shop}/")}


@pytest.mark.fakes
def test_a_run_cut_short_makes_the_day_again_cleanly(ctx: Context, shop: str) -> None:
    printed_by_post(ctx, shop, ("0150", "5003", "7000"))
    files_ = ctx.print_files
    ctx.print_files = _FailingReport(files_)  # type: ignore[assignment]  # storage goes away before the report
    with pytest.raises(Unavailable):
        print_batch(ctx, shop, DAY)
    ctx.print_files = files_
    assert ctx.print_files.get(shop, DAY, "avisa.json") is None  # not marked made: the PDF may be there
    (batch,) = print_batch(ctx, shop, DAY)
    pdf, rows, report = files(ctx, shop)
    assert batch.made_now and batch.letters == 3 == len(rows) == report["letters"]
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 3


class _FailingReport:
    """Print files whose report cannot be written: the run is cut short after the PDF."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put(self, *args: object) -> None:
        raise Unavailable("storage went away before the report")


@pytest.mark.fakes
def test_a_letter_that_cannot_be_made_is_set_aside_and_the_rest_printed(ctx: Context, shop: str) -> None:
    printed_by_post(ctx, shop, ("0150", "5003", "7000"))
    items = list(ctx.print_queue.items(shop, DAY, "avisa"))
    broken, missing = items[1], PrintItem("avisa", items[0].subscriber_no, "inv-00009999", "4000", "Nobody")
    ctx.document_files.put(shop, broken.subscriber_no, broken.document_id, "pdf", b"%PDF-1.4 torn", "application/pdf")
    ctx.print_queue.add(shop, DAY, missing)
    (batch,) = print_batch(ctx, shop, DAY)
    pdf, rows, report = files(ctx, shop)
    assert batch.letters == 2 and len(PdfReader(io.BytesIO(pdf)).pages) == 2
    printed = [r["document_id"] for r in rows if not r["set_aside"]]
    assert printed == [items[0].document_id, items[2].document_id]
    aside = {r["document_id"]: r["set_aside"] for r in rows if r["set_aside"]}
    assert set(aside) == {broken.document_id, "inv-00009999"}
    assert "UnreadablePdf" in aside[broken.document_id] and "NotFound" in aside["inv-00009999"]
    assert [s["document_id"] for s in report["set_aside"]] == [d for d in aside]  # type: ignore[union-attr]
    attention = [a for a in needs_attention(ctx, shop) if a["run"] == PRINT_RUN]
    assert sorted((a["subscriber_no"], a["ref"]) for a in attention) == sorted(
        [(broken.subscriber_no, broken.document_id), (missing.subscriber_no, "inv-00009999")])


@pytest.mark.fakes
def test_a_day_without_letters_makes_nothing(ctx: Context, shop: str) -> None:
    assert print_batch(ctx, shop, DAY) == []
    assert ctx.print_files.get(shop, DAY, "avisa.json") is None


def test_the_timer_makes_yesterdays_batch_of_every_tenant_once(fake_ctx: FakeContext, tenant: str) -> None:
    install_catalogue(fake_ctx, tenant)
    printed_by_post(fake_ctx, tenant, ("0150", "5003"))
    fake_ctx.clock.set(fake_ctx.clock.now() + timedelta(days=1))  # the morning after
    print_timer(None)  # type: ignore[arg-type]  # the timer function as the host calls it
    _, rows, report = files(fake_ctx, tenant)
    assert report["letters"] == 2 and len(rows) == 2
    writes = fake_ctx.print_files.writes
    print_timer(None)  # type: ignore[arg-type]
    fake_ctx.clock.set(fake_ctx.clock.now() + timedelta(days=3))
    print_timer(None)  # type: ignore[arg-type]  # days later: the days back are made already
    assert fake_ctx.print_files.writes == writes


def test_a_letter_whose_stored_pdf_is_gone_is_rendered_again_to_the_same_bytes(fake_ctx: FakeContext,
                                                                               tenant: str) -> None:
    install_catalogue(fake_ctx, tenant)
    printed_by_post(fake_ctx, tenant, ("0150", "5003"))
    first, second = fake_ctx.print_queue.items(tenant, DAY, "avisa")
    stored = fake_ctx.document_files.files.pop(fake_ctx.document_files.name(tenant, second.subscriber_no,
                                                                            second.document_id, "pdf"))
    (batch,) = print_batch(fake_ctx, tenant, DAY)
    assert batch.letters == 2 and batch.set_aside == ()
    pdf, rows, _ = files(fake_ctx, tenant)
    assert [r["document_id"] for r in rows] == [first.document_id, second.document_id]
    merged = io.BytesIO()
    merge([fake_ctx.document_files.get(tenant, first.subscriber_no, first.document_id, "pdf") or b"", stored],
          merged)
    assert merged.getvalue() == pdf  # rendering is deterministic: the batch is what delivery stored
