"""Dunning, with the manual's worked examples (7.7, 7.9, 7.19)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from shared.domain.dunning import DunningCase, IssueReminder, PaymentStop, Reminder, ReminderStep, StopRule, evaluate

DUE = date(2026, 2, 5)
STEPS = (ReminderStep(delay_days=7, min_due_days=10, fee_minor=3500), ReminderStep(delay_days=5, min_due_days=10,
                                                                                 fee_minor=3500))
STOP = StopRule(delay_days=10, threshold_minor=10000)


def run(case: DunningCase, owed: int, today: date, consume: bool = True):  # type: ignore[no-untyped-def]
    return evaluate(STEPS, STOP, consume, case, owed, today)


def test_manual_7_9_example_1_invoice_500_paid_400_gives_a_reminder_of_100() -> None:
    steps = (ReminderStep(delay_days=7, min_due_days=10),)
    action = evaluate(steps, None, True, DunningCase(50000, 10000, DUE), 10000, DUE + timedelta(days=7))
    assert isinstance(action, IssueReminder) and action.reminder.amount_minor == 10000


def test_manual_7_9_example_2_a_credit_given_before_the_reminder_does_not_lower_it() -> None:
    # 500 invoice, 400 paid, then 100 credit given: the subscriber owes nothing net, but only
    # direct payments lower a reminder, so it is still 100 (the credit goes to the next invoice)
    steps = (ReminderStep(delay_days=7, min_due_days=10),)
    action = evaluate(steps, None, True, DunningCase(50000, 10000, DUE), 0, DUE + timedelta(days=7))
    assert isinstance(action, IssueReminder) and action.reminder.amount_minor == 10000


def test_manual_7_19_reminder_2_comes_5_days_after_reminder_1_falls_due_10_days_after_it_was_produced() -> None:
    case = DunningCase(34800, 34800, DUE)
    assert run(case, 34800, DUE + timedelta(days=6)) is None
    first = run(case, 34800, DUE + timedelta(days=7))
    assert isinstance(first, IssueReminder)
    assert (first.reminder.produced, first.reminder.due_date) == (date(2026, 2, 12), date(2026, 2, 22))
    case = replace(case, reminders=(first.reminder,))
    assert run(case, 34800, date(2026, 2, 26)) is None  # 22 Feb + 5 days = 27 Feb
    second = run(case, 34800, date(2026, 2, 27))
    assert isinstance(second, IssueReminder)
    # fees accumulate: 348.00 + 35.00 + 35.00
    assert (second.reminder.step, second.reminder.amount_minor) == (2, 34800 + 3500 + 3500)


def test_without_consuming_partial_payments_the_reminder_asks_for_the_whole_invoice() -> None:
    action = run(DunningCase(50000, 10000, DUE), 10000, DUE + timedelta(days=7), consume=False)
    assert isinstance(action, IssueReminder) and action.reminder.amount_minor == 50000 + 3500


def test_a_postponed_reminder_waits_for_its_new_date() -> None:
    case = DunningCase(34800, 34800, DUE, postponed_to=date(2026, 3, 1))
    assert run(case, 34800, date(2026, 2, 28)) is None
    assert isinstance(run(case, 34800, date(2026, 3, 1)), IssueReminder)


def test_manual_7_19_stop_rule_delay_10_threshold_100_after_the_last_reminder() -> None:
    reminders = (Reminder(1, date(2026, 2, 12), date(2026, 2, 22), 3500, 38300),
                 Reminder(2, date(2026, 2, 27), date(2026, 3, 9), 3500, 41800))
    case = DunningCase(34800, 34800, DUE, reminders)
    assert run(case, 41800, date(2026, 3, 18)) is None  # 9 Mar + 10 days = 19 Mar
    assert run(case, 41800, date(2026, 3, 19)) == PaymentStop("Stopped due to lack of payment")
    assert run(case, 10000, date(2026, 3, 19)) == PaymentStop("Stopped due to lack of payment")  # 100 or more
    assert run(case, 9999, date(2026, 3, 19)) is None  # owes less than the threshold


def test_a_threshold_of_zero_stops_anyone_who_owes_anything_and_nobody_who_owes_nothing() -> None:
    stop = StopRule(delay_days=0, threshold_minor=0)
    case = DunningCase(100, 100, DUE)
    assert evaluate((), stop, True, case, 100, DUE) == PaymentStop("Stopped due to lack of payment")
    assert evaluate((), stop, True, case, 0, DUE) is None


def test_no_dunning_process_means_no_reminders_and_no_stop_and_a_paid_invoice_nothing() -> None:
    case = DunningCase(34800, 34800, DUE)
    assert evaluate((), None, True, case, 34800, DUE + timedelta(days=365)) is None
    assert run(replace(case, open_minor=0), 0, DUE + timedelta(days=365)) is None


def test_evaluating_the_same_day_twice_says_the_same() -> None:
    case = DunningCase(34800, 34800, DUE)
    assert run(case, 34800, DUE + timedelta(days=7)) == run(case, 34800, DUE + timedelta(days=7))
