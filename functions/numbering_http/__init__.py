"""HTTP: the invoice number auditor's sweep (L1).

A claim whose operation died between claim and commit and was never retried holds a
number no document carries. The sweep (admin, a scan of the tenant's number series)
releases such claims older than an hour, so the next documents take their numbers
(design in ``shared/adapters/numbering.py``).
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel

from functions.http import Call, Endpoint, endpoint
from shared.service.unit_of_work import release_unissued

bp = func.Blueprint()


class SweepOut(BaseModel):
    released: int


@endpoint(bp, Endpoint("invoice_numbers_sweep", "merchant/invoice-numbers/sweep", ["POST"],
                       "Release invoice numbers claimed over an hour ago that no document carries", "Invoices",
                       response=SweepOut, roles=("admin",)))
def sweep(call: Call) -> Any:
    return SweepOut(released=release_unissued(call.ctx, call.tenant)).model_dump()
