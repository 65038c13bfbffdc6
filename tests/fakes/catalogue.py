"""An in-memory catalogue: items per tenant, bounds checked on ``put`` as the adapter does."""

from __future__ import annotations

from typing import Any

from shared.adapters.catalogue_store import FIELDS
from shared.domain.catalogue import Catalogue


class FakeCatalogue:
    def __init__(self) -> None:
        self.items: dict[str, dict[tuple[str, str], Any]] = {}

    def get(self, tenant: str) -> Catalogue:
        parts: dict[str, dict[str, Any]] = {f: {} for f in FIELDS.values()}
        for (kind, item_id), item in sorted(self.items.get(tenant, {}).items()):
            parts[FIELDS[kind]][item_id] = item
        return Catalogue(**parts)

    def put(self, tenant: str, kind: str, item: Any) -> None:
        item.check_bounds()  # the one write path: nothing out of bounds is stored
        self.items.setdefault(tenant, {})[(kind, item.id)] = item

    def delete(self, tenant: str, kind: str, item_id: str) -> None:
        self.items.get(tenant, {}).pop((kind, item_id), None)
