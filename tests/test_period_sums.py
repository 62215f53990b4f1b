"""The reliability figures added up in the database (storage/figures.py) are exactly the ones
worked out in Python from every incident and action item (domain reliability_metrics), on SQLite
and PostgreSQL (the `store` fixture), for a seeded record with its awkward cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.metrics import Period, period_of, reliability_metrics
from followthrough.domain.policy import Policy
from followthrough.reporting.metrics_view import measure
from followthrough.seed import seed
from followthrough.storage import Store
from followthrough.storage.tables import ActionItemRow, PostmortemRow

AS_OF = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)


def in_python(store: Store, policy: Policy, period: Period, as_of: datetime) -> object:
    """The figures as they were worked out before: every incident and item read into Python."""
    return reliability_metrics(
        store.facts.incidents(period.start, period.end),
        store.facts.items(resolved_from=period.start, resolved_before=period.end, counted=True),
        period_start=period.start,
        period_end=period.end,
        as_of=as_of,
        calendar=policy.calendar,
        severities=list(policy.severities),
    )


@pytest.fixture
def zoned(policy: Policy) -> Policy:
    # A zone with summer time: months and due dates are local, and the offset changes.
    calendar = BusinessCalendar(timezone="America/New_York")
    return policy.model_copy(update={"calendar": calendar})


def awkward(store: Store) -> None:
    """What the seed rarely or never makes: restricted postmortems, a communication before the
    recorded start, missing milestones, a verified item without its time, odd due dates."""
    ids = sorted(store.records.postmortem_ids())
    with store.db.transaction() as session:
        for pm_id in ids[::7]:
            session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == pm_id)
                .values(restricted_to="security")
            )
            session.execute(
                update(ActionItemRow)
                .where(ActionItemRow.postmortem_id == pm_id)
                .values(restricted_to="security")
            )
        for pm_id in ids[1::9]:
            started = session.scalar(
                PostmortemRow.__table__.select()
                .with_only_columns(PostmortemRow.started_at)
                .where(PostmortemRow.id == pm_id)
            )
            if started is not None:
                session.execute(
                    update(PostmortemRow)
                    .where(PostmortemRow.id == pm_id)
                    .values(
                        communicated_at=started - timedelta(minutes=5, microseconds=7),
                        acknowledged_at=None,
                    )
                )
        for pm_id in ids[2::11]:
            session.execute(
                update(PostmortemRow).where(PostmortemRow.id == pm_id).values(started_at=None)
            )
        verified = session.scalars(
            ActionItemRow.__table__.select()
            .with_only_columns(ActionItemRow.id)
            .where(ActionItemRow.state == "verified")
            .order_by(ActionItemRow.id)
        ).all()
        for item_id in verified[::13]:
            session.execute(
                update(ActionItemRow).where(ActionItemRow.id == item_id).values(verified_at=None)
            )
        for pm_id in ids[3::5]:  # every item verified, within four weeks or just after
            resolved = session.scalar(
                PostmortemRow.__table__.select()
                .with_only_columns(PostmortemRow.resolved_at)
                .where(PostmortemRow.id == pm_id)
            )
            if resolved is not None:
                late = timedelta(days=28, microseconds=1 if pm_id in ids[3::10] else 0)
                session.execute(
                    update(ActionItemRow)
                    .where(ActionItemRow.postmortem_id == pm_id)
                    .values(state="verified", verified_at=resolved + late)
                )
        for item_id in verified[3::17]:  # verified in the last microsecond of its due date
            session.execute(
                update(ActionItemRow)
                .where(ActionItemRow.id == item_id)
                .values(
                    due=date(2026, 11, 1),
                    verified_at=datetime(2026, 11, 2, 3, 59, 59, 999999, tzinfo=UTC),
                )
            )


def test_the_figures_added_up_in_the_database_are_those_worked_out_in_python(
    store: Store, zoned: Policy
) -> None:
    seed(store, zoned, postmortems=80, now=AS_OF)
    awkward(store)
    calendar = zoned.calendar
    periods = [
        period_of(AS_OF.date(), calendar),
        period_of(AS_OF.date(), calendar, quarter="2026Q4"),
        period_of(AS_OF.date(), calendar, quarter="2026Q2"),
        period_of(AS_OF.date(), calendar, month="2026-11"),
        period_of(AS_OF.date(), calendar, month="2030-01"),  # nothing in it
    ]
    for period in periods:
        for as_of in (AS_OF, AS_OF - timedelta(days=40), AS_OF + timedelta(days=400)):
            fast = measure(store, zoned, period, as_of).model_copy(update={"changes": None})
            assert fast == in_python(store, zoned, period, as_of), (period.label, as_of)
    year = measure(store, zoned, periods[0], AS_OF)
    # The seeded record has what the comparison is about.
    assert year.incidents > 40 and year.repeat_factors and year.budget_by_slo
    assert year.follow_up.on_time and year.follow_up.decided > year.follow_up.on_time
    assert 0 < year.within_four_weeks.qualified < year.within_four_weeks.eligible
    assert any(pm.startswith("restricted-") for r in year.repeat_factors for pm in r.postmortem_ids)
