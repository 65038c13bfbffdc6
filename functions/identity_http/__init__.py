"""HTTP: My page's sign-in (a backend-for-frontend) and the links of a login (issue 12).

* ``GET my/{tenant}/login?return_to=/api/pages/...``: a new pending session (cookie), msal's
  authorization-code flow with PKCE begun and kept in it, 302 to the identity provider;
* ``GET my/{tenant}/auth``: the redirect URI. The code is redeemed on the server (msal),
  the access token validated like any bearer token, the pending session *replaced* by a
  signed-in one under a new cookie and CSRF token (no session fixation), 302 to
  ``return_to`` (a path of ours only, never another site);
* ``POST my/{tenant}/logout``: the session removed, the cookie cleared;
* ``GET my/{tenant}/session``: who is signed in, the CSRF token and the subscribers
  (200 also when signed out);
* ``POST my/{tenant}/links`` {email}: a code to the address if it is a subscriber's
  (202, the same answer always); ``POST my/{tenant}/links/confirm`` {email, code}: linked;
  ``DELETE my/{tenant}/links/{subscriber_no}``: unlinked.

The cookie is ``abonno_session``: HttpOnly; Secure; SameSite=Lax; Path=/api. Links and
codes are rate limited per login (``ABONNO_LINK_RATE_LIMIT``, ``ABONNO_CODE_RATE_LIMIT``,
``"{burst}/{seconds}"``) on top of the codes' own five tries, and the codes sent to one
address are limited across all logins (``ABONNO_LINK_ADDRESS_RATE_LIMIT``), silently.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from datetime import timedelta
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint, json_response, problem
from functions.salesposter_http.guard import CODE_RATE, LINK_RATE, client_ip, limiter, per_login
from shared import bootstrap
from shared.adapters.auth import AuthError
from shared.adapters.mypage_signin import ProviderUnreachable, SignInFailed
from shared.adapters.subscriber_auth import COOKIE, session_cookie, session_key
from shared.ports import Session, SubscriberPrincipal
from shared.service import identity, self_service
from shared.service.context import Context

bp = func.Blueprint()
TAG = "My page sign-in"
PENDING_TTL = timedelta(minutes=10)  # a sign-in under way
SESSION_TTL = timedelta(hours=8)
RETURN_TO = re.compile(r"^/api/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,500}$")
LOGIN_RATE = "30/300"  # sign-ins begun per client (network) and tenant: each stores a pending session
ADDRESS_RATE = "5/900"  # codes sent to one address across ALL logins (a code has 5 tries: this bounds guesses)
CALLBACK = {"code": 4096, "state": 512, "error": 200, "error_description": 2000, "session_state": 200,
            "client_info": 2000, "iss": 500, "error_uri": 500}  # what a provider sends back, and how long it may be
UNREACHABLE = "the identity provider does not answer; try again shortly"


def safe_return(tenant: str, value: str | None) -> str:
    """``return_to`` if it is a path of ours (``/api/...``, no ``//``, no backslash, no
    scheme), else My page: never a redirect to another site."""
    if value and RETURN_TO.fullmatch(value) and "//" not in value and "\\" not in value and ".." not in value:
        return value
    return f"/api/pages/{tenant}/my"


def cookie(value: str, ttl: timedelta) -> str:
    return (f"{COOKIE}={value}; HttpOnly; Secure; SameSite=Lax; Path=/api; Max-Age={int(ttl.total_seconds())}")


def _redirect(location: str, set_cookie: str | None = None) -> func.HttpResponse:
    headers = {"Location": location, "Cache-Control": "no-store"}
    if set_cookie:
        headers["Set-Cookie"] = set_cookie
    return func.HttpResponse(status_code=302, headers=headers)


def _new_session(call: Call, ttl: timedelta, principal: SubscriberPrincipal | None = None,
                 flow: dict[str, Any] | None = None, return_to: str = "") -> str:
    """A new session under a new random cookie (returned); the row holds only its hash."""
    value = secrets.token_urlsafe(32)
    call.ctx.sessions.put(Session(session_key(value), call.route["tenant"], secrets.token_urlsafe(24),
                                  call.ctx.clock.now() + ttl, principal, flow, return_to))
    return value


def _drop_old(call: Call) -> None:
    old = session_cookie(call.request.headers)
    if old:
        call.ctx.sessions.delete(call.route["tenant"], session_key(old))


def login_limits(req: func.HttpRequest, ctx: Context) -> func.HttpResponse | None:
    """429 when a client (its network) has begun too many sign-ins. Anyone may begin one, and
    each stores a pending session row that nothing sweeps (the Table service has no time to
    live), so without a limit an anonymous client could fill the table without end."""
    buckets = limiter(os.environ.get("ABONNO_LOGIN_RATE_LIMIT", LOGIN_RATE))
    if buckets is None:
        return None
    tenant = req.route_params.get("tenant", "")[:40]
    wait = buckets.take(f"login|{client_ip(req)}|{tenant}", ctx.clock.now().timestamp())
    if wait <= 0:
        return None
    return problem(429, "Too many requests", "too many sign-ins begun from this network; try again later",
                   headers={"Retry-After": str(max(1, math.ceil(wait)))})


@endpoint(bp, Endpoint("my_login", "my/{tenant}/login", ["GET"], "Sign in to My page: redirect to the identity "
                       "provider", TAG, params={"return_to": "the page to come back to (a path under /api/)"},
                       types={"return_to": Annotated[str, StringConstraints(max_length=500)]}, status=302,
                       guard=login_limits,
                       statuses={401: "This tenant has no My page sign-in configured",
                                 429: "Too many sign-ins begun from this network (Retry-After)",
                                 503: "The identity provider does not answer (Retry-After)"}))
def login(call: Call) -> Any:
    tenant = call.route["tenant"]
    signin = bootstrap.sign_in()
    try:
        flow = signin.begin(tenant, call.ctx.public_url)
    except ProviderUnreachable:
        return problem(503, "Unavailable", UNREACHABLE, headers={"Retry-After": "30"})
    _drop_old(call)  # whatever session the browser had is gone: a sign-in always starts afresh
    value = _new_session(call, PENDING_TTL, flow=flow, return_to=safe_return(tenant, call.query.get("return_to")))
    return _redirect(signin.browser_url(str(flow["auth_uri"]), call.ctx.public_url), cookie(value, PENDING_TTL))


@endpoint(bp, Endpoint("my_auth", "my/{tenant}/auth", ["GET"], "The identity provider's redirect: signed in, "
                       "back to the page", TAG, params={k: "as the identity provider sends it" for k in CALLBACK},
                       types={k: Annotated[str, StringConstraints(max_length=n)] for k, n in CALLBACK.items()},
                       status=302, statuses={400: "No sign-in under way in this browser, or the provider's answer "
                                                 "does not belong to it",
                                             503: "The identity provider does not answer (Retry-After)"}))
def auth(call: Call) -> Any:
    tenant = call.route["tenant"]
    value = session_cookie(call.request.headers)
    pending = call.ctx.sessions.get(tenant, session_key(value)) if value else None
    if pending is None or pending.flow is None or pending.expires <= call.ctx.clock.now():
        return problem(400, "Bad request", "no sign-in is under way in this browser; start again")
    call.ctx.sessions.delete(tenant, pending.key)  # one answer per flow: a replayed callback finds nothing
    try:
        me = bootstrap.sign_in().finish(tenant, pending.flow, dict(call.query), call.ctx.public_url)
    except ProviderUnreachable:
        return problem(503, "Unavailable", UNREACHABLE, headers={"Retry-After": "30"})
    except (SignInFailed, AuthError) as exc:
        detail = exc.reason if isinstance(exc, AuthError) else str(exc)
        return problem(400, "Bad request", f"sign-in failed: {detail}")
    fresh = _new_session(call, SESSION_TTL, principal=me)  # a new key: a cookie planted before sign-in is worthless
    return _redirect(pending.return_to or safe_return(tenant, None), cookie(fresh, SESSION_TTL))


@endpoint(bp, Endpoint("my_logout", "my/{tenant}/logout", ["POST"], "Sign out of My page", TAG, status=204,
                       statuses={204: "Signed out (also when no one was)",
                                 403: "The session's X-CSRF-Token is missing"}))
def logout(call: Call) -> Any:
    tenant = call.route["tenant"]
    value = session_cookie(call.request.headers)
    if value:
        try:
            bootstrap.subscriber_authenticator().from_session(value, "POST", tenant,
                                                              call.request.headers.get("x-csrf-token"))
        except AuthError as exc:
            if exc.status == 403:
                return problem(403, "Forbidden", exc.reason)
        call.ctx.sessions.delete(tenant, session_key(value))
    return func.HttpResponse(status_code=204, headers={"Set-Cookie": cookie("", timedelta(0)),
                                                        "Cache-Control": "no-store"})


class LinkedSubscriber(BaseModel):
    number: int
    name: str
    role: Literal["holder", "admin", "user"]


class SessionAnswer(BaseModel):
    signed_in: bool
    email: str | None = None
    name: str | None = None
    csrf: str | None = Field(default=None, description="send it as X-CSRF-Token on every POST/PUT/PATCH/DELETE")
    subscribers: list[LinkedSubscriber] = []


def _subscribers(call: Call, me: SubscriberPrincipal) -> list[dict[str, Any]]:
    """As ``GET my/{tenant}/subscribers`` lists them (``self_service.subscribers``)."""
    return self_service.subscribers(call.ctx, me)


@endpoint(bp, Endpoint("my_session", "my/{tenant}/session", ["GET"], "Who is signed in to My page", TAG,
                       response=SessionAnswer))
def session(call: Call) -> Any:
    tenant = call.route["tenant"]
    try:
        me = bootstrap.subscriber_authenticator().authenticate(call.request.headers, "GET", tenant)
    except AuthError:
        return _no_store(json_response({"signed_in": False, "email": None, "name": None, "csrf": None,
                                        "subscribers": []}))
    found = call.ctx.sessions.get(tenant, me.session) if me.session else None
    return _no_store(json_response({"signed_in": True, "email": me.email, "name": me.name,
                                    "csrf": found.csrf if found else None, "subscribers": _subscribers(call, me)}))


def _no_store(response: func.HttpResponse) -> func.HttpResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


def _printable(value: str) -> str:
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError("must not contain control characters")
    return value


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_printable)]


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: Email
    language: Literal["nb", "en"] = "nb"


class LinkConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: Email
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class LinkSent(BaseModel):
    status: Literal["sent"]


class Subscribers(BaseModel):
    subscribers: list[LinkedSubscriber]


@endpoint(bp, Endpoint("my_links", "my/{tenant}/links", ["POST"], "Ask for a code to link a subscriber by its "
                       "e-mail address", TAG, body=LinkRequest, response=LinkSent, status=202, subscriber=True,
                       statuses={202: "The same answer whether or not the address is a subscriber's",
                                 429: "Too many link requests from this login (Retry-After)"}))
def links(call: Call) -> Any:
    refused = per_login(call, "ABONNO_LINK_RATE_LIMIT", LINK_RATE, "link")
    if refused is not None:
        return refused
    body: LinkRequest = call.body
    if _address_has_codes_left(call, str(body.email)):
        identity.start_link(call.ctx, call.me, str(body.email), body.language)
    return {"status": "sent"}


def _address_has_codes_left(call: Call, email: str) -> bool:
    """Whether another link code may go to ``email``. A code is bound to the login that asked,
    so the per-login bucket alone let anyone with many logins get fresh codes (five tries
    each) for one victim's address without end; this bucket is per address, whoever asks.
    Beyond it the answer is the same 202 and nothing is sent or stored, for any address, so
    it tells nothing about whether the address is a subscriber's."""
    buckets = limiter(os.environ.get("ABONNO_LINK_ADDRESS_RATE_LIMIT", ADDRESS_RATE))
    if buckets is None:
        return True
    return buckets.take(f"link-address|{call.me.tenant}|{identity.normal(email)}",
                        call.ctx.clock.now().timestamp()) <= 0


@endpoint(bp, Endpoint("my_links_confirm", "my/{tenant}/links/confirm", ["POST"], "Link the subscriber the code "
                       "was sent for", TAG, body=LinkConfirm, response=Subscribers, subscriber=True,
                       statuses={422: "The code is wrong, used, expired or tried too often (one answer for all)",
                                 429: "Too many codes tried by this login (Retry-After)"}))
def links_confirm(call: Call) -> Any:
    refused = per_login(call, "ABONNO_CODE_RATE_LIMIT", CODE_RATE, "code")
    if refused is not None:
        return refused
    body: LinkConfirm = call.body
    identity.confirm_link(call.ctx, call.me, str(body.email), body.code)
    return {"subscribers": _subscribers(call, call.me)}


@endpoint(bp, Endpoint("my_unlink", "my/{tenant}/links/{subscriber_no}", ["DELETE"], "Unlink a subscriber from "
                       "this login", TAG, status=204, subscriber=True,
                       statuses={204: "Unlinked", 404: "Not a subscriber this login is linked to"}))
def unlink(call: Call) -> Any:
    identity.unlink(call.ctx, call.me, call.number("subscriber_no"))
    return func.HttpResponse(status_code=204)
