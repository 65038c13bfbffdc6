"""The sales poster in Chromium: the three journeys of INFO-Subscription's checkout
(minimal digital, with address, business with organisation number), paid by invoice
(receipt with amount, KID, account and due date) or by Vipps (the provider's page and
back), in Norwegian and English, by keyboard, with the errors announced on their fields,
and no WCAG 2.1 A/AA violation axe-core finds."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Page, expect

from devhost import issuer
from tests.browser.conftest import Site, assert_accessible, screenshot


def poster(site: Site, journey: str = "minimal", lang: str = "nb", plan: str = "digital-monthly") -> str:
    return f"{site.url}/api/pages/{site.tenant}/poster/{plan}?journey={journey}&lang={lang}"


def merchant(site: Site, path: str) -> object:
    token = issuer.token(site.tenant, ["admin"])
    response = requests.get(f"{site.url}/api/merchant/{path}", headers={"Authorization": f"Bearer {token}"},
                            timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def subscriber_of(site: Site, email: str) -> dict:  # type: ignore[type-arg]
    found = merchant(site, f"subscribers?q={email}")
    assert isinstance(found, list) and len(found) == 1, found
    return found[0]  # type: ignore[no-any-return]


def test_minimal_order_by_invoice_with_the_keyboard_ends_on_the_receipt(site: Site, page: Page) -> None:
    page.goto(poster(site))
    expect(page).to_have_title(re.compile("Digital monthly"))
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_test_id("price")).to_have_text("348,00\u00a0kr")
    expect(page.get_by_test_id("vat")).to_contain_text("9,80")
    expect(page.locator("img.logo")).to_have_attribute("alt", "Avisa Nordvest AS")
    assert page.locator("img.logo").evaluate("img => img.naturalWidth") > 0  # the logo route serves the PNG
    assert_accessible(page)
    screenshot(page, "poster-minimal")

    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Hopp til innholdet")).to_be_focused()
    page.get_by_label("Navn").focus()
    page.keyboard.type("Kari Tastatur")
    page.keyboard.press("Tab")
    expect(page.get_by_label("E-post")).to_be_focused()
    page.keyboard.type("kari.tastatur@example.no")
    page.keyboard.press("Enter")  # submits the form

    receipt = page.locator("#receipt")
    expect(receipt).to_be_visible()
    expect(receipt).to_be_focused()
    expect(page.get_by_role("heading", name="Takk for bestillingen!")).to_be_visible()
    expect(page.get_by_test_id("amount")).to_have_text("348,00\u00a0kr")
    kid = page.get_by_test_id("kid").inner_text()
    assert re.fullmatch(r"[0-9]{2,25}-?", kid), kid
    org = site.ctx.catalogue.get(site.tenant).organizations["avisa"]
    expect(page.get_by_test_id("account")).to_have_text(str(org.bank_account))
    expect(page.get_by_test_id("due")).to_contain_text("2026")
    assert subscriber_of(site, "kari.tastatur@example.no")["name"] == "Kari Tastatur"
    assert_accessible(page)
    screenshot(page, "poster-receipt")


def test_address_order_shows_each_missing_field_then_goes_through(site: Site, page: Page) -> None:
    page.goto(poster(site, "address"))
    page.get_by_label("Navn").fill("Ola Adresse")
    page.get_by_label("E-post").fill("ola.adresse@example.no")
    page.get_by_label(re.compile("^Adresse")).fill("Storgata 1")
    page.get_by_role("button", name="Bestill").click()
    for name in ("Postnummer", "Poststed"):  # required, left empty: marked, described and nothing posted
        field = page.get_by_label(name)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile("Må fylles ut"))
    expect(page.get_by_role("alert")).to_contain_text("Bestillingen ble ikke sendt")
    expect(page.get_by_label("Postnummer")).to_be_focused()
    assert_accessible(page)
    screenshot(page, "poster-address-errors")

    page.get_by_label("Postnummer").fill("6004")
    page.get_by_label("Poststed").fill("Ålesund")
    page.get_by_label("Mobil").fill("+47 412 34 567")
    page.get_by_role("button", name="Bestill").click()
    expect(page.get_by_role("heading", name="Takk for bestillingen!")).to_be_visible()
    found = subscriber_of(site, "ola.adresse@example.no")
    assert found["name"] == "Ola Adresse"


def test_a_field_the_server_refuses_is_marked_with_its_reason(site: Site, page: Page) -> None:
    page.goto(poster(site, "address"))
    page.get_by_label("Navn").fill("Per Feil")
    page.get_by_label("E-post").fill("per.feil@example.no")
    page.get_by_label(re.compile("^Adresse")).fill("Storgata 2")
    page.get_by_label("Postnummer").fill("60#4")  # the order endpoint's pattern refuses it
    page.get_by_label("Poststed").fill("Ålesund")
    page.get_by_role("button", name="Bestill").click()
    field = page.get_by_label("Postnummer")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#receipt")).to_be_hidden()
    expect(page.get_by_role("alert")).to_contain_text("Rett opp feltene")


def test_business_order_with_organisation_number_and_e_mail_invoice(site: Site, page: Page) -> None:
    page.goto(poster(site, "business"))
    expect(page.get_by_role("link", name="Bedrift")).to_have_attribute("aria-current", "page")
    assert_accessible(page)
    screenshot(page, "poster-business")
    page.get_by_label("Firmanavn").fill("Nordvest Rør AS")
    page.get_by_label("Organisasjonsnummer").fill("923 609 016")
    page.get_by_label("E-post for faktura").fill("faktura@nordvest-ror.example.no")
    page.get_by_label("Deres referanse").fill("PO-4471")
    page.get_by_label(re.compile("^Adresse")).fill("Kaia 3")
    page.get_by_label("Postnummer").fill("6002")
    page.get_by_label("Poststed").fill("Ålesund")
    expect(page.get_by_label("E-post", exact=True)).to_be_checked()  # the organisation has no EHF: e-mail
    page.get_by_role("button", name="Bestill").click()
    expect(page.get_by_role("heading", name="Takk for bestillingen!")).to_be_visible()
    expect(page.get_by_test_id("kid")).to_have_text(re.compile(r"^[0-9]+-?$"))
    found = subscriber_of(site, "faktura@nordvest-ror.example.no")
    assert found["name"] == "Nordvest Rør AS"


def test_vipps_order_goes_to_vipps_and_comes_back_active(site: Site, page: Page) -> None:
    page.goto(poster(site))
    page.get_by_label("Navn").fill("Vera Vipps")
    page.get_by_label("E-post").fill("vera.vipps@example.no")
    page.get_by_label("Vipps").check()
    page.get_by_role("button", name="Bestill").click()
    page.wait_for_url(re.compile(r"/confirm/"))  # the payment step: Vipps' own page (the simulator)
    page.get_by_role("button", name="Godta").click()
    page.wait_for_url(re.compile(rf"/api/salesposter/{site.tenant}/checkout/"))
    site.settle()
    page.reload()
    expect(page.get_by_role("heading", name="Takk for bestillingen!")).to_be_visible()
    screenshot(page, "poster-vipps-approved")
    found = subscriber_of(site, "vera.vipps@example.no")
    assert found["name"] == "Vera Vipps"


def test_english_poster_and_price(site: Site, page: Page) -> None:
    page.goto(poster(site, "address", "en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("price")).to_have_text("NOK\u00a0348.00")
    expect(page.get_by_role("heading", name="Order")).to_be_visible()
    page.get_by_role("link", name="Norsk").click()
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("link", name="Med adresse")).to_have_attribute("aria-current", "page")
    assert_accessible(page)
