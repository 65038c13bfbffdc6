"""What the public pages show (S2 sales poster, M1 My page): a plan's offer with its
organisation's branding, and the organisation's logo. Read-only: the catalogue (cached
per process) and, for the logo, one blob read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.catalogue import Catalogue, CatalogueError, Organization
from ..domain.offer import Offer, offer_of, readable_on_white, text_on
from ..ports import NotFound
from .context import Context

LOGO_MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class Look:
    """An organisation as its pages show it: name, colours that reach WCAG AA, a logo or not."""

    organization_id: str
    name: str
    colour: str  # the catalogue's colour, as a background with ``on_colour`` text
    on_colour: str  # white or black, whichever reads on ``colour``
    accent: str  # the colour darkened until text in it reads on white
    has_logo: bool
    language: str  # nb or en: the organisation's, by its country when it names none
    contact_email: str | None
    contact_phone: str | None
    ehf_enabled: bool


@dataclass(frozen=True, slots=True)
class Poster:
    offer: Offer
    look: Look


def look_of(org: Organization) -> Look:
    brand = org.branding
    language = org.language if org.language in ("nb", "en") else ("nb" if org.country == "NO" else "en")
    return Look(org.id, org.name, brand.colour.upper(), text_on(brand.colour.upper()), readable_on_white(brand.colour),
                brand.logo_blob is not None, language, brand.contact_email, brand.contact_phone, org.ehf_enabled)


def poster(ctx: Context, tenant: str, plan_id: str) -> Poster:
    """The offer of ``plan_id`` today; NotFound for a plan that is not (or no longer) orderable."""
    catalogue = ctx.catalogue.get(tenant)
    try:
        offer = offer_of(catalogue, plan_id, ctx.today(catalogue))
    except CatalogueError as exc:
        raise NotFound(f"no plan {plan_id} to order") from exc
    if not offer.orderable:
        raise NotFound(f"no plan {plan_id} to order")
    return Poster(offer, look_of(catalogue.organizations[offer.organization_id]))


def site_look(ctx: Context, tenant: str) -> Look:
    """The tenant's look for My page: its organisation (the first by id if it has several)."""
    return look_of(_organization(ctx.catalogue.get(tenant), None))


def organization_look(ctx: Context, tenant: str, organization_id: str) -> Look:
    return look_of(_organization(ctx.catalogue.get(tenant), organization_id))


def logo(ctx: Context, tenant: str, organization_id: str) -> tuple[bytes, str]:
    """The organisation's logo and its media type; NotFound if it has none."""
    org = _organization(ctx.catalogue.get(tenant), organization_id)
    name = org.branding.logo_blob
    data = ctx.document_files.logo(tenant, name) if name else None
    if name is None or data is None:
        raise NotFound(f"organisation {organization_id} has no logo")
    return data, LOGO_MEDIA[name.rsplit(".", 1)[1].lower()]


def _organization(catalogue: Catalogue, organization_id: str | None) -> Organization:
    if organization_id is None:
        if not catalogue.organizations:
            raise NotFound("no organisation")
        return catalogue.organizations[sorted(catalogue.organizations)[0]]
    if organization_id not in catalogue.organizations:
        raise NotFound(f"no organisation {organization_id}")
    return catalogue.organizations[organization_id]
