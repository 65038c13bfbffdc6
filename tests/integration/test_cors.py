"""CORS for the organisations' own sites (``functions.http``): the JSON endpoints under
``my/`` and ``access/`` answer a browser on one of the tenant's organisations' ``origins``
(with credentials, and a preflight per route), and nothing else: another origin, another
tenant's origin, a page or merchant endpoint never get an Access-Control-* header."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import function_app  # noqa: F401  (registers every endpoint)
from functions import http
from functions.http import REGISTRY, Call, Endpoint, dispatch, endpoint
from shared import bootstrap
from shared.clock import SettableClock
from shared.ports import NotFound
from shared.service.catalogue import put_item
from shared.service.context import Context
from tests.fakes import fake_context
from tests.fixtures import http as request
from tests.fixtures import install_catalogue

SITE = "https://www.avisa-nordvest.example.no"
OTHER_TENANTS_SITE = "https://www.another-paper.example.no"


def with_origins(ctx: Context, tenant: str, *origins: str) -> None:
    install_catalogue(ctx, tenant)
    org = ctx.catalogue.get(tenant).organizations["avisa"]
    put_item(ctx, tenant, "organization", replace(org, origins=origins))


@pytest.fixture
def sites(fake_ctx: Context) -> Context:
    with_origins(fake_ctx, "t1", SITE, "http://localhost:8080")
    with_origins(fake_ctx, "t2", OTHER_TENANTS_SITE)
    return fake_ctx


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[Endpoint]:
    """Endpoints registered by the test go into a registry of their own (not the app's)."""
    mine: list[Endpoint] = []
    monkeypatch.setattr(http, "REGISTRY", mine)
    monkeypatch.setattr(http, "_CORS_METHODS", {})
    return mine


def probe(route: str = "my/{tenant}/probe", methods: tuple[str, ...] = ("GET",)) -> Endpoint:
    return Endpoint("probe", route, list(methods), "a probe", "Test")


def call(spec: Endpoint, method: str = "GET", origin: str | None = SITE, tenant: str = "t1",
         handler: Any = None) -> func.HttpResponse:
    headers = {"Origin": origin} if origin else {}
    req = request(method, f"/api/{spec.route.replace('{tenant}', tenant)}", headers=headers, route={"tenant": tenant})
    return dispatch(req, spec, handler or (lambda c: {"ok": True}))


def test_an_allowed_origin_gets_the_headers_with_credentials(sites: Context) -> None:
    response = call(probe())
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Vary"] == "Origin"


def test_an_error_answer_to_an_allowed_origin_is_readable_by_its_page(sites: Context) -> None:
    def missing(c: Call) -> Any:
        raise NotFound("no such subscriber")

    response = call(probe(), handler=missing)
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize("origin", [OTHER_TENANTS_SITE, "https://evil.example", SITE + ".evil.example",
                                    "http://www.avisa-nordvest.example.no", "null", None])
def test_any_other_origin_gets_no_cors_header(sites: Context, origin: str | None) -> None:
    response = call(probe(), origin=origin)
    assert response.status_code == 200  # the answer is the same; the browser keeps it from the other page
    assert not [h for h in dict(response.headers) if h.lower().startswith("access-control-")]
    assert response.headers["Vary"] == "Origin"


@settings(max_examples=60, deadline=None)
@given(origin=st.one_of(st.text(max_size=80),
                        st.from_regex(r"\Ahttps?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?\Z")))
def test_no_origin_outside_the_configured_ones_is_ever_allowed(origin: str) -> None:
    ctx = fake_context(SettableClock(datetime(2026, 1, 5, 8, tzinfo=UTC)))
    bootstrap.set_context(ctx)
    try:
        with_origins(ctx, "t1", SITE)
        response = call(probe(), origin=origin or None)
        allowed = response.headers.get("Access-Control-Allow-Origin")
        assert allowed is None or (allowed.lower() == SITE and origin.lower() == SITE)
    finally:
        bootstrap.set_context(None)


def test_a_route_s_preflight_allows_every_method_its_endpoints_answer(sites: Context,
                                                                      registry: list[Endpoint]) -> None:
    bp = func.Blueprint()
    endpoint(bp, probe(methods=("GET",)))(lambda c: {})
    endpoint(bp, replace(probe(methods=("POST", "DELETE")), name="probe_write"))(lambda c: {})
    preflights = [s for s in registry if "OPTIONS" in s.methods]
    assert [s.route for s in preflights] == ["my/{tenant}/probe"]  # one per route, in the OpenAPI document too
    req = request("OPTIONS", "/api/my/t1/probe", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
                  route={"tenant": "t1"})
    response = dispatch(req, preflights[0], lambda c: http.preflight(c.request, "my/{tenant}/probe"))
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.headers["Access-Control-Allow-Methods"] == "DELETE, GET, POST"
    assert "X-CSRF-Token" in response.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin", [OTHER_TENANTS_SITE, "https://evil.example", None])
def test_a_preflight_from_any_other_origin_is_refused(sites: Context, origin: str | None) -> None:
    headers = {"Origin": origin} if origin else {}
    response = http.preflight(request("OPTIONS", "/api/my/t1/probe", headers=headers, route={"tenant": "t1"}),
                              "my/{tenant}/probe")
    assert response.status_code == 403
    assert not [h for h in dict(response.headers) if h.lower().startswith("access-control-")]


def test_only_my_page_and_access_routes_answer_cross_origin(sites: Context) -> None:
    crossing = {s.route.split("/")[0] for s in REGISTRY if s.cross_origin}
    assert crossing <= {"my", "access"}
    page = next(s for s in REGISTRY if s.name == "page_my")
    response = call(page, origin=SITE, handler=lambda c: {"page": True})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_every_cross_origin_route_of_the_app_has_its_preflight() -> None:
    routes = {s.route for s in REGISTRY if s.cross_origin and "OPTIONS" not in s.methods}
    preflighted = {s.route for s in REGISTRY if "OPTIONS" in s.methods}
    assert routes <= preflighted
