"""A claimer that meets a claim being released (void, not yet restored or freed) must not take
a new number for it. Found by stressing test_hostile_numbering_race (issue 13 review): a
racer that loaded the account before the document committed claimed its key while a loser's
release had it void, got a fresh number, then (its commit conflicting, the document issued)
released that number: a number on the free list below issued ones at the end of the run,
a gap in the issued series until some later claim takes it. The claimer waits for the
release to end instead: restored -> the same number; freed -> the freed number again."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from shared.service.context import Context

pytestmark = pytest.mark.fakes


def _voided(ctx: Context) -> tuple[str, str, dict]:
    pk = f"v{uuid.uuid4().hex[:10]}|org|main"
    numbers = ctx.invoice_numbers
    assert numbers.claim(pk, ["1.a", "1.b"]) == {"1.a": 1, "1.b": 2}
    voided = numbers.void(pk, {"1.a": 1})
    assert set(voided) == {"1.a"}
    return pk, "1.a", voided


def _claim_later(ctx: Context, pk: str, key: str) -> tuple[threading.Thread, dict]:
    got: dict = {}
    thread = threading.Thread(target=lambda: got.update(ctx.invoice_numbers.claim(pk, [key])))
    thread.start()
    time.sleep(0.3)  # the claimer meets the void claim while the release is under way
    return thread, got


@pytest.mark.parametrize("outcome", ["restored", "freed"])
def test_a_claim_met_mid_release_waits_for_it_and_takes_no_new_number(ctx: Context, outcome: str) -> None:
    pk, key, voided = _voided(ctx)
    thread, got = _claim_later(ctx, pk, key)
    if outcome == "restored":  # a document carries it after all
        ctx.invoice_numbers.restore(pk, voided)
    else:
        ctx.invoice_numbers.free(pk, voided)
    thread.join(10)
    assert got == {key: 1}  # the number the release gave back, not 3
    assert ctx.invoice_numbers.free_numbers(pk) == ()
    assert ctx.invoice_numbers.claims(pk) == {"1.a": 1, "1.b": 2}
