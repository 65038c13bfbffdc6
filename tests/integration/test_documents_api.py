"""The documents in the merchant API (L7, D3), over the functions as the host calls them, on
Azurite: the list with channel and delivery log, PDF download, the invoice preview (the
same lines and total the invoice run then issues), the logo, the subscription's channel
settings, orders that choose a channel, and the organisation's document settings at the
catalogue boundary. Every bad input is a 4xx problem document and changes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import uuid
import zlib
from dataclasses import asdict, replace
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from peppol import check_rules, validate_xsd
from pypdf import PdfReader

from devhost import issuer
from devhost.mailbox import Mailbox
from functions.notification_worker import handle
from shared.adapters.bus import NOTICES, event_message
from shared.adapters.catalogue_store import KINDS
from shared.adapters.codec import to_jsonable
from shared.domain.catalogue import Channel
from shared.domain.dunning import NoticeChannel
from shared.domain.events import PaymentStopNotice
from shared.service import documents
from shared.service.billing import bill_one
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.customer_service import add_correction, credit_invoice
from shared.service.dunning import dun_subscribers
from shared.service.orders import PlaceOrder, fingerprint, place_order
from shared.service.payments_in import register_payment
from tests.conftest import oslo_morning
from tests.fixtures import function, http, install_catalogue, order, received
from tests.integration.test_cross_tenant import snapshot


def get(name: str, token: str | None, route: dict[str, str], method: str = "GET", body: Any = None,
        headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of one call."""
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    request = http(method, "/api/merchant", body, headers=hdrs | (headers or {}), route=route)
    response = function(name)(request)
    return response.status_code, response.mimetype, response.get_body()


def problem(status: int, mimetype: str, raw: bytes) -> dict[str, Any]:
    assert mimetype == "application/problem+json", (status, raw[:200])
    found: dict[str, Any] = json.loads(raw)
    assert found["status"] == status and found["title"]
    return found


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG image (RGB, every pixel red), made with the standard library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def placed(ctx: Context, shop: str) -> dict[str, Any]:
    """A subscriber with their first invoice (5 Jan 2026, 348.00 kr due 19 Jan)."""
    done = place_order(ctx, order(shop))
    invoice = done.invoices[0]
    return {"token": issuer.token(shop, ["admin"]), "n": done.subscriber_no, "sub": done.subscription_id,
            "invoice": invoice, "route": {"subscriber_no": str(done.subscriber_no)}}


def test_the_documents_are_listed_with_their_figures_and_the_channel_they_go_by(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    invoice = placed["invoice"]
    credit_invoice(ctx, shop, placed["n"], invoice.number, "Wrong price")
    status, mimetype, raw = get("documents_list", issuer.token(shop, ["reader"]), placed["route"])
    assert (status, mimetype) == (200, "application/json")
    listed = json.loads(raw)
    assert [(d["id"], d["kind"], d["number"]) for d in listed] == [
        (f"inv-{invoice.demand_no:08d}", "invoice", invoice.number),
        (f"crn-{invoice.number + 1:010d}", "credit_note", invoice.number + 1)]
    first, note = listed
    assert (first["total_minor"], first["amount_due_minor"], first["kid"], first["due_date"]) == (
        34800, 34800, invoice.kid, "2026-01-19")
    assert (note["total_minor"], note["amount_due_minor"], note["kid"], note["invoice_number"]) == (
        -34800, 0, None, invoice.number)
    assert {d["channel"] for d in listed} == {"email"}  # the organisation's default
    assert all(d["deliveries"] == [] for d in listed)  # nothing delivered yet
    # the overview keeps its keys and shows the same list
    status, _, raw = get("subscriber_overview", placed["token"], placed["route"])
    view = json.loads(raw)
    assert status == 200 and view["documents"] == listed and [i["number"] for i in view["invoices"]] == [
        invoice.number]


def test_a_document_downloads_as_pdf_with_its_figures_and_the_same_bytes_each_time(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    invoice = placed["invoice"]
    route = placed["route"] | {"document_id": f"inv-{invoice.demand_no:08d}"}
    status, mimetype, pdf = get("document_pdf", issuer.token(shop, ["reader"]), route)
    assert (status, mimetype, pdf[:5]) == (200, "application/pdf", b"%PDF-")
    text = text_of(pdf)
    assert invoice.kid in text and "Kari Nordmann 1" in text and "Avisa Nordvest AS" in text
    assert "348,00" in text  # 299.00 + 49.00, the Norwegian way
    assert get("document_pdf", placed["token"], route)[2] == pdf  # rendered from the stored demand alone


@pytest.mark.parametrize(("document_id", "status"), [
    ("inv-00000099", 404),  # the right shape, no such document
    ("crn-0000000099", 404),
    ("rem-00000001", 404),
    ("stp-0000000001", 404),
    ("inv-1", 400),  # the wrong shape: refused before anything is read
    ("inv-0000000a", 400),
    ("xyz-00000001", 400),
    ("inv-00000001-", 400),
    ("INV-00000001", 400),
    ("../inv-00000001", 400),
])
def test_a_document_the_subscriber_does_not_have_is_404_and_a_malformed_id_400(
        ctx: Context, shop: str, placed: dict[str, Any], document_id: str, status: int) -> None:
    before = snapshot(ctx, shop)
    for name in ("document_pdf", "document_ehf"):
        got = get(name, placed["token"], placed["route"] | {"document_id": document_id})
        found = problem(status, got[1], got[2]) if got[0] == status else pytest.fail(str(got))
        if status == 400:
            assert found["errors"][0]["field"] == "path.document_id"
    assert snapshot(ctx, shop) == before


def test_another_tenants_subscriber_and_documents_are_not_found(ctx: Context, shop: str,
                                                                placed: dict[str, Any]) -> None:
    intruder = issuer.token("some-other-tenant", ["admin"])
    document_id = f"inv-{placed['invoice'].demand_no:08d}"
    for name, route in (("documents_list", placed["route"]),
                        ("document_pdf", placed["route"] | {"document_id": document_id}),
                        ("subscription_preview", placed["route"] | {"subscription_id": placed["sub"]})):
        status, mimetype, raw = get(name, intruder, route)
        problem(404, mimetype, raw)
        assert b"Kari" not in raw and status == 404
    assert get("documents_list", placed["token"], {"subscriber_no": "999999"})[0] == 404


def test_the_preview_shows_the_lines_and_total_the_invoice_run_then_issues(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    n, sub = placed["n"], placed["sub"]
    credit = {"organization_id": "avisa", "amount_minor": -5000, "text": "Goodwill", "id": "gw-1"}
    assert function("correction_add")(http("POST", "/api/merchant", credit, headers={
        "Authorization": f"Bearer {placed['token']}"}, route=placed["route"])).status_code == 201
    preview = documents.preview(ctx, shop, n, sub)
    assert (preview.number, preview.kid) == (0, "")  # given at issue
    route = placed["route"] | {"subscription_id": sub}
    status, mimetype, pdf = get("subscription_preview", issuer.token(shop, ["reader"]), route)
    assert (status, mimetype) == (200, "application/pdf")
    text = text_of(pdf)
    # February: 299.00 + 49.00 + the 39.00 invoice fee from period 2 - the 50.00 goodwill credit = 337.00
    assert preview.total_minor == 38700 - 5000 and "337,00" in text and "Goodwill" in text
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, date(2026, 1, 22), n) == 1
    issued = documents.documents(ctx, shop, n)[-1]
    assert issued.kind.value == "invoice" and issued.number > 0 and issued.kid
    assert (issued.lines, issued.vat, issued.total_minor, issued.amount_due_minor, issued.period, issued.due_date) \
        == (preview.lines, preview.vat, preview.total_minor, preview.amount_due_minor, preview.period,
            preview.due_date)


@pytest.mark.fakes
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.sampled_from(["digital-monthly", "digital-yearly"]),
       corrections=st.lists(st.integers(-40000, 40000).filter(bool), max_size=3),
       paid=st.integers(0, 400000), organisation=st.booleans())
def test_the_preview_is_what_the_invoice_run_issues_whatever_the_account_holds(
        ctx: Context, plan: str, corrections: list[int], paid: int, organisation: bool) -> None:
    """Corrections on the next invoice, money paid beyond the first invoice (credit the run
    applies), a yearly or monthly plan, a person or an organisation: the preview's lines,
    VAT, total, credit applied and amount due are the issued invoice's."""
    shop = f"pv{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, shop)
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    wanted = replace(order(shop, plan=plan), organization_number="923609016" if organisation else None)
    done = place_order(ctx, wanted)
    n, sub = done.subscriber_no, done.subscription_id
    for i, amount in enumerate(corrections):
        add_correction(ctx, shop, n, "avisa", amount, f"Correction {i}", f"c{i}")
    if paid:
        register_payment(ctx, shop, n, "avisa", paid, date(2026, 1, 6), "pay-1")
    preview = documents.preview(ctx, shop, n, sub)
    day = preview.issue_date  # the run that issues it: on its production day
    ctx.clock.set(oslo_morning(day))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, day, n) == 1
    issued = documents.documents(ctx, shop, n)[1]
    assert (issued.lines, issued.vat, issued.total_minor, issued.credit_applied_minor, issued.amount_due_minor,
            issued.period, issued.due_date, issued.issue_date, issued.letter) == (
        preview.lines, preview.vat, preview.total_minor, preview.credit_applied_minor, preview.amount_due_minor,
        preview.period, preview.due_date, preview.issue_date, preview.letter)
    assert (preview.number, preview.kid) == (0, "") and issued.number > 0 and issued.kid


def test_a_preview_of_an_unknown_or_ended_subscription_is_404(ctx: Context, shop: str,
                                                              placed: dict[str, Any]) -> None:
    route = placed["route"] | {"subscription_id": "nope"}
    problem(404, *get("subscription_preview", placed["token"], route)[1:])
    stop = {"at_period_end": True, "reason": "Moving"}
    function("subscription_stop")(http("POST", "/api/merchant", stop, headers={
        "Authorization": f"Bearer {placed['token']}"}, route=placed["route"] | {"subscription_id": placed["sub"]}))
    status, mimetype, raw = get("subscription_preview", placed["token"], placed["route"] | {
        "subscription_id": placed["sub"]})
    assert status == 404 and "no next invoice" in problem(404, mimetype, raw)["detail"]


# ---- the delivery log and resend -------------------------------------------------------------------

def deliver_all(ctx: Context) -> None:
    """What the notification worker does with every message waiting on ``notices``."""
    while batch := received(ctx, NOTICES):
        for message in batch:
            handle(message.encode().encode())


def test_the_list_and_the_overview_show_the_delivery_log_with_a_fallback_to_print(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    mailbox.refuse.add("kari1@example.no")  # the receiving server answers 550
    done = place_order(ctx, replace(order(shop), address="Storgata 1", postal_code="0150", city="Oslo"))
    deliver_all(ctx)
    token, route = issuer.token(shop, ["reader"]), {"subscriber_no": str(done.subscriber_no)}
    (listed,) = json.loads(get("documents_list", token, route)[2])
    assert listed["channel"] == "email"  # the channel chosen; print was the fallback
    assert [(d["channel"], d["attempt"], d["status"]) for d in listed["deliveries"]] == [
        ("email", 1, "failed"), ("print", 1, "sent")]
    assert "550" in listed["deliveries"][0]["reason"] and "0150" in listed["deliveries"][1]["recipient"]
    view = json.loads(get("subscriber_overview", token, route)[2])
    assert view["documents"] == [listed]


def test_a_stop_notice_delivered_is_listed_and_downloads_as_the_pdf_it_was_sent_as(
        ctx: Context, shop: str, mailbox: Mailbox, placed: dict[str, Any]) -> None:
    invoice = placed["invoice"]
    notice = PaymentStopNotice(f"stop-{invoice.number}", placed["n"], "Kari Nordmann 1", date(2026, 2, 10),
                               NoticeChannel.EMAIL, "kari1@example.no", "avisa", "Avisa Nordvest AS", invoice.number,
                               invoice.kid, "NOK", "86011117947", stop_date=date(2026, 2, 15), owed_minor=34800)
    handle(event_message(shop, notice).encode().encode())  # as the dunning run's outbox sends it
    document_id = f"stp-{invoice.number:010d}"
    listed = json.loads(get("documents_list", placed["token"], placed["route"])[2])
    stop = next(d for d in listed if d["id"] == document_id)
    assert (stop["kind"], stop["total_minor"], stop["due_date"], stop["organization_id"]) == (
        "stop_notice", 34800, "2026-02-15", "avisa")
    assert [(d["channel"], d["status"]) for d in stop["deliveries"]] == [("email", "sent")]
    status, mimetype, pdf = get("document_pdf", placed["token"], placed["route"] | {"document_id": document_id})
    assert (status, mimetype) == (200, "application/pdf")
    (mail,) = mailbox.mails(shop)  # the invoice was not delivered here: the notice's mail alone
    (sent,) = [part.get_content() for part in mail.iter_attachments()]
    assert sent == pdf  # the same document: its stored form renders to the same bytes
    problem(409, *get("document_ehf", placed["token"], placed["route"] | {"document_id": document_id})[1:])


def test_customer_service_resends_a_document_to_another_address(ctx: Context, shop: str, mailbox: Mailbox,
                                                                 placed: dict[str, Any]) -> None:
    deliver_all(ctx)
    route = placed["route"] | {"document_id": f"inv-{placed['invoice'].demand_no:08d}"}
    status, mimetype, raw = get("document_resend", issuer.token(shop, ["support"]), route, "POST",
                                {"channel": "email", "to": "Kari.Ny@Example.no"})
    assert (status, mimetype) == (200, "application/json"), raw
    again = json.loads(raw)
    assert (again["attempt"], again["channel"], again["status"]) == (2, "email", "sent")
    assert [m["To"] for m in mailbox.mails(shop)] == ["kari1@example.no", "Kari.Ny@example.no"]
    status, _, raw = get("document_resend", placed["token"], route, "POST", {})  # as chosen, to the subscriber
    assert status == 200 and json.loads(raw)["attempt"] == 3 and mailbox.mails(shop)[-1]["To"] == "kari1@example.no"
    (listed,) = json.loads(get("documents_list", placed["token"], placed["route"])[2])
    assert [d["attempt"] for d in listed["deliveries"]] == [1, 2, 3]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"channel": "fax"}, 422, "channel"),
    ({"channel": "email", "to": "not an address"}, 422, "to"),
    ({"channel": "email", "to": "+47 41234567"}, 422, "to"),
    ({"channel": "sms", "to": "kari@example.no"}, 422, "phone"),
    ({"to": "kari@example.no"}, 422, "channel"),  # which channel is the address for?
    ({"channel": "print", "to": "Storgata 1"}, 422, "channel"),
    ({"channel": "email", "to": "x" * 300}, 422, "to"),
    ({"channel": "email", "cc": "a@example.no"}, 422, "cc"),
    ({"channel": "ehf"}, 409, "organisation number"),  # Kari is a person: no EHF form
    ({"channel": "sms"}, 422, "phone"),  # no phone and none given: refused before a row is claimed
])
def test_a_resend_that_cannot_be_made_is_refused_before_anything_is_sent(
        ctx: Context, shop: str, mailbox: Mailbox, placed: dict[str, Any], body: Any, status: int,
        words: str) -> None:
    route = placed["route"] | {"document_id": f"inv-{placed['invoice'].demand_no:08d}"}
    before = snapshot(ctx, shop)
    got, mimetype, raw = get("document_resend", placed["token"], route, "POST", body)
    assert got == status and words in raw.decode(), raw
    if status >= 400:
        problem(status, mimetype, raw)
        assert snapshot(ctx, shop) == before and mailbox.mails(shop) == []


def test_a_resend_of_a_document_that_is_not_there_is_404_and_needs_the_support_role(
        ctx: Context, shop: str, mailbox: Mailbox, placed: dict[str, Any]) -> None:
    route = placed["route"] | {"document_id": "inv-00000099"}
    problem(404, *get("document_resend", placed["token"], route, "POST", {})[1:])
    problem(400, *get("document_resend", placed["token"], route | {"document_id": "inv-99"}, "POST", {})[1:])
    problem(404, *get("document_resend", issuer.token("some-other-tenant", ["admin"]), route | {
        "document_id": f"inv-{placed['invoice'].demand_no:08d}"}, "POST", {})[1:])
    reader = issuer.token(shop, ["reader"])
    problem(403, *get("document_resend", reader, route, "POST", {})[1:])
    assert mailbox.mails(shop) == []


# ---- EHF ---------------------------------------------------------------------------------------------

def company(ctx: Context, shop: str) -> Any:
    """An organisation (an organisation number) on the monthly plan: 0 % paper, 25 % app."""
    return place_order(ctx, PlaceOrder(tenant=shop, plan_id="digital-monthly", payment_type=order(shop).payment_type,
                                       name="Bedrift AS", email="post@bedrift.no", address="Kongens gate 1",
                                       postal_code="0153", city="Oslo", organization_number="923609016"))


def test_an_invoice_and_a_credit_note_to_an_organisation_download_as_valid_ehf(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    them = company(ctx, shop)
    invoice = them.invoices[0]
    credit_invoice(ctx, shop, them.subscriber_no, invoice.number, "Ordered twice")
    route = {"subscriber_no": str(them.subscriber_no)}
    reader = issuer.token(shop, ["reader"])
    for document_id, root in ((f"inv-{invoice.demand_no:08d}", "Invoice"),
                              (f"crn-{invoice.number + 1:010d}", "CreditNote")):
        status, mimetype, xml = get("document_ehf", reader, route | {"document_id": document_id})
        assert (status, mimetype) == (200, "application/xml"), xml[:300]
        tree = etree.fromstring(xml)
        assert etree.QName(tree).localname == root
        ok, errors = validate_xsd(xml)
        assert ok, errors
        assert [str(f) for f in check_rules(xml) if f.severity == "fatal"] == []
        if root == "Invoice":  # paid by its KID
            assert tree.findtext("./{*}PaymentMeans/{*}PaymentID") == invoice.kid
        assert get("document_ehf", reader, route | {"document_id": document_id})[2] == xml  # the same bytes


def test_a_document_without_an_ehf_form_is_409_with_the_reason_and_an_unknown_one_404(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    to_person = placed["route"] | {"document_id": f"inv-{placed['invoice'].demand_no:08d}"}
    status, mimetype, raw = get("document_ehf", placed["token"], to_person)
    assert "organisation number" in problem(409, mimetype, raw)["detail"] and status == 409
    status, mimetype, raw = get("document_ehf", placed["token"], placed["route"] | {"document_id": "crn-0000000099"})
    problem(404, mimetype, raw)
    status, mimetype, raw = get("document_ehf", placed["token"], placed["route"] | {"document_id": "crn-99"})
    assert problem(400, mimetype, raw)["errors"][0]["field"] == "path.document_id"


# ---- the logo --------------------------------------------------------------------------------------

def test_a_logo_is_stored_named_by_its_content_and_drawn_on_the_pdf(ctx: Context, shop: str,
                                                                    placed: dict[str, Any]) -> None:
    route = {"id": "avisa"}
    status, _, raw = get("organization_logo", placed["token"], route, "PUT", png(), {"Content-Type": "image/png"})
    assert status == 200, raw
    name = json.loads(raw)["branding"]["logo_blob"]
    assert name.startswith("avisa-") and name.endswith(".png")
    assert ctx.catalogue.get(shop).organizations["avisa"].branding.logo_blob == name
    # the logo goes on documents issued from now on (the letter stores the branding it was issued with)
    later = place_order(ctx, order(shop, 2))
    route = {"subscriber_no": str(later.subscriber_no), "document_id": f"inv-{later.invoices[0].demand_no:08d}"}
    with_logo = get("document_pdf", placed["token"], route)[2]
    doc = documents.document(ctx, shop, later.subscriber_no, route["document_id"])
    assert doc.letter.seller.branding.logo_blob == name
    assert b"/Subtype /Image" in with_logo and with_logo != documents.render_pdf(doc, None)
    # the invoice issued before keeps its letter: no logo
    old = get("document_pdf", placed["token"], placed["route"] | {
        "document_id": f"inv-{placed['invoice'].demand_no:08d}"})[2]
    assert b"/Subtype /Image" not in old


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"GIF89a" + b"\x00" * 20, "image/png", 422),  # not what it says it is
    (png(), "image/jpeg", 422),  # a PNG sent as JPEG
    (png(), "image/gif", 415),
    (png(), "application/json", 415),
    (b"", "image/png", 422),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * (512 * 1024), "image/png", 413),  # over 512 KiB
])
def test_a_logo_that_is_not_a_png_or_jpeg_within_512_kib_is_refused_and_changes_nothing(
        ctx: Context, shop: str, placed: dict[str, Any], body: bytes, content_type: str, status: int) -> None:
    before = snapshot(ctx, shop)
    got = get("organization_logo", placed["token"], {"id": "avisa"}, "PUT", body, {"Content-Type": content_type})
    problem(status, got[1], got[2]) if got[0] == status else pytest.fail(str(got[:2]))
    assert snapshot(ctx, shop) == before
    got = get("organization_logo", placed["token"], {"id": "nobody"}, "PUT", png(), {"Content-Type": "image/png"})
    assert got[0] == 404
    reader = issuer.token(shop, ["reader"])
    assert get("organization_logo", reader, {"id": "avisa"}, "PUT", png(), {"Content-Type": "image/png"})[0] == 403


# ---- the subscription's channel and buyer reference ----------------------------------------------

def patch(placed: dict[str, Any], body: Any, sub: str | None = None) -> tuple[int, dict[str, Any]]:
    route = placed["route"] | {"subscription_id": sub or placed["sub"]}
    status, _, raw = get("subscription_delivery", placed["token"], route, "PATCH", body)
    return status, json.loads(raw) if raw else {}


def subscription(ctx: Context, shop: str, placed: dict[str, Any]) -> Any:
    loaded = ctx.accounts.load(shop, placed["n"])
    assert loaded is not None
    return loaded.account.subscriptions[placed["sub"]]


def test_customer_service_sets_the_channel_and_reference_and_the_next_invoice_carries_them(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    status, done = patch(placed, {"delivery": "print", "buyer_reference": "PO-4711"})
    assert status == 200 and [(s["delivery"], s["buyer_reference"]) for s in done["subscriptions"]] == [
        ("print", "PO-4711")]
    assert patch(placed, {"buyer_reference": "PO-4712"})[0] == 200  # a field not given stays
    sub = subscription(ctx, shop, placed)
    assert (sub.delivery, sub.buyer_reference) == (Channel.PRINT, "PO-4712")
    listed = json.loads(get("documents_list", placed["token"], placed["route"])[2])
    assert listed[0]["channel"] == "print"
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, date(2026, 1, 22), placed["n"]) == 1
    february = documents.documents(ctx, shop, placed["n"])[-1]
    assert february.letter.buyer_reference == "PO-4712"
    first = documents.documents(ctx, shop, placed["n"])[0]
    assert first.letter.buyer_reference == ""  # issued before: its letter as it was
    status, done = patch(placed, {"delivery": None})  # back to the organisation's default
    assert status == 200 and subscription(ctx, shop, placed).delivery is None
    assert patch(placed, {"delivery": None})[1]["subscriptions"] == []  # the same again: nothing to write


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"delivery": "ehf"}, 422, "organisation number"),  # Kari is a person
    ({"delivery": "sms"}, 422, "phone"),  # and has given no phone number
    ({"delivery": "fax"}, 422, "delivery"),
    ({"delivery": "EMAIL"}, 422, "delivery"),
    ({"delivery": 1}, 422, "delivery"),
    ({"buyer_reference": "x" * 201}, 422, "buyer_reference"),
    ({"buyer_reference": "a\x00b"}, 422, "buyer_reference"),
    ({"buyer_reference": None}, 422, "buyer_reference"),
    ({"channel": "email"}, 422, "channel"),  # not a field of this body
    ([], 400, "object"),
])
def test_a_channel_the_subscriber_cannot_receive_or_a_bad_value_is_refused_and_changes_nothing(
        ctx: Context, shop: str, placed: dict[str, Any], body: Any, status: int, words: str) -> None:
    before = snapshot(ctx, shop)
    got, found = patch(placed, body)
    assert got == status and found["status"] == status, found
    assert words in json.dumps(found), found
    assert snapshot(ctx, shop) == before


def test_ehf_needs_an_organisation_that_sends_it_and_an_unknown_subscription_is_404(
        ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    firm = company(ctx, shop)
    them = placed | {"n": firm.subscriber_no, "sub": firm.subscription_id,
                     "route": {"subscriber_no": str(firm.subscriber_no)}}
    status, found = patch(them, {"delivery": "ehf"})
    assert status == 422 and "ehf_enabled" in found["detail"]
    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", replace(org, ehf_enabled=True))
    assert patch(them, {"delivery": "ehf"})[0] == 200
    ctx.clock.set(oslo_morning(date(2026, 1, 26)))  # type: ignore[attr-defined]
    dun_subscribers(ctx, shop, date(2026, 1, 26), [firm.subscriber_no])  # reminder 1 of the unpaid invoice
    listed = json.loads(get("documents_list", placed["token"], them["route"])[2])
    # the invoice goes by EHF; the reminder, which has no EHF form, by e-mail
    assert [(d["kind"], d["channel"]) for d in listed] == [("invoice", "ehf"), ("reminder", "email")]
    assert patch(placed, {"delivery": "email"}, sub="nope")[0] == 404


# ---- orders choose a channel ----------------------------------------------------------------------

def test_an_order_may_choose_the_channel_and_give_a_reference(ctx: Context, shop: str) -> None:
    form = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Ola Nordmann", "email": "ola@example.no",
            "phone": "+47 41234567", "delivery": "sms", "buyer_reference": "Ola's ref", "order_ref": "sms-1"}
    response = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form, form=True,
                                                   route={"tenant": shop}))
    assert response.status_code == 201, response.get_body()
    n = ctx.emails.find(shop, "ola@example.no")
    assert n is not None
    loaded = ctx.accounts.load(shop, n)
    assert loaded is not None
    (sub,) = loaded.account.subscriptions.values()
    assert (sub.delivery, sub.buyer_reference) == (Channel.SMS, "Ola's ref")
    assert documents.documents(ctx, shop, n)[0].letter.buyer_reference == "Ola's ref"


@pytest.mark.parametrize(("field", "value"), [("delivery", "sms"), ("delivery", "ehf"), ("delivery", "pigeon"),
                                              ("buyer_reference", "x" * 201)])
def test_an_order_for_a_channel_it_cannot_receive_is_refused_and_places_nothing(
        ctx: Context, shop: str, field: str, value: str) -> None:
    form = {"plan_id": "digital-monthly", "payment_type": "invoice", "name": "Per", "email": "per@example.no",
            field: value}
    response = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form,
                                                   route={"tenant": shop}))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert ctx.emails.find(shop, "per@example.no") is None


def test_an_order_without_the_new_fields_keeps_its_fingerprint() -> None:
    """An order posted before ``delivery`` and ``buyer_reference`` existed, posted again
    with the same reference, is the same order: its fingerprint is what it was then."""
    placed = order("t1", ref="r-1")
    then = {k: v for k, v in asdict(placed).items() if k not in ("delivery", "buyer_reference")}
    then |= {"payment_type": placed.payment_type.value, "start_date": None, "order_ref": None,
             "email": placed.email.lower()}
    assert fingerprint(placed) == hashlib.sha256(json.dumps(then, sort_keys=True).encode()).hexdigest()
    assert PlaceOrder.from_json(placed.to_json()) == placed  # a pending order stored then reads back
    chosen = PlaceOrder.from_json(placed.to_json() | {"delivery": "print"})
    assert chosen.delivery is Channel.PRINT and fingerprint(chosen) != fingerprint(placed)


# ---- the organisation's document settings at the catalogue boundary --------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"branding": {"colour": "red"}}, "colour"),
    ({"branding": {"colour": "#12345"}}, "colour"),
    ({"branding": {"colour": "#1234567"}}, "colour"),
    ({"language": "xx"}, "language"),
    ({"language": "NB"}, "language"),
    ({"branding": {"logo_blob": "a/b.png"}}, "logo_blob"),
    ({"branding": {"logo_blob": "../avisa.png"}}, "logo_blob"),
    ({"branding": {"logo_blob": "logo.gif"}}, "logo_blob"),
    ({"branding": {"footer": "x" * 10_000}}, "footer"),
    ({"branding": {"contact_email": "x" * 300}}, "contact_email"),
    ({"document_channel": "fax"}, "document_channel"),
    ({"ehf_enabled": "yes"}, "ehf_enabled"),
    ({"vat_registered": 1}, "vat_registered"),
    ({"address": "x" * 201}, "address"),
    ({"branding": {"nope": 1}}, "nope"),
])
def test_bad_document_settings_of_an_organisation_are_4xx_and_change_nothing(
        ctx: Context, shop: str, placed: dict[str, Any], change: dict[str, Any], field: str) -> None:
    current = to_jsonable(ctx.catalogue.get(shop).organizations["avisa"])
    body = current | {k: (current[k] | v if isinstance(v, dict) else v) for k, v in change.items()}
    before = snapshot(ctx, shop)
    status, mimetype, raw = get("catalogue_put_organization", placed["token"], {"id": "avisa"}, "PUT", body)
    found = problem(status, mimetype, raw)
    assert status in (400, 422) and field in json.dumps(found), found
    assert snapshot(ctx, shop) == before
    assert to_jsonable(ctx.catalogue.get(shop).organizations["avisa"]) == current


def test_good_document_settings_are_stored(ctx: Context, shop: str, placed: dict[str, Any]) -> None:
    current = to_jsonable(ctx.catalogue.get(shop).organizations["avisa"])
    body = current | {"language": "en", "document_channel": "print", "ehf_enabled": True, "address": "Storgata 1",
                      "branding": current["branding"] | {"colour": "#AA0000", "footer": "Takk!"}}
    status, _, raw = get("catalogue_put_organization", placed["token"], {"id": "avisa"}, "PUT", body)
    assert status == 200, raw
    org = ctx.catalogue.get(shop).organizations["avisa"]
    assert (org.language, org.document_channel, org.branding.colour, org.branding.footer) == (
        "en", Channel.PRINT, "#AA0000", "Takk!")
    assert KINDS["organization"] is type(org)
