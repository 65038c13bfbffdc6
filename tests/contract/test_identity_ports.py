"""The one-time code and session ports, on Azurite (``CodeRows``, ``SessionRows``) and on
the fakes alike; and ``verification``'s codes through them: expiry, tries, single use under
concurrent redeemers, nothing but a salted hash stored."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from shared.ports import ConcurrencyConflict, NotFound, OneTimeCode, Session, SubscriberPrincipal
from shared.service import verification
from shared.service.context import Context
from shared.service.verification import CodeRefused
from tests.fakes import FakeNotifier

pytestmark = pytest.mark.fakes


@pytest.fixture
def notices(ctx: Context) -> FakeNotifier:
    """The notices channel, read back (the Blob adapter's files are the notifier's own contract)."""
    ctx.notifier = FakeNotifier()
    return ctx.notifier


def sent_code(notices: FakeNotifier) -> str:
    body = list(notices.delivered.values())[-1].body
    return next(word.strip(".") for word in body.split() if word.strip(".").isdigit())


HASH = verification.code_hash("123456")


def _code(ctx: Context, target: str = "t1", attempts: int = 0) -> OneTimeCode:
    return OneTimeCode("shop", "link", target, HASH, ctx.clock.now() + timedelta(minutes=15),
                       {"subscriber": "7", "email": "a@example.com"}, attempts)


def test_a_code_is_stored_replaced_and_read_back(ctx: Context) -> None:
    ctx.codes.put(_code(ctx))
    found = ctx.codes.get("shop", "link", "t1")
    assert found is not None and found[0] == _code(ctx)
    ctx.codes.put(_code(ctx, attempts=2))  # put replaces
    again = ctx.codes.get("shop", "link", "t1")
    assert again is not None and again[0].attempts == 2 and again[1] != found[1]
    assert ctx.codes.get("shop", "link", "other") is None and ctx.codes.get("other", "link", "t1") is None


def test_a_code_replaced_or_deleted_under_a_stale_etag_conflicts(ctx: Context) -> None:
    ctx.codes.put(_code(ctx))
    found = ctx.codes.get("shop", "link", "t1")
    assert found is not None
    ctx.codes.replace(_code(ctx, attempts=1), found[1])
    with pytest.raises(ConcurrencyConflict):
        ctx.codes.replace(_code(ctx, attempts=2), found[1])
    with pytest.raises(ConcurrencyConflict):
        ctx.codes.delete("shop", "link", "t1", found[1])
    fresh = ctx.codes.get("shop", "link", "t1")
    assert fresh is not None and fresh[0].attempts == 1
    ctx.codes.delete("shop", "link", "t1", fresh[1])
    assert ctx.codes.get("shop", "link", "t1") is None
    with pytest.raises((NotFound, ConcurrencyConflict)):
        ctx.codes.delete("shop", "link", "t1", fresh[1])


def _session(ctx: Context, key: str = "k" * 64, hours: int = 8, signed_in: bool = True) -> Session:
    me = SubscriberPrincipal("shop", "l" + "a" * 40, "https://idp/v2.0", "sub-1", "a@example.com", "Ada", key)
    return Session(key, "shop", "csrf-1", ctx.clock.now() + timedelta(hours=hours), me if signed_in else None,
                   {"state": "s", "code_verifier": "v"} if not signed_in else None, "/api/pages/shop/my")


def test_a_session_is_stored_read_and_deleted(ctx: Context) -> None:
    ctx.sessions.put(_session(ctx))
    found = ctx.sessions.get("shop", "k" * 64)
    assert found is not None and found.principal is not None
    assert (found.csrf, found.return_to, found.principal.login, found.principal.email) == (
        "csrf-1", "/api/pages/shop/my", "l" + "a" * 40, "a@example.com")
    assert ctx.sessions.get("other", "k" * 64) is None
    pending = _session(ctx, "p" * 64, signed_in=False)
    ctx.sessions.put(pending)
    back = ctx.sessions.get("shop", "p" * 64)
    assert back is not None and back.principal is None and back.flow == {"state": "s", "code_verifier": "v"}
    ctx.sessions.delete("shop", "k" * 64)
    ctx.sessions.delete("shop", "k" * 64)  # deleting again is harmless
    assert ctx.sessions.get("shop", "k" * 64) is None


def test_a_code_sent_is_stored_only_as_a_salted_hash_and_redeemed_once(ctx: Context, notices: FakeNotifier) -> None:
    verification.send_code(ctx, "shop", "link", "t9", "ada@example.com", {"subscriber": "7"}, "en")
    sent = list(notices.delivered.values())[-1]
    code = sent_code(notices)
    assert sent.to == "ada@example.com" and code.isdigit()
    stored = ctx.codes.get("shop", "link", "t9")
    assert stored is not None and code not in stored[0].code_hash and "$" in stored[0].code_hash
    assert verification.redeem(ctx, "shop", "link", "t9", code) == {"subscriber": "7"}
    with pytest.raises(CodeRefused):
        verification.redeem(ctx, "shop", "link", "t9", code)


def test_a_code_expires_after_fifteen_minutes(ctx: Context, notices: FakeNotifier) -> None:
    verification.send_code(ctx, "shop", "link", "t2", "ada@example.com", {"n": "1"})
    code = sent_code(notices)
    ctx.clock.advance(timedelta(minutes=15))  # type: ignore[attr-defined]
    with pytest.raises(CodeRefused) as refused:
        verification.redeem(ctx, "shop", "link", "t2", code)
    assert str(refused.value) == verification.REFUSED


def test_five_wrong_tries_kill_the_code_even_for_the_right_one(ctx: Context, notices: FakeNotifier) -> None:
    verification.send_code(ctx, "shop", "link", "t3", "ada@example.com", {"n": "1"})
    code = sent_code(notices)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(verification.MAX_TRIES):
        with pytest.raises(CodeRefused):
            verification.redeem(ctx, "shop", "link", "t3", wrong)
    with pytest.raises(CodeRefused):
        verification.redeem(ctx, "shop", "link", "t3", code)


def test_of_many_concurrent_redeemers_of_the_right_code_exactly_one_wins(ctx: Context, notices: FakeNotifier) -> None:
    verification.send_code(ctx, "shop", "link", "t4", "ada@example.com", {"n": "1"})
    code = sent_code(notices)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    results: list[object] = []
    start = threading.Barrier(8)

    def redeem(guess: str) -> None:
        start.wait()
        try:
            results.append(verification.redeem(ctx, "shop", "link", "t4", guess))
        except CodeRefused:
            results.append("refused")

    threads = [threading.Thread(target=redeem, args=(code if i % 2 == 0 else wrong,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count({"n": "1"}) == 1 and results.count("refused") == 7
