"""A tenant's layout row (table ``Tenants``) lost or garbled (issue 13, hostile review): a
process that reads it afresh must never guess layout 2 for a tenant that was moved (its old
partitions stay, marked ``Moved``, as evidence, so the probe for the first shape finds them),
and a row it cannot read is an error of the layout, not the caller's bad request."""

from __future__ import annotations

import json

import pytest

from devhost import cli
from shared.adapters.layouts import TABLE as TENANTS
from shared.adapters.layouts import Layouts, LayoutUnknown
from shared.domain.placement import BUCKETS, FIRST, Layout
from shared.service import layout_move
from shared.service.context import Context
from tests.service.test_layout_move import a_tenant_of_layout_2, moved, mover


def test_a_moved_tenant_whose_layout_row_is_lost_is_not_taken_for_layout_2(ctx: Context, shop: str) -> None:
    a_tenant_of_layout_2(ctx, shop)
    assert moved(ctx, shop).ok
    ctx.storage.delete(TENANTS, "layout", shop)  # type: ignore[attr-defined]
    fresh = Layouts(ctx.storage)  # type: ignore[attr-defined]  # another process, nothing cached
    with pytest.raises(LayoutUnknown, match=shop):
        fresh.get(shop)
    assert ctx.storage.get(TENANTS, "layout", shop) is None  # type: ignore[attr-defined]  # no guess written


def test_a_tenant_mid_move_whose_layout_row_is_lost_is_not_taken_for_layout_2(ctx: Context, shop: str) -> None:
    a_tenant_of_layout_2(ctx, shop)
    rows, layouts = mover(ctx)
    target = Layout(3, 4, 16, moving=True)
    layouts.set(shop, target)
    assert layout_move.move_one(rows, shop, target, rows.first_shape(shop)[0]) is not None  # one of eight moved
    ctx.storage.delete(TENANTS, "layout", shop)  # type: ignore[attr-defined]
    with pytest.raises(LayoutUnknown):
        Layouts(ctx.storage).get(shop)  # type: ignore[attr-defined]


def test_without_a_row_the_probe_still_answers_for_tenants_it_can_tell(ctx: Context, shop: str) -> None:
    a_tenant_of_layout_2(ctx, shop)
    ctx.storage.delete(TENANTS, "layout", shop)  # type: ignore[attr-defined]
    assert Layouts(ctx.storage).get(shop) == FIRST  # type: ignore[attr-defined]  # never moved: layout 2
    assert Layouts(ctx.storage).get(f"{shop}-new") == BUCKETS  # type: ignore[attr-defined]  # new: buckets


@pytest.mark.parametrize("garbled", [{"Version": 5}, {"Version": "three"}, {"BucketSize": 0}, {"Stride": None},
                                     {"Version": 2, "Moving": True}])
def test_a_garbled_layout_row_is_an_error_of_the_layout(ctx: Context, shop: str, garbled: dict[str, object]) -> None:
    row = {"PartitionKey": "layout", "RowKey": shop, "Version": 3, "BucketSize": 64, "Stride": 16, "Moving": False}
    ctx.storage.upsert(TENANTS, {**row, **garbled})  # type: ignore[attr-defined]
    with pytest.raises(LayoutUnknown, match=shop):
        Layouts(ctx.storage).get(shop)  # type: ignore[attr-defined]
    assert not isinstance(LayoutUnknown(""), ValueError)  # a ValueError is answered 400: the caller's fault


@pytest.mark.parametrize("what", [["--status"], ["--verify"], ["--move", "--wait", "0", "--alone"]])
def test_the_command_on_a_tenant_whose_layout_is_unknown_says_so_and_changes_nothing(
        ctx: Context, shop: str, what: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    a_tenant_of_layout_2(ctx, shop)
    assert moved(ctx, shop, bucket_size=8).ok
    ctx.storage.delete(TENANTS, "layout", shop)  # type: ignore[attr-defined]
    capsys.readouterr()
    assert cli.main(["layout", "--tenant", shop, *what]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.startswith("abonno layout:") and shop in err
    assert ctx.storage.get(TENANTS, "layout", shop) is None  # type: ignore[attr-defined]
    if what == ["--status"]:  # what the operator needs to restore the row: the last move's layout
        assert json.loads(out)["last_run"]["bucket_size"] == 8
