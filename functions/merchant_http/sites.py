"""HTTP: a site subscriber's IP ranges in the merchant API (M1: campus licences; issue 12).

* ``PUT /api/merchant/subscribers/{subscriber_no}/ip-ranges`` ``{"ranges": ["192.0.2.0/24", ...]}``:
  the CIDR ranges whose visitors get the subscriber's access (``GET /api/access/{tenant}/sites?ip=``).
  One transaction in the subscriber's partition; the tenant's site table is brought up to date
  before the answer (and again by the access worker on the change's ``AccessChanged``). An empty
  list ends the site licence. Ranges are normalised (``192.0.2.17/24`` is ``192.0.2.0/24``);
  wider than /8 (IPv4) or /32 (IPv6) is refused, at most 50.

Bearer token with the ``admin`` role; another tenant's subscriber is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint
from functions.validation import Body
from shared.domain.identity import MAX_IP_RANGES, normalise_network
from shared.service import access

from . import WRITE, bp


def _network(text: str) -> str:
    return normalise_network(text)


Network = Annotated[str, StringConstraints(min_length=3, max_length=49), AfterValidator(_network),
                    Field(description="a CIDR range (IPv4 /8 or narrower, IPv6 /32 or narrower)")]


class IpRangesIn(Body):
    ranges: list[Network] = Field(max_length=MAX_IP_RANGES)


class IpRangesOut(BaseModel):
    subscriber_no: int
    ranges: list[str]


@endpoint(bp, Endpoint("subscriber_ip_ranges", "merchant/subscribers/{subscriber_no}/ip-ranges", ["PUT"],
                       "Set a site subscriber's IP ranges (campus licence: its visitors get its access)",
                       "Subscribers", body=IpRangesIn, response=IpRangesOut, roles=WRITE))
def put_ip_ranges(call: Call) -> Any:
    n = call.number("subscriber_no")
    ranges = access.set_ip_ranges(call.ctx, call.tenant, n, call.body.ranges)
    return {"subscriber_no": n, "ranges": list(ranges)}
