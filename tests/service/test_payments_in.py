"""Payments in from bank files (P1-P3): identified by KID, settled, booked once; what
cannot be identified is set aside, never dropped."""

from __future__ import annotations

from datetime import date
from functools import partial

import pytest
from pydantic import TypeAdapter

from shared.domain.catalogue import Organization
from shared.domain.import_report import Outcome
from shared.formats import bgmax, ocr_giro
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.payments_in import import_bank_file
from tests.fakes.accounts import commit_each
from tests.fixtures import order

ACCOUNT = "86011117947"  # the demo organisation's bank account


def ordered(ctx: Context, tenant: str, n: int = 1) -> tuple[int, str, int]:
    placed = place_order(ctx, order(tenant, n))
    (invoice,) = placed.invoices
    return placed.subscriber_no, invoice.kid, invoice.total_minor


def ocr(*paid: tuple[str, int], account: str = ACCOUNT, number: str = "1000001") -> bytes:
    return ocr_giro.transmission(list(paid), date(2026, 1, 10), number=number, account=account).encode()


def set_aside(ctx: Context, tenant: str) -> list[dict]:  # type: ignore[type-arg]
    return list(ctx.storage.query("Payments", "PartitionKey eq @pk", {"pk": f"rp|{tenant}"}))


def test_a_kid_payment_settles_its_invoice_and_zeroes_the_ledger(ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    result = import_bank_file(ctx, shop, "ocr1.txt", ocr((kid, total)))
    assert (result.count(Outcome.BOOKED), result.count(Outcome.SET_ASIDE), result.amount(Outcome.BOOKED)) == (
        1, 0, total)
    assert result.balanced and result.status == "imported"
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None
    assert loaded.account.balances == {"avisa": 0} and loaded.account.open_demands == {}
    _, ledger = ctx.accounts.history(shop, subscriber)
    assert [(e.kind.value, e.amount_minor) for e in ledger] == [("invoice", -total), ("payment", total)]


def test_the_same_file_imported_twice_books_nothing_the_second_time(ctx: Context, shop: str) -> None:
    subscriber, kid, total = ordered(ctx, shop)
    data = ocr((kid, total))
    import_bank_file(ctx, shop, "ocr1.txt", data)
    again = import_bank_file(ctx, shop, "ocr1-copy.txt", data)
    assert (again.status, again.count(Outcome.BOOKED), again.count(Outcome.DUPLICATE)) == ("duplicate", 0, 1)
    _, ledger = ctx.accounts.history(shop, subscriber)
    assert len(ledger) == 2


def test_unidentifiable_payments_are_set_aside_with_a_reason_and_never_dropped(ctx: Context, shop: str) -> None:
    _, kid, _total = ordered(ctx, shop)
    bad_check_digit = kid[:-1] + str((int(kid[-1]) + 1) % 10)
    no_such_subscriber = ctx.catalogue.get(shop).organizations["avisa"].kid.encode(9_999_999, 1)
    result = import_bank_file(ctx, shop, "ocr2.txt", ocr((bad_check_digit, 100), (no_such_subscriber, 200)))
    other_account = import_bank_file(ctx, shop, "ocr3.txt", ocr((kid, 300), account="12345678903", number="1000002"))
    assert (result.count(Outcome.BOOKED), result.count(Outcome.SET_ASIDE)) == (0, 2)
    assert other_account.count(Outcome.SET_ASIDE) == 1 and result.balanced and other_account.balanced
    assert result.by_currency["NOK"]["reasons"] == {"not_a_kid": 1, "no_such_subscriber": 1}
    reasons = sorted(r["Reason"] for r in set_aside(ctx, shop))
    assert len(reasons) == 3
    assert any("not a KID" in r for r in reasons) and any("does not exist" in r for r in reasons)
    assert any("belongs to no organisation" in r for r in reasons)
    assert sum(r["Amount"] for r in set_aside(ctx, shop)) == 600  # every øre accounted for


def test_a_partial_payment_leaves_the_rest_open_and_an_overpayment_leaves_credit(ctx: Context, shop: str) -> None:
    first, kid1, total = ordered(ctx, shop, 1)
    second, kid2, _ = ordered(ctx, shop, 2)
    import_bank_file(ctx, shop, "ocr4.txt", ocr((kid1, total - 10000), (kid2, total + 5000)))
    partial = ctx.accounts.load(shop, first)
    over = ctx.accounts.load(shop, second)
    assert partial is not None and over is not None
    assert [d.open_minor for d in partial.account.open_demands.values()] == [10000]
    assert partial.account.balances == {"avisa": -10000}
    assert over.account.open_demands == {} and over.account.balances == {"avisa": 5000}


def test_an_import_that_died_half_way_is_finished_by_the_next_run_without_double_booking(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    payments = [ordered(ctx, shop, n) for n in range(1, 7)]
    data = ocr(*[(kid, total) for _, kid, total in payments])
    commit, calls = ctx.accounts.commit, []

    def dies_after_three(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("process killed")
        return commit(*args, **kwargs)

    monkeypatch.setattr(ctx.accounts, "commit", dies_after_three)
    monkeypatch.setattr(ctx.accounts, "commit_many", partial(commit_each, ctx.accounts))  # the bucket's commits too
    with pytest.raises(RuntimeError):
        import_bank_file(ctx, shop, "ocr5.txt", data)
    monkeypatch.setattr(ctx.accounts, "commit", commit)
    rerun = import_bank_file(ctx, shop, "ocr5.txt", data)
    assert (rerun.count(Outcome.BOOKED), rerun.count(Outcome.ALREADY_BOOKED)) == (3, 3) and rerun.balanced
    for subscriber, _, _ in payments:
        loaded = ctx.accounts.load(shop, subscriber)
        assert loaded is not None and loaded.account.balances == {"avisa": 0}
        assert len(ctx.accounts.history(shop, subscriber)[1]) == 2


def test_a_payment_to_another_organisation_never_settles_this_ones_invoice(ctx: Context, shop: str) -> None:
    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", TypeAdapter(Organization).validate_python(
        {"id": "forlag", "name": "Forlaget AS", "currency": "NOK", "bank_account": "12345678903",
         "kid": {"length": 15, "modulus": "MOD10", "subscriber_digits": 7}}))
    subscriber, kid, total = ordered(ctx, shop)
    assert org.kid.encode(subscriber, 1) == kid
    import_bank_file(ctx, shop, "ocr6.txt", ocr((kid, total), account="12345678903"))
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None
    assert loaded.account.balances == {"avisa": -total, "forlag": total}  # economies kept apart
    assert [d.terms.organization_id for d in loaded.account.open_demands.values()] == ["avisa"]


def test_a_bgmax_file_pays_a_swedish_organisations_invoice(ctx: Context, shop: str) -> None:
    put_item(ctx, shop, "organization", TypeAdapter(Organization).validate_python(
        {"id": "avisa", "name": "Tidningen AB", "currency": "SEK", "bank_account": "5551234",
         "time_zone": "Europe/Stockholm", "kid": {"length": 15, "modulus": "MOD10", "subscriber_digits": 7}}))
    subscriber, kid, total = ordered(ctx, shop)
    data = bgmax.write([
        bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
        bgmax.Payment("9876543", kid, total, 2, 1, "000000000001"),
        bgmax.Deposit("123456789012", date(2026, 1, 10), "00001", total, 1), bgmax.End(1, 0, 0, 1)])
    result = import_bank_file(ctx, shop, "bgmax.txt", data)
    assert (result.format, result.count(Outcome.BOOKED)) == ("bgmax", 1)
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None and loaded.account.balances == {"avisa": 0}


def test_a_file_whose_totals_do_not_add_up_is_rejected_with_a_report_and_books_nothing(
        azurite, ctx: Context, shop: str) -> None:  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    from functions.ocr_blob_trigger import handle

    subscriber, kid, total = ordered(ctx, shop)
    text = ocr((kid, total)).decode()
    end = next(li for li in text.splitlines() if li.startswith("NY000089"))
    tampered = text.replace(end, end[:24] + str(int(end[24:41]) + 1).zfill(17) + end[41:]).encode()
    report = handle(f"{shop}/bad.txt", tampered)
    assert report is not None and report.status == "rejected"
    rejected = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("rejected")
    text = rejected.download_blob(f"{shop}/bad.txt.error.txt").readall().decode()
    assert "ControlTotalError" in text and "Nothing was booked" in text and report.id in text
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None and loaded.account.balances == {"avisa": -total}


def test_the_local_host_feeds_a_dropped_file_to_the_blob_trigger(azurite, ctx: Context, shop: str) -> None:  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    from devhost.host import LocalHost

    subscriber, kid, total = ordered(ctx, shop)
    host = LocalHost(ctx.clock, azurite.connection_string)  # type: ignore[arg-type]
    BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("inbound").upload_blob(
        f"{shop}/nets-20260110.txt", ocr((kid, total)), overwrite=True)
    host.drain()
    host.drain()  # the blob receipt keeps a second pass from importing it again
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None and loaded.account.balances == {"avisa": 0}
    assert len(ctx.accounts.history(shop, subscriber)[1]) == 2



def test_avtalegiro_mandates_switch_the_payment_type_and_back_and_a_repeat_changes_nothing(
        ctx: Context, shop: str) -> None:
    subscriber, kid, _ = ordered(ctx, shop)
    unknown = ctx.catalogue.get(shop).organizations["avisa"].kid.encode(9_999_999, 1)
    new = ocr_giro.agreements_transmission([(kid, "new_or_updated", True), (unknown, "new_or_updated", False)],
                                           date(2026, 1, 6), account=ACCOUNT).encode()
    result = import_bank_file(ctx, shop, "avtalegiro-1.txt", new)
    assert (result.mandates, result.records) == ({"matched": 1, "unmatched": 1}, 0)
    assert [m["reason"] for m in result.mandates_unmatched] == ["mandate_no_such_subscriber"]
    loaded = ctx.accounts.load(shop, subscriber)
    assert loaded is not None
    assert [s.payment_type.value for s in loaded.account.subscriptions.values()] == ["avtalegiro"]
    assert loaded.account.mandates["avisa"].notify is True
    etag = loaded.etag
    import_bank_file(ctx, shop, "avtalegiro-1.txt", new)
    again = ctx.accounts.load(shop, subscriber)
    assert again is not None and again.etag == etag  # the same mandate again: nothing written
    deleted = ocr_giro.agreements_transmission([(kid, "deleted", False)], date(2026, 2, 1), number="2000002",
                                               account=ACCOUNT).encode()
    import_bank_file(ctx, shop, "avtalegiro-2.txt", deleted)
    after = ctx.accounts.load(shop, subscriber)
    assert after is not None
    assert [s.payment_type.value for s in after.account.subscriptions.values()] == ["invoice"]
    assert after.account.mandates["avisa"].active is False
