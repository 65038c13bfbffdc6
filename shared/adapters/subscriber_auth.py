"""Subscribers' bearer tokens: Azure AD B2C or Entra External ID, per tenant (issue 12).

Each tenant names its identity provider in the app setting ``ABONNO_SUBSCRIBER_IDP``, a
JSON object from tenant id to ``{"issuer", "audience", "jwks_url"}`` (``"*"`` is the
default for tenants not named; ``{tenant}`` in its values is replaced by the tenant id).
A token is checked as the merchant API's are (``adapters.auth``: RS256, the issuer's
published keys, issuer, audience, expiry) against the provider of the tenant in the
route, so a token of one tenant's provider is nothing at another's, and a merchant token
(another issuer and audience, and a ``roles`` or tenant claim) is nothing here.

The login is the token's issuer and its object id (``oid``, which External ID and B2C
both send when asked) or else its subject (``sub``): ``identity.login_key``.

Locally every tenant's provider is the development issuer (``devhost.issuer``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ..domain.identity import login_key
from ..ports import SubscriberPrincipal
from .auth import AuthError, _key_source, _reason

SETTING = "ABONNO_SUBSCRIBER_IDP"
MERCHANT_CLAIMS = ("roles", "abonno_tenant")  # a merchant token's marks: refused on subscriber endpoints


@dataclass(frozen=True)
class Provider:
    issuer: str
    audience: str
    jwks_url: str


class SubscriberAuthenticator:
    """Authenticates a subscriber call for a tenant (``authenticate``)."""

    def __init__(self, providers: Mapping[str, Mapping[str, str]]) -> None:
        self._config = dict(providers)
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> SubscriberAuthenticator:
        return cls(json.loads(os.environ.get(SETTING) or "{}"))

    def provider(self, tenant: str) -> Provider:
        raw = self._config.get(tenant) or self._config.get("*")
        if raw is None:
            raise AuthError(401, "this tenant has no identity provider for subscribers")
        return Provider(*(str(raw[k]).replace("{tenant}", tenant) for k in ("issuer", "audience", "jwks_url")))

    def _signing_key(self, provider: Provider, token: str) -> Any:
        with self._lock:
            source = self._keys.get(provider.jwks_url)
            if source is None:
                source = self._keys[provider.jwks_url] = _key_source(provider.jwks_url)
        return source(token)

    def authenticate(self, headers: Mapping[str, str], method: str, tenant: str) -> SubscriberPrincipal:
        """The login behind a call to a subscriber endpoint of ``tenant`` (``AuthError`` 401)."""
        authorization = headers.get("authorization")
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError(401, "missing bearer token")
        return self.validate(authorization.split(" ", 1)[1].strip(), tenant)

    def validate(self, token: str, tenant: str) -> SubscriberPrincipal:
        provider = self.provider(tenant)
        try:
            claims = jwt.decode(token, self._signing_key(provider, token), algorithms=["RS256"],
                                audience=provider.audience, issuer=provider.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise AuthError(401, _reason(exc)) from exc
        if any(claim in claims for claim in MERCHANT_CLAIMS):
            raise AuthError(401, "a merchant token is not a subscriber's")
        subject = str(claims.get("oid") or claims["sub"])
        emails = claims.get("emails")
        email = claims.get("email") or (emails[0] if isinstance(emails, list) and emails else None)
        return SubscriberPrincipal(tenant=tenant, login=login_key(provider.issuer, subject), issuer=provider.issuer,
                                   subject=subject, email=email if isinstance(email, str) else None,
                                   name=claims.get("name") if isinstance(claims.get("name"), str) else None)
