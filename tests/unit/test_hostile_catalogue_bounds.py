"""An organisation with every catalogue value at its bound: whatever VAT rate and price a
product may have (the catalogue takes 0-100 % and up to ``MAX_MINOR``), a line of it is
invoiced, its VAT and net add up to the gross, its PDF renders with the total, and its EHF
validates (or is refused with a reason). The catalogue took 100 % while ``vat_of_gross``
refused it: every invoice of such a product raised."""

from __future__ import annotations

import io
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from shared.documents.ehf import render_ehf, why_not_ehf
from shared.documents.pdf import render_pdf
from shared.domain.calendar import Frequency
from shared.domain.catalogue import Branding, CatalogueError, PricePoint, Product
from shared.domain.invoicing import line
from shared.domain.limits import MAX_MINOR

from .test_ehf import PDF, fatal, issued


def accepted(rate_bp: int, amount_minor: int) -> bool:
    try:
        price = PricePoint(Frequency.MONTHLY, date(2026, 1, 1), amount_minor)
        Product("p", "P" * 200, rate_bp, (price,)).check_bounds()
    except CatalogueError:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.sampled_from([0, 1, 2500, 9999, 10_000]), st.integers(0, 10_000)),
       st.one_of(st.sampled_from([0, 1, MAX_MINOR]), st.integers(0, MAX_MINOR)))
def test_every_rate_and_price_the_catalogue_takes_is_invoiced_rendered_and_valid_ehf_or_refused(
        rate_bp: int, amount_minor: int) -> None:
    assert accepted(rate_bp, amount_minor)
    li = line("P" * 200, 1, amount_minor, rate_bp)
    assert 0 <= li.vat_minor <= li.gross_minor == amount_minor
    doc = issued([li])
    pdf = render_pdf(doc)
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1
    why = why_not_ehf(doc)
    assert why is not None or fatal(render_ehf(doc, PDF), official_tolerance=True) == []


def test_a_product_at_100_percent_vat_is_half_vat() -> None:
    assert accepted(10_000, 20000)
    assert line("Avgift", 1, 20000, 10_000).vat_minor == 10000


@pytest.mark.parametrize("email", ["post", "post@", "@avisa.no", "a@b.no, c@d.no", "Post <post@avisa.no>",
                                   "post@avisa.no\n", "po st@avisa.no", "\\@["])  # the last breaks CPython's parser
def test_a_contact_email_that_is_not_one_address_is_refused_at_the_catalogue(email: str) -> None:
    """The contact e-mail is the sender of the organisation's mail: one that is no address
    sent every mail of the organisation to print instead of refusing the catalogue."""
    with pytest.raises(CatalogueError):
        Branding(contact_email=email).check_bounds("organization o")


@pytest.mark.parametrize("email", ["faktura@avisa.no", '"kunde service"@avisa.no', "post+faktura@sub.avisa.no",
                                   "kundeservice@bølgen.no", "ærlig@avisa.no"])
def test_odd_but_valid_contact_emails_are_taken(email: str) -> None:
    Branding(contact_email=email).check_bounds("organization o")
