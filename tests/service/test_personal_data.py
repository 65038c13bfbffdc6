"""Personal data on My page (M1, S8), through the use cases, once on Azurite and once on the
fakes: the profile, the verified e-mail change (the index moved so that no two subscribers
ever hold one address, also under concurrent changes and failures), the GDPR export and
the erasure (refused with reasons while money is owed or a subscription runs)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import SettableClock
from shared.domain.account import Changes, receive_payment
from shared.domain.agreements import AgreementStatus, PaymentAgreement, Provider
from shared.domain.payments import MatchType, ReceivedPayment
from shared.ports import NotFound
from shared.service import customer_service as cs
from shared.service import personal_data as pd
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import change
from shared.service.verification import CodeRefused
from tests.conftest import oslo_morning
from tests.fakes import FakeContext, fake_context
from tests.fixtures import install_catalogue, order
from tests.service.my_data_support import last_code, link_holder

pytestmark = pytest.mark.fakes  # every test: once on Azurite, once on the fakes


def subscriber(ctx: Context, shop: str, n: int = 1) -> tuple[int, str]:
    placed = place_order(ctx, order(shop, n))  # Kari Nordmann n, kari{n}@example.no, 5 Jan 2026
    return placed.subscriber_no, placed.subscription_id


def test_the_holder_reads_and_changes_the_profile_and_nobody_else_sees_it(ctx: Context, shop: str) -> None:
    n, _ = subscriber(ctx, shop)
    other, _ = subscriber(ctx, shop, 2)
    me = link_holder(ctx, shop, n, "kari")
    assert pd.profile(ctx, me, n)["name"] == "Kari Nordmann 1"
    changed = pd.change_profile(ctx, me, n, {"address": "Storgata 1", "postal_code": "0155", "city": "Oslo",
                                             "phone": None})
    assert (changed["address"], changed["postal_code"], changed["city"]) == ("Storgata 1", "0155", "Oslo")
    assert ctx.accounts.load(shop, n).account.subscriber.city == "Oslo"  # type: ignore[union-attr]
    assert changed["email"] == "kari1@example.no"  # the address changes only by a code
    with pytest.raises(NotFound):
        pd.profile(ctx, me, other)
    with pytest.raises(NotFound):
        pd.change_profile(ctx, me, other, {"name": "Not mine"})
    assert ctx.accounts.load(shop, other).account.subscriber.name == "Kari Nordmann 2"  # type: ignore[union-attr]
    with pytest.raises(pd.PersonalDataRefused):
        pd.change_profile(ctx, me, n, {"name": None})
    with pytest.raises(ValueError):
        pd.change_profile(ctx, me, n, {"email": "x@example.no"})


def test_an_email_change_is_confirmed_by_the_code_sent_to_the_new_address(ctx: Context, shop: str) -> None:
    n, _ = subscriber(ctx, shop)
    me = link_holder(ctx, shop, n, "kari")
    pd.request_email_change(ctx, me, n, "Kari.New@Example.no")
    with pytest.raises(CodeRefused):
        pd.confirm_email_change(ctx, me, n, "000000" if last_code(ctx, shop, "kari.new@example.no") != "000000"
                                else "111111")
    code = last_code(ctx, shop, "kari.new@example.no")
    assert pd.confirm_email_change(ctx, me, n, code)["email"] == "Kari.New@Example.no"
    assert ctx.emails.find(shop, "kari.new@example.no") == n
    assert ctx.emails.find(shop, "kari1@example.no") is None  # the old address is free for anyone
    with pytest.raises(CodeRefused):  # single use
        pd.confirm_email_change(ctx, me, n, code)


def test_a_code_is_for_the_login_that_asked_and_an_address_in_use_is_refused_only_to_its_owner(
        ctx: Context, shop: str) -> None:
    n, _ = subscriber(ctx, shop)
    taken, _ = subscriber(ctx, shop, 2)
    me, partner = link_holder(ctx, shop, n, "kari"), link_holder(ctx, shop, n, "ola")
    pd.request_email_change(ctx, me, n, "shared@example.no")
    with pytest.raises(CodeRefused):  # the same subscriber's other login cannot use my code
        pd.confirm_email_change(ctx, partner, n, last_code(ctx, shop, "shared@example.no"))
    # asking for another subscriber's address answers exactly as for a free one: a code goes there
    assert pd.request_email_change(ctx, me, n, "kari2@example.no") is None
    with pytest.raises(pd.EmailInUse):  # the mailbox's owner, holding the code, learns it is taken
        pd.confirm_email_change(ctx, me, n, last_code(ctx, shop, "kari2@example.no"))
    assert ctx.emails.find(shop, "kari2@example.no") == taken and ctx.emails.find(shop, "kari1@example.no") == n
    assert ctx.accounts.load(shop, n).account.subscriber.email == "kari1@example.no"  # type: ignore[union-attr]


def test_concurrent_changes_to_one_address_leave_it_with_exactly_one_subscriber(ctx: Context, shop: str) -> None:
    numbers = [subscriber(ctx, shop, i)[0] for i in range(1, 7)]
    results: dict[int, str] = {}

    def move(n: int) -> None:
        try:
            pd.move_email(ctx, shop, n, "wanted@example.no")
            results[n] = "moved"
        except pd.EmailInUse:
            results[n] = "refused"

    threads = [threading.Thread(target=move, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, r in results.items() if r == "moved"]
    assert len(winners) == 1 and len(results) == len(numbers)
    assert ctx.emails.find(shop, "wanted@example.no") == winners[0]
    for i, n in enumerate(numbers, start=1):
        row = ctx.accounts.load(shop, n).account.subscriber.email  # type: ignore[union-attr]
        assert row == ("wanted@example.no" if n in winners else f"kari{i}@example.no")
        assert ctx.emails.find(shop, row) == n  # every subscriber's own address still names it


def test_one_subscriber_changing_twice_at_once_keeps_exactly_the_address_its_row_has(ctx: Context, shop: str) -> None:
    n, _ = subscriber(ctx, shop)
    targets = [f"new{i}@example.no" for i in range(5)]
    threads = [threading.Thread(target=pd.move_email, args=(ctx, shop, n, t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = ctx.accounts.load(shop, n).account.subscriber.email  # type: ignore[union-attr]
    assert final in targets
    bound = {a for a in [*targets, "kari1@example.no"] if ctx.emails.find(shop, a) == n}
    assert bound == {final}  # the losers' claims and the old address were released


def test_a_change_that_fails_to_commit_releases_the_new_address(fake_ctx: FakeContext, clock: object) -> None:
    ctx, shop = fake_ctx, "fault"
    install_catalogue(ctx, shop)
    n, _ = subscriber(ctx, shop)
    ctx.accounts.inject("commit", RuntimeError("storage went away"))
    with pytest.raises(RuntimeError):
        pd.move_email(ctx, shop, n, "new@example.no")
    assert ctx.emails.find(shop, "new@example.no") is None and ctx.emails.find(shop, "kari1@example.no") == n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=12))
def test_any_sequence_of_changes_keeps_index_and_rows_one_to_one(moves: list[tuple[int, int]]) -> None:
    """Whatever subscribers move to whatever addresses (some theirs, some others', some
    free), each row's address is in the index under that subscriber, and no address in
    the index names a subscriber whose row has another one."""
    ctx = fake_context(SettableClock(oslo_morning(date(2026, 1, 5))))
    shop = "prop"
    install_catalogue(ctx, shop)
    numbers = [subscriber(ctx, shop, i)[0] for i in range(1, 5)]
    addresses = [f"kari{i}@example.no" for i in range(1, 5)] + ["a@example.no", "b@example.no"]
    for who, where in moves:
        try:
            pd.move_email(ctx, shop, numbers[who], addresses[where])
        except pd.EmailInUse:
            pass
    rows = {n: ctx.accounts.load(shop, n).account.subscriber.email.lower() for n in numbers}  # type: ignore[union-attr]
    assert len(set(rows.values())) == len(rows)
    for a in addresses:
        owner = ctx.emails.find(shop, a)
        assert owner is None or rows[owner] == a
    assert all(ctx.emails.find(shop, a) == n for n, a in rows.items())


def pay_first_invoice(ctx: Context, shop: str, n: int) -> None:
    demand = next(iter(ctx.accounts.load(shop, n).account.open_demands.values()))  # type: ignore[union-attr]
    payment = ReceivedPayment(f"pay-{n}", "avisa", "NOK", demand.open_minor, date(2026, 1, 10), "test",
                              MatchType.SUBSCRIBER_AND_INVOICE, demand_no=demand.demand_no)
    change(ctx, shop, n, lambda seen: receive_payment(seen.account, payment, seen.catalogue, seen.today))


def test_erase_is_refused_with_reasons_while_money_is_owed_or_a_subscription_runs(ctx: Context, shop: str) -> None:
    n, sub = subscriber(ctx, shop)
    me = link_holder(ctx, shop, n, "kari")
    with pytest.raises(pd.ErasureRefused) as refused:
        pd.erase(ctx, me, n)
    assert len(refused.value.reasons) == 2 and "owing" in str(refused.value) and sub in str(refused.value)
    pay_first_invoice(ctx, shop, n)
    with pytest.raises(pd.ErasureRefused) as refused:
        pd.erase(ctx, me, n)
    assert refused.value.reasons == [f"subscriptions are active or start later ({sub}): stop them first"]
    assert ctx.accounts.load(shop, n).account.subscriber.erased is None  # type: ignore[union-attr]


def test_erase_pseudonymises_keeps_the_books_and_removes_logins_index_and_access(ctx: Context, shop: str) -> None:
    n, sub = subscriber(ctx, shop)
    me = link_holder(ctx, shop, n, "kari")
    pay_first_invoice(ctx, shop, n)
    cs.stop(ctx, shop, n, sub, True, None, None, "moving abroad")  # at the end of the paid period: 5 Feb
    ctx.clock.set(oslo_morning(date(2026, 2, 6)))  # type: ignore[attr-defined]
    declined = PaymentAgreement("vipps-1", Provider.VIPPS, "avisa", "s-declined", AgreementStatus.REJECTED,
                                date(2026, 1, 5), 34800, "NOK", order={"name": "Kari Nordmann 1", "phone": "+479123"})
    change(ctx, shop, n, lambda seen: Changes(replace(seen.account, agreements={declined.key: declined})))
    before = ctx.accounts.documents(shop, n)
    exported = pd.export(ctx, me, n)
    assert exported["profile"]["email"] == "kari1@example.no" and len(exported["invoices"]) == 1
    assert exported["logins"][0]["login"] == me.login and exported["payments"][0]["payment"]["id"] == f"pay-{n}"
    done = pd.erase(ctx, me, n)
    assert done.erased == date(2026, 2, 6)
    acc = ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    assert (acc.subscriber.name, acc.subscriber.email, acc.subscriber.address) == (
        f"Erased subscriber {n}", f"erased-{n}@invalid", None)
    assert acc.logins == {} and ctx.access.get(shop, me.login) is None
    assert acc.agreements["vipps-1"].order is None  # the declined order's name and phone went too
    assert ctx.emails.find(shop, "kari1@example.no") is None
    after = ctx.accounts.documents(shop, n)
    assert after.invoices == before.invoices and after.ledger == before.ledger  # bokføringsloven: kept as issued
    assert all(d.recipient == "" for d in ctx.deliveries.list(shop, n))
    with pytest.raises(NotFound):  # the login is linked to nothing any more
        pd.profile(ctx, me, n)


def test_erasing_twice_changes_nothing_more(fake_ctx: FakeContext) -> None:
    ctx, shop = fake_ctx, "twice"
    install_catalogue(ctx, shop)
    n, sub = subscriber(ctx, shop)
    me, partner = link_holder(ctx, shop, n, "kari"), link_holder(ctx, shop, n, "ola")
    pay_first_invoice(ctx, shop, n)
    cs.stop(ctx, shop, n, sub, True, None, None, "moving")
    ctx.clock.set(oslo_morning(date(2026, 2, 6)))
    pd.erase(ctx, me, n)
    first = ctx.accounts.load(shop, n)
    assert ctx.access.get(shop, partner.login) is None  # every login's row went with its link
    with pytest.raises(NotFound):  # a repeat (the other login too) finds nothing to act on
        pd.erase(ctx, partner, n)
    assert ctx.accounts.load(shop, n) == first


def test_the_export_shows_a_cards_mask_but_never_its_token(ctx: Context, shop: str) -> None:
    n, sub = subscriber(ctx, shop)
    me = link_holder(ctx, shop, n, "kari")
    card = PaymentAgreement("card-1", Provider.SWEDBANKPAY, "avisa", sub, AgreementStatus.ACTIVE, date(2026, 1, 5),
                            34800, "NOK", token="tok-secret-0123", card_mask="492500******0004",
                            card_expiry=date(2028, 1, 31))
    change(ctx, shop, n, lambda seen: Changes(replace(seen.account, agreements={card.key: card})))
    exported = pd.export(ctx, me, n)
    assert exported["agreements"][0]["card_mask"] == "492500******0004"
    assert "tok-secret-0123" not in json.dumps(exported)
    assert json.loads(json.dumps(exported)) == exported  # plain JSON all through
