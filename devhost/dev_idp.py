"""The development identity provider: what Azure AD B2C / Entra External ID is to My page,
for the local host (issue 12). Served by ``devhost.host`` under ``/_dev/idp/{tenant}/v2.0/``
(only on the settable clock, like every ``/_dev`` endpoint); its issuer is
``https://abonno.local/dev-idp/{tenant}/v2.0``, the development issuer's subscriber tokens'
(``devhost.issuer``), which msal reaches through ``adapters.mypage_signin.LocalAuthorityClient``.

* ``.well-known/openid-configuration``: OpenID Connect discovery;
* ``authorize``: a small accessible login page (e-mail and name) standing in for the
  provider's; posting it redirects to the ``redirect_uri`` with ``code`` and ``state``, as
  the provider does;
* ``token``: the authorization code (single use, 5 minutes, bound to the client,
  redirect URI and PKCE challenge: S256 only) for an access token (audience
  ``api://abonno-self-service``), an ID token (audience: the client, with the ``nonce``)
  in External ID's shape (``oid``, ``email``, ``name``);
* ``keys``: the JWKS; ``logout``: back to ``post_logout_redirect_uri``.

The same e-mail address is always the same login (its subject is derived from the
address), so signing in again finds one's links. There is no password: this is a
development stand-in, never served in Azure.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping

import jwt

from . import issuer

PREFIX = "/_dev/idp/"
CODE_TTL = 300
_used: dict[str, float] = {}  # codes redeemed (jti -> expiry): single use
_lock = threading.Lock()
Answer = tuple[int, dict[str, str], bytes]


def issuer_of(tenant: str) -> str:
    return issuer.SUBSCRIBER_ISSUER.format(tenant=tenant)


def subject_of(email: str) -> str:
    return "dev-" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def discovery(tenant: str) -> dict[str, object]:
    base = issuer_of(tenant)
    return {"issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/keys", "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"], "response_modes_supported": ["query"],
            "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": ["sub", "oid", "email", "name", "nonce"]}


def handle(method: str, path: str, query: Mapping[str, str], body: bytes) -> Answer:
    """One request to ``/_dev/idp/{tenant}/v2.0/{what}``."""
    parts = path[len(PREFIX):].split("/", 2)
    if len(parts) != 3 or parts[1] != "v2.0":
        return _json(404, {"error": "not_found"})
    tenant, _, what = parts
    form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
    if what == ".well-known/openid-configuration":
        return _json(200, discovery(tenant))
    if what == "keys":
        return _json(200, issuer.jwks())
    if what == "authorize" and method == "GET":
        return _page(tenant, query, "")
    if what == "authorize" and method == "POST":
        return _signed_in(tenant, form)
    if what == "token" and method == "POST":
        return _token(tenant, form)
    if what == "logout":
        back = query.get("post_logout_redirect_uri") or "/"
        return 302, {"Location": back if _this_host(back) else "/"}, b""
    return _json(404, {"error": "not_found"})


FIELDS = ("client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "scope",
          "response_type", "response_mode")


def _page(tenant: str, query: Mapping[str, str], error: str) -> Answer:
    if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256" \
            or not query.get("code_challenge") or not query.get("redirect_uri"):
        return _json(400, {"error": "invalid_request",
                           "error_description": "response_type=code, a PKCE S256 code_challenge, a redirect_uri"})
    hidden = "\n".join(f'<input type="hidden" name="{f}" value="{html.escape(query.get(f, ""))}">' for f in FIELDS)
    alert = f'<p role="alert" class="error">{html.escape(error)}</p>' if error else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in – development identity provider</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}}
label{{display:block;margin-top:1rem;font-weight:600}}input[type=email],input[type=text]{{width:100%;padding:.5rem;
font:inherit;border:1px solid #555;border-radius:4px}}button{{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;
background:#0b57d0;color:#fff;border:0;border-radius:4px}}button:focus,input:focus{{outline:3px solid #f9a825}}
.error{{color:#a50e0e}}.note{{color:#444;font-size:.9rem}}</style></head>
<body><main><h1>Sign in</h1>
<p class="note">Development identity provider for <strong>{html.escape(tenant)}</strong>: it stands in for
Azure AD B2C / Entra External ID on this machine. No password is asked.</p>{alert}
<form method="post" action="authorize">{hidden}
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="254">
<label for="name">Name</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200">
<button type="submit">Sign in</button></form></main></body></html>"""
    return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, page.encode()


LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _this_host(url: str, path: str | None = None) -> bool:
    """Whether ``url`` is on this machine's host (``http://127.0.0.1`` or ``localhost``, any
    port), and at ``path`` if one is given: where the provider may send a browser. A prefix
    test let ``http://localhost.evil.example`` or ``//evil.example`` through."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if url.startswith("/") and not url.startswith(("//", "/\\")) and path is None:
        return "\\" not in url
    return (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and parts.username is None
            and parts.password is None and (port is None or port > 0) and "\\" not in url
            and (path is None or parts.path == path))


def _signed_in(tenant: str, form: Mapping[str, str]) -> Answer:
    if not _this_host(form.get("redirect_uri", ""), f"/api/my/{tenant}/auth"):  # a registered redirect URI only
        return _json(400, {"error": "invalid_request", "error_description": "redirect_uri is not registered"})
    email = (form.get("email") or "").strip()
    if "@" not in email or len(email) > 254 or any(ord(c) < 32 for c in email):
        return _page(tenant, form, "Enter an e-mail address.")
    now = int(time.time())
    code = jwt.encode({"typ": "code", "tenant": tenant, "client_id": form.get("client_id", ""),
                       "redirect_uri": form.get("redirect_uri", ""), "challenge": form.get("code_challenge", ""),
                       "nonce": form.get("nonce", ""), "email": email, "name": (form.get("name") or "").strip()[:200],
                       "exp": now + CODE_TTL, "jti": uuid.uuid4().hex}, issuer._private_key(), algorithm="RS256",
                      headers={"kid": issuer.KEY_ID})
    answer = {"code": code, "state": form.get("state", "")}
    redirect = form.get("redirect_uri", "")
    return 302, {"Location": f"{redirect}{'&' if '?' in redirect else '?'}{urllib.parse.urlencode(answer)}"}, b""


def _token(tenant: str, form: Mapping[str, str]) -> Answer:
    if form.get("grant_type") != "authorization_code":
        return _json(400, {"error": "unsupported_grant_type"})
    try:
        code = jwt.decode(form.get("code", ""), issuer._private_key().public_key(), algorithms=["RS256"])
    except jwt.PyJWTError:
        return _json(400, {"error": "invalid_grant", "error_description": "the code is not valid or has expired"})
    verifier = form.get("code_verifier", "")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if (code.get("typ") != "code" or code.get("tenant") != tenant or code.get("client_id") != form.get("client_id")
            or code.get("redirect_uri") != form.get("redirect_uri") or code.get("challenge") != challenge):
        return _json(400, {"error": "invalid_grant", "error_description": "client, redirect_uri or PKCE verifier"})
    if not _first_use(str(code["jti"]), float(code["exp"])):
        return _json(400, {"error": "invalid_grant", "error_description": "the code has been used"})
    subject = subject_of(str(code["email"]))
    access = issuer.subscriber_token(tenant, subject, email=str(code["email"]), name=code.get("name") or None)
    now = int(time.time())
    id_token = jwt.encode({"iss": issuer_of(tenant), "aud": form.get("client_id", ""), "sub": subject,
                           "oid": subject, "email": code["email"], "name": code.get("name") or None,
                           "nonce": code.get("nonce", ""), "iat": now, "nbf": now - 5, "exp": now + 3600,
                           "tid": tenant, "ver": "2.0"}, issuer._private_key(), algorithm="RS256",
                          headers={"kid": issuer.KEY_ID})
    return _json(200, {"token_type": "Bearer", "access_token": access, "id_token": id_token, "expires_in": 3600,
                       "scope": form.get("scope", "")})


def _first_use(jti: str, expires: float) -> bool:
    with _lock:
        now = time.time()
        for old in [k for k, e in _used.items() if e < now]:
            del _used[old]
        if jti in _used:
            return False
        _used[jti] = expires
        return True


def _json(status: int, payload: object) -> Answer:
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(payload).encode()
