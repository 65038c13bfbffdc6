"""Schemathesis against the local host: every operation of ``/api/openapi.json`` with
generated requests (valid and invalid), through real HTTP. No response is a 5xx, and every
response conforms to the document: its status is declared, its body fits the schema.
(Not checked: that every schema-valid request is accepted; a plan naming an unknown
billing plan fits the schema and is rightly 422.) Bounded (``EXAMPLES`` per operation) to fit the suite's time."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

import function_app  # noqa: F401  (registers every endpoint, so the document is complete)
from devhost import issuer
from devhost.azurite import Azurite
from devhost.host import LocalHost
from functions.openapi_http import document
from shared.clock import SettableClock
from shared.service.orders import place_order
from tests.conftest import make_context, oslo_morning
from tests.fixtures import install_catalogue, order

EXAMPLES = int(os.environ.get("ABONNO_SCHEMATHESIS_EXAMPLES", "12"))
schema = schemathesis.openapi.from_dict(document())
TENANT = f"st{uuid.uuid4().hex[:8]}"  # the tenant of the run: its catalogue is installed by ``served``
TOKEN = [issuer.token(TENANT, ["admin", "support", "reader"], ttl=3600)]  # signed once: signing is slow


@schema.auth()
class AdminToken:
    """A valid token of the run's tenant with every role; schemathesis also tries without it."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return TOKEN[0]

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@pytest.fixture(scope="module")
def served(azurite: Azurite) -> Iterator[tuple[str, str]]:
    """The local host on a free port, and a tenant with the demo catalogue and a subscriber."""
    from shared import bootstrap

    clock = SettableClock(oslo_morning(date(2026, 1, 5)))
    ctx = make_context(azurite.connection_string, clock)
    bootstrap.set_context(ctx)
    install_catalogue(ctx, TENANT)
    place_order(ctx, order(TENANT))
    host = LocalHost(clock, azurite.connection_string)
    server = host.serve(0)
    ctx.public_url = f"http://127.0.0.1:{server.server_address[1]}"  # My page's sign-in reaches its provider here
    yield ctx.public_url, TENANT
    host.shutdown()
    bootstrap.set_context(None)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_outside_its_document(case: schemathesis.Case,
                                                            served: tuple[str, str]) -> None:
    url, tenant = served
    if "tenant" in case.path_parameters:
        case.path_parameters["tenant"] = tenant  # otherwise almost every order is 404 for an unknown tenant
    with requests.Session() as session:
        case.call_and_validate(base_url=url, session=session, excluded_checks=[positive_data_acceptance])
