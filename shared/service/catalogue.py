"""Configure the catalogue (C1-C4): put and delete items, keeping the whole consistent.

Catalogue items in use are retired, never deleted: a delete is refused with
``CatalogueInUse`` (HTTP 409) while another item refers to it (a plan to its
organisation, billing plan and products; a billing plan to its dunning process) or while
any subscription or invoice of the tenant does (a subscription to its plan and
organisation, an invoice to its organisation and products). So the overview, KID lookup
and every later run keep finding what existing documents point at. A plan is retired by
``disabled`` or ``valid_until``; everything else simply stays. The in-use check scans the
tenant's subscribers: a rare administrator operation, never on a billing path.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from ..adapters.catalogue_store import FIELDS
from ..domain.catalogue import Catalogue, CatalogueError, CatalogueInUse
from ..ports import NotFound
from . import access
from .context import Context


def put_item(ctx: Context, tenant: str, kind: str, item: Any) -> Any:
    """Add or replace ``item``; refused if the catalogue would then be inconsistent."""
    current = ctx.catalogue.get(tenant)
    field = FIELDS[kind]
    candidate = replace(current, **{field: {**getattr(current, field), item.id: item}})
    candidate.check()
    _check_frequencies(candidate)
    ctx.catalogue.put(tenant, kind, item)
    ctx.tenants.register(tenant)
    access.catalogue_changed(ctx, tenant, current, candidate)  # a plan's products, a grace: rows rebuilt
    return item


def delete_item(ctx: Context, tenant: str, kind: str, item_id: str) -> None:
    """Delete an item nothing uses; ``CatalogueInUse`` names what still does."""
    current = ctx.catalogue.get(tenant)
    field = FIELDS[kind]
    items = dict(getattr(current, field))
    if item_id not in items:
        raise NotFound(f"no {kind.replace('_', ' ')} {item_id}")
    del items[item_id]
    try:
        replace(current, **{field: items}).check()
    except CatalogueError as exc:
        raise CatalogueInUse(f"{kind.replace('_', ' ')} {item_id} is in use ({exc}); retire it instead") from exc
    user = _used_by_documents(ctx, tenant, kind, item_id)
    if user is not None:
        raise CatalogueInUse(f"{kind.replace('_', ' ')} {item_id} is in use by {user}; retire it instead")
    ctx.catalogue.delete(tenant, kind, item_id)


def _used_by_documents(ctx: Context, tenant: str, kind: str, item_id: str) -> str | None:
    """The first subscription or invoice that refers to the item, described; None if none does."""
    if kind not in ("organization", "plan", "product"):
        return None  # billing plans and dunning processes are reached through plans only
    for loaded, history in ctx.accounts.scan_tenant(tenant):
        number = loaded.account.number
        for sub in loaded.account.subscriptions.values():
            if item_id == {"plan": sub.plan_id, "organization": sub.organization_id}.get(kind):
                return f"subscription {sub.id} of subscriber {number}"
        for invoice in history.invoices:
            if kind == "organization" and invoice.draft.organization_id == item_id:
                return f"invoice {invoice.number} of subscriber {number}"
            if kind == "product" and any(li.product_id == item_id for li in invoice.draft.lines):
                return f"invoice {invoice.number} of subscriber {number}"
    return None


def _check_frequencies(catalogue: Catalogue) -> None:
    for plan in catalogue.plans.values():
        billing = catalogue.billing_plan_of(plan)
        for product in catalogue.products_of(plan):
            if not any(p.frequency == billing.frequency for p in product.prices):
                raise CatalogueError(f"plan {plan.id}: product {product.id} has no {billing.frequency.value} price")


LOGO_MAX = 512 * 1024  # bytes
LOGO_KINDS = {"image/png": (b"\x89PNG\r\n\x1a\n", "png"), "image/jpeg": (b"\xff\xd8\xff", "jpg")}


def put_logo(ctx: Context, tenant: str, organization_id: str, data: bytes, media_type: str) -> Any:
    """Store an organisation's logo (a PNG or JPEG of at most ``LOGO_MAX`` bytes, known by
    its magic bytes, which must agree with ``media_type``) and name it in its branding.

    The blob is named by its content (``{organisation}-{digest}.png``) and never
    overwritten, so a document issued with the old logo (its letter names that blob)
    renders with the old logo years later."""
    org = ctx.catalogue.get(tenant).organizations.get(organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id}")
    magic, suffix = LOGO_KINDS.get(media_type, (b"", ""))
    if not magic:
        raise CatalogueError("a logo must be image/png or image/jpeg")
    if not data.startswith(magic):
        raise CatalogueError(f"the body is not a {suffix.upper()} image (its first bytes say otherwise)")
    if len(data) > LOGO_MAX:
        raise CatalogueError(f"a logo may be at most {LOGO_MAX // 1024} KiB")
    name = f"{org.id}-{hashlib.sha256(data).hexdigest()[:16]}.{suffix}"
    ctx.document_files.put_logo(tenant, name, data, media_type)
    return put_item(ctx, tenant, "organization", replace(org, branding=replace(org.branding, logo_blob=name)))
