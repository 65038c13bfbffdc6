"""A hostile bank and a careless operator (issue 8, part 1), through the blob trigger's
``handle``: amounts no ledger row can hold, BgMax test files. Each test is the class,
not the one file that showed it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from devhost.azurite import Azurite
from functions.ocr_blob_trigger import handle
from shared.domain.import_report import Outcome, Status
from shared.formats import bgmax, read_bank_file
from shared.formats.payments import NotIncomingPayments
from shared.service import payments_in
from shared.service.catalogue import put_item
from shared.service.context import Context
from tests.fixtures import install_catalogue
from tests.service.test_bank_file_import import PURCHASE, REVERSING, ledger, nets, ordered, rp

DAY = date(2026, 1, 10)
OCR_MAX = 10**17 - 10**6  # OCR giro amount fields hold 17 digits of øre (the end records sum them too)
BGMAX_MAX = 10**18 - 1  # BgMax amount field: 18 digits of öre


def _fresh(ctx: Context) -> str:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    return tenant


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate))  # every example costs an Azurite tenant: no shrinking
@example(amount=2**31, where="unknown KID", position=0)
@example(amount=OCR_MAX, where="our KID", position=1)
@example(amount=10**11 + 1, where="reversal", position=2)
@given(amount=st.integers(2**31 - 1, OCR_MAX), where=st.sampled_from(["unknown KID", "our KID", "reversal"]),
       position=st.integers(0, 2))
def test_no_amount_a_bank_file_can_carry_stops_the_file_the_others_book_and_the_report_adds_up(
        azurite: Azurite, ctx: Context, amount: int, where: str, position: int) -> None:
    """Before: a record of 2^31 øre or more (21.5 M NOK; the field holds 17 digits) failed the
    set-aside or ledger row (Int32) and the whole file went to rejected/ part-way, the
    payments after it never booked, and dropping it again failed the same way."""
    shop = _fresh(ctx)
    others = [ordered(ctx, shop, n) for n in (1, 2)]
    target = ordered(ctx, shop, 3)
    odd = {"unknown KID": ("12345678903", amount, PURCHASE), "our KID": (target[1], amount, PURCHASE),
           "reversal": (target[1], amount, REVERSING)}[where]
    items = [(kid, total, PURCHASE) for _, kid, total in others]
    items.insert(position, odd)
    report = handle(f"{shop}/big.txt", nets(*items).encode())
    assert report is not None and report.status == Status.IMPORTED, report
    assert report.balanced and report.records == 3
    assert report.count(Outcome.BOOKED) == 2 and report.count(Outcome.SET_ASIDE) == 1
    for subscriber, _, total in others:
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]
    assert ledger(ctx, shop, target[0]) == [("invoice", -target[2])]
    (aside,) = rp(ctx, shop)
    assert aside["amount_minor"] == amount


@pytest.mark.parametrize("marker", ["T"])
def test_a_bgmax_test_file_is_never_booked(ctx: Context, shop: str, marker: str) -> None:
    """Bankgirot marks test files 'T' in TK01 (production 'P'): their payments are not money.
    Before, a test file was booked like a production file."""
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], currency="SEK",
                                                bank_account="5551234"))
    subscriber, kid, total = ordered(ctx, shop)
    data = bgmax.write([bgmax.Start("20260110061500000000", test=marker == "T"), bgmax.Opening("5551234"),
                        bgmax.Payment("9876543", kid, total, 2, 1, "1"),
                        bgmax.Deposit("1", DAY, "00001", total, 1), bgmax.End(1, 0, 0, 1)])
    with pytest.raises(NotIncomingPayments, match="test"):
        read_bank_file(data)
    report = handle(f"{shop}/test.txt", data)
    assert report is not None and report.status == Status.REJECTED and "test" in report.reason
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]
    production = data.replace(b"20260110061500000000T", b"20260110061500000000P")
    assert payments_in.import_bank_file(ctx, shop, "prod.txt", production).count(Outcome.BOOKED) == 1
