"""My page in Chromium, as a subscriber meets it: signed out, they sign in at the
(development) identity provider's page and come back signed in (the session cookie is
HttpOnly: the page never sees a token); they link their subscription by the code e-mailed to
its address; then they see the subscription and its invoice (KID, amount), download the
invoice's PDF, change the payment to AvtaleGiro (and are told how to sign it in the bank),
stop the subscription and restart it. Every state is checked with axe-core and
photographed for the README."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devhost.builders import order
from devhost.mailbox import parse
from shared.adapters.notify import CONTAINER
from shared.service.catalogue import put_item
from shared.service.orders import place_order
from tests.browser.conftest import Site, assert_accessible, screenshot

EMAIL = "mona.lisa@example.no"


@pytest.fixture(scope="module")
def subscriber(site: Site) -> int:
    placed = place_order(site.ctx, order(site.tenant, 1, email=EMAIL))
    return int(placed.subscriber_no)


def my_page(site: Site) -> str:
    return f"{site.url}/api/pages/{site.tenant}/my"


def code_in(site: Site, to: str) -> str:
    """The code in the newest notice e-mailed to ``to`` (the notices channel writes each as
    an .eml blob locally, exactly as it would be sent)."""
    notices = site.host.blobs.get_container_client(CONTAINER)
    found = []
    for blob in notices.list_blobs(name_starts_with=f"{site.tenant}/"):
        message = parse(notices.download_blob(blob.name).readall())
        if to in str(message["To"]):
            found.append((blob.last_modified, message))
    assert found, f"no code was e-mailed to {to}"
    body = max(found, key=lambda f: f[0])[1].get_body(preferencelist=("plain",))
    code = re.search(r"\b([0-9]{6,8})\b", body.get_content() if body else "")
    assert code, "the e-mail has no code"
    return code.group(1)


def sign_in(site: Site, page: Page, email: str, name: str) -> None:
    page.goto(my_page(site))
    expect(page.get_by_role("link", name="Logg inn")).to_be_visible()
    page.get_by_role("link", name="Logg inn").click()
    page.wait_for_url(re.compile("/_dev/idp/"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"/api/pages/{site.tenant}/my"))
    expect(page.locator("#who")).to_contain_text(email)


@pytest.fixture
def signed_in(site: Site, subscriber: int, context: BrowserContext, page: Page) -> Iterator[Page]:
    sign_in(site, page, EMAIL, "Mona Lisa")
    if page.locator("#link").is_visible():  # the first time: link the subscription by the e-mailed code
        page.locator("#link-form").get_by_label("E-post").fill(EMAIL)
        page.get_by_role("button", name="Send kode").click()
        expect(page.get_by_label("Kode fra e-posten")).to_be_visible()
        page.get_by_label("Kode fra e-posten").fill(code_in(site, EMAIL))
        page.get_by_role("button", name="Bekreft").click()
    expect(page.get_by_role("heading", name="Abonnementer")).to_be_visible()
    yield page


def test_signed_out_my_page_offers_sign_in_and_the_provider_page_is_accessible(site: Site, page: Page) -> None:
    page.goto(my_page(site))
    expect(page.get_by_role("link", name="Logg inn")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "my-signed-out")
    page.get_by_role("link", name="Logg inn").click()
    page.wait_for_url(re.compile("/_dev/idp/"))
    screenshot(page, "dev-idp-login")


def test_the_session_cookie_is_http_only_and_the_page_holds_no_token(site: Site, signed_in: Page,
                                                                     context: BrowserContext) -> None:
    cookies = [c for c in context.cookies() if c["name"] == "abonno_session"]
    assert cookies and all(c["httpOnly"] and c["sameSite"] == "Lax" and c["path"] == "/api" for c in cookies)
    assert "abonno_session" not in signed_in.evaluate("document.cookie")


def test_a_login_linked_to_nothing_is_offered_to_link_by_code(site: Site, subscriber: int, page: Page) -> None:
    sign_in(site, page, "ny.leser@example.no", "Ny Leser")
    expect(page.get_by_role("heading", name="Koble til abonnementet ditt")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "my-link")


def test_the_subscription_and_its_invoice_with_kid_and_pdf(site: Site, subscriber: int, signed_in: Page) -> None:
    page = signed_in
    card = page.locator("article.card").first
    expect(card).to_contain_text("Digital monthly")
    expect(card).to_contain_text("Aktivt")
    row = page.locator("table.documents tbody tr").first
    expect(row).to_contain_text("Faktura")
    expect(row).to_contain_text("348,00")
    expect(row).to_contain_text("Ubetalt")
    assert re.search(r"[0-9]{6,}", row.inner_text())  # the KID
    assert_accessible(page)
    screenshot(page, "my-page")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("Last ned PDF")).click()
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF")


def test_change_payment_to_avtalegiro_tells_how_to_sign_it(site: Site, subscriber: int, signed_in: Page) -> None:
    page = signed_in
    card = page.locator("article.card").first
    card.get_by_label("Endre betaling").select_option("avtalegiro")
    card.get_by_role("button", name="Lagre").click()
    expect(page.locator("#status")).to_contain_text("Betalingsmåten er endret")
    expect(page.locator("#status")).to_contain_text("KID")


def test_stop_then_restart(site: Site, subscriber: int, signed_in: Page) -> None:
    page = signed_in
    card = page.locator("article.card").first
    card.get_by_role("button", name="Stopp abonnementet").click()
    expect(page.locator("#status")).to_have_text("Abonnementet er stoppet.")
    card = page.locator("article.card").first
    expect(card).to_contain_text("Stopper")
    assert_accessible(page)
    screenshot(page, "my-stopped")
    card.get_by_role("button", name="Start igjen").click()
    expect(page.locator("#status")).to_have_text("Abonnementet er startet igjen.")
    expect(page.locator("article.card").first).not_to_contain_text("Stopper")


def test_export_downloads_all_the_subscriber_s_data_as_json(site: Site, subscriber: int, signed_in: Page) -> None:
    with signed_in.expect_download() as download:
        signed_in.get_by_role("button", name="Last ned mine data (JSON)").click()
    assert download.value.suggested_filename == f"abonno-{site.tenant}-{subscriber}.json"
    data = json.loads(download.value.path().read_text("utf-8"))
    assert EMAIL in json.dumps(data)
    assert data["subscriptions"] and data["invoices"], sorted(data)
    expect(signed_in.locator("#status")).to_have_text("Dataene er lastet ned.")


def test_english_my_page_keeps_its_language_through_sign_in(site: Site, subscriber: int, page: Page) -> None:
    page.goto(my_page(site) + "?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/my\?lang=en"))
    expect(page.get_by_role("heading", name="Subscriptions")).to_be_visible()
    expect(page.locator("table.documents")).to_contain_text("Invoice")
    assert_accessible(page)


def test_an_order_placed_while_signed_in_is_on_my_page_without_a_code(site: Site, page: Page) -> None:
    sign_in(site, page, "kjell.kjoper@example.no", "Kjell Kjøper")
    expect(page.get_by_role("heading", name="Koble til abonnementet ditt")).to_be_visible()  # nothing linked yet
    page.goto(f"{site.url}/api/pages/{site.tenant}/poster/digital-yearly?journey=minimal")
    page.get_by_label("Navn").fill("Kjell Kjøper")
    page.get_by_label("E-post").fill("kjell.kjoper@example.no")
    page.get_by_role("button", name="Bestill").click()
    expect(page.get_by_role("heading", name="Takk for bestillingen!")).to_be_visible()
    page.goto(my_page(site))
    expect(page.locator("article.card").first).to_contain_text("Digital yearly")
    expect(page.locator("#link")).to_be_hidden()


def test_pause_where_the_plan_allows_it(site: Site, page: Page) -> None:
    plan = site.ctx.catalogue.get(site.tenant).plans["digital-yearly"]
    put_item(site.ctx, site.tenant, "plan", replace(plan, pause_allowed=True))
    placed = place_order(site.ctx, order(site.tenant, 7, plan="digital-yearly", email="paula.pause@example.no"))
    sign_in(site, page, "paula.pause@example.no", "Paula Pause")
    page.locator("#link-form").get_by_label("E-post").fill("paula.pause@example.no")
    page.get_by_role("button", name="Send kode").click()
    expect(page.get_by_label("Kode fra e-posten")).to_be_visible()
    page.get_by_label("Kode fra e-posten").fill(code_in(site, "paula.pause@example.no"))
    page.get_by_role("button", name="Bekreft").click()
    card = page.locator("article.card").first
    expect(card).to_contain_text("Digital yearly")
    card.get_by_role("button", name="Sett på pause").click()  # no date: refused in the page
    expect(page.get_by_role("alert")).to_contain_text("Må fylles ut")
    card.get_by_label("Start igjen den").fill("2027-03-01")  # the pause begins with the next period
    card.get_by_role("button", name="Sett på pause").click()
    expect(page.locator("#status")).to_have_text("Abonnementet er satt på pause.")
    assert placed.subscriber_no


def test_the_subscriber_changes_their_address(site: Site, subscriber: int, signed_in: Page) -> None:
    page = signed_in
    form = page.locator("#profile-form")
    expect(form.get_by_label("E-post")).to_have_value(EMAIL)
    form.get_by_label("Adresse").fill("Nedre Strandgate 4")
    form.get_by_label("Postnummer").fill("6004")
    form.get_by_label("Poststed").fill("Ålesund")
    form.get_by_role("button", name="Lagre").click()
    expect(page.locator("#status")).to_have_text("Opplysningene er lagret.")
    page.reload()
    expect(form.get_by_label("Adresse")).to_have_value("Nedre Strandgate 4")
    loaded = site.ctx.accounts.load(site.tenant, subscriber)
    assert loaded is not None and loaded.account.subscriber.address == "Nedre Strandgate 4"
    form.get_by_label("Navn").fill("")
    form.get_by_role("button", name="Lagre").click()
    expect(page.get_by_role("alert")).to_contain_text("Må fylles ut")
    assert_accessible(page)


def test_an_e_mail_change_is_confirmed_by_the_code_sent_to_the_new_address(site: Site, page: Page) -> None:
    old, new = "emil.epost@example.no", "emil.ny@example.no"
    placed = place_order(site.ctx, order(site.tenant, 9, email=old))
    sign_in(site, page, old, "Emil Epost")
    page.locator("#link-form").get_by_label("E-post").fill(old)
    page.get_by_role("button", name="Send kode").click()
    expect(page.get_by_label("Kode fra e-posten")).to_be_visible()
    page.get_by_label("Kode fra e-posten").fill(code_in(site, old))
    page.get_by_role("button", name="Bekreft").click()
    profile = page.locator("#profile")
    expect(profile.get_by_label("E-post", exact=True)).to_have_value(old)
    profile.get_by_label("Ny e-post", exact=True).fill(new)
    profile.get_by_role("button", name="Send kode").click()
    expect(page.locator("#status")).to_have_text("Vi har sendt en kode til den nye adressen.")
    expect(profile.get_by_label("Kode sendt til den nye adressen", exact=True)).to_be_focused()
    profile.get_by_label("Kode sendt til den nye adressen", exact=True).fill(code_in(site, new))
    profile.get_by_role("button", name="Bekreft").click()
    expect(page.locator("#status")).to_have_text("E-postadressen er endret.")
    expect(profile.get_by_label("E-post", exact=True)).to_have_value(new)
    loaded = site.ctx.accounts.load(site.tenant, placed.subscriber_no)
    assert loaded is not None and loaded.account.subscriber.email == new
    assert_accessible(page)
