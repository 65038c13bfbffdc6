"""The contract of the print house's files (``PrintFiles``), against the Blob Storage adapter
(on Azurite) and the in-memory fake alike: a streamed file appears whole when its block
ends, replaces the one before, and a block that raises leaves what was there."""

from __future__ import annotations

import os
from datetime import date

import pytest

from shared import bootstrap
from shared.adapters import print_files
from shared.bootstrap import AzureContext
from shared.service.context import Context

pytestmark = pytest.mark.fakes
DAY = date(2026, 1, 5)


def test_a_streamed_file_appears_whole_when_its_block_ends(ctx: Context, tenant: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(print_files, "BLOCK", 1000)  # many blocks on Azurite
    data = os.urandom(10_500)
    with ctx.print_files.open(tenant, DAY, "avisa.pdf", "application/pdf") as out:
        for start in range(0, len(data), 777):
            out.write(data[start:start + 777])
        assert ctx.print_files.get(tenant, DAY, "avisa.pdf") is None  # nothing before the end
    assert ctx.print_files.get(tenant, DAY, "avisa.pdf") == data
    if isinstance(ctx, AzureContext):  # written as 11 blocks of at most 1 000 bytes, never whole
        blob = bootstrap.blob_service().get_blob_client(print_files.CONTAINER, f"{tenant}/2026-01-05/avisa.pdf")
        committed, _ = blob.get_block_list()
        assert [b.size for b in committed] == [1000] * 10 + [500]


def test_a_block_that_raises_leaves_the_file_before_it(ctx: Context, tenant: str) -> None:
    ctx.print_files.put(tenant, DAY, "avisa.csv", b"first", "text/csv")
    with pytest.raises(RuntimeError), ctx.print_files.open(tenant, DAY, "avisa.csv", "text/csv") as out:
        out.write(b"half of the second")
        raise RuntimeError("cut short")
    assert ctx.print_files.get(tenant, DAY, "avisa.csv") == b"first"
    with ctx.print_files.open(tenant, DAY, "avisa.csv", "text/csv") as out:
        out.write(b"second")
    assert ctx.print_files.get(tenant, DAY, "avisa.csv") == b"second"  # replaced whole


def test_files_are_the_tenants_and_the_days(ctx: Context, tenant: str) -> None:
    ctx.print_files.put(tenant, DAY, "avisa.json", b"{}", "application/json")
    assert ctx.print_files.get(tenant, date(2026, 1, 6), "avisa.json") is None
    assert ctx.print_files.get(tenant + "x", DAY, "avisa.json") is None
    assert ctx.print_files.get(tenant, DAY, "avisa.json") == b"{}"
