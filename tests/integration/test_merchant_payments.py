"""Customer service on payments through the merchant API: requires processing and its
resolution, manual registration, refunds, search (P2, P4) — each safe to repeat."""

from __future__ import annotations

from datetime import date

from devhost import issuer
from shared.formats import ocr_giro
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.payments_in import import_bank_file
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
    assert call("payments_resolve", "POST", support, route, body)[1]["already_booked"] == 1
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
    from dataclasses import replace

    from shared.service.catalogue import put_item

    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", replace(org, manual_payment_approval=True))
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    data = ocr_giro.transmission([(invoice.kid, invoice.total_minor)], date(2026, 1, 10), account="86011117947")
    assert import_bank_file(ctx, shop, "ocr.txt", data.encode()).awaiting_approval == 1
    admin = issuer.token(shop, ["admin"])
    view = call("subscriber_overview", "GET", admin, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert view["balances"] == {"avisa": -invoice.total_minor}  # not booked before approval
    (waiting,) = call("payments_awaiting_approval", "GET", admin)[1]
    assert waiting["state"] == "AwaitingApproval"
    assert call("payments_approve", "POST", admin, {"payment_id": waiting["payment_id"]})[1]["booked"] == 1
    assert call("payments_awaiting_approval", "GET", admin)[1] == []
    view = call("subscriber_overview", "GET", admin, {"subscriber_no": str(placed.subscriber_no)})[1]
    assert view["balances"] == {"avisa": 0}
