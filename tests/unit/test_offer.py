"""The poster's offer and the pages' colours (``shared.domain.offer``): the price and VAT
the poster shows are what the first invoice charges, and any branding colour is made
readable (WCAG 2.1 AA, 4.5:1) both as a background and as text on white."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from devhost.builders import newspaper
from shared.domain.catalogue import PaymentType
from shared.domain.invoicing import draft_invoice
from shared.domain.offer import AA_NORMAL, BLACK, WHITE, contrast, offer_of, readable_on_white, text_on
from shared.domain.subscriptions import Subscription

COLOUR = st.integers(0, 0xFFFFFF).map(lambda v: f"#{v:06X}")


@given(COLOUR)
def test_text_on_any_brand_colour_reaches_aa(colour: str) -> None:
    assert contrast(text_on(colour), colour) >= AA_NORMAL


@given(COLOUR)
def test_any_brand_colour_is_made_readable_on_white_and_kept_when_it_already_is(colour: str) -> None:
    readable = readable_on_white(colour)
    assert contrast(readable, WHITE) >= AA_NORMAL
    if contrast(colour, WHITE) >= AA_NORMAL:
        assert readable == colour.upper()


def test_contrast_of_the_extremes() -> None:
    assert round(contrast(WHITE, BLACK), 2) == 21.0
    assert contrast("#777777", "#777777") == 1.0


@given(st.sampled_from(["digital-monthly", "digital-yearly"]),
       st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
def test_the_offer_is_what_the_first_invoice_charges(plan_id: str, day: date) -> None:
    catalogue = newspaper()
    offer = offer_of(catalogue, plan_id, day)
    plan = catalogue.plan(plan_id)
    billing = catalogue.billing_plan_of(plan)
    sub = Subscription("s1", plan.id, plan.organization_id, billing.frequency, day, PaymentType.INVOICE)
    invoice = draft_invoice(sub, 0, day, billing, catalogue.organization_of(plan), catalogue.products_of(plan))
    assert (offer.total_minor, offer.vat_minor) == (invoice.total_minor, invoice.vat_minor)
    assert offer.currency == invoice.currency and offer.frequency == billing.frequency
