"""A hostile bank and a careless operator (issue 8, part 1), through the blob trigger's
``handle``: amounts no ledger row can hold, BgMax test files. Each test is the class,
not the one file that showed it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from devhost.azurite import Azurite
from functions.ocr_blob_trigger import handle
from shared.adapters.imports import ImportLog
from shared.clock import SettableClock
from shared.domain.import_report import Outcome, Status
from shared.domain.limits import MAX_MINOR
from shared.formats import bgmax, read_bank_file
from shared.formats.payments import NotIncomingPayments
from shared.ports import ConcurrencyConflict
from shared.service import payments_in
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.payments_in import desk
from tests.fixtures import install_catalogue
from tests.service.test_bank_file_import import ACCOUNT, PURCHASE, REVERSING, ledger, nets, ordered, rp
from tests.unit.test_bank_file_fuzz import _written_bgmax, _written_ocr

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
@example(amount=2**31, where="our KID", position=2)
@example(amount=OCR_MAX, where="our KID", position=1)
@example(amount=MAX_MINOR + 1, where="reversal", position=2)
@given(amount=st.integers(2**31 - 1, OCR_MAX), where=st.sampled_from(["unknown KID", "our KID", "reversal"]),
       position=st.integers(0, 2))
def test_no_amount_a_bank_file_can_carry_stops_the_file_the_others_book_and_the_report_adds_up(
        azurite: Azurite, ctx: Context, amount: int, where: str, position: int) -> None:
    """Before: a record of 2^31 øre or more (21.5 M NOK; the field holds 17 digits) failed the
    set-aside or ledger row (Int32) and the whole file went to rejected/ part-way, the
    payments after it never booked, and dropping it again failed the same way. Now a
    payment within the business limits (10^11 minor units) books, one beyond them is set
    aside (cannot_book), and nothing stops the file's other payments."""
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
    books = where == "our KID" and amount <= MAX_MINOR
    assert report.count(Outcome.BOOKED) == 2 + books and report.count(Outcome.SET_ASIDE) == 1 - books
    for subscriber, _, total in others:
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]
    assert ledger(ctx, shop, target[0]) == [("invoice", -target[2])] + [("payment", amount)] * books
    assert [r["amount_minor"] for r in rp(ctx, shop)] == [amount] * (not books)
    if where == "our KID" and not books:
        assert rp(ctx, shop)[0]["reason_code"] == "cannot_book"


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


def _approving(ctx: Context, shop: str) -> None:
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"],
                                                manual_payment_approval=True))


@pytest.mark.parametrize("when", ["same file", "next file"])
def test_a_reversal_of_a_payment_awaiting_approval_takes_it_back_so_approval_books_nothing(
        ctx: Context, shop: str, when: str) -> None:
    """Before: the reversal looked only at booked payments, was set aside 'cannot find', and
    approving the payment then booked money the bank had taken back."""
    _approving(ctx, shop)
    subscriber, kid, total = ordered(ctx, shop)
    if when == "same file":
        report = payments_in.import_bank_file(ctx, shop, "a.txt",
                                              nets((kid, total, PURCHASE), (kid, total, REVERSING)).encode())
    else:
        payments_in.import_bank_file(ctx, shop, "a.txt", nets((kid, total, PURCHASE)).encode())
        report = payments_in.import_bank_file(ctx, shop, "b.txt",
                                              nets((kid, total, REVERSING), number="1000002").encode())
    assert report.balanced and report.count(Outcome.REVERSED) == 1 and report.count(Outcome.SET_ASIDE) == 0
    assert payments_in.awaiting_approval(ctx, shop) == [] and rp(ctx, shop) == []
    row_id = f"{report.id.split('~')[0]}.1.1" if when == "same file" else None
    if row_id:
        with pytest.raises(ConcurrencyConflict, match="reversed"):
            payments_in.approve(ctx, shop, row_id, "boss")
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]


def _approve(ctx: Context, shop: str, payment_id: str) -> object:
    try:
        return payments_in.approve(ctx, shop, payment_id, "boss")
    except ConcurrencyConflict as exc:
        return exc


def test_approval_racing_the_reversal_books_the_payment_and_its_reversal_or_neither(ctx: Context, shop: str) -> None:
    _approving(ctx, shop)
    for n in range(4):
        subscriber, kid, total = ordered(ctx, shop, n + 1)
        payments_in.import_bank_file(ctx, shop, f"p{n}.txt", nets((kid, total, PURCHASE), number=f"10000{n}1").encode())
        (waiting,) = [a for a in payments_in.awaiting_approval(ctx, shop) if a["subscriber_no"] == subscriber]
        reversal = nets((kid, total, REVERSING), number=f"10000{n}2").encode()
        with ThreadPoolExecutor(2) as pool:
            approved = pool.submit(_approve, ctx, shop, str(waiting["payment_id"]))
            report = pool.submit(payments_in.import_bank_file, ctx, shop, f"r{n}.txt", reversal).result()
            approved.result()
        assert report.balanced and report.count(Outcome.REVERSED) == 1, report.summary_line()
        assert sum(amount for _, amount in ledger(ctx, shop, subscriber)) == -total


@pytest.mark.parametrize("why", ["bad check digit", "no such subscriber", "unknown account"])
def test_a_reversal_of_a_payment_resolved_by_hand_takes_it_back_from_whom_it_was_resolved_to(
        ctx: Context, shop: str, why: str) -> None:
    """Before: the reversal was identified by its KID only, found nobody (or nobody who had the
    payment), and was set aside, where resolve refuses reversals: the money the bank took
    back stayed booked for good."""
    subscriber, kid, total = ordered(ctx, shop)
    account = "12345678903" if why == "unknown account" else ACCOUNT
    reference = {"bad check digit": kid[:-1] + str((int(kid[-1]) + 1) % 10),
                 "no such subscriber": ctx.catalogue.get(shop).organizations["avisa"].kid.encode(9_999_999, 1),
                 "unknown account": kid}[why]
    payments_in.import_bank_file(ctx, shop, "a.txt", nets((reference, total, PURCHASE), account=account).encode())
    (aside,) = rp(ctx, shop)
    payments_in.resolve(ctx, shop, str(aside["payment_id"]), subscriber, "avisa", None)
    report = payments_in.import_bank_file(
        ctx, shop, "b.txt", nets((reference, total, REVERSING), (reference, total, REVERSING), number="1000002",
                                 account=account).encode())
    assert report.balanced and report.count(Outcome.REVERSED) == 1 and report.count(Outcome.SET_ASIDE) == 1
    assert sum(amount for _, amount in ledger(ctx, shop, subscriber)) == -total  # the second one: nothing left
    assert [r["reason_code"] for r in rp(ctx, shop)] == ["reversal_not_found"]


def _damaged(ctx: Context, shop: str, fmt: str, kind: str) -> tuple[bytes, int, int]:
    """A file of one record that cannot be read with certainty: (bytes, subscriber, amount)."""
    subscriber, kid, total = ordered(ctx, shop)
    if fmt == "ocr_giro":
        lines = nets((kid, total, PURCHASE if kind == "payment" else REVERSING)).split("\n")
        at = next(i for i, line in enumerate(lines) if line[6:8] == "30")
        lines[at] = lines[at][:60] + "X" + lines[at][61:]  # a letter in the KID
        return "\n".join(lines).encode(), subscriber, total
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], currency="SEK",
                                                bank_account="5551234"))
    data = bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
                        bgmax.Payment("9876543", kid, total, 2, 1, "1"),
                        bgmax.ExtraReference("9876543", "22000987\t6543", 0, 3, 1, ""),
                        bgmax.Deposit("1", DAY, "00001", total, 1), bgmax.End(1, 0, 1, 1)])
    return data, subscriber, total


@pytest.mark.parametrize("fmt", ["ocr_giro", "bgmax"])
def test_an_unreadable_payment_set_aside_can_be_resolved_by_customer_service_once(
        ctx: Context, shop: str, fmt: str) -> None:
    """Before: resolve refused every unreadable record (422), so money that arrived in a damaged
    record could never leave requires processing: it was listed and summed there for good."""
    data, subscriber, total = _damaged(ctx, shop, fmt, "payment")
    report = payments_in.import_bank_file(ctx, shop, "x.txt", data)
    assert report.balanced and report.by_currency[report.totals[0].currency]["reasons"] == {"unreadable": 1}
    (aside,) = rp(ctx, shop)
    result = payments_in.resolve(ctx, shop, str(aside["payment_id"]), subscriber, "avisa", None)
    assert (result.booked, result.amount_booked_minor) == (1, total)
    assert rp(ctx, shop) == [] and ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]
    with pytest.raises(ConcurrencyConflict):
        payments_in.resolve(ctx, shop, str(aside["payment_id"]), subscriber, "avisa", None)


def test_an_unreadable_reversal_is_still_refused_by_resolve(ctx: Context, shop: str) -> None:
    data, subscriber, _ = _damaged(ctx, shop, "ocr_giro", "reversal")
    payments_in.import_bank_file(ctx, shop, "x.txt", data)
    (aside,) = rp(ctx, shop)
    with pytest.raises(payments_in.PaymentRefused):
        payments_in.resolve(ctx, shop, str(aside["payment_id"]), subscriber, "avisa", None)


def _bgmax(timestamp: str, deposits: list[tuple[str, list[tuple[str, int]]]]) -> bytes:
    """A BgMax file: per deposit (payee bankgiro, [(reference, öre)]), end record counted. A
    deposit's serial is its bankgiro's (the bank's own numbering survives a split)."""
    records: list[bgmax.Record] = [bgmax.Start(timestamp)]
    for payee, paid in deposits:
        records += [bgmax.Opening(payee), *(bgmax.Payment("9876543", ref, amount, 2 if ref else 3, 1, "")
                                            for ref, amount in paid),
                    bgmax.Deposit("1", DAY, payee[-5:], sum(a for _, a in paid), len(paid))]
    records.append(bgmax.End(sum(len(p) for _, p in deposits), 0, 0, len(deposits)))
    return bgmax.write(records)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate))
@example(order=["AB", "A"], changed=False)
@example(order=["A", "AB"], changed=False)
@example(order=["AB", "B"], changed=True)
@given(order=st.permutations(["AB", "A", "B"]), changed=st.booleans())
def test_one_bgmax_transmission_split_or_merged_differently_books_each_payment_once(
        ctx: Context, order: list[str], changed: bool) -> None:
    """A BgMax transmission's identity is the receiving bankgiro and the TK01 timestamp (issue 8),
    so a file of deposits to two bankgiros holds two transmissions. Before, the identity was
    the file's set of bankgiros: the same deposits re-sent in a file of one of them were a
    'new' transmission and every payment in it was booked again. Changed content under an
    identity already taken is refused, in whichever file it comes."""
    shop = _fresh(ctx)
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], currency="SEK",
                                                bank_account="5551234"))
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], id="other",
                                                currency="SEK", bank_account="7778888"))
    (sa, ka, ta), (sb, _, tb) = ordered(ctx, shop, 1), ordered(ctx, shop, 2)
    deposits = {"A": ("5551234", [(ka, ta)]), "B": ("7778888", [("", 100)])}
    files = {name: _bgmax("20260110061500000000", [deposits[p] for p in name]) for name in order}
    if changed:  # the last file says something else about a deposit an earlier one already told
        last = order[-1]
        files[last] = _bgmax("20260110061500000000", [(deposits[p][0], [(r, a + 1) for r, a in deposits[p][1]])
                                                      for p in last])
    reports = [handle(f"{shop}/{name}.txt", files[name]) for name in order]
    assert all(r is not None and r.balanced for r in reports)
    assert ledger(ctx, shop, sa) == [("invoice", -ta), ("payment", ta)]
    assert len([r for r in rp(ctx, shop) if r["kind"] == "payment"]) == 1  # B's payment without reference, once
    assert ledger(ctx, shop, sb) == [("invoice", -tb)]
    if changed and any(set(order[-1]) & set(o) for o in order[:-1]):
        assert reports[-1] is not None and reports[-1].status == Status.REJECTED


def test_a_payment_resolved_by_hand_is_not_booked_again_when_its_import_is_finished_later(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import that died after setting a payment aside is finished by dropping the file again
    (the rejected report says so). Before: a payment customer service had resolved by hand in
    between was identified afresh (the catalogue now knew its account) and booked a second time."""
    subscriber, kid, total = ordered(ctx, shop)
    other, _, other_total = ordered(ctx, shop, 2)
    data = nets((kid, total, PURCHASE), number="1000001", account="12345678903").encode()
    save = ImportLog.save

    def dies(self: ImportLog, tenant: str, report: object) -> None:
        raise RuntimeError("process killed")

    monkeypatch.setattr(ImportLog, "save", dies)
    with pytest.raises(RuntimeError):
        payments_in.import_bank_file(ctx, shop, "a.txt", data)
    monkeypatch.setattr(ImportLog, "save", save)
    (aside,) = rp(ctx, shop)
    payments_in.resolve(ctx, shop, str(aside["payment_id"]), other, "avisa", None)  # the payer, by the name
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], id="twin",
                                                bank_account="12345678903"))  # the account was missing
    report = payments_in.import_bank_file(ctx, shop, "a-again.txt", data)
    assert report.balanced and report.count(Outcome.BOOKED) == 0
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]
    assert ledger(ctx, shop, other) == [("invoice", -other_total), ("payment", total)]


@settings(max_examples=100, deadline=None)
@given(base=st.sampled_from(["ocr", "bgmax"]), endings=st.lists(
    st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", "\n\r", "\n \n", "\n\t\n"]), min_size=1, max_size=8))
def test_the_same_transmission_with_any_mix_of_line_endings_reads_the_same(base: str, endings: list[str]) -> None:
    """Line endings mixed within a file, CR CR LF (a CRLF file sent twice through ASCII-mode FTP)
    and blank lines between records: the readers skip blank lines, so these are the same
    transmission. Before, the digest counted the blank lines in between: the copy was refused
    as 'the same identity with other content' instead of being a duplicate."""
    data = (_written_ocr() if base == "ocr" else _written_bgmax()).decode("iso-8859-1")
    lines = data.rstrip("\n").split("\n")
    mixed = "".join(line + endings[i % len(endings)] for i, line in enumerate(lines))
    first, again = read_bank_file(data.encode("iso-8859-1")), read_bank_file(mixed.encode("utf-8"))
    assert again == first


def test_a_reversal_takes_back_a_payment_whose_approval_died_after_its_claim(
        ctx: Context, shop: str, clock: SettableClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """An approval that died between its claim and the booking leaves the row claimed. A reversal
    arriving later must not wait on it for ever (the file failed part-way): a claim older
    than the resume window whose payment is not booked is taken back, and the approval,
    tried again, books nothing."""
    _approving(ctx, shop)
    subscriber, kid, total = ordered(ctx, shop)
    payments_in.import_bank_file(ctx, shop, "p.txt", nets((kid, total, PURCHASE)).encode())
    (waiting,) = payments_in.awaiting_approval(ctx, shop)

    def dies(*args: object, **kwargs: object) -> object:
        raise RuntimeError("process killed")

    monkeypatch.setattr(desk, "book_one", dies)
    with pytest.raises(RuntimeError):
        payments_in.approve(ctx, shop, str(waiting["payment_id"]), "boss")
    monkeypatch.undo()
    clock.advance(timedelta(minutes=5))
    report = payments_in.import_bank_file(ctx, shop, "r.txt", nets((kid, total, REVERSING), number="1000002").encode())
    assert report.balanced and report.count(Outcome.REVERSED) == 1
    with pytest.raises(ConcurrencyConflict):
        payments_in.approve(ctx, shop, str(waiting["payment_id"]), "boss")
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]


@pytest.mark.parametrize("when", ["same file", "next file"])
def test_a_payment_set_aside_whose_reversal_came_is_refused_by_resolve(ctx: Context, shop: str, when: str) -> None:
    """Before: the reversal found no booked payment and was set aside next to the payment; customer
    service then resolved the payment and booked money the bank had taken back."""
    subscriber, kid, total = ordered(ctx, shop)
    wrong = kid[:-1] + str((int(kid[-1]) + 1) % 10)
    paid, back = (wrong, total, PURCHASE), (wrong, total, REVERSING)
    if when == "same file":
        report = payments_in.import_bank_file(ctx, shop, "a.txt", nets(paid, back).encode())
    else:
        payments_in.import_bank_file(ctx, shop, "a.txt", nets(paid).encode())
        report = payments_in.import_bank_file(ctx, shop, "b.txt", nets(back, number="1000002").encode())
    assert report.balanced
    (payment,) = [r for r in rp(ctx, shop) if r["kind"] == "payment"]
    with pytest.raises(payments_in.PaymentRefused, match="reversed"):
        payments_in.resolve(ctx, shop, str(payment["payment_id"]), subscriber, "avisa", None)
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]
    assert [r["state"] for r in rp(ctx, shop)] == ["open", "open"]  # both stay for customer service
