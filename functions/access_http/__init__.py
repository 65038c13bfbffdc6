"""HTTP: access claims for the publisher's sites (M1; issue 12), ``/api/access/{tenant}/...``.

* ``GET access/{tenant}/me``: the products the caller's login may access today, from its
  access row (one point read): ``{"products": [...], "as_of": "YYYY-MM-DD"}``. The caller
  is the subscriber (a bearer token of the tenant's identity provider, or My page's
  session); a login linked to nothing gets an empty list, never a 404.
* ``POST access/{tenant}/connector``: the identity provider asks, while it signs a user in,
  which products to put into the token: Azure AD B2C's API connector ("before sending the
  token", ``step`` ``PreTokenIssuance``; answered with a continuation response carrying
  ``extension_Products``) and Entra External ID's custom claims provider
  (``microsoft.graph.authenticationEvent.tokenIssuanceStart``; answered with
  ``provideClaimsForToken``, claim ``products`` a string array). HTTP Basic credentials of the
  tenant (``adapters.connector_auth``), checked before the body is read.
* ``GET access/{tenant}/sites?ip=``: the products a campus site (a subscriber with IP
  ranges) may access from that address: one point read of the tenant's site table. The
  same credentials: the publisher's server asks, with the visitor's address.

The products are product ids of the catalogue, sorted; the day is the tenant's today.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint, problem
from shared import bootstrap
from shared.adapters.auth import AuthError, is_tenant_id
from shared.adapters.connector_auth import REALM
from shared.service import access
from shared.service.context import Context

bp = func.Blueprint()
TOKEN_ISSUANCE_START = "microsoft.graph.authenticationEvent.tokenIssuanceStart"
CLAIMS_LIMIT = 3000  # External ID: at most 3 KB of claims (custom-claims-provider-reference.md)
ObjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@:-]+$", min_length=1, max_length=128)]


def _address(text: str) -> str:
    return str(ipaddress.ip_address(text.strip()))


IpAddress = Annotated[str, StringConstraints(min_length=2, max_length=45), AfterValidator(_address),
                      Field(description="an IPv4 or IPv6 address (the visitor's)")]


class Products(BaseModel):
    products: list[str] = Field(description="product ids the caller may access on as_of, sorted")
    as_of: str = Field(description="the tenant's day the answer is for (YYYY-MM-DD)")


class Lenient(BaseModel):
    """The identity provider sends more than we read (user attributes, extension attributes,
    locales): what we do not read is ignored, what we read is bounded."""

    model_config = ConfigDict(extra="ignore")


class B2cConnectorIn(Lenient):
    type: None = Field(default=None, description="absent: a body with a type is External ID's")
    objectId: ObjectId | None = Field(default=None, description="the user's object id (absent before sign-up)")
    step: Annotated[str, StringConstraints(max_length=64)] | None = None
    client_id: Annotated[str, StringConstraints(max_length=128)] | None = None


class EntraUser(Lenient):
    id: ObjectId


class EntraContext(Lenient):
    user: EntraUser


class EntraData(Lenient):
    authenticationContext: EntraContext


class EntraConnectorIn(Lenient):
    type: Literal["microsoft.graph.authenticationEvent.tokenIssuanceStart"]
    data: EntraData


ConnectorIn = Annotated[EntraConnectorIn | B2cConnectorIn, Field(union_mode="left_to_right")]  # Entra's has a type


def connector_guard(req: func.HttpRequest, ctx: Context) -> func.HttpResponse | None:
    """HTTP Basic of the route's tenant, before anything is parsed (401 with a challenge)."""
    tenant = req.route_params.get("tenant", "")
    try:
        if not is_tenant_id(tenant):
            raise AuthError(401, "unknown tenant")
        bootstrap.connector_credentials().check(req.headers.get("authorization"), tenant)
    except AuthError as exc:
        return problem(401, "Unauthorized", exc.reason, headers={"WWW-Authenticate": REALM})
    return None


def _tenant(call: Call) -> str:
    return str(call.route["tenant"])


@endpoint(bp, Endpoint("access_me", "access/{tenant}/me", ["GET"],
                       "The products the signed-in subscriber's login may access today (one point read)",
                       "Access", response=Products, subscriber=True))
def me(call: Call) -> Any:
    return access.claims(call.ctx, call.me.tenant, call.me.login).json()


@endpoint(bp, Endpoint("access_connector", "access/{tenant}/connector", ["POST"],
                       "Products for the token being issued: Azure AD B2C API connector (PreTokenIssuance) or "
                       "Entra External ID token issuance start; HTTP Basic credentials of the tenant",
                       "Access", body=ConnectorIn, guard=connector_guard,
                       statuses={401: "missing or wrong connector credentials"}))
def connector(call: Call) -> Any:
    tenant = _tenant(call)
    body = call.body
    issuer = bootstrap.subscriber_authenticator().provider(tenant).issuer
    if isinstance(body, EntraConnectorIn):
        found = access.connector_claims(call.ctx, tenant, issuer, body.data.authenticationContext.user.id)
        return entra_response(found)
    if body.objectId is None:  # before the user exists (sign-up steps): nothing to add
        return {"version": "1.0.0", "action": "Continue"}
    found = access.connector_claims(call.ctx, tenant, issuer, body.objectId)
    return {"version": "1.0.0", "action": "Continue", "extension_Products": " ".join(found.products),
            "extension_ProductsAsOf": found.as_of.isoformat()}


def entra_response(found: access.Claims) -> dict[str, Any]:
    """``provideClaimsForToken`` with ``products`` (a string array, within the 3 KB limit) and ``productsAsOf``."""
    products = list(found.products)
    while products and len(json.dumps(products)) > CLAIMS_LIMIT - 100:
        products.pop()  # never more than the provider takes: the rest is asked at /me
    claims = {"products": products, "productsAsOf": found.as_of.isoformat()}
    return {"data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
                     "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken",
                                  "claims": claims}]}}


@endpoint(bp, Endpoint("access_sites", "access/{tenant}/sites", ["GET"],
                       "The products a campus site may access from an IP address (one point read); "
                       "HTTP Basic credentials of the tenant", "Access", response=Products,
                       params={"ip": "the visitor's IPv4 or IPv6 address"}, types={"ip": IpAddress},
                       guard=connector_guard, statuses={401: "missing or wrong connector credentials"}))
def sites(call: Call) -> Any:
    ip = call.query.get("ip")
    if not ip:
        return problem(400, "Bad request", "see errors", [{"field": "query.ip", "reason": "required"}])
    return access.site_products(call.ctx, _tenant(call), _address(ip)).json()
