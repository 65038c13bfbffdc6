"""HTTP: the public pages (S2 sales poster, M1 My page) as static HTML, CSS and JavaScript
served by the function app: no framework, no build step, no third-party script.

``GET /api/pages/{tenant}/poster/{plan_id}?journey=minimal|address|business&lang=nb|en``
renders the plan's offer (price per period and the VAT in it, from the catalogue) in the
organisation's colours with its logo, and the order form of the journey; ``poster.js``
posts it to ``salesposter/{tenant}/orders`` and goes on to the payment step (Vipps or
card: the provider's ``redirect_url``) or shows the receipt (invoice: amount, KID,
account, due date). ``GET /api/pages/{tenant}/my`` is My page: ``my.js`` signs in
through the backend-for-frontend (``my/{tenant}/login``), then uses My page's JSON API
with the session cookie and ``X-CSRF-Token``. Assets, the organisation's colours as CSS
(so the Content-Security-Policy needs no inline style) and its logo have routes of their
own. Every page says its language, labels every field and reaches WCAG AA contrast with
any branding colour (``shared.domain.offer``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import Field, StringConstraints

from functions.http import Call, Endpoint, endpoint
from functions.validation import Id
from shared.domain.catalogue import PaymentType
from shared.ports import NotFound
from shared.service import pages
from shared.service.pages import Look, Poster

from .texts import TEXTS, money, per_period, percent

bp = func.Blueprint()
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in (".js", ".css")}
MEDIA = {".js": "text/javascript", ".css": "text/css"}
TEMPLATES = {p.stem: Template(p.read_text("utf-8")) for p in STATIC.glob("*.html")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
Journey = Literal["minimal", "address", "business"]
Lang = Literal["nb", "en"]
ScriptName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}\.js$", max_length=43),
                       Field(description="a page's script")]
StyleName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}\.css$", max_length=44),
                      Field(description="a style sheet")]
PARAMS = {"journey": "minimal (name and e-mail), address (with address) or business (organisation number, "
                     "EHF or e-mail invoice)", "lang": "nb or en (default: the organisation's language)"}


def page(body: str, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers={
        "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store"})


def _lang(call: Call, look: Look) -> str:
    return call.query.get("lang") or look.language


def _common(tenant: str, look: Look, lang: str, title: str, switch: str) -> dict[str, str]:
    t = TEXTS[lang]
    logo = (f'<img class="logo" src="/api/pages/{tenant}/logo/{look.organization_id}" alt="{html.escape(look.name)}">'
            if look.has_logo else f'<span class="logo-text">{html.escape(look.name)}</span>')
    other = "en" if lang == "nb" else "nb"
    contact = " · ".join(html.escape(c) for c in (look.contact_email, look.contact_phone) if c)
    return {"lang": lang, "title": html.escape(title), "tenant": tenant, "org": look.organization_id,
            "logo": logo, "skip": t["skip"], "switch_href": html.escape(f"{switch}lang={other}"),
            "switch_lang": other, "switch_text": t["switch"], "org_name": html.escape(look.name),
            "contact": contact}


@endpoint(bp, Endpoint("page_poster", "pages/{tenant}/poster/{plan_id}", ["GET"],
                       "The sales poster of a plan: its offer and order form (HTML)", "Pages", media="text/html",
                       params=PARAMS, types={"plan_id": Id, "journey": Journey, "lang": Lang}))
def poster_page(call: Call) -> Any:
    tenant = call.route["tenant"]
    found = pages.poster(call.ctx, tenant, call.route["plan_id"])
    lang = _lang(call, found.look)
    journey = call.query.get("journey") or "minimal"
    offer = found.offer
    t = TEXTS[lang]
    switch = f"/api/pages/{tenant}/poster/{offer.plan_id}?journey={journey}&"
    values = {k: html.escape(v) for k, v in t.items()} | _common(
        tenant, found.look, lang, f"{offer.plan_name} – {found.look.name}", switch) | {
        "plan_id": html.escape(offer.plan_id), "plan_name": html.escape(offer.plan_name),
        "price": money(offer.total_minor, offer.currency, lang),
        "per": per_period(offer.frequency, lang), "vat_text": html.escape(_vat_text(found, lang)),
        "lines": _lines(found, lang), "journey": journey, "fields": _fields(found, journey, lang),
        "payment": _payment(found, journey, lang), "texts": _json(t), "journey_nav": _journeys(tenant, offer.plan_id,
                                                                                             journey, lang),
        "automatic": html.escape(t["automatic_stop"]) if offer.automatic_stop else "",
    }
    return page(TEMPLATES["poster"].safe_substitute(values))


def _vat_text(found: Poster, lang: str) -> str:
    offer = found.offer
    if offer.vat_minor == 0:
        return TEXTS[lang]["no_vat"]
    return TEXTS[lang]["vat_included"].format(vat=money(offer.vat_minor, offer.currency, lang))


def _lines(found: Poster, lang: str) -> str:
    offer = found.offer
    rows = "".join(
        f'<tr><th scope="row">{html.escape(li.name)}</th><td>{money(li.gross_minor, offer.currency, lang)}</td>'
        f'<td>{percent(li.vat_rate_bp, lang)}</td><td>{money(li.vat_minor, offer.currency, lang)}</td></tr>'
        for li in offer.lines)
    t = TEXTS[lang]
    return (f'<table class="lines"><caption>{html.escape(t["contents"])}</caption><thead><tr>'
            f'<th scope="col">{html.escape(t["product"])}</th><th scope="col">{html.escape(t["price"])}</th>'
            f'<th scope="col">{html.escape(t["vat_rate"])}</th><th scope="col">{html.escape(t["vat"])}</th>'
            f'</tr></thead><tbody>{rows}</tbody></table>')


STAR = '<span aria-hidden="true"> *</span>'


def _field(name: str, label: str, kind: str = "text", required: bool = False, autocomplete: str = "",
           extra: str = "", hint: str = "") -> str:
    req = ' required aria-required="true"' if required else ""
    auto = f' autocomplete="{autocomplete}"' if autocomplete else ""
    described = f' aria-describedby="{name}-hint"' if hint else ""
    hint_html = f'<span class="hint" id="{name}-hint">{html.escape(hint)}</span>' if hint else ""
    return (f'<div class="field"><label for="{name}">{html.escape(label)}{STAR if required else ""}</label>'
            f'{hint_html}<input id="{name}" name="{name}" type="{kind}"{req}{auto}{extra}{described}>'
            f'<span class="error" id="{name}-error" hidden></span></div>')


def _fields(found: Poster, journey: str, lang: str) -> str:
    t = TEXTS[lang]
    if journey == "business":
        fields = [_field("name", t["company"], required=True, autocomplete="organization"),
                  _field("organization_number", t["organization_number"], required=True,
                         extra=' inputmode="numeric" pattern="[0-9 ]{9,11}" maxlength="11"', hint=t["orgnr_hint"]),
                  _field("email", t["invoice_email"], "email", True, "email"),
                  _field("buyer_reference", t["buyer_reference"], extra=' maxlength="200"'),
                  _field("address", t["address"], required=True, autocomplete="street-address"),
                  _field("postal_code", t["postal_code"], required=True, autocomplete="postal-code",
                         extra=' inputmode="numeric" maxlength="20"'),
                  _field("city", t["city"], required=True, autocomplete="address-level2")]
        return "".join(fields) + _delivery(found, lang)
    fields = [_field("name", t["name"], required=True, autocomplete="name"),
              _field("email", t["email"], "email", True, "email")]
    if journey == "address":
        fields += [_field("phone", t["phone"], "tel", autocomplete="tel"),
                   _field("address", t["address"], required=True, autocomplete="street-address"),
                   _field("postal_code", t["postal_code"], required=True, autocomplete="postal-code",
                          extra=' inputmode="numeric" maxlength="20"'),
                   _field("city", t["city"], required=True, autocomplete="address-level2")]
    return "".join(fields)


def _radio(name: str, value: str, label: str, checked: bool) -> str:
    ident = f"{name}-{value}"
    return (f'<div class="choice"><input type="radio" id="{ident}" name="{name}" value="{value}"'
            f'{" checked" if checked else ""}><label for="{ident}">{html.escape(label)}</label></div>')


def _delivery(found: Poster, lang: str) -> str:
    t = TEXTS[lang]
    choices = ([_radio("delivery", "ehf", t["delivery_ehf"], True)] if found.look.ehf_enabled else []) + [
        _radio("delivery", "email", t["delivery_email"], not found.look.ehf_enabled)]
    return (f'<fieldset class="choices"><legend>{html.escape(t["delivery"])}</legend>{"".join(choices)}</fieldset>'
            f'<input type="hidden" name="PTY" value="1">')


def _payment(found: Poster, journey: str, lang: str) -> str:
    if journey == "business":
        return ""
    t = TEXTS[lang]
    fees = {kind: (amount, first) for kind, amount, first in found.offer.fees}
    options = []
    for pty, kind, label in (("1", PaymentType.INVOICE, t["pay_invoice"]), ("2", PaymentType.VIPPS, t["pay_vipps"]),
                             ("9", PaymentType.CARD, t["pay_card"])):
        fee = fees.get(kind)
        text = label if fee is None else label + " (" + t["fee"].format(
            amount=money(fee[0], found.offer.currency, lang)) + (t["from_period"].format(n=fee[1]) if fee[1] > 1 else
                                                                   "") + ")"
        options.append(_radio("PTY", pty, text, pty == "1"))
    return f'<fieldset class="choices"><legend>{html.escape(t["payment"])}</legend>{"".join(options)}</fieldset>'


def _journeys(tenant: str, plan_id: str, journey: str, lang: str) -> str:
    t = TEXTS[lang]
    items = []
    for name in ("minimal", "address", "business"):
        label = html.escape(t[f"journey_{name}"])
        href = f"/api/pages/{tenant}/poster/{plan_id}?journey={name}&amp;lang={lang}"
        current = ' aria-current="page"' if name == journey else ""
        items.append(f'<li><a href="{href}"{current}>{label}</a></li>')
    return f'<nav class="journeys" aria-label="{html.escape(t["journeys"])}"><ul>{"".join(items)}</ul></nav>'


def _json(data: Any) -> str:
    """JSON inside a ``<script type="application/json">``: '<' escaped so no text ends the element."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@endpoint(bp, Endpoint("page_my", "pages/{tenant}/my", ["GET"], "My page: sign in, subscriptions, invoices (HTML)",
                       "Pages", media="text/html", params={"lang": PARAMS["lang"]}, types={"lang": Lang}))
def my_page(call: Call) -> Any:
    tenant = call.route["tenant"]
    look = pages.site_look(call.ctx, tenant)
    lang = _lang(call, look)
    t = TEXTS[lang]
    values = {k: html.escape(v) for k, v in t.items()} | _common(
        tenant, look, lang, f"{t['my_title']} – {look.name}", f"/api/pages/{tenant}/my?") | {"texts": _json(t)}
    return page(TEMPLATES["my"].safe_substitute(values))


@endpoint(bp, Endpoint("page_script", "pages/{tenant}/scripts/{name}", ["GET"], "A page's script", "Pages",
                       media="text/javascript", types={"name": ScriptName}))
def script(call: Call) -> Any:
    return _asset(call.route["name"])


@endpoint(bp, Endpoint("page_style", "pages/{tenant}/styles/{name}", ["GET"], "The pages' style sheet", "Pages",
                       media="text/css", types={"name": StyleName}))
def style(call: Call) -> Any:
    return _asset(call.route["name"])


def _asset(name: str) -> func.HttpResponse:
    """One of the files in ``static/`` (read at start): nothing else is ever served."""
    if name not in ASSETS:
        raise NotFound(f"no asset {name}")
    return func.HttpResponse(ASSETS[name], status_code=200, mimetype=MEDIA[Path(name).suffix], charset="utf-8",
                             headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


@endpoint(bp, Endpoint("page_brand", "pages/{tenant}/brand/{organization_id}", ["GET"],
                       "The organisation's colours as CSS (readable: WCAG AA contrast)", "Pages", media="text/css",
                       types={"organization_id": Id}))
def brand(call: Call) -> Any:
    look = pages.organization_look(call.ctx, call.route["tenant"], call.route["organization_id"])
    css = (f":root {{ --brand: {look.colour}; --on-brand: {look.on_colour}; --accent: {look.accent}; }}\n")
    return func.HttpResponse(css, status_code=200, mimetype="text/css", charset="utf-8",
                             headers={"Cache-Control": "public, max-age=60", "X-Content-Type-Options": "nosniff"})


@endpoint(bp, Endpoint("page_logo", "pages/{tenant}/logo/{organization_id}", ["GET"], "The organisation's logo",
                       "Pages", media="image/png", types={"organization_id": Id}))
def logo(call: Call) -> Any:
    data, media = pages.logo(call.ctx, call.route["tenant"], call.route["organization_id"])
    return func.HttpResponse(data, status_code=200, mimetype=media,
                             headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})

