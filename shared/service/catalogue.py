"""Configure the catalogue (C1-C4): put and delete items, keeping the whole consistent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..adapters.catalogue_store import FIELDS
from ..domain.catalogue import Catalogue, CatalogueError
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
    return item


def delete_item(ctx: Context, tenant: str, kind: str, item_id: str) -> None:
    current = ctx.catalogue.get(tenant)
    field = FIELDS[kind]
    items = dict(getattr(current, field))
    if item_id not in items:
        raise KeyError(item_id)
    del items[item_id]
    replace(current, **{field: items}).check()  # refuses deleting what a plan uses
    ctx.catalogue.delete(tenant, kind, item_id)



def _check_frequencies(catalogue: Catalogue) -> None:
    for plan in catalogue.plans.values():
        billing = catalogue.billing_plan_of(plan)
        for product in catalogue.products_of(plan):
            if not any(p.frequency == billing.frequency for p in product.prices):
                raise CatalogueError(f"plan {plan.id}: product {product.id} has no {billing.frequency.value} price")
