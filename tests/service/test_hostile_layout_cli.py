"""``abonno layout`` given bad arguments (issue 13, hostile review): every one is refused with
exit 2 and one line on stderr, no traceback, and nothing in storage changes: the tenant's
layout row, its move lease and its reports stay as they were, and no row appears for a tenant
that does not exist."""

from __future__ import annotations

from typing import Any

import pytest

from devhost import cli
from shared.adapters.layouts import TABLE as TENANTS
from shared.domain.placement import FIRST
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import order


def tenants_rows(ctx: Context) -> list[tuple[str, str, Any]]:
    rows = ctx.storage.query(TENANTS, "PartitionKey ne 'x'")  # type: ignore[attr-defined]
    return sorted((r["PartitionKey"], r["RowKey"], {k: v for k, v in r.items() if k != "etag"}) for r in rows)


@pytest.mark.parametrize("args", [
    ["--move", "--bucket-size", "0", "--wait", "0"],
    ["--move", "--bucket-size", "101", "--wait", "0"],
    ["--move", "--bucket-size", "-3", "--wait", "0"],
    ["--move", "--wait", "-1"],
    ["--move", "--wait", "nan"],
    ["--move", "--wait", "inf"],
    ["--move", "--wait", "0"],  # shorter than the layout cache, and not --alone
    ["--status", "--bucket-size", "0"],
])
def test_bad_numbers_are_refused_before_anything_moves(
        ctx: Context, shop: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    ctx.accounts.layouts.set(shop, FIRST)  # type: ignore[attr-defined]
    place_order(ctx, order(shop, 1))
    before = tenants_rows(ctx)
    capsys.readouterr()
    code = cli.main(["layout", "--tenant", shop, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("abonno layout:")
    assert tenants_rows(ctx) == before


@pytest.mark.parametrize("tenant", ["", "Shop", "a|b", "a||", "x'y", "a/b", "a#b", "é", "a" * 41, "-a"])
@pytest.mark.parametrize("what", [["--status"], ["--verify"], ["--move", "--wait", "0", "--alone"]])
def test_a_tenant_id_that_cannot_be_one_is_refused(
        ctx: Context, tenant: str, what: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = tenants_rows(ctx)
    capsys.readouterr()
    code = cli.main(["layout", f"--tenant={tenant}", *what])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("abonno layout:")
    assert tenants_rows(ctx) == before


@pytest.mark.parametrize("what", [["--status"], ["--verify"], ["--move", "--wait", "0", "--alone"]])
def test_an_unknown_tenant_is_refused_and_gets_no_rows(
        ctx: Context, tenant: str, what: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = tenants_rows(ctx)
    capsys.readouterr()
    code = cli.main(["layout", "--tenant", tenant, *what])  # valid id, never registered (a typo)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"no tenant {tenant}" in err
    assert tenants_rows(ctx) == before


@pytest.mark.parametrize(("storage", "code"), [
    ("garbage", 2),  # not a connection string: a bad argument
    ("AccountName=x", 2),
    ("DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;TableEndpoint=http://127.0.0.1:1/x;", 1),  # nobody
])
def test_a_storage_that_is_malformed_or_unreachable_is_a_message_not_a_traceback(
        storage: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["layout", "--tenant", "acme", "--status", "--storage", storage]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("abonno layout:") and "AccountKey" not in err
