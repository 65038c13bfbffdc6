"""The subscriber partition's rows: what grows with history has rows of its own, a commit
writes only the rows that changed, and the first layout still loads (issue 8, part 4)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.accounts import HEAD, TABLE, AccountRepository, Loaded, _item_rows, partition_key
from shared.adapters.codec import demand_json, dumps
from shared.domain.account import Account, BalanceCheck, Changes, Correction, Mandate, OrderBlock
from shared.domain.demands import DemandTerms, OpenDemand
from shared.domain.events import InvoicePaid
from shared.domain.invoicing import DocumentKind
from shared.domain.subscriptions import Subscriber
from shared.service.context import Context

DAY = date(2026, 1, 5)
ORGS = ("avisa", "a/b#c?", "ø x\\y")  # organisation ids a key could not hold as they are


def demand(n: int, open_minor: int) -> OpenDemand:
    terms = DemandTerms(1000 + n, "avisa", "s1", DAY + timedelta(days=n), total_minor=open_minor,
                        amount_due_minor=open_minor, period_start=DAY, period_end=DAY + timedelta(days=30))
    return OpenDemand(n, terms, open_minor)


Step = tuple[str, int, int]  # (what, which, how much)
steps = st.tuples(st.sampled_from(["demand", "pay", "mandate", "unmandate", "block", "unblock", "correct",
                                   "uncorrect", "check", "uncheck", "balance", "counters"]),
                  st.integers(0, 40), st.integers(1, 10**6))


def apply(account: Account, step: Step) -> Account:
    what, i, amount = step
    org = ORGS[i % len(ORGS)]
    match what:
        case "demand":
            return replace(account, open_demands={**account.open_demands, i: demand(i, amount)})
        case "pay":
            return replace(account, open_demands={k: v for k, v in account.open_demands.items() if k != i})
        case "mandate":
            return replace(account, mandates={**account.mandates, org: Mandate(str(amount), amount % 2 == 0, True,
                                                                               DAY)})
        case "unmandate":
            return replace(account, mandates={k: v for k, v in account.mandates.items() if k != org})
        case "block":
            return replace(account, order_blocks={**account.order_blocks, org: OrderBlock(f"r{amount}", DAY)})
        case "unblock":
            return replace(account, order_blocks={k: v for k, v in account.order_blocks.items() if k != org})
        case "correct":
            correction = Correction(f"c{amount}", org, -amount, "Credit", DAY)
            return replace(account, corrections=(*account.corrections, correction))
        case "uncorrect":
            return replace(account, corrections=tuple(c for n, c in enumerate(account.corrections) if n != i % 4))
        case "check":
            check = BalanceCheck(org, "s1", DAY + timedelta(days=amount % 100))
            return replace(account, balance_checks=(*account.balance_checks, check))
        case "uncheck":
            return replace(account, balance_checks=tuple(c for n, c in enumerate(account.balance_checks)
                                                         if n != i % 3))
        case "balance":
            return replace(account, balances={**account.balances, org: -amount})
    return replace(account, next_demand_no=account.next_demand_no + i, next_ledger_seq=account.next_ledger_seq + 1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(steps, min_size=1, max_size=4), min_size=1, max_size=6))
def test_random_account_changes_committed_and_reloaded_give_back_the_account_and_touch_only_changed_rows(
        ctx: Context, commits: list[list[Step]]) -> None:
    repo, tenant = AccountRepository(ctx.storage), f"p{uuid.uuid4().hex[:10]}"
    account = Account(Subscriber(7, "Kari Nordmann", "kari@example.no"))
    loaded: Loaded | None = None
    for batch in [[], *commits]:
        for step in batch:
            account = apply(account, step)
        stored = loaded.stored if loaded else {}
        wanted = _item_rows(account, stored)
        ops = repo.operations(tenant, loaded, Changes(account))
        place = repo.place(tenant, 7)
        assert ops[0][1]["RowKey"] == place.rk(HEAD)
        assert loaded is None or ops[0][2]["etag"] == loaded.etag  # type: ignore[misc]
        for op in ops[1:]:  # every item row written differs from what is stored
            rk = place.local(op[1]["RowKey"])
            assert rk not in stored or rk not in wanted or stored[rk] != wanted[rk], (op[0], rk)
        before = ctx.storage.round_trips.count
        loaded = repo.commit(tenant, loaded, Changes(account))
        again = repo.load(tenant, 7)
        assert ctx.storage.round_trips.count - before == 2  # one transaction, one query
        assert again is not None and again.account == account == loaded.account
        assert again.etag == loaded.etag and again.stored == loaded.stored


def first_layout(pk: str, account: Account) -> dict[str, Any]:
    """The subscriber row as the first layout wrote it: every item in a JSON property."""
    return {"PartitionKey": pk, "RowKey": HEAD, "Subscriber": dumps(account.subscriber),
            "Balances": json.dumps(dict(account.balances)), "NextDemandNo": account.next_demand_no,
            "NextLedgerSeq": account.next_ledger_seq,
            "OpenDemands": json.dumps([demand_json(d) for d in account.open_demands.values()]),  # flat, as ever
            "Mandates": dumps(dict(account.mandates), dict[str, Mandate]),
            "Corrections": dumps(account.corrections, tuple[Correction, ...]), "Credited": json.dumps([1001]),
            "BalanceChecks": dumps(account.balance_checks, tuple[BalanceCheck, ...]),
            "OrderBlocks": dumps(dict(account.order_blocks), dict[str, OrderBlock]),
            "Name": account.subscriber.name, "Email": account.subscriber.email}


def test_a_subscriber_row_of_the_first_layout_loads_and_its_first_commit_moves_its_items_to_rows(
        ctx: Context) -> None:
    tenant = f"m{uuid.uuid4().hex[:10]}"
    account = Account(Subscriber(8, "Ola", "ola@example.no"), balances={"avisa": -30000}, next_demand_no=4,
                      open_demands={n: demand(n, 10000) for n in (1, 2, 3)},
                      mandates={"avisa": Mandate("123", True, False, DAY)},
                      corrections=(Correction("c1", "avisa", -500, "Goodwill", DAY),),
                      balance_checks=(BalanceCheck("avisa", "s1", DAY),),
                      order_blocks={"avisa": OrderBlock("fraud", DAY)})
    pk = partition_key(tenant, 8)
    ctx.storage.transact(TABLE, [("create", first_layout(pk, account))])
    loaded = ctx.accounts.load(tenant, 8)
    assert loaded is not None and loaded.account == account  # credited: from the credit notes, not the row
    paid = replace(account, open_demands={n: d for n, d in account.open_demands.items() if n != 1},
                   balances={"avisa": -20000})
    ctx.accounts.commit(tenant, loaded, Changes(paid))
    head = ctx.storage.get(TABLE, pk, HEAD)
    assert head is not None and not {"OpenDemands", "Mandates", "Corrections", "Credited", "BalanceChecks",
                                     "OrderBlocks"} & set(head)
    rows = {r["RowKey"] for r in ctx.storage.query(TABLE, "PartitionKey eq @pk", {"pk": pk})}
    assert rows == {HEAD, "0|dem|00000002", "0|dem|00000003", "0|man|avisa", "0|blk|avisa", "0|cor|0000000001",
                    "0|bal|0000000001"}
    again = ctx.accounts.load(tenant, 8)
    assert again is not None and again.account == paid


def test_an_outbox_row_written_before_events_were_typed_loads_and_is_sent_and_deleted(ctx: Context) -> None:
    tenant = f"o{uuid.uuid4().hex[:10]}"
    account = Account(Subscriber(9, "Kari", "kari@example.no"), balances={"avisa": 0})
    ctx.accounts.commit(tenant, None, Changes(account))
    place = ctx.accounts.place(tenant, 9)
    old_body = json.dumps({"id": "invoice-paid.avisa.3", "type": "InvoicePaid",  # no version: the first form
                           "payload": {"subscriber_no": 9, "invoice_number": 3, "organization_id": "avisa"}})
    ctx.storage.transact(TABLE, [("create", {"PartitionKey": place.pk,
                                             "RowKey": place.rk("0|out|invoice-paid.avisa.3"), "Body": old_body})])
    loaded = ctx.accounts.load(tenant, 9)
    assert loaded is not None and loaded.outbox == [InvoicePaid("invoice-paid.avisa.3", 9, 3, "avisa")]
    ctx.accounts.commit(tenant, loaded, Changes(replace(account, balances={"avisa": 100})))
    again = ctx.accounts.load(tenant, 9)
    assert again is not None and again.outbox == []  # sent with that commit, so deleted by it


def test_an_open_demand_row_as_written_before_the_split_loads_and_is_written_back_in_that_form(
        ctx: Context) -> None:
    tenant = f"d{uuid.uuid4().hex[:10]}"
    account = Account(Subscriber(10, "Ola", "ola@example.no"), balances={"avisa": -38700 - 3500}, next_demand_no=9)
    ctx.accounts.commit(tenant, None, Changes(account))
    place = ctx.accounts.place(tenant, 10)
    body = ('{"demand_no":3,"invoice_number":3,"organization_id":"avisa","subscription_id":"s1",'  # a row of today
            '"due_date":"2026-03-05","open_minor":42200,"total_minor":38700,"amount_due_minor":38700,'
            '"kind":"subscription","fees_minor":3500,"reminders":[{"step":1,"produced":"2026-03-12",'
            '"due_date":"2026-03-22","fee_minor":3500,"amount_minor":42200,"demand_no":8,"kid":"000001000086"}],'
            '"postponed_to":null,"postpone_reason":"","stop_noticed":true,"period_start":"2026-03-05",'
            '"period_end":"2026-04-05","vat":[{"rate_bp":0,"gross_minor":38700,"vat_minor":0,"net_minor":38700}]}')
    ctx.storage.transact(TABLE, [("create", {"PartitionKey": place.pk, "RowKey": place.rk("0|dem|00000003"),
                                             "Body": body})])
    loaded = ctx.accounts.load(tenant, 10)
    assert loaded is not None
    demand = loaded.account.open_demands[3]
    assert (demand.terms.invoice_number, demand.terms.kind, demand.terms.period_end) == (
        3, DocumentKind.SUBSCRIPTION, date(2026, 4, 5))
    assert (demand.open_minor, demand.fees_minor, demand.principal_open_minor) == (42200, 3500, 38700)
    assert demand.dunning.stop_noticed and [r.kid for r in demand.dunning.reminders] == ["000001000086"]
    assert demand.answers_to(8) and demand.terms.vat[0].gross_minor == 38700
    paid = replace(demand, open_minor=3500)
    ctx.accounts.commit(tenant, loaded, Changes(replace(loaded.account, open_demands={3: paid})))
    row = ctx.storage.get(TABLE, place.pk, place.rk("0|dem|00000003"))
    assert row is not None and json.loads(row["Body"]) == {**json.loads(body), "open_minor": 3500}  # the same form
    again = ctx.accounts.load(tenant, 10)
    assert again is not None and again.account.open_demands == {3: paid}
