"""The print queue (D3): documents waiting for a day's print batch, per tenant.

Table ``Indexes``, ``PartitionKey = "print|{tenant}|{yyyy-mm-dd}"``:

| RowKey                                                   | what                               |
|----------------------------------------------------------|------------------------------------|
| ``0|{organization id}``                                  | the organisation has items that day |
| ``1|{organization id}|{postal key}|{subscriber:010d}|{document id}`` | one ``PrintItem`` (name, postal code) |

The items' keys sort in print order (postal code, then subscriber, then document), so
``items`` is one range query read page by page (never held whole). The postal key is the
postal code without spaces, digits left-padded to ten places (``0150`` before ``1234``
before ``10000``); a letter without a postal code gets ``-``, which sorts first. Adding an
item twice upserts the same row: one item.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

from ..ports import PrintItem
from .tables import Storage

TABLE = "Indexes"


def _pk(tenant: str, day: date) -> str:
    return f"print|{tenant}|{day.isoformat()}"


def postal_key(postal_code: str) -> str:
    code = "".join(postal_code.split()).upper()
    if not code:
        return "-"
    return code.rjust(10, "0") if code.isdigit() else quote(code, safe="")


def _item_key(item: PrintItem) -> str:
    return f"1|{item.organization_id}|{postal_key(item.postal_code)}|{item.subscriber_no:010d}|{item.document_id}"


class PrintRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, tenant: str, day: date, item: PrintItem) -> None:
        pk = _pk(tenant, day)
        self.storage.transact(TABLE, [  # one round trip; upserts, so a repeat changes nothing
            ("upsert", {"PartitionKey": pk, "RowKey": f"0|{item.organization_id}"}),
            ("upsert", {"PartitionKey": pk, "RowKey": _item_key(item), "Name": item.name,
                        "PostalCode": item.postal_code})])

    def items(self, tenant: str, day: date, organization_id: str) -> Iterator[PrintItem]:
        lo = f"1|{organization_id}|"
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                  {"pk": _pk(tenant, day), "lo": lo, "hi": lo[:-1] + "}"})
        for row in rows:
            _, org, _, number, document_id = row["RowKey"].split("|", 4)
            yield PrintItem(org, int(number), document_id, row.get("PostalCode") or "", row.get("Name") or "")

    def organizations(self, tenant: str, day: date) -> list[str]:
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge '0|' and RowKey lt '0}'",
                                  {"pk": _pk(tenant, day)}, ["RowKey"])
        return sorted(r["RowKey"][2:] for r in rows)
