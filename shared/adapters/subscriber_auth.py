"""Subscribers' logins: bearer tokens of Azure AD B2C or Entra External ID per tenant, and
My page's session cookie (issue 12).

Each tenant names its identity provider in the app setting ``ABONNO_SUBSCRIBER_IDP``, a
JSON object from tenant id to ``{"issuer", "audience", "jwks_url"}`` (``"*"`` is the
default for tenants not named; ``{tenant}`` in its values is replaced by the tenant id;
``authority``, ``client_id`` and ``scope`` are My page's sign-in, ``functions.identity_http``).
A token is checked against the provider of the tenant in the route: RS256 by one of the
provider's published keys, issuer, audience, expiry (30 s leeway for clock skew). So a
token of one tenant's provider is nothing at another's, and a merchant token (another
issuer and audience, and a ``roles`` or tenant claim) or an app-only token of the
subscribers' directory (``idtyp: app``, ``roles``: a daemon, not a person) is nothing here.

The two providers differ only in issuer and claims: B2C sends ``sub`` (the object id),
``emails`` (a list) and ``name``; External ID sends ``oid`` (``sub`` is pairwise per
application), ``email``, ``name`` or ``given_name``/``family_name``. The login is the
issuer and ``oid`` if present, else ``sub`` (``identity.login_key``).

The provider's keys (``KeySet``) are cached per JWKS URL for ``KEYS_TTL`` and fetched
again when a token names a key id not in the cache (the provider rotated its keys), but
at most once per ``REFRESH_AFTER`` whatever tokens arrive, so forged key ids cannot make
us hammer the provider; a key the provider dropped stops working at the next fetch.

My page in the browser holds no token: the cookie ``abonno_session`` names a server-side
``Session`` (its SHA-256 is the key), which holds the principal the sign-in validated.
A state-changing call (POST, PUT, PATCH, DELETE) made with the cookie must carry the
session's CSRF token in ``X-CSRF-Token`` (403 without); a bearer call needs none (a
browser never adds the Authorization header across sites by itself).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import jwt

from ..domain.identity import login_key
from ..ports import Clock, SubscriberPrincipal
from ..ports import Sessions as SessionStore
from .auth import AuthError, _reason

SETTING = "ABONNO_SUBSCRIBER_IDP"
MERCHANT_CLAIMS = ("roles", "abonno_tenant")  # a merchant (or app-only) token's marks: refused here
COOKIE = "abonno_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEYS_TTL = 3600.0  # seconds a provider's key set is kept
REFRESH_AFTER = 60.0  # at most one fetch per this many seconds for an unknown key id
LEEWAY = 30  # seconds of clock skew allowed on exp / nbf / iat
MAX_TOKEN = 16 * 1024
MAX_KEY_SETS = 256  # providers' key sets kept at once (a "*" entry templated per tenant makes one per tenant)


@dataclass(frozen=True)
class Provider:
    issuer: str
    audience: str
    jwks_url: str


class KeySet:
    """A provider's signing keys from its JWKS URL (``https://`` or ``file://``), cached;
    fetched again for an unknown key id, at most once per ``REFRESH_AFTER`` seconds."""

    def __init__(self, url: str, fetch: Callable[[str], Mapping[str, Any]] | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.url, self._fetch, self._now = url, fetch or fetch_jwks, now
        self._keys: dict[str, Any] = {}
        self._fetched: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str | None) -> Any:
        with self._lock:
            now = self._now()
            stale = self._fetched is None or now - self._fetched >= KEYS_TTL
            unknown = kid not in self._keys and (self._fetched is None or now - self._fetched >= REFRESH_AFTER)
            if stale or unknown:
                self._load(now)
            if kid not in self._keys:
                raise jwt.PyJWKClientError(f"no key with kid {kid!r}")
            return self._keys[kid]

    def _load(self, now: float) -> None:
        self.fetches += 1
        self._fetched = now  # also on failure: an unreachable provider is not asked again at once
        keys = jwt.PyJWKSet.from_dict(dict(self._fetch(self.url)))
        self._keys = {k.key_id: k.key for k in keys.keys if k.key_id}


def fetch_jwks(url: str) -> Mapping[str, Any]:
    """The JWKS document at ``url``: a provider's HTTPS endpoint, or a local file (development)."""
    if url.startswith("file://"):
        path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
        with open(path, encoding="utf-8") as handle:
            return dict(json.load(handle))
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise jwt.PyJWKClientError("a JWKS URL must be https")
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read(1 << 20)))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, whatever the case of the mapping's keys."""
    found = headers.get(name)
    if found is not None:
        return found
    return next((v for k, v in headers.items() if k.lower() == name), None)


def session_cookie(headers: Mapping[str, str]) -> str | None:
    """The value of the ``abonno_session`` cookie, if the request carries one."""
    for part in (header(headers, "cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value.strip('"')
    return None


def session_key(cookie: str) -> str:
    """The stored key of a session: the SHA-256 of its cookie (a stolen row is no cookie)."""
    return hashlib.sha256(cookie.encode()).hexdigest()


class SubscriberAuthenticator:
    """Authenticates a subscriber call for a tenant (``authenticate``): a bearer token of the
    tenant's provider, or My page's session cookie (with its CSRF token on a change)."""

    def __init__(self, providers: Mapping[str, Mapping[str, Any]],
                 sessions: Callable[[], SessionStore] | None = None,
                 clock: Callable[[], Clock] | None = None) -> None:
        self._config = dict(providers)
        self._keys: dict[str, KeySet] = {}
        self._lock = threading.Lock()
        self._sessions, self._clock = sessions, clock

    @classmethod
    def from_settings(cls, sessions: Callable[[], SessionStore] | None = None,
                      clock: Callable[[], Clock] | None = None) -> SubscriberAuthenticator:
        return cls(json.loads(os.environ.get(SETTING) or "{}"), sessions, clock)

    def settings(self, tenant: str) -> Mapping[str, Any]:
        """The tenant's provider entry as configured, ``{tenant}`` replaced (401 if none)."""
        raw = self._config.get(tenant) or self._config.get("*")
        if raw is None:
            raise AuthError(401, "this tenant has no identity provider for subscribers")
        return {k: v.replace("{tenant}", tenant) if isinstance(v, str) else v for k, v in raw.items()}

    def provider(self, tenant: str) -> Provider:
        raw = self.settings(tenant)
        return Provider(*(str(raw[k]) for k in ("issuer", "audience", "jwks_url")))

    def key_set(self, url: str) -> KeySet:
        """The key set of ``url``, kept between calls; at most ``MAX_KEY_SETS`` are kept (the
        oldest made goes first), since the tenant in a route, anyone's to choose, can name
        the URL."""
        with self._lock:
            found = self._keys.get(url)
            if found is None:
                while len(self._keys) >= MAX_KEY_SETS:
                    del self._keys[next(iter(self._keys))]
                found = self._keys[url] = KeySet(url)
            return found

    def authenticate(self, headers: Mapping[str, str], method: str, tenant: str) -> SubscriberPrincipal:
        """The login behind a call to a subscriber endpoint of ``tenant``: ``AuthError`` 401
        without a valid token or session, 403 for a cookie call that changes something
        without the session's CSRF token."""
        authorization = header(headers, "authorization")
        if authorization:
            if not authorization.lower().startswith("bearer "):
                raise AuthError(401, "missing bearer token")
            return self.validate(authorization.split(" ", 1)[1].strip(), tenant)
        cookie = session_cookie(headers)
        if cookie is None or self._sessions is None:
            raise AuthError(401, "sign in: no bearer token and no session")
        return self.from_session(cookie, method, tenant, header(headers, CSRF_HEADER))

    def from_session(self, cookie: str, method: str, tenant: str, csrf: str | None) -> SubscriberPrincipal:
        assert self._sessions is not None
        key = session_key(cookie)
        session = self._sessions().get(tenant, key)
        if (session is None or session.principal is None or session.tenant != tenant
                or (self._clock is not None and session.expires <= self._clock().now())):
            raise AuthError(401, "the session has ended: sign in again")
        if method.upper() in UNSAFE and not (csrf and hmac.compare_digest(csrf.encode(), session.csrf.encode())):
            raise AuthError(403, "a change made with the session cookie needs its X-CSRF-Token header")
        return replace(session.principal, tenant=tenant, session=key)

    def validate(self, token: str, tenant: str, audience: str | None = None) -> SubscriberPrincipal:
        """The principal of a token of the tenant's provider (``audience``: instead of the
        provider's, for an ID token whose audience is My page's client)."""
        provider = self.provider(tenant)
        if audience is not None:
            provider = replace(provider, audience=audience)
        if len(token) > MAX_TOKEN:
            raise AuthError(401, "the token is malformed or not signed by the identity provider")
        try:
            key = self.key_set(provider.jwks_url).key(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=provider.audience,
                                issuer=provider.issuer, leeway=LEEWAY,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError, OSError, ValueError) as exc:
            raise AuthError(401, _reason(exc)) from exc
        return principal_of(claims, provider, tenant)


def principal_of(claims: Mapping[str, Any], provider: Provider, tenant: str) -> SubscriberPrincipal:
    """The login of a validated token's claims (B2C's or External ID's shape)."""
    if any(claim in claims for claim in MERCHANT_CLAIMS) or claims.get("idtyp") == "app":
        raise AuthError(401, "a merchant or application token is not a subscriber's")
    subject = str(claims.get("oid") or claims["sub"])
    return SubscriberPrincipal(tenant=tenant, login=login_key(provider.issuer, subject), issuer=provider.issuer,
                               subject=subject, email=_email(claims), name=_name(claims))


def _email(claims: Mapping[str, Any]) -> str | None:
    emails = claims.get("emails")  # B2C: a list
    email = claims.get("email") or (emails[0] if isinstance(emails, list) and emails else None)
    return email if isinstance(email, str) and len(email) <= 254 else None


def _name(claims: Mapping[str, Any]) -> str | None:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip()) or None
    return name[:200] if name else None
