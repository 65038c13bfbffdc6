"""The pages' endpoints (``functions/pages_http``) without a browser: what the poster
renders comes from the catalogue and is escaped, the pages carry their security headers,
the organisation's colours are served readable, and only the known assets are served."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

import function_app  # noqa: F401  (registers every endpoint)
from devhost.demo import logo as demo_logo
from functions.http import REGISTRY
from shared.domain.offer import AA_NORMAL, WHITE, contrast
from shared.service.catalogue import put_item, put_logo
from shared.service.context import Context
from tests.fixtures import function, http, install_catalogue

JOURNEY_FIELDS = {"minimal": {"name", "email"},
                  "address": {"name", "email", "phone", "address", "postal_code", "city"},
                  "business": {"name", "organization_number", "email", "buyer_reference", "address", "postal_code",
                               "city"}}


@pytest.fixture
def shop(fake_ctx: Context) -> Context:
    install_catalogue(fake_ctx, "t1")
    return fake_ctx


def get(name: str, route: dict[str, str], params: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    spec = next(s for s in REGISTRY if s.name == name)
    url = "/api/" + re.sub(r"{(\w+)}", lambda m: route[m.group(1)], spec.route)
    return function(name)(http("GET", url, route=route, params=params or {}))


@pytest.mark.parametrize("journey", list(JOURNEY_FIELDS))
def test_each_journey_has_its_labelled_fields_and_posts_to_the_order_endpoint(shop: Context, journey: str) -> None:
    response = get("page_poster", {"tenant": "t1", "plan_id": "digital-monthly"}, {"journey": journey})
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_body().decode()
    inputs = set(re.findall(r'<input id="([a-z_]+)" name="\1"', page))
    assert inputs == JOURNEY_FIELDS[journey]
    for name in inputs:  # every field has its label
        assert f'<label for="{name}">' in page
    assert 'action="/api/salesposter/t1/orders"' in page
    assert ('name="PTY" value="2"' in page) == (journey != "business")  # a business pays by invoice
    assert '<html lang="nb">' in page


def test_the_poster_shows_the_catalogue_price_and_vat_in_either_language(shop: Context) -> None:
    nb = get("page_poster", {"tenant": "t1", "plan_id": "digital-yearly"}).get_body().decode()
    assert "3\u00a0480,00\u00a0kr" in nb and "per år" in nb and "98,00\u00a0kr" in nb  # 2990 + 490, VAT of 490
    en = get("page_poster", {"tenant": "t1", "plan_id": "digital-yearly"}, {"lang": "en"}).get_body().decode()
    assert "NOK\u00a03,480.00" in en and "per year" in en and '<html lang="en">' in en


def test_the_catalogue_s_texts_are_escaped(shop: Context) -> None:
    plan = shop.catalogue.get("t1").plans["digital-monthly"]
    put_item(shop, "t1", "plan", replace(plan, name='Avis <script>alert("x")</script> & mer'))
    page = get("page_poster", {"tenant": "t1", "plan_id": "digital-monthly"}).get_body().decode()
    assert "<script>alert" not in page
    assert "Avis &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; mer" in page


@pytest.mark.parametrize("plan_id", ["no-such-plan", "digital-monthly"])
def test_a_plan_that_cannot_be_ordered_is_not_found(shop: Context, plan_id: str) -> None:
    if plan_id == "digital-monthly":
        plan = shop.catalogue.get("t1").plans[plan_id]
        put_item(shop, "t1", "plan", replace(plan, disabled=True))
    response = get("page_poster", {"tenant": "t1", "plan_id": plan_id})
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_a_bad_journey_or_language_is_400(shop: Context) -> None:
    for params in ({"journey": "vip"}, {"lang": "sv"}, {"utm_source": "x"}):
        response = get("page_poster", {"tenant": "t1", "plan_id": "digital-monthly"}, params)
        assert response.status_code == 400, params


@pytest.mark.parametrize("name", ["page_poster", "page_my"])
def test_pages_forbid_inline_and_third_party_scripts(shop: Context, name: str) -> None:
    route = {"tenant": "t1", "plan_id": "digital-monthly"} if name == "page_poster" else {"tenant": "t1"}
    response = get(name, route)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    page = response.get_body().decode()
    assert re.findall(r"<script(?![^>]*(?:src=\"/api/pages/t1/scripts/|type=\"application/json\"))", page) == []


@pytest.mark.parametrize("colour", ["#FFFF00", "#0B5394", "#777777", "#000000", "#FFFFFF"])
def test_the_brand_css_is_readable_whatever_the_colour(shop: Context, colour: str) -> None:
    org = shop.catalogue.get("t1").organizations["avisa"]
    put_item(shop, "t1", "organization", replace(org, branding=replace(org.branding, colour=colour)))
    css = get("page_brand", {"tenant": "t1", "organization_id": "avisa"}).get_body().decode()
    found = dict(re.findall(r"--([a-z-]+): (#[0-9A-F]{6})", css))
    assert found["brand"] == colour
    assert contrast(found["on-brand"], found["brand"]) >= AA_NORMAL
    assert contrast(found["accent"], WHITE) >= AA_NORMAL


def test_the_logo_is_served_once_stored_and_not_found_before(shop: Context) -> None:
    assert get("page_logo", {"tenant": "t1", "organization_id": "avisa"}).status_code == 404
    png = demo_logo()
    put_logo(shop, "t1", "avisa", png, "image/png")
    response = get("page_logo", {"tenant": "t1", "organization_id": "avisa"})
    assert response.status_code == 200 and response.mimetype == "image/png" and response.get_body() == png
    page = get("page_poster", {"tenant": "t1", "plan_id": "digital-monthly"}).get_body().decode()
    assert '<img class="logo" src="/api/pages/t1/logo/avisa" alt="Avisa Nordvest AS">' in page


@pytest.mark.parametrize("endpoint,name,status", [
    ("page_script", "poster.js", 200), ("page_script", "my.js", 200), ("page_style", "pages.css", 200),
    ("page_script", "nope.js", 404), ("page_script", "..%2Fhttp.py", 400), ("page_script", "poster.html", 400),
    ("page_script", "pages.css", 400), ("page_style", "poster.js", 400)])
def test_only_the_known_assets_are_served_each_as_what_it_is(shop: Context, endpoint: str, name: str,
                                                             status: int) -> None:
    response = get(endpoint, {"tenant": "t1", "name": name})
    assert response.status_code == status
    if status == 200:
        assert response.mimetype == {"page_script": "text/javascript", "page_style": "text/css"}[endpoint]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
