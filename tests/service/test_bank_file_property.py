"""Property (issue 8, part 1), against Azurite: for any bank file our writers can produce
(OCR giro with payments and reversals, BgMax with payments, deductions and repeated or
blank serial numbers), with KIDs that are valid, fail their check digit or name nobody,
every record ends in exactly one place (booked, set aside, or reversed), the import
report adds up to the file's own totals, and importing the same transmission again, in
another encoding or with other line endings, books nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.domain.import_report import Outcome
from shared.domain.payments import BookedPayment
from shared.formats import bgmax
from shared.service import payments_in
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import install_catalogue, order
from tests.service.test_bank_file_import import PURCHASE, REVERSING, nets

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes

DAY = date(2026, 1, 10)
SUBSCRIBERS = 3

records = st.lists(st.tuples(st.sampled_from(["valid", "valid", "bad check digit", "nobody", "none"]),
                             st.integers(0, SUBSCRIBERS - 1), st.integers(1, 60000), st.booleans()),
                   min_size=1, max_size=8)


def tenant_with_invoices(ctx: Context, currency: str) -> tuple[str, list[tuple[int, str]]]:
    tenant = f"p{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    if currency == "SEK":
        put_item(ctx, tenant, "organization", replace(ctx.catalogue.get(tenant).organizations["avisa"],
                                                      currency="SEK", bank_account="5551234"))
    placed = [place_order(ctx, order(tenant, n)) for n in range(1, SUBSCRIBERS + 1)]
    return tenant, [(p.subscriber_no, p.invoices[0].kid) for p in placed]


def kid_of(ctx: Context, tenant: str, how: str, kid: str) -> str:
    if how == "bad check digit":
        return kid[:-1] + str((int(kid[-1]) + 1) % 10)
    if how == "nobody":
        return ctx.catalogue.get(tenant).organizations["avisa"].kid.encode(9_999_000 + int(kid[-3:-1]), 1)
    return kid if how == "valid" else ""


def ocr_file(items: list[tuple[str, int, bool]]) -> bytes:
    # a reversal after a payment of the same KID and amount, as a bank sends it
    lines = [(k, a, PURCHASE) for k, a, _ in items] + [(k, a, REVERSING) for k, a, rev in items if rev]
    return nets(*[(k or "12345678903", a, t) for k, a, t in lines]).encode("iso-8859-1")  # OCR needs a KID


def bgmax_file(items: list[tuple[str, int, bool]]) -> bytes:
    serials = ["000000000001", "000000000001", "", "000000000002"]  # repeated and blank, as real files have them
    while sum(-a if rev else a for _, a, rev in items) < 0:  # a deposit's net is never negative
        at = next(i for i, (_, _, rev) in enumerate(items) if rev)
        items = [*items[:at], (items[at][0], items[at][1], False), *items[at + 1:]]
    payments = [bgmax.Payment("9876543", k, a, 2, 1, serials[i % 4].ljust(12), deduction_code=0 if rev else None)
                for i, (k, a, rev) in enumerate(items)]
    net = sum(-p.amount_minor if p.deduction_code is not None else p.amount_minor for p in payments)
    deductions = sum(1 for p in payments if p.deduction_code is not None)
    return bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"), *payments,
                        bgmax.Deposit("1234567890", DAY, "00001", net, len(payments)),
                        bgmax.End(len(payments) - deductions, deductions, 0, 1)])


def everything_booked(ctx: Context, tenant: str, subscribers: list[int]) -> dict[str, BookedPayment]:
    return {b.payment.id: b for s in subscribers for b in ctx.accounts.payments(tenant, s)}


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # bounded: no shrinking against Azurite
@given(fmt=st.sampled_from(["ocr_giro", "bgmax"]), items=records,
       again=st.sampled_from(["crlf", "utf-8", "same bytes"]))
def test_every_record_lands_in_exactly_one_place_and_a_second_import_books_nothing(
        ctx: Context, fmt: str, items: list[tuple[str, int, int, bool]], again: str) -> None:
    tenant, invoices = tenant_with_invoices(ctx, "NOK" if fmt == "ocr_giro" else "SEK")
    paid = [(kid_of(ctx, tenant, how, invoices[who][1]), amount, rev) for how, who, amount, rev in items]
    data = ocr_file(paid) if fmt == "ocr_giro" else bgmax_file(paid)
    report = payments_in.import_bank_file(ctx, tenant, "f.txt", data)
    assert report.balanced, report.problems
    assert report.records == sum(t.records for t in report.totals)
    key = report.id
    positions = {f"{key}.{land}" for land in _line_ids(data)}
    subscribers = [s for s, _ in invoices]
    booked = everything_booked(ctx, tenant, subscribers)
    aside = {str(r["payment_id"]) for r in payments_in.requires_processing(ctx, tenant)}
    landed_booked = set(booked)
    assert landed_booked.isdisjoint(aside)  # never in two places
    assert landed_booked | aside == positions  # and every record somewhere
    assert report.count(Outcome.BOOKED) + report.count(Outcome.REVERSED) == len(landed_booked)
    assert report.count(Outcome.SET_ASIDE) == len(aside)
    ledgers = {s: ctx.accounts.history(tenant, s)[1] for s in subscribers}

    text = data.decode("iso-8859-1")
    second = {"crlf": text.replace("\n", "\r\n").encode("iso-8859-1"), "utf-8": text.encode("utf-8"),
              "same bytes": data}[again]
    repeat = payments_in.import_bank_file(ctx, tenant, "f-again.txt", second)
    assert repeat.status == "duplicate" and repeat.count(Outcome.DUPLICATE) == report.records and repeat.balanced
    assert {s: ctx.accounts.history(tenant, s)[1] for s in subscribers} == ledgers  # nothing booked twice


def _line_ids(data: bytes) -> list[str]:
    from shared.formats import read_bank_file

    return [r.line_id for r in read_bank_file(data).payments]
