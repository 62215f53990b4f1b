"""The record's reads behind the dashboard, on SQLite and PostgreSQL: facts, filters, counts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from followthrough.domain.draft import Priority
from followthrough.domain.escalation import last_due_as_late
from followthrough.domain.metrics import ItemFacts, Period
from followthrough.domain.overview import overview
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState
from followthrough.domain.themes import FactorTags
from followthrough.reporting.metrics_view import MetricsCache, measure
from followthrough.storage import Store, work
from tests.test_storage import T0, item_change, make_item, make_postmortem, pm_change


def record(store: Store, policy: Policy) -> None:
    """Two incidents a week apart; three items of the first, one of the second."""
    first = make_postmortem(policy, "INC-1")
    later = make_postmortem(policy, "INC-2").incident.model_copy(
        update={"resolved_at": T0 + timedelta(days=7)}
    )
    second = make_postmortem(policy, "INC-2", incident=later)
    store.records.record_postmortem(pm_change(first, 1))
    store.records.record_postmortem(pm_change(second, 1))
    items = [
        make_item(first, 1, owner="bob", team="payments"),
        make_item(first, 2, owner="carol", team="platform", state=ActionItemState.DONE_CLAIMED),
        make_item(first, 3, owner="bob", team="payments", state=ActionItemState.VERIFIED),
        make_item(second, 1, owner="bob", team="payments", state=ActionItemState.QUEUED),
    ]
    for item in items:
        store.records.record_action_item(item_change(item))
    store.themes.note_factor_tags(
        FactorTags(
            postmortem_id=first.id,
            resolved_at=first.incident.resolved_at,
            tags=["deploy", "capacity"],
            team="payments",
            services=["checkout"],
            severity="SEV2",
            at=T0,
            threshold=3,
            window_days=90,
        )
    )


def test_incident_facts_of_a_period(store: Store, policy: Policy) -> None:
    record(store, policy)
    first_week = store.facts.incidents(T0 - timedelta(days=1), T0)
    assert [f.incident_id for f in first_week] == ["INC-1"]
    facts = first_week[0]
    assert facts.factor_tags == ["capacity", "deploy"]
    incident = make_postmortem(policy, "INC-1").incident
    assert facts.started_at == incident.started_at and facts.resolved_at == incident.resolved_at
    assert facts.services == incident.services
    both = store.facts.incidents(T0 - timedelta(days=1), T0 + timedelta(days=8))
    assert [f.incident_id for f in both] == ["INC-1", "INC-2"]  # oldest first
    assert both[1].factor_tags == []
    assert store.facts.incidents(T0 + timedelta(days=8), T0 + timedelta(days=9)) == []


def ids(facts: list[ItemFacts]) -> list[str]:
    return [f.id.removeprefix("postmortem-generic-") for f in facts]


def test_item_facts_filter_count_and_page(store: Store, policy: Policy) -> None:
    record(store, policy)
    assert len(store.facts.items()) == 4 and store.facts.count_items() == 4
    assert ids(store.facts.items(owner="bob", state="open")) == ["INC-1-item-1"]
    assert store.facts.count_items(team="payments") == 3
    # Overdue: due 2025-04-01, still open or claimed; verified and queued ones are not.
    overdue = store.facts.items(overdue_on=date(2025, 4, 2))
    assert ids(overdue) == ["INC-1-item-1", "INC-1-item-2"]
    assert store.facts.count_items(overdue_on=date(2025, 4, 2)) == 2
    assert store.facts.items(overdue_on=date(2025, 4, 1)) == []  # due today is not overdue
    # Of the incidents resolved in a period (INC-1 resolved an hour before T0).
    first_week = store.facts.items(resolved_from=T0 - timedelta(days=1), resolved_before=T0)
    assert ids(first_week) == ["INC-1-item-1", "INC-1-item-2", "INC-1-item-3"]
    later = store.facts.items(resolved_from=T0 + timedelta(days=6))
    assert ids(later) == ["INC-2-item-1"]
    # Pages of a stable order (due, then id).
    assert ids(store.facts.items(offset=1, limit=2)) == ["INC-1-item-2", "INC-1-item-3"]


def test_counts_by_team_and_escalations(store: Store, policy: Policy) -> None:
    record(store, policy)
    assert store.facts.item_counts_by_team() == {
        "payments": {"open": 1, "queued": 1},
        "platform": {"done_claimed": 1},
    }
    pm = make_postmortem(policy, "INC-1")
    steps = [  # (seq, days after T0, what the workflow records)
        (2, 1, "reminder: told bob (owner); due 2025-04-01"),
        (3, 3, "manager: told maria (manager); 2 business days overdue"),
        (4, 5, "council: told grace, heidi (council); 5 business days overdue"),
    ]
    for seq, days, detail in steps:
        change = item_change(make_item(pm, 1, seq=seq), at=T0 + timedelta(days=days))
        event = change.event.model_copy(update={"action": "item.escalated", "detail": detail})
        store.records.record_action_item(change.model_copy(update={"event": event}))
    # Reminders to the owner are not escalations; the manager and the council steps are.
    assert store.facts.escalations_since(T0 + timedelta(days=6)) == []
    assert store.facts.count_escalations_since(T0 + timedelta(days=6)) == 0
    council, manager = store.facts.escalations_since(T0)
    assert council.detail.startswith("council:") and council.at == T0 + timedelta(days=5)
    assert manager.detail.startswith("manager:") and manager.item.id == pm.action_item_id(1)
    assert store.facts.count_escalations_since(T0) == 2
    assert store.facts.count_escalations_since(T0 + timedelta(days=4)) == 1


def test_each_teams_most_overdue_with_the_items_that_tie_with_them(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy, "INC-1")
    store.records.record_postmortem(pm_change(pm, 1))
    today = date(2025, 4, 14)  # a Monday

    def due(number: int, on: date, priority: Priority = Priority.P2, **updates: Any) -> None:
        item = make_item(pm, number, **updates)
        spec = item.spec.model_copy(update={"due": on, "priority": priority})
        store.records.record_action_item(
            item_change(item.model_copy(update={"spec": spec, "due": on}))
        )

    due(1, date(2025, 3, 31))  # 10 business days overdue
    due(2, date(2025, 4, 4))  # Friday: 6
    due(3, date(2025, 4, 5))  # Saturday: 5, as the Monday after it
    due(4, date(2025, 4, 7), Priority.P0)  # Monday: 5, and a P0
    due(5, date(2025, 4, 8))  # 4
    due(6, date(2025, 4, 1), team="platform", owner="carol", state=ActionItemState.DONE_CLAIMED)
    due(7, date(2025, 3, 3), state=ActionItemState.QUEUED)  # a queued item's clock waits
    due(8, date(2025, 3, 3), state=ActionItemState.VERIFIED)
    due(9, today)  # due today: not overdue yet

    def tied_through(on: date) -> date:
        return last_due_as_late(on, today, policy.calendar)

    counts, found = store.facts.most_overdue(today, most=3, tied_through=tied_through)
    assert counts == {"payments": 5, "platform": 1}
    # Payments' first three by due date, and item 4, as late as the third (due on a Saturday).
    assert sorted(ids(found)) == [
        "INC-1-item-1",
        "INC-1-item-2",
        "INC-1-item-3",
        "INC-1-item-4",
        "INC-1-item-6",
    ]
    view = overview(
        open_postmortems={},
        overdue_counts=counts,
        overdue_items=found,
        escalated=[],
        escalated_total=0,
        items_by_team={},
        policy=policy,
        today=today,
        shown=3,
    )
    payments = view.overdue[0]
    assert [(ids([o.item])[0], o.days_overdue) for o in payments.items] == [
        ("INC-1-item-1", 10),
        ("INC-1-item-2", 6),
        ("INC-1-item-4", 5),  # the P0 before item 3, as late
    ]
    assert payments.count == 5 and view.overdue_total == 6
    # Read as few as each team's first when the last of them ties with nothing after it.
    counts, found = store.facts.most_overdue(today, most=2, tied_through=tied_through)
    assert sorted(ids(found)) == ["INC-1-item-1", "INC-1-item-2", "INC-1-item-6"]


def test_my_work_reads_only_the_extension_requests_waiting_for_a_decision(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy, "INC-1")
    store.records.record_postmortem(pm_change(pm, 1))
    asked = "item.extension_requested"
    histories = {  # what each item's log says of its extensions, in order
        1: [asked, "item.extension_denied", asked],  # asked again: waiting
        2: [asked, "item.extension_approved"],  # decided
        3: [asked],  # waiting
        4: ["opened"],  # never asked
    }
    for number, actions in histories.items():
        for seq, action in enumerate(actions, start=1):
            item = make_item(pm, number, seq=seq)
            store.records.record_action_item(item_change(item, action=action))

    found = work.candidates(store.db, "grace", policy)  # a council member: every team's

    assert sorted(item.id for item in found.asking) == [pm.action_item_id(1), pm.action_item_id(3)]


def test_postmortem_facts_newest_first_filtered_and_counted(store: Store, policy: Policy) -> None:
    record(store, policy)
    page, total = store.facts.postmortems()
    assert [f.incident_id for f in page] == ["INC-2", "INC-1"] and total == 2
    page, total = store.facts.postmortems(limit=1, offset=1)
    assert [f.incident_id for f in page] == ["INC-1"] and total == 2
    assert store.facts.postmortems(state="closed") == ([], 0)
    page, total = store.facts.postmortems(severity="SEV2", team=page[0].team)
    assert total == 2


def test_the_metrics_cache_measures_again_when_the_record_changes(
    store: Store, policy: Policy
) -> None:
    record(store, policy)
    cache = MetricsCache(ttl=timedelta(minutes=10))
    period = Period(label="then", start=T0 - timedelta(days=30), end=T0 + timedelta(days=30))
    first = cache.measure(store, policy, period, T0)
    assert first.incidents == 2 and first == measure(store, policy, period, T0)
    assert cache.measure(store, policy, period, T0 + timedelta(minutes=5)) is first  # kept

    store.records.record_postmortem(pm_change(make_postmortem(policy, "INC-3"), 1))  # a change
    changed = cache.measure(store, policy, period, T0 + timedelta(minutes=6))
    assert changed is not first and changed.incidents == 3

    later = cache.measure(store, policy, period, T0 + timedelta(minutes=17))  # past the ttl
    assert later is not changed and later == measure(
        store, policy, period, T0 + timedelta(minutes=17)
    )
