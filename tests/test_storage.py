"""The record, on SQLite and on PostgreSQL: idempotent writes, filtered reads, id resolution."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import column, func, insert, inspect, select, table
from sqlalchemy.orm import Session

from followthrough.domain.criteria import Manual
from followthrough.domain.draft import ActionItemSpec, Priority, parse_draft
from followthrough.domain.incident import MILESTONES, parse_incident
from followthrough.domain.notice import NoticeKind, OutboxMessage, OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    ActionItem,
    ActionItemChange,
    ActionItemState,
    AuditEvent,
    Postmortem,
    PostmortemChange,
    PostmortemState,
    open_postmortem,
)
from followthrough.domain.response import response_milestones
from followthrough.domain.slo_specs import load_slo_specs
from followthrough.domain.themes import FactorTags
from followthrough.storage import Store
from followthrough.storage.migrate import _config, pending, upgrade
from followthrough.storage.tables import (
    ActionItemRow,
    AuditEventRow,
    HeldNoticeRow,
    PostmortemRow,
)
from tests.factories import draft_data, incident_data
from tests.processes import ROOT

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


# --- building the records -------------------------------------------------------------------------


def make_postmortem(
    policy: Policy, incident_id: str = "INC-7", *, source: str = "generic", **updates: Any
) -> Postmortem:
    incident = parse_incident(incident_data(T0, id=incident_id, source=source), policy)
    return open_postmortem(incident, policy, T0).model_copy(update=updates)


def audit(
    workflow_id: str,
    postmortem_id: str,
    seq: int,
    at: datetime,
    action: str = "opened",
    actor: str = SYSTEM_ACTOR,
) -> AuditEvent:
    return AuditEvent(
        workflow_id=workflow_id,
        postmortem_id=postmortem_id,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        detail=f"{action} #{seq}",
    )


def pm_change(
    pm: Postmortem,
    seq: int,
    *,
    at: datetime | None = None,
    action: str = "opened",
    **updates: Any,
) -> PostmortemChange:
    snapshot = pm.model_copy(update={"last_seq": seq, **updates})
    event = audit(pm.id, pm.id, seq, at or T0 + timedelta(minutes=seq), action)
    return PostmortemChange(postmortem=snapshot, event=event)


def make_item(
    pm: Postmortem,
    number: int,
    *,
    owner: str = "bob",
    team: str = "payments",
    state: ActionItemState = ActionItemState.OPEN,
    seq: int = 1,
) -> ActionItem:
    spec = ActionItemSpec(
        number=number,
        title=f"Action {number} for {pm.incident.id}",
        owner=owner,
        team=team,
        due=date(2025, 4, 1),
        priority=Priority.P2,
        acceptance_criterion=Manual(description="p99 below 300 ms for 7 days"),
    )
    return ActionItem(
        id=pm.action_item_id(number),
        postmortem_id=pm.id,
        spec=spec,
        owner=owner,
        team=team,
        due=spec.due,
        state=state,
        opened_at=T0 + timedelta(hours=1),
        last_seq=seq,
    )


def item_change(
    item: ActionItem, *, at: datetime | None = None, action: str = "opened"
) -> ActionItemChange:
    at = at or T0 + timedelta(hours=1, minutes=item.last_seq)
    return ActionItemChange(
        item=item, event=audit(item.id, item.postmortem_id, item.last_seq, at, action)
    )


def audit_rows(store: Store, workflow_id: str) -> int:
    with Session(store.engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.workflow_id == workflow_id)
        )
    return int(count or 0)


# --- postmortems ----------------------------------------------------------------------------------


def test_same_postmortem_change_writes_one_audit_row(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    change = pm_change(pm, 1)

    store.records.record_postmortem(change)
    store.records.record_postmortem(change)

    assert audit_rows(store, pm.id) == 1
    assert [e.seq for e in store.records.audit_trail(pm.id)] == [1]
    assert store.records.postmortem(pm.id) == change.postmortem


def test_record_postmortem_reports_a_repeat(
    store: Store, policy: Policy, request: pytest.FixtureRequest
) -> None:
    change = pm_change(make_postmortem(policy), 1)

    assert store.records.record_postmortem(change) is True
    assert store.records.record_postmortem(change) is False


def test_newer_snapshot_replaces_the_older(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    store.records.record_postmortem(
        pm_change(pm, 2, state=PostmortemState.IN_REVIEW, draft_version=1)
    )

    stored = store.records.postmortem(pm.id)
    assert stored is not None
    assert (stored.state, stored.draft_version, stored.last_seq) == (
        PostmortemState.IN_REVIEW,
        1,
        2,
    )


def test_older_snapshot_does_not_overwrite_a_newer_one(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    newer = pm_change(pm, 3, state=PostmortemState.IN_REVIEW, draft_version=1, action="submitted")
    older = pm_change(pm, 2, state=PostmortemState.DRAFTING, action="reminded")

    assert store.records.record_postmortem(newer) is True
    assert store.records.record_postmortem(older) is True  # its audit event is new, so it is kept

    stored = store.records.postmortem(pm.id)
    assert stored is not None
    assert (stored.state, stored.last_seq, stored.draft_version) == (
        PostmortemState.IN_REVIEW,
        3,
        1,
    )
    # The queryable columns did not regress either.
    assert [p.id for p in store.records.postmortems(state="in_review")] == [pm.id]
    assert store.records.postmortems(state="drafting") == []
    assert [e.action for e in store.records.audit_trail(pm.id)] == ["reminded", "submitted"]


def test_postmortems_filter_by_state(store: Store, policy: Policy) -> None:
    drafting = make_postmortem(policy, "INC-1")
    optional = make_postmortem(policy, "INC-2", severity="SEV3", state=PostmortemState.OPTIONAL)
    store.records.record_postmortem(pm_change(drafting, 1))
    store.records.record_postmortem(pm_change(optional, 1))

    assert {p.id for p in store.records.postmortems()} == {drafting.id, optional.id}
    assert [p.id for p in store.records.postmortems(state="optional")] == [optional.id]
    assert store.records.postmortem("postmortem-generic-INC-404") is None


# --- action items ---------------------------------------------------------------------------------


def test_same_action_item_change_writes_one_audit_row(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    change = item_change(make_item(pm, 1))

    store.records.record_action_item(change)
    store.records.record_action_item(change)

    assert audit_rows(store, change.item.id) == 1
    assert store.records.action_item(change.item.id) == change.item


def test_record_action_item_reports_a_repeat(
    store: Store, policy: Policy, request: pytest.FixtureRequest
) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    change = item_change(make_item(pm, 1))

    assert store.records.record_action_item(change) is True
    assert store.records.record_action_item(change) is False


def test_older_action_item_snapshot_does_not_regress(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    claimed = make_item(pm, 1, state=ActionItemState.DONE_CLAIMED, seq=2)
    opened = make_item(pm, 1, state=ActionItemState.OPEN, seq=1)

    assert store.records.record_action_item(item_change(claimed, action="claimed")) is True
    assert store.records.record_action_item(item_change(opened, action="opened")) is True

    stored = store.records.action_item(claimed.id)
    assert stored is not None
    assert (stored.state, stored.last_seq) == (ActionItemState.DONE_CLAIMED, 2)
    assert [i.id for i in store.records.action_items(state="done_claimed")] == [claimed.id]
    assert store.records.action_items(state="open") == []


def test_action_item_listing_filters(store: Store, policy: Policy) -> None:
    first = make_postmortem(policy, "INC-1")
    second = make_postmortem(policy, "INC-2")
    for pm in (first, second):
        store.records.record_postmortem(pm_change(pm, 1))
    items = [
        make_item(first, 1, owner="bob", team="payments"),
        make_item(first, 2, owner="carol", team="platform", state=ActionItemState.DONE_CLAIMED),
        make_item(second, 1, owner="bob", team="payments", state=ActionItemState.VERIFIED),
    ]
    for item in items:
        store.records.record_action_item(item_change(item))

    def ids(**filters: Any) -> list[str]:
        return [i.id for i in store.records.action_items(**filters)]

    a1, a2, b1 = (i.id for i in items)
    assert ids() == [a1, a2, b1]
    assert ids(postmortem_id=first.id) == [a1, a2]
    assert ids(postmortem_id=second.id) == [b1]
    assert ids(state="open") == [a1]
    assert ids(state="verified") == [b1]
    assert ids(owner="bob") == [a1, b1]
    assert ids(team="platform") == [a2]
    assert ids(owner="bob", postmortem_id=second.id) == [b1]
    assert ids(owner="carol", team="payments") == []
    assert ids(postmortem_id="postmortem-generic-INC-404") == []
    assert store.records.action_item(f"{second.id}-item-9") is None


# --- the audit trail ------------------------------------------------------------------------------


def test_audit_trail_merges_postmortem_and_items_in_time_order(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy)
    other = make_postmortem(policy, "INC-8")
    plus_five = timezone(timedelta(hours=5))

    # Written out of order, with offsets other than UTC.
    store.records.record_postmortem(pm_change(pm, 2, at=T0 + timedelta(hours=3), action="approved"))
    store.records.record_postmortem(pm_change(pm, 1, at=T0, action="opened"))
    store.records.record_postmortem(
        pm_change(other, 1, at=T0 + timedelta(hours=1), action="opened")
    )
    item = make_item(pm, 1, seq=1)
    store.records.record_action_item(
        item_change(item, at=(T0 + timedelta(hours=4)).astimezone(plus_five), action="opened")
    )
    claimed = make_item(pm, 1, seq=2, state=ActionItemState.DONE_CLAIMED)
    # 16:30 at +05:00 is 11:30 UTC: before the postmortem was opened at 12:00 UTC.
    store.records.record_action_item(
        item_change(claimed, at=datetime(2025, 3, 10, 16, 30, tzinfo=plus_five), action="claimed")
    )

    trail = store.records.audit_trail(pm.id)

    assert [(e.workflow_id, e.seq, e.action) for e in trail] == [
        (item.id, 2, "claimed"),
        (pm.id, 1, "opened"),
        (pm.id, 2, "approved"),
        (item.id, 1, "opened"),
    ]
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    assert all(e.postmortem_id == pm.id for e in trail)
    assert [e.action for e in store.records.audit_trail(other.id)] == ["opened"]
    assert store.records.audit_trail("postmortem-generic-INC-404") == []


def test_audit_event_round_trips(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    change = pm_change(pm, 1)
    store.records.record_postmortem(change)
    assert store.records.audit_trail(pm.id) == [change.event]


# --- resolving what a person typed ----------------------------------------------------------------


def record_with_item(store: Store, pm: Postmortem, numbers: tuple[int, ...] = (1, 2)) -> None:
    store.records.record_postmortem(pm_change(pm, 1))
    for number in numbers:
        store.records.record_action_item(item_change(make_item(pm, number)))


def test_resolve_full_id_and_unique_tail(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy, "INC-7")
    record_with_item(store, pm)

    assert store.records.resolve("postmortem-generic-INC-7") == "postmortem-generic-INC-7"
    assert store.records.resolve("INC-7") == "postmortem-generic-INC-7"
    assert store.records.resolve("generic-INC-7") == "postmortem-generic-INC-7"
    assert (
        store.records.resolve("INC-7-item-2", action_item=True) == "postmortem-generic-INC-7-item-2"
    )
    assert (
        store.records.resolve("postmortem-generic-INC-7-item-1", action_item=True)
        == "postmortem-generic-INC-7-item-1"
    )


def test_resolve_passes_unknown_ids_through(store: Store, policy: Policy) -> None:
    record_with_item(store, make_postmortem(policy, "INC-7"))

    assert store.records.resolve("INC-404") == "INC-404"
    assert store.records.resolve("INC-7-item-9", action_item=True) == "INC-7-item-9"
    # A postmortem reference is not looked up among action items, nor the other way round.
    assert store.records.resolve("INC-7-item-2") == "INC-7-item-2"
    assert store.records.resolve("NC-7") == "NC-7"  # a tail must start at a '-'


def test_resolve_ambiguous_tail_names_every_match(store: Store, policy: Policy) -> None:
    generic = make_postmortem(policy, "INC-7")
    pagerduty = make_postmortem(policy, "INC-7", source="pagerduty")
    record_with_item(store, generic, (2,))
    record_with_item(store, pagerduty, (2,))

    with pytest.raises(LookupError) as caught:
        store.records.resolve("INC-7")
    message = str(caught.value)
    assert message == ("'INC-7' is ambiguous: postmortem-generic-INC-7, postmortem-pagerduty-INC-7")

    with pytest.raises(LookupError, match="'INC-7-item-2' is ambiguous") as caught:
        store.records.resolve("INC-7-item-2", action_item=True)
    assert "postmortem-generic-INC-7-item-2" in str(caught.value)
    assert "postmortem-pagerduty-INC-7-item-2" in str(caught.value)

    # The full id, or a longer tail, is still unambiguous.
    assert store.records.resolve("pagerduty-INC-7") == "postmortem-pagerduty-INC-7"
    assert store.records.resolve("postmortem-generic-INC-7") == "postmortem-generic-INC-7"


def test_resolve_treats_underscore_literally(store: Store, policy: Policy) -> None:
    record_with_item(store, make_postmortem(policy, "INC-7"))
    assert store.records.resolve("INC_7") == "INC_7"


def test_resolve_is_case_sensitive(
    store: Store, policy: Policy, request: pytest.FixtureRequest
) -> None:
    record_with_item(store, make_postmortem(policy, "INC-7"))
    assert store.records.resolve("inc-7") == "inc-7"


# --- time zones -----------------------------------------------------------------------------------


def test_datetimes_come_back_aware_utc(store: Store, policy: Policy) -> None:
    tokyo = timezone(timedelta(hours=9))
    opened = datetime(2025, 3, 10, 21, 0, tzinfo=tokyo)  # 12:00 UTC
    pm = make_postmortem(policy, opened_at=opened, draft_due=opened + timedelta(days=7))
    at = datetime(2025, 3, 10, 7, 15, tzinfo=timezone(timedelta(hours=-5)))  # 12:15 UTC
    store.records.record_postmortem(pm_change(pm, 1, at=at))
    item = make_item(pm, 1).model_copy(
        update={"opened_at": opened, "verified_at": opened + timedelta(days=3)}
    )
    store.records.record_action_item(item_change(item, at=at + timedelta(minutes=1)))

    with Session(store.engine) as session:
        pm_row = session.get_one(PostmortemRow, pm.id)
        item_row = session.get_one(ActionItemRow, item.id)
        stored_times = [
            pm_row.opened_at,
            pm_row.draft_due,
            item_row.opened_at,
            item_row.verified_at,
        ]
        due = item_row.due
    assert stored_times == [opened, opened + timedelta(days=7), opened, opened + timedelta(days=3)]
    for value in stored_times:
        assert value is not None and value.tzinfo is UTC
    assert stored_times[0] == datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert due == date(2025, 4, 1)

    trail = store.records.audit_trail(pm.id)
    assert [e.at for e in trail] == [at, at + timedelta(minutes=1)]
    assert all(e.at.tzinfo is UTC for e in trail)
    assert trail[0].at == datetime(2025, 3, 10, 12, 15, tzinfo=UTC)

    # The snapshots keep aware datetimes for the same instants.
    stored_pm = store.records.postmortem(pm.id)
    assert stored_pm is not None and stored_pm.opened_at.utcoffset() is not None
    assert stored_pm.opened_at == opened
    assert stored_pm.incident.resolved_at == pm.incident.resolved_at
    stored_item = store.records.action_item(item.id)
    assert stored_item is not None and stored_item.verified_at == opened + timedelta(days=3)


def test_null_datetimes_stay_null(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    with Session(store.engine) as session:
        assert session.get_one(PostmortemRow, pm.id).closed_at is None


# --- migrations -----------------------------------------------------------------------------------


def test_migration_is_idempotent(database_url: str) -> None:
    assert pending(database_url) is True

    upgrade(database_url)
    upgrade(database_url)

    assert pending(database_url) is False
    store = Store(database_url)
    try:
        tables = set(inspect(store.engine).get_table_names())
        assert {"incidents", "postmortems", "action_items", "audit_events"} <= tables
    finally:
        store.close()


def test_upgrade_keeps_existing_records(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))

    upgrade(store.url)

    assert pending(store.url) is False
    assert store.records.postmortem(pm.id) is not None
    assert len(store.records.audit_trail(pm.id)) == 1


def test_migration_0007_fills_the_dashboard_facts_of_existing_postmortems(
    database_url: str, policy: Policy
) -> None:
    """Rows written before the facts had columns get them from their snapshots."""
    command.upgrade(_config(database_url), "0006")
    pm = make_postmortem(policy)
    store = Store(database_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(
                # Only the columns 0006 had.
                insert(PostmortemRow).values(
                    **{
                        "id": pm.id,
                        "title": pm.incident.title,
                        "severity": pm.severity,
                        "team": pm.team,
                        "owner": pm.owner,
                        "state": pm.state.value,
                        "opened_at": pm.opened_at,
                        "draft_due": pm.draft_due,
                        "closed_at": None,
                        "last_seq": 1,
                        "data": pm.model_dump(mode="json"),
                    }
                ),
            )

        upgrade(database_url)

        with Session(store.engine) as session:
            row = session.get_one(PostmortemRow, pm.id)
            assert row.incident_id == "INC-7"
            assert row.resolved_at == pm.incident.resolved_at
            assert row.started_at == pm.incident.started_at
            assert row.detected_at == pm.incident.detected_at
            assert row.services == pm.incident.services
            assert row.slo_burns == []
    finally:
        store.close()


def _reviewed(policy: Policy, incident_id: str, state: PostmortemState) -> Postmortem:
    """A postmortem whose draft moved detection and added the first status update."""
    draft = parse_draft(
        draft_data(
            T0,
            timeline=[
                {"at": (T0 - timedelta(hours=3, minutes=50)).isoformat(), "kind": "detected"},
                {"at": (T0 - timedelta(hours=3)).isoformat(), "kind": "status_update"},
                {"at": (T0 - timedelta(hours=3, minutes=55)).isoformat(), "kind": "alert"},
            ],
        )
    )
    return make_postmortem(policy, incident_id, state=state, draft=draft)


def test_migration_0017_recomputes_the_figures_of_approved_postmortems(
    database_url: str, policy: Policy
) -> None:
    """Rows written when the figures were the incident's get their reviewed timeline's; those
    not yet approved keep the incident's; downgrading gives the incident's back."""
    command.upgrade(_config(database_url), "0013")
    approved = _reviewed(policy, "INC-1", PostmortemState.TRACKING)
    closed = _reviewed(policy, "INC-2", PostmortemState.CLOSED)
    drafting = _reviewed(policy, "INC-3", PostmortemState.DRAFTING)
    store = Store(database_url)
    try:
        with store.engine.begin() as connection:
            for pm in (approved, closed, drafting):
                connection.execute(
                    insert(PostmortemRow).values(
                        id=pm.id,
                        title=pm.incident.title,
                        severity=pm.severity,
                        team=pm.team,
                        owner=pm.owner,
                        state=pm.state.value,
                        opened_at=pm.opened_at,
                        draft_due=pm.draft_due,
                        last_seq=1,
                        data=pm.model_dump(mode="json"),
                        # As 0013's code wrote them: the incident's.
                        **{f"{n}_at": pm.incident.milestone(n) for n in MILESTONES},
                    )
                )

        upgrade(database_url)

        with Session(store.engine) as session:
            for pm in (approved, closed):
                row = session.get_one(PostmortemRow, pm.id)
                assert row.detected_at == T0 - timedelta(hours=3, minutes=50)  # not the alert
                assert row.communicated_at == T0 - timedelta(hours=3)
                assert row.started_at == pm.incident.started_at
                # The migration's restated rule and the domain's agree.
                assert pm.draft is not None
                expected = response_milestones(pm.incident, pm.draft)
                for name in MILESTONES:
                    assert getattr(row, f"{name}_at") == expected.at(name), name
            row = session.get_one(PostmortemRow, drafting.id)
            assert row.detected_at == drafting.incident.detected_at
            assert row.communicated_at is None

        command.downgrade(_config(database_url), "0013")

        with Session(store.engine) as session:
            # Only these columns: later revisions' do not exist at 0013.
            detected, communicated = session.execute(
                select(PostmortemRow.detected_at, PostmortemRow.communicated_at).where(
                    PostmortemRow.id == approved.id
                )
            ).one()
            assert detected == approved.incident.detected_at
            assert communicated is None
    finally:
        store.close()


def test_recording_an_approved_postmortem_writes_its_reviewed_timelines_figures(
    store: Store, policy: Policy
) -> None:
    drafting = _reviewed(policy, "INC-3", PostmortemState.DRAFTING)
    store.records.record_postmortem(pm_change(drafting, 1))
    with Session(store.engine) as session:
        assert session.get_one(PostmortemRow, drafting.id).communicated_at is None

    approved = drafting.model_copy(update={"state": PostmortemState.TRACKING, "last_seq": 2})
    store.records.record_postmortem(pm_change(approved, 2))

    with Session(store.engine) as session:
        row = session.get_one(PostmortemRow, approved.id)
        assert row.detected_at == T0 - timedelta(hours=3, minutes=50)
        assert row.communicated_at == T0 - timedelta(hours=3)
        assert row.resolved_at == approved.incident.resolved_at


def test_migration_0014_marks_the_notices_of_digests_that_went_out_delivered(
    database_url: str,
) -> None:
    """Held rows written before `delivered` existed: those whose digest went out wait no longer."""
    command.upgrade(_config(database_url), "0013")
    held = table(
        "held_notices",
        column("dedupe_key"),
        column("person"),
        column("address"),
        column("created_at"),
        column("digest_key"),
    )
    store = Store(database_url)
    try:
        store.outbox.claim(_digest("handoff-digest/bob/sent", OutboxStatus.SENT))
        store.outbox.claim(_digest("handoff-digest/carol/pending"))
        with store.engine.begin() as connection:
            connection.execute(
                insert(held),
                [
                    {
                        "dedupe_key": key,
                        "person": person,
                        "address": f"{person}@example.com",
                        "created_at": T0,
                        "digest_key": digest,
                    }
                    for key, person, digest in [
                        ("INC-1-item-1/assigned", "bob", "handoff-digest/bob/sent"),
                        ("INC-1-item-2/assigned", "carol", "handoff-digest/carol/pending"),
                        ("INC-1-item-3/assigned", "dan", None),
                    ]
                ],
            )

        upgrade(database_url)

        with Session(store.engine) as session:
            rows = session.scalars(select(HeldNoticeRow).order_by(HeldNoticeRow.person))
            assert [(r.person, r.delivered) for r in rows] == [
                ("bob", True),
                ("carol", False),
                ("dan", False),
            ]
        assert store.preferences.waiting(T0) == ["carol", "dan"]
    finally:
        store.close()


def test_recording_a_postmortem_writes_its_dashboard_facts(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))

    with Session(store.engine) as session:
        row = session.get_one(PostmortemRow, pm.id)
        assert row.incident_id == pm.incident.id
        assert row.resolved_at == pm.incident.resolved_at
        assert row.mitigated_at == pm.incident.mitigated_at
        assert row.services == pm.incident.services


# --- recurring themes -----------------------------------------------------------------------------


def note(pm_id: str, resolved_at: datetime, *tags: str, threshold: int = 3) -> FactorTags:
    return FactorTags(
        postmortem_id=pm_id,
        resolved_at=resolved_at,
        tags=list(tags),
        team="payments",
        services=["checkout"],
        severity="SEV2",
        at=resolved_at + timedelta(days=3),
        threshold=threshold,
        window_days=90,
    )


def test_a_postmortem_noted_twice_counts_once(store: Store) -> None:
    assert store.themes.note_factor_tags(note("pm-1", T0, "deploy")) == []
    assert store.themes.note_factor_tags(note("pm-1", T0, "deploy")) == []  # a retry
    assert store.themes.note_factor_tags(note("pm-2", T0 + timedelta(days=1), "deploy")) == []
    assert store.themes.all() == []


def test_the_third_postmortem_reaches_a_theme_once(store: Store) -> None:
    store.themes.note_factor_tags(note("pm-1", T0, "deploy", "capacity"))
    store.themes.note_factor_tags(note("pm-2", T0 + timedelta(days=10), "deploy"))
    [theme] = store.themes.note_factor_tags(
        note("pm-3", T0 + timedelta(days=20), "deploy", "capacity")
    )
    assert (theme.tag, theme.reached_by, theme.window_start) == ("deploy", "pm-3", T0)
    assert theme.window_end == T0 + timedelta(days=90)
    assert theme.postmortem_ids == ["pm-1", "pm-2", "pm-3"]
    # A retry of the note that reached it answers the same theme (its notice is deduplicated).
    assert store.themes.note_factor_tags(note("pm-3", T0 + timedelta(days=20), "deploy")) == [theme]
    # A fourth within the window joins the theme but reaches nothing new.
    assert store.themes.note_factor_tags(note("pm-4", T0 + timedelta(days=30), "deploy")) == []
    [recorded] = store.themes.all()
    assert recorded.postmortem_ids == ["pm-1", "pm-2", "pm-3", "pm-4"]
    assert store.themes.get("deploy", T0) == recorded
    assert store.themes.all(tag="capacity") == []


def test_postmortems_further_apart_than_the_window_make_no_theme(store: Store) -> None:
    store.themes.note_factor_tags(note("pm-1", T0, "deploy"))
    store.themes.note_factor_tags(note("pm-2", T0 + timedelta(days=60), "deploy"))
    assert store.themes.note_factor_tags(note("pm-3", T0 + timedelta(days=120), "deploy")) == []
    # Noted out of order: an earlier incident approved last still completes a window.
    [theme] = store.themes.note_factor_tags(note("pm-0", T0 + timedelta(days=50), "deploy"))
    assert theme.window_start == T0 and theme.postmortem_ids == ["pm-1", "pm-0", "pm-2"]


def test_slos_are_saved_by_id_and_replaced_on_reimport(store: Store) -> None:
    slos = load_slo_specs(ROOT / "tests" / "slo_examples" / "sloth-valid.yaml")
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    store.slos.save(slos, at)
    store.slos.save([slos[0].model_copy(update={"objective": 0.995})], at)
    saved = {slo.id: slo for slo in store.slos.all()}
    assert set(saved) == {slo.id for slo in slos}
    assert saved[slos[0].id].objective == 0.995 and saved[slos[1].id] == slos[1]
    services = store.slos.all(service=slos[0].service)
    assert services and all(slo.service == slos[0].service for slo in services)
    assert store.slos.all(service="no-such-service") == []


# --- notices held for daily digests ---------------------------------------------------------------


def _digest(key: str, status: OutboxStatus = OutboxStatus.PENDING) -> OutboxMessage:
    return OutboxMessage(
        dedupe_key=key,
        kind=NoticeKind.HANDOFF_DIGEST,
        postmortem_id="handoff-digest",
        action_item_id=None,
        recipients=["someone@example.com"],
        subject="Your day",
        text="",
        html="",
        status=status,
        created_at=T0,
        sent_at=None,
    )


def test_a_digest_recorded_sent_delivers_what_it_took(store: Store) -> None:
    """Who is waiting reads only undelivered rows: a sent digest marks its rows delivered."""
    store.preferences.hold("INC-1-item-1/assigned", {"bob": "bob@example.com"}, T0)
    store.preferences.hold("INC-1-item-2/assigned", {"carol": "carol@example.com"}, T0)
    later = T0 + timedelta(hours=1)
    assert store.preferences.waiting(later) == ["bob", "carol"]

    key = "handoff-digest/bob/2025-03-10T13:00+00:00"
    assert [h.dedupe_key for h in store.preferences.gather("bob", key, later)] == [
        "INC-1-item-1/assigned"
    ]
    store.outbox.claim(_digest(key))
    assert store.preferences.waiting(later) == ["bob", "carol"]  # not gone out yet

    store.outbox.mark(key, OutboxStatus.SENT, later)
    with Session(store.engine) as session:
        query = select(HeldNoticeRow.person, HeldNoticeRow.delivered)
        delivered = {person: flag for person, flag in session.execute(query)}
    assert delivered == {"bob": True, "carol": False}
    assert store.preferences.waiting(later) == ["carol"]
    # A retried run still finds whom it gathered for, and the Slack DM what bob had held.
    assert store.preferences.taken_by([key]) == {"bob"}
    assert store.preferences.held_for("INC-1-item-1/assigned") == {"bob"}
