"""Customer service on payments through the merchant API: requires processing and its
resolution, manual registration, refunds, search, import reports (P1, P2, P4) — each safe
to repeat, and resolve and approve happen once however many calls race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date

from devhost import issuer
from shared.domain.import_report import Outcome
from shared.formats import ocr_giro
from shared.service import payments_in
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.payments_in import desk, import_bank_file
from tests.fixtures import order
from tests.integration.test_merchant import call


def test_a_set_aside_payment_is_listed_then_resolved_onto_its_invoice_once(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    wrong_kid = invoice.kid[:-1] + str((int(invoice.kid[-1]) + 1) % 10)
    data = ocr_giro.transmission([(wrong_kid, invoice.total_minor)], date(2026, 1, 10), account="86011117947")
    import_bank_file(ctx, shop, "ocr.txt", data.encode())
    support = issuer.token(shop, ["support"])
    status, listed = call("payments_requires_processing", "GET", support)
    assert status == 200 and [p["amount_minor"] for p in listed] == [invoice.total_minor]
    body = {"subscriber_no": placed.subscriber_no, "organization_id": "avisa", "invoice_number": invoice.number}
    route = {"payment_id": listed[0]["payment_id"]}
    status, booked = call("payments_resolve", "POST", support, route, body)
    assert status == 200 and booked["booked"] == 1
    assert call("payments_requires_processing", "GET", support)[1] == []
    status, problem = call("payments_resolve", "POST", support, route, body)
    assert status == 409 and "already" in problem["detail"]  # a second resolve books nothing
    view = call("subscriber_overview", "GET", support, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert view["balances"] == {"avisa": 0}


def test_a_manual_payment_registered_twice_is_booked_once_and_found_by_search(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    support = issuer.token(shop, ["support"])
    body = {"subscriber_no": placed.subscriber_no, "organization_id": "avisa", "amount_minor": 20000,
            "payment_date": "2026-01-08", "external_id": "kasse-17", "invoice_number": invoice.number}
    assert call("payments_register", "POST", support, body=body)[1]["booked"] == 1
    assert call("payments_register", "POST", support, body=body)[1]["already_booked"] == 1
    status, found = call("payments_search", "GET", support, params={"subscriber_no": str(placed.subscriber_no)})
    assert status == 200 and [p["payment"]["amount_minor"] for p in found] == [20000]
    assert found[0]["payment"]["match_type"] == "MatchingUsingSubscriberAndInvoice"
    by_invoice = call("payments_search", "GET", support, params={"invoice_number": str(invoice.number)})[1]
    assert len(by_invoice) == 1
    assert call("payments_search", "GET", support, params={"source": "ocr_giro"})[1] == []
    assert call("payments_search", "GET", support, params={"from": "2026-01-09"})[1] == []


def test_a_refund_is_a_ledger_debit_booked_once_per_external_reference(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    admin = issuer.token(shop, ["admin"])
    body = {"subscriber_no": placed.subscriber_no, "organization_id": "avisa", "amount_minor": 5000,
            "external_reference": "bank-ref-991", "comment": "Paid twice in December"}
    assert call("refunds_book", "POST", admin, body=body) == (201, {"booked": True})
    assert call("refunds_book", "POST", admin, body=body) == (201, {"booked": False})
    view = call("subscriber_overview", "GET", admin, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert [(e["kind"], e["amount_minor"]) for e in view["ledger"]][-1] == ("refund", -5000)
    assert view["balances"] == {"avisa": -34800 - 5000}
    assert call("refunds_book", "POST", issuer.token(shop, ["support"]), body=body)[0] == 403


def test_payment_requests_with_bad_fields_are_422(ctx: Context, shop: str) -> None:
    status, problem = call("payments_register", "POST", issuer.token(shop, ["admin"]),
                           body={"subscriber_no": 0, "organization_id": "avisa", "amount_minor": -5})
    assert status == 422 and {"subscriber_no", "amount_minor", "payment_date", "external_id"} <= {
        e["field"] for e in problem["errors"]}


def test_an_organisation_that_approves_payments_by_hand_books_them_only_when_approved(ctx: Context, shop: str) -> None:
    from shared.service.catalogue import put_item

    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", replace(org, manual_payment_approval=True))
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    data = ocr_giro.transmission([(invoice.kid, invoice.total_minor)], date(2026, 1, 10), account="86011117947")
    assert import_bank_file(ctx, shop, "ocr.txt", data.encode()).count(Outcome.AWAITING_APPROVAL) == 1
    admin = issuer.token(shop, ["admin"])
    view = call("subscriber_overview", "GET", admin, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert view["balances"] == {"avisa": -invoice.total_minor}  # not booked before approval
    (waiting,) = call("payments_awaiting_approval", "GET", admin)[1]
    assert waiting["state"] == "AwaitingApproval"
    assert call("payments_approve", "POST", admin, {"payment_id": waiting["payment_id"]})[1]["booked"] == 1
    assert call("payments_awaiting_approval", "GET", admin)[1] == []
    assert call("payments_approve", "POST", admin, {"payment_id": waiting["payment_id"]})[0] == 409
    view = call("subscriber_overview", "GET", admin, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert view["balances"] == {"avisa": 0}


def _set_aside_payment(ctx: Context, shop: str, amount: int) -> str:
    data = ocr_giro.transmission([("12345678903", amount)], date(2026, 1, 10), number="3000001",
                                 account="86011117947")  # a KID that is not the organisation's: set aside
    report = import_bank_file(ctx, shop, "ocr.txt", data.encode())
    assert report.count(Outcome.SET_ASIDE) == 1
    (row,) = payments_in.requires_processing(ctx, shop)
    return str(row["payment_id"])


def test_ten_concurrent_resolves_of_one_payment_book_it_exactly_once(ctx: Context, shop: str) -> None:
    subscribers = [place_order(ctx, order(shop, n)).subscriber_no for n in range(1, 11)]
    payment_id = _set_aside_payment(ctx, shop, 5555)
    support = issuer.token(shop, ["support"])

    def resolve(subscriber_no: int) -> int:
        body = {"subscriber_no": subscriber_no, "organization_id": "avisa"}
        return call("payments_resolve", "POST", support, {"payment_id": payment_id}, body)[0]

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(resolve, subscribers))
    assert sorted(statuses) == [200] + [409] * 9
    paid = [e.amount_minor for s in subscribers for e in ctx.accounts.history(shop, s)[1] if e.kind == "payment"]
    assert paid == [5555]  # 5 555 øre booked once, not 55 550
    assert call("payments_requires_processing", "GET", support)[1] == []


def test_ten_concurrent_approvals_of_one_payment_book_it_exactly_once(ctx: Context, shop: str) -> None:
    from shared.service.catalogue import put_item

    put_item(ctx, shop, "organization", replace(ctx.catalogue.get(shop).organizations["avisa"],
                                                manual_payment_approval=True))
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    data = ocr_giro.transmission([(invoice.kid, invoice.total_minor)], date(2026, 1, 10), account="86011117947")
    import_bank_file(ctx, shop, "ocr.txt", data.encode())
    admin = issuer.token(shop, ["admin"])
    (waiting,) = call("payments_awaiting_approval", "GET", admin)[1]
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: call("payments_approve", "POST", admin,
                                                {"payment_id": waiting["payment_id"]})[0], range(10)))
    assert sorted(statuses) == [200] + [409] * 9
    ledger = ctx.accounts.history(shop, placed.subscriber_no)[1]
    assert [(e.kind.value, e.amount_minor) for e in ledger] == [("invoice", -invoice.total_minor),
                                                                 ("payment", invoice.total_minor)]


def test_a_resolve_that_died_after_its_claim_can_be_finished_by_the_same_resolve_later(
        ctx: Context, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    subscriber = place_order(ctx, order(shop)).subscriber_no
    someone_else = place_order(ctx, order(shop, 2)).subscriber_no
    payment_id = _set_aside_payment(ctx, shop, 7000)
    aside = ctx.inbox.set_aside_record(shop, payment_id)
    assert aside is not None
    desk._claim(ctx, shop, aside, "resolved", f"{subscriber}|avisa|")  # the process died here
    support = issuer.token(shop, ["support"])
    body = {"subscriber_no": subscriber, "organization_id": "avisa"}
    assert call("payments_resolve", "POST", support, {"payment_id": payment_id}, body)[0] == 409  # still claimed
    clock.advance(timedelta(minutes=2))
    other = {"subscriber_no": someone_else, "organization_id": "avisa"}
    assert call("payments_resolve", "POST", support, {"payment_id": payment_id}, other)[0] == 409  # not its claim
    status, booked = call("payments_resolve", "POST", support, {"payment_id": payment_id}, body)
    assert (status, booked["booked"], booked["amount_booked_minor"]) == (200, 1, 7000)
    nobody = {"subscriber_no": 9_999_999, "organization_id": "avisa"}
    assert call("payments_resolve", "POST", support, {"payment_id": payment_id}, nobody)[0] == 409  # done


def test_a_reversal_or_deduction_set_aside_cannot_be_resolved_as_a_payment(ctx: Context, shop: str) -> None:
    subscriber = place_order(ctx, order(shop)).subscriber_no
    payment_id = _set_aside_payment(ctx, shop, 7000)
    ctx.storage.upsert("Payments", {"PartitionKey": f"rp|{shop}", "RowKey": payment_id, "Kind": "deduction"})
    status, problem = call("payments_resolve", "POST", issuer.token(shop, ["support"]), {"payment_id": payment_id},
                           {"subscriber_no": subscriber, "organization_id": "avisa"})
    assert status == 422 and "deduction" in problem["detail"]
    assert ctx.accounts.history(shop, subscriber)[1][-1].kind == "invoice"


def test_import_reports_are_listed_and_read_per_tenant(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    data = ocr_giro.transmission([(invoice.kid, invoice.total_minor), ("12345678903", 100)], date(2026, 1, 10),
                                 account="86011117947").encode()
    report = import_bank_file(ctx, shop, "nets.txt", data)
    reader = issuer.token(shop, ["reader"])
    status, listed = call("payments_imports", "GET", reader)
    assert status == 200 and [r["id"] for r in listed] == [report.id]
    status, one = call("payments_import", "GET", reader, {"report_id": report.id})
    assert status == 200 and one["balanced"] is True and one["file"] == "nets.txt"
    assert one["by_currency"]["NOK"]["booked"] == {"count": 1, "amount_minor": invoice.total_minor}
    assert one["by_currency"]["NOK"]["set_aside"] == {"count": 1, "amount_minor": 100}
    assert one["totals"] == [{"currency": "NOK", "records": 2, "amount_minor": invoice.total_minor + 100}]
    assert call("payments_import", "GET", reader, {"report_id": "nope"})[0] == 404
    other = issuer.token("someone-else", ["reader"])
    assert call("payments_import", "GET", other, {"report_id": report.id})[0] == 404
    assert call("payments_imports", "GET", other)[1] == []


def test_two_organisations_on_one_account_and_currency_are_refused(ctx: Context, shop: str) -> None:
    admin = issuer.token(shop, ["admin"])
    body = {"name": "Avisa EUR", "currency": "EUR", "bank_account": "86011117947",
            "kid": {"length": 15, "modulus": "MOD10", "subscriber_digits": 7}}
    assert call("catalogue_put_organization", "PUT", admin, {"id": "avisa-eur"}, body)[0] == 200
    status, problem = call("catalogue_put_organization", "PUT", admin, {"id": "avisa-2"}, body)
    assert status == 422 and "already receives payments" in problem["detail"]
    assert "avisa-2" not in ctx.catalogue.get(shop).organizations


def test_a_resolve_refused_after_its_claim_leaves_the_payment_open_for_the_next_try(
        ctx: Context, shop: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    subscriber = place_order(ctx, order(shop)).subscriber_no
    payment_id = _set_aside_payment(ctx, shop, 7000)
    book_one = desk.book_one

    def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise payments_in.PaymentRefused("settles more open invoices than one transaction can book")

    monkeypatch.setattr(desk, "book_one", refused)
    support = issuer.token(shop, ["support"])
    body = {"subscriber_no": subscriber, "organization_id": "avisa"}
    assert call("payments_resolve", "POST", support, {"payment_id": payment_id}, body)[0] == 422
    (row,) = payments_in.requires_processing(ctx, shop)
    assert row["state"] == "open"
    monkeypatch.setattr(desk, "book_one", book_one)
    assert call("payments_resolve", "POST", support, {"payment_id": payment_id}, body)[1]["booked"] == 1
