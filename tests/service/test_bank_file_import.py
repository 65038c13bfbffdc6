"""Every record of a bank file accounted for, exactly once (issue 8, part 1): transmission
identity, reversals and deductions, unreadable records, rejected and quarantined files,
unmatched mandates, organisations by account and currency, sums per currency."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import netsgiro
import pytest
from azure.core.exceptions import ServiceResponseError
from azure.storage.blob import BlobServiceClient
from pydantic import TypeAdapter

from devhost.azurite import Azurite
from functions.ocr_blob_trigger import handle
from shared.domain.catalogue import Organization
from shared.domain.import_report import Outcome
from shared.formats import bgmax, ocr_giro, read_bank_file
from shared.formats import payments as formats
from shared.ports import ConcurrencyConflict
from shared.service import payments_in
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.payments_in import bank_file, intake
from shared.service.queries import summary
from tests.fakes.accounts import commit_each
from tests.fixtures import order

ACCOUNT = "86011117947"
DAY = date(2026, 1, 10)
OCR = netsgiro.ServiceCode.OCR_GIRO
PURCHASE, REVERSING = netsgiro.TransactionType.PURCHASE_WITH_TEXT, netsgiro.TransactionType.REVERSING_WITH_KID


def nets(*items: tuple[str, int, netsgiro.TransactionType], number: str = "1000001", account: str = ACCOUNT) -> str:
    """An OCR giro transmission of (KID, øre, transaction type), written by netsgiro."""
    out = netsgiro.Transmission(number=number, data_transmitter="00008080", data_recipient=netsgiro.NETS_ID, date=DAY)
    assignment = netsgiro.Assignment(service_code=OCR, type=netsgiro.AssignmentType.TRANSACTIONS, number=number,
                                     account=account, agreement_id="000000000", date=DAY)
    for i, (kid, amount, kind) in enumerate(items, 1):
        assignment.transactions.append(netsgiro.Transaction(
            service_code=OCR, type=kind, number=i, date=DAY, amount=Decimal(amount) / 100, kid=kid,
            reference="000000001", text=None, centre_id="13", day_code=DAY.day, partial_settlement_number=1,
            partial_settlement_serial_number="00001", sign="0", form_number="9876543210", bank_date=DAY,
            debit_account="12345678903", filler=None))
    out.assignments.append(assignment)
    return str(out.to_ocr())


def ordered(ctx: Context, tenant: str, n: int = 1) -> tuple[int, str, int]:
    placed = place_order(ctx, order(tenant, n))
    (invoice,) = placed.invoices
    return placed.subscriber_no, invoice.kid, invoice.total_minor


def ledger(ctx: Context, tenant: str, subscriber: int) -> list[tuple[str, int]]:
    return [(e.kind.value, e.amount_minor) for e in ctx.accounts.history(tenant, subscriber)[1]]


def rp(ctx: Context, tenant: str) -> list[dict[str, Any]]:
    return payments_in.requires_processing(ctx, tenant)


def blob(azurite: Azurite, container: str, name: str) -> str | None:
    client = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    try:
        return str(client.download_blob(name).readall().decode())
    except Exception:
        return None


# ---- transmission identity -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["crlf", "utf-8", "utf-8 with crlf and a BOM"])
def test_the_same_transmission_in_another_encoding_or_line_ending_books_nothing(
        ctx: Context, shop: str, variant: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    text = nets((kid, total, PURCHASE))
    assert payments_in.import_bank_file(ctx, shop, "a.txt", text.encode("iso-8859-1")).count(Outcome.BOOKED) == 1
    again = {"crlf": text.replace("\n", "\r\n").encode("iso-8859-1"), "utf-8": text.encode("utf-8"),
             "utf-8 with crlf and a BOM": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")}[variant]
    report = payments_in.import_bank_file(ctx, shop, "b.txt", again)
    assert (report.status, report.count(Outcome.DUPLICATE), report.count(Outcome.BOOKED)) == ("duplicate", 1, 0)
    assert report.balanced and ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]


def test_the_same_identity_with_other_content_is_rejected_with_a_report_and_books_nothing(
        azurite: Azurite, ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    handle(f"{shop}/first.txt", nets((kid, 100, PURCHASE)).encode())
    report = handle(f"{shop}/second.txt", nets((kid, total, PURCHASE)).encode())  # same sender and number
    assert report is not None and report.status == "rejected" and "other content" in report.reason
    text = blob(azurite, "rejected", f"{shop}/second.txt.error.txt")
    assert text is not None and "Nothing was booked" in text and report.id in text
    assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", 100)]


def test_repeated_and_blank_bgmax_serial_numbers_lose_no_payment(ctx: Context, shop: str) -> None:
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], currency="SEK",
                                                bank_account="5551234"))
    paid = [ordered(ctx, shop, n) for n in range(1, 5)]
    serials = ["000000000001", "000000000001", "            ", "            "]  # as real files have them
    data = bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
                        *[bgmax.Payment("9876543", kid, total, 2, 1, serial) for (_, kid, total), serial
                          in zip(paid, serials, strict=True)],
                        bgmax.Deposit("1234567890", DAY, "00001", sum(t for *_, t in paid), 4),
                        bgmax.End(4, 0, 0, 1)])
    report = payments_in.import_bank_file(ctx, shop, "bgmax.txt", data)
    assert (report.count(Outcome.BOOKED), report.amount(Outcome.BOOKED)) == (4, sum(t for *_, t in paid))
    assert report.balanced
    for subscriber, _, total in paid:
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]


# ---- reversals and deductions ----------------------------------------------------------------

def test_a_reversal_takes_back_its_payment_and_reopens_the_invoice(ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    payments_in.import_bank_file(ctx, shop, "pay.txt", nets((kid, total, PURCHASE)).encode())
    report = payments_in.import_bank_file(ctx, shop, "rev.txt", nets((kid, total, REVERSING), number="1000002")
                                          .encode())
    assert (report.count(Outcome.REVERSED), report.amount(Outcome.REVERSED), report.balanced) == (1, total, True)
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None and loaded.account.balances == {"avisa": -total}
    assert [d.open_minor for d in loaded.account.open_demands.values()] == [total]  # owed again
    assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total), ("reversal", -total)]
    again = payments_in.import_bank_file(ctx, shop, "rev2.txt", nets((kid, total, REVERSING), number="1000003")
                                         .encode())  # a second reversal of the same payment finds nothing
    assert again.count(Outcome.SET_ASIDE) == 1 and again.by_currency["NOK"]["reasons"] == {"reversal_not_found": 1}


def test_a_payment_and_its_reversal_in_one_file_cancel_out(ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    report = payments_in.import_bank_file(ctx, shop, "both.txt", nets((kid, total, PURCHASE),
                                                                      (kid, total, REVERSING)).encode())
    assert (report.count(Outcome.BOOKED), report.count(Outcome.REVERSED), report.balanced) == (1, 1, True)
    assert report.by_currency["NOK"]["net_minor"] == 0
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None and loaded.account.balances == {"avisa": -total}


def test_a_reversal_of_a_payment_we_cannot_find_is_set_aside_with_that_reason(ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    report = payments_in.import_bank_file(ctx, shop, "rev.txt", nets((kid, total, REVERSING)).encode())
    assert report.count(Outcome.SET_ASIDE) == 1 and report.balanced
    (aside,) = rp(ctx, shop)
    assert aside["kind"] == "reversal" and aside["reason"].startswith("reversal of a payment we cannot find")
    assert ledger(ctx, shop, subscriber) == [("invoice", -total)]  # never booked as money in


def test_a_bgmax_deduction_is_set_aside_and_never_settles_an_invoice(ctx: Context, shop: str) -> None:
    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"], currency="SEK",
                                                bank_account="5551234"))
    subscriber, kid, total = ordered(ctx, shop)
    data = bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
                        bgmax.Payment("9876543", kid, total, 2, 1, "1"),
                        bgmax.Payment("9876543", kid, 5000, 2, 1, "2", deduction_code=0),
                        bgmax.Deposit("1234567890", DAY, "00001", total - 5000, 2), bgmax.End(1, 1, 0, 1)])
    report = payments_in.import_bank_file(ctx, shop, "bgmax.txt", data)
    assert report.balanced and report.by_currency["SEK"]["deductions"] == {"count": 1, "amount_minor": 5000}
    (aside,) = rp(ctx, shop)
    assert (aside["kind"], aside["reason_code"], aside["amount_minor"]) == ("deduction", "deduction", 5000)
    assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]


def test_an_unreadable_record_is_set_aside_with_its_reason_and_raw_line(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, kid, total = ordered(ctx, shop)
    read = read_bank_file(nets((kid, total, PURCHASE)).encode())
    bad = formats.UnreadableRecord("2", "22000987\t654347120000000", "a tab in the reference", 700, "NOK", ACCOUNT)
    fake = replace(read, payments=(*read.payments, bad), totals=(formats.ControlTotal("NOK", 2, total + 700),))
    monkeypatch.setattr(bank_file, "read_bank_file", lambda data: fake)
    report = payments_in.import_bank_file(ctx, shop, "x.txt", b"")
    assert (report.count(Outcome.BOOKED), report.count(Outcome.SET_ASIDE), report.balanced) == (1, 1, True)
    (aside,) = rp(ctx, shop)
    assert aside["kind"] == "unreadable" and "tab" in aside["reason"] and "\t" in aside["raw"]


def test_an_import_whose_records_do_not_add_up_is_an_error_and_the_file_is_flagged(
        azurite: Azurite, ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, kid, total = ordered(ctx, shop)
    read = read_bank_file(nets((kid, total, PURCHASE)).encode())
    fake = replace(read, totals=(formats.ControlTotal("NOK", 2, total + 1),))  # a record we never saw
    monkeypatch.setattr(bank_file, "read_bank_file", lambda data: fake)
    report = handle(f"{shop}/short.txt", b"whatever")
    assert report is not None and report.status == "unbalanced" and not report.balanced
    text = blob(azurite, "rejected", f"{shop}/short.txt.error.txt")
    assert text is not None and "did not all land" in text and report.id in text and "Nothing was" not in text


# ---- files refused whole ---------------------------------------------------------------------

def test_an_avtalegiro_claim_file_is_rejected_as_not_an_incoming_payment_file(azurite: Azurite, ctx: Context,
                                                                              shop: str) -> None:
    _, kid, total = ordered(ctx, shop)
    out = netsgiro.Transmission(number="4000001", data_transmitter="00008080", data_recipient=netsgiro.NETS_ID,
                                date=DAY)
    assignment = out.add_assignment(service_code=netsgiro.ServiceCode.AVTALEGIRO,
                                    assignment_type=netsgiro.AssignmentType.TRANSACTIONS, number="4000001",
                                    account=ACCOUNT)
    assignment.add_payment_request(kid=kid, due_date=DAY, amount=Decimal(total) / 100)
    report = handle(f"{shop}/claims.txt", out.to_ocr().encode())
    assert report is not None and report.status == "rejected"
    text = blob(azurite, "rejected", f"{shop}/claims.txt.error.txt")
    assert text is not None and "not an incoming payment file" in text


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyError("x"), TypeError("bad"), AssertionError()])
def test_any_failure_rejects_the_file_after_one_attempt_and_a_redelivery_does_nothing(
        azurite: Azurite, ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    _, kid, total = ordered(ctx, shop)
    calls: list[int] = []

    def fails(*args: Any) -> Any:
        calls.append(1)
        raise failure

    monkeypatch.setattr(intake, "import_bank_file", fails)
    data = nets((kid, total, PURCHASE)).encode()
    report = handle(f"{shop}/f.txt", data)
    assert report is not None and report.status == "rejected" and type(failure).__name__ in report.reason
    text = blob(azurite, "rejected", f"{shop}/f.txt.error.txt")
    assert text is not None and "books only what is missing" in text  # it may have booked part: says so
    assert handle(f"{shop}/f.txt", data) is None and len(calls) == 1  # the decision is in storage


def test_a_transient_storage_error_is_retried_then_the_file_is_rejected_after_the_last_attempt(
        azurite: Azurite, ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.imports import MAX_ATTEMPTS

    _, kid, total = ordered(ctx, shop)

    def storage_down(*args: Any) -> Any:
        raise ServiceResponseError("connection reset")

    monkeypatch.setattr(intake, "import_bank_file", storage_down)
    data = nets((kid, total, PURCHASE)).encode()
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(ServiceResponseError):
            handle(f"{shop}/t.txt", data)
    report = handle(f"{shop}/t.txt", data)  # a host restart does not start counting again
    assert report is not None and report.status == "rejected" and "failed" in report.reason


def test_a_file_for_a_tenant_that_does_not_exist_is_quarantined_and_writes_nothing(
        azurite: Azurite, ctx: Context, shop: str) -> None:
    _, kid, total = ordered(ctx, shop)
    assert handle("nosuchtenant/x.txt", nets((kid, total, PURCHASE)).encode()) is None
    text = blob(azurite, "quarantine", "nosuchtenant/x.txt.error.txt")
    assert text is not None and "does not exist" in text
    assert list(ctx.storage.query("Payments", "PartitionKey eq 'rep|nosuchtenant'")) == []
    assert list(ctx.storage.query("Payments", "PartitionKey eq 'tx|nosuchtenant'")) == []


# ---- mandates, organisations, currencies -----------------------------------------------------

def test_unmatched_mandates_go_to_requires_processing_with_the_right_reason(ctx: Context, shop: str) -> None:
    _, kid, _ = ordered(ctx, shop)
    org = ctx.catalogue.get(shop).organizations["avisa"]
    nobody = org.kid.encode(9_999_999, 1)
    not_a_kid = kid[:-1] + str((int(kid[-1]) + 1) % 10)
    known = ocr_giro.agreements_transmission([(kid, "new_or_updated", False), (nobody, "new_or_updated", False),
                                              (not_a_kid, "new_or_updated", False)], DAY, account=ACCOUNT)
    other = ocr_giro.agreements_transmission([(kid, "new_or_updated", False)], DAY, number="2000002",
                                             account="12345678903")
    first = payments_in.import_bank_file(ctx, shop, "m1.txt", known.encode())
    second = payments_in.import_bank_file(ctx, shop, "m2.txt", other.encode())
    assert first.mandates == {"matched": 1, "unmatched": 2} and second.mandates == {"matched": 0, "unmatched": 1}
    reasons = sorted(r["reason_code"] for r in rp(ctx, shop) if r["kind"] == "mandate")
    assert reasons == ["mandate_no_such_subscriber", "mandate_not_a_kid", "mandate_unknown_account"]


def test_account_and_currency_select_the_organisation(ctx: Context, shop: str) -> None:
    avisa = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", TypeAdapter(Organization).validate_python(
        {"id": "avisa-eur", "name": "Avisa EUR", "currency": "EUR", "bank_account": avisa.bank_account,
         "kid": {"length": 15, "modulus": "MOD10", "subscriber_digits": 7, "prefix": "9"}}))
    catalogue = ctx.catalogue.get(shop)
    assert catalogue.organization_by_account(ACCOUNT, "EUR").id == "avisa-eur"  # type: ignore[union-attr]
    assert catalogue.organization_by_account(ACCOUNT, "NOK").id == "avisa"  # type: ignore[union-attr]
    assert catalogue.organization_by_account(ACCOUNT, "SEK") is None


def test_the_summary_keeps_sums_per_currency(ctx: Context, shop: str) -> None:
    put_item(ctx, shop, "organization", TypeAdapter(Organization).validate_python(
        {"id": "avisa-eur", "name": "Avisa EUR", "currency": "EUR", "bank_account": "12345678903",
         "kid": {"length": 15, "modulus": "MOD10", "subscriber_digits": 7, "prefix": "9"}}))
    subscriber, kid, total = ordered(ctx, shop)
    payments_in.import_bank_file(ctx, shop, "a.txt", nets((kid, total, PURCHASE)).encode())
    payments_in.register_payment(ctx, shop, subscriber, "avisa-eur", 1000, DAY, "cash-1")
    result = summary(ctx, shop)
    assert result.by_currency["NOK"]["amount_paid_minor"] == total
    assert result.by_currency["EUR"]["amount_paid_minor"] == 1000
    assert result.amount_paid_minor is None  # no sum of øre and euro cents


# ---- real files nobody on the project wrote --------------------------------------------------

REAL = sorted((Path(__file__).resolve().parent.parent / "data" / "real").glob("*.txt"))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_record_of_a_real_bank_file_lands_in_exactly_one_place(ctx: Context, shop: str, path: Path) -> None:
    data = path.read_bytes()
    report = handle(f"{shop}/{path.name}", data)
    assert report is not None
    if "claims" in path.name:
        assert report.status == "rejected" and "not an incoming payment file" in report.reason
        return
    assert report.status == "imported" and report.balanced, report.problems
    assert report.records == sum(t.records for t in report.totals)
    aside = [r for r in rp(ctx, shop) if r["kind"] != "mandate"]
    assert len(aside) == report.records == report.count(Outcome.SET_ASIDE)  # none of them pays our shop
    assert len({r["payment_id"] for r in aside}) == len(aside)  # repeated or blank serials lose nothing
    assert sum(int(r["amount_minor"]) for r in aside) == sum(
        int(str(c["set_aside"]["amount_minor"])) for c in report.by_currency.values()  # type: ignore[index]
        if "set_aside" in c)
    crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    again = handle(f"{shop}/{path.name}.again", crlf)
    assert again is not None and again.status == "duplicate" and again.count(Outcome.BOOKED) == 0


def test_a_file_rejected_part_way_is_finished_by_dropping_it_again_under_another_name(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    paid = [ordered(ctx, shop, n) for n in range(1, 5)]
    data = nets(*[(kid, total, PURCHASE) for _, kid, total in paid]).encode()
    commit, calls = ctx.accounts.commit, []

    def dies_after_two(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("process killed")
        return commit(*args, **kwargs)

    monkeypatch.setattr(ctx.accounts, "commit", dies_after_two)
    monkeypatch.setattr(ctx.accounts, "commit_many", partial(commit_each, ctx.accounts))  # the bucket's commits too
    assert handle(f"{shop}/part.txt", data).status == "rejected"  # type: ignore[union-attr]
    monkeypatch.setattr(ctx.accounts, "commit", commit)
    report = handle(f"{shop}/part-again.txt", data)
    assert report is not None and report.status == "imported" and report.balanced
    assert (report.count(Outcome.BOOKED), report.count(Outcome.ALREADY_BOOKED)) == (2, 2)
    for subscriber, _, total in paid:
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]


def test_the_same_file_imported_by_three_hosts_at_once_books_every_payment_once(ctx: Context, shop: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paid = [ordered(ctx, shop, n) for n in range(1, 7)]
    data = nets(*[(kid, total, PURCHASE) for _, kid, total in paid]).encode()
    with ThreadPoolExecutor(3) as pool:  # Event Grid delivers at least once: hosts may race on one blob
        reports = list(pool.map(lambda i: payments_in.import_bank_file(ctx, shop, f"race-{i}.txt", data), range(3)))
    assert all(r.balanced for r in reports)
    assert sum(r.count(Outcome.BOOKED) for r in reports) == 6  # each payment booked by exactly one of them
    for subscriber, _, total in paid:
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]


# ---- conflicts: every booking retries through the unit of work ---------------------------------

@pytest.mark.parametrize("lost", [False, True], ids=["raced", "lost-response"])
@pytest.mark.parametrize("booking", ["payment", "reversal", "mandate", "refund"])
def test_a_booking_whose_commit_conflicts_is_decided_again_and_lands_once(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch, booking: str, lost: bool) -> None:
    # the first commit conflicts: raced (nothing written, someone changed the partition) or a lost
    # response (written, the retry then conflicts on its own rows); the retry must book it exactly once
    subscriber, kid, total = ordered(ctx, shop)
    if booking == "reversal":
        payments_in.import_bank_file(ctx, shop, "pay.txt", nets((kid, total, PURCHASE)).encode())
    commit, calls = ctx.accounts.commit, []

    def conflicts_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            if lost:
                commit(*args)
            raise ConcurrencyConflict("injected")
        return commit(*args)

    monkeypatch.setattr(ctx.accounts, "commit", conflicts_once)
    monkeypatch.setattr(ctx.accounts, "commit_many", partial(commit_each, ctx.accounts))  # the bucket's commits too
    landed = (Outcome.ALREADY_BOOKED if lost else Outcome.BOOKED, Outcome.ALREADY_BOOKED if lost else Outcome.REVERSED)
    if booking == "payment":
        report = payments_in.import_bank_file(ctx, shop, "p.txt", nets((kid, total, PURCHASE)).encode())
        assert report.count(landed[0]) == 1 and report.balanced
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total)]
    elif booking == "reversal":
        report = payments_in.import_bank_file(ctx, shop, "r.txt", nets((kid, total, REVERSING), number="1000002")
                                              .encode())
        assert report.count(landed[1]) == 1 and report.balanced
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("payment", total), ("reversal", -total)]
    elif booking == "mandate":
        report = payments_in.import_bank_file(ctx, shop, "m.txt", ocr_giro.agreements_transmission(
            [(kid, "new_or_updated", True)], DAY, account=ACCOUNT).encode())
        assert report.mandates == {"matched": 1, "unmatched": 0}
        loaded = ctx.accounts.load(shop, subscriber)
        assert loaded is not None and loaded.account.mandates["avisa"].active
    else:
        assert payments_in.book_refund(ctx, shop, subscriber, "avisa", 500, "r-1", "goodwill") is not lost
        assert ledger(ctx, shop, subscriber) == [("invoice", -total), ("refund", -500)]
    assert len(calls) == (1 if lost else 2)  # decided again; after a lost response it finds its work done
