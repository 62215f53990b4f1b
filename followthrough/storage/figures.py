"""A period's reliability figures added up in the database: counts, and the durations at the
ranks the medians and p90s stand on, instead of every incident and action item read into Python
(a year of 10,000 postmortems took seconds to decode; bench/README.md, "Dashboard").

The same SQL runs on PostgreSQL and SQLite (which has no percentile_cont): durations are whole
microseconds between two stored times (`epoch_us`), and the medians come from row_number() over
the sorted values, so they are exactly the domain's (domain/metrics.py, median and p90).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.metrics import (
    DURATION_ENDS,
    DURATIONS,
    FLOORED_AT_ZERO,
    FOUR_WEEKS,
    BurnedIncident,
    Duration,
    FollowUpCounts,
    IncidentCount,
    PeriodSums,
    Ranked,
    TaggedIncident,
    months_of_period,
    on_time_before,
)
from followthrough.domain.postmortem import RESOLVED_STATES, ActionItemState
from followthrough.storage.restricted import stand_in_id
from followthrough.storage.tables import ActionItemRow, FactorTagRow, PostmortemRow

_US = 1_000_000
_DAY_US = 86_400 * _US


class epoch_us(FunctionElement[int]):
    """Microseconds since 1970 of a stored time, exactly, in either database."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    # EXTRACT gives numeric (exact) from PostgreSQL 14 on.
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {moment}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds, then the fraction's digits.
    moment = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', {moment}) AS INTEGER) * 1000000"
        f" + CAST(substr({moment}, 21, 6) AS INTEGER))"
    )


class epoch_days(FunctionElement[int]):
    """Days since 1970-01-01 of a stored date (BIGINT: it is multiplied into microseconds)."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_days"


@compiles(epoch_days, "postgresql")
def _epoch_days_postgresql(element: epoch_days, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(epoch_days, "sqlite")
def _epoch_days_sqlite(element: epoch_days, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)) // timedelta(microseconds=1)


def _duration(duration: Duration) -> ColumnElement[int]:
    start, end = DURATION_ENDS[duration]
    value = epoch_us(getattr(PostmortemRow, f"{end}_at")) - epoch_us(
        getattr(PostmortemRow, f"{start}_at")
    )
    if duration in FLOORED_AT_ZERO:
        return case((value < 0, literal(0, BigInteger)), else_=value)
    return value


def _month(months: list[str], calendar: BusinessCalendar) -> ColumnElement[str]:
    """The local month (YYYY-MM) of an incident's resolution, among the period's months."""
    if len(months) == 1:
        return literal(months[0])
    firsts = [calendar.midnight(date(int(m[:4]), int(m[5:]), 1)) for m in months]
    return case(
        *(
            (PostmortemRow.resolved_at < first, m)
            for m, first in zip(months, firsts[1:], strict=False)
        ),
        else_=literal(months[-1]),
    )


def period_sums(
    connection: Connection,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime,
    calendar: BusinessCalendar,
) -> PeriodSums:
    """The figures of the incidents resolved in [start, end) and of their action items."""
    within = and_(PostmortemRow.resolved_at >= start, PostmortemRow.resolved_at < end)
    months = months_of_period(start, end, calendar) or ["0000-00"]
    month = _month(months, calendar).label("month")
    durations = {d: _duration(d).label(d) for d in DURATIONS}
    facts = (
        select(PostmortemRow.severity, PostmortemRow.state, month, *durations.values())
        .where(within)
        .subquery("facts")
    )
    counted = select(
        facts.c.month,
        facts.c.severity,
        facts.c.state,
        func.count(),
        *(func.count(facts.c[d]) for d in DURATIONS),
    ).group_by(facts.c.month, facts.c.severity, facts.c.state)
    counts = [
        IncidentCount(
            month=row[0],
            severity=row[1],
            state=row[2],
            incidents=row[3],
            measured=dict(zip(DURATIONS, row[4:], strict=True)),
        )
        for row in connection.execute(counted)
    ]
    by_severity: dict[tuple[Duration, str], dict[int, timedelta]] = {}
    by_month: dict[tuple[Duration, str, str], dict[int, timedelta]] = {}
    severity_counts: dict[tuple[Duration, str], int] = {}
    month_counts: dict[tuple[Duration, str, str], int] = {}
    for (
        d,
        severity,
        row_month,
        value,
        in_severity,
        of_severity,
        in_month,
        of_month,
    ) in connection.execute(_ranked_durations(facts)):
        at = timedelta(microseconds=value)
        if _wanted(in_severity, of_severity, p90=True):
            by_severity.setdefault((d, severity), {})[in_severity] = at
            severity_counts[(d, severity)] = of_severity
        if _wanted(in_month, of_month, p90=False):
            by_month.setdefault((d, severity, row_month), {})[in_month] = at
            month_counts[(d, severity, row_month)] = of_month
    return PeriodSums(
        counts=counts,
        by_severity={
            k: Ranked(count=severity_counts[k], at_rank=v) for k, v in by_severity.items()
        },
        by_month={k: Ranked(count=month_counts[k], at_rank=v) for k, v in by_month.items()},
        follow_up=_follow_up(connection, within, as_of, calendar),
        tagged=_tagged(connection, within),
        burned=_burned(connection, within),
    )


# The median's ranks (domain/metrics.py, median_ranks) and the p90's (p90_rank), in SQL.
def _median_rank(rank: Any, count: Any) -> ColumnElement[bool]:
    return or_(rank == (count + 1) // 2, rank == count // 2 + 1)


def _p90_rank(rank: Any, count: Any) -> ColumnElement[bool]:
    found: ColumnElement[bool] = rank == (9 * count + 9) // 10
    return found


def _wanted(rank: int, count: int, *, p90: bool) -> bool:
    low, high = (count + 1) // 2, count // 2 + 1
    return rank in (low, high) or (p90 and rank == -(-9 * count // 10))


def _ranked_durations(facts: Any) -> Any:
    """Per duration, the values at the median's and p90's ranks, per severity and per severity
    and month: (duration, severity, month, value, rank, count, rank in month, count in month)."""
    parts = []
    for d in DURATIONS:
        value = facts.c[d]
        severity, severity_month = facts.c.severity, (facts.c.severity, facts.c.month)
        ranked = (
            select(
                literal_column(f"'{d}'").label("duration"),
                facts.c.severity,
                facts.c.month,
                value.label("value"),
                func.row_number().over(partition_by=severity, order_by=value).label("in_severity"),
                func.count().over(partition_by=severity).label("of_severity"),
                func.row_number()
                .over(partition_by=severity_month, order_by=value)
                .label("in_month"),
                func.count().over(partition_by=severity_month).label("of_month"),
            )
            .where(value.is_not(None))
            .subquery()
        )
        parts.append(
            select(ranked).where(
                or_(
                    _median_rank(ranked.c.in_severity, ranked.c.of_severity),
                    _p90_rank(ranked.c.in_severity, ranked.c.of_severity),
                    _median_rank(ranked.c.in_month, ranked.c.of_month),
                )
            )
        )
    return union_all(*parts)


def _follow_up(
    connection: Connection, within: Any, as_of: datetime, calendar: BusinessCalendar
) -> FollowUpCounts:
    ours = ActionItemRow.postmortem_id.in_(select(PostmortemRow.id).where(within))
    verified = ActionItemRow.state == ActionItemState.VERIFIED.value
    timed = and_(verified, ActionItemRow.verified_at.is_not(None))
    resolved = [state.value for state in RESOLVED_STATES]
    today = calendar.local_date(as_of)
    on_time = and_(timed, _before_cutoff(connection, ours, timed, calendar))

    def how_many(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    total, n_verified, risk_accepted, with_time, n_on_time, past_due = connection.execute(
        select(
            func.count(),
            how_many(verified),
            how_many(ActionItemRow.state == ActionItemState.RISK_ACCEPTED.value),
            how_many(timed),
            how_many(on_time),
            how_many(and_(ActionItemRow.state.not_in(resolved), ActionItemRow.due < today)),
        ).where(ours)
    ).one()
    to_verify = (epoch_us(ActionItemRow.verified_at) - epoch_us(ActionItemRow.opened_at)).label(
        "value"
    )
    ranked = (
        select(
            to_verify,
            func.row_number().over(order_by=to_verify).label("rank"),
            func.count().over().label("count"),
        )
        .where(ours, timed)
        .subquery()
    )
    middle = connection.execute(
        select(ranked.c.value, ranked.c.rank, ranked.c.count).where(
            _median_rank(ranked.c.rank, ranked.c.count)
        )
    ).all()
    qualified, eligible = _within_four_weeks(connection, within, as_of)
    return FollowUpCounts(
        total=total,
        verified=n_verified,
        risk_accepted=risk_accepted,
        verified_with_time=with_time,
        on_time=n_on_time,
        past_due=past_due,
        time_to_verify=Ranked(
            count=middle[0].count if middle else 0,
            at_rank={row.rank: timedelta(microseconds=row.value) for row in middle},
        ),
        qualified=qualified,
        eligible=eligible,
    )


def _before_cutoff(
    connection: Connection, ours: Any, timed: Any, calendar: BusinessCalendar
) -> ColumnElement[bool]:
    """verified_at before the local midnight after the due date (domain on_time_before).

    That midnight is (days since 1970 of the due date + 1) whole days in microseconds, shifted
    by the zone's offset, which changes only a few times a year: one CASE branch per run of due
    dates with the same offset, worked out for the due dates the items have.
    """
    dues = connection.scalars(
        select(ActionItemRow.due).where(ours, timed).distinct().order_by(ActionItemRow.due)
    ).all()
    runs: list[tuple[date, int]] = []  # (first due date of the run, shift in microseconds)
    for due in dues:
        try:
            shift = _us(on_time_before(due, calendar)) - (_epoch_day(due) + 1) * _DAY_US
        except (OverflowError, ValueError):  # the last day a date can hold: always on time
            shift = 10**15
        if not runs or runs[-1][1] != shift:
            runs.append((due, shift))
    if not runs:
        return false()
    shift_of: ColumnElement[int] = literal(runs[-1][1], BigInteger)
    if len(runs) > 1:
        later = zip(runs[1:], runs, strict=False)
        shift_of = case(
            *(
                (ActionItemRow.due < first, literal(shift, BigInteger))
                for (first, _), (_, shift) in later
            ),
            else_=shift_of,
        )
    return epoch_us(ActionItemRow.verified_at) < (
        (epoch_days(ActionItemRow.due) + 1) * literal(_DAY_US, BigInteger) + shift_of
    )


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _within_four_weeks(connection: Connection, within: Any, as_of: datetime) -> tuple[int, int]:
    """Of the incidents with action items: those whose items were all verified, the last no later
    than resolved + four weeks (qualified); and those plus the ones whose four weeks are over."""
    verified = and_(
        ActionItemRow.state == ActionItemState.VERIFIED.value,
        ActionItemRow.verified_at.is_not(None),
    )
    deadline = epoch_us(PostmortemRow.resolved_at) + FOUR_WEEKS // timedelta(microseconds=1)
    per_incident = (
        select(
            (
                (func.count() == func.sum(case((verified, 1), else_=0)))
                & (func.max(case((verified, epoch_us(ActionItemRow.verified_at)))) <= deadline)
            ).label("qualified"),
            (deadline <= _us(as_of)).label("over"),
        )
        .join(ActionItemRow, ActionItemRow.postmortem_id == PostmortemRow.id)
        .where(within)
        .group_by(PostmortemRow.id, PostmortemRow.resolved_at)
        .subquery()
    )
    qualified, eligible = connection.execute(
        select(
            func.coalesce(func.sum(case((per_incident.c.qualified, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((or_(per_incident.c.qualified, per_incident.c.over), 1), else_=0)),
                0,
            ),
        )
    ).one()
    return qualified, eligible


def _tagged(connection: Connection, within: Any) -> list[TaggedIncident]:
    """The incidents of every tag two or more of the period's incidents carry."""
    shared = (
        select(FactorTagRow.tag)
        .join(PostmortemRow, PostmortemRow.id == FactorTagRow.postmortem_id)
        .where(within)
        .group_by(FactorTagRow.tag)
        .having(func.count() >= 2)
    )
    query = (
        select(
            FactorTagRow.tag,
            PostmortemRow.id,
            PostmortemRow.resolved_at,
            PostmortemRow.restricted_to,
        )
        .join(PostmortemRow, PostmortemRow.id == FactorTagRow.postmortem_id)
        .where(within, FactorTagRow.tag.in_(shared))
    )
    # Counted, not shown (storage/restricted.py): a restricted one under its stand-in id. One
    # validation of the list, as storage/facts.py does: per row it took twice as long.
    return _TAGGED.validate_python(
        [
            {
                "tag": tag,
                "postmortem_id": stand_in_id(pm_id) if restricted_to else pm_id,
                "resolved_at": resolved_at,
            }
            for tag, pm_id, resolved_at, restricted_to in connection.execute(query)
        ]
    )


def _burned(connection: Connection, within: Any) -> list[BurnedIncident]:
    """The incidents whose SLO review assessed any SLO."""
    query = select(
        PostmortemRow.id,
        PostmortemRow.resolved_at,
        PostmortemRow.restricted_to,
        PostmortemRow.slo_burns,
    ).where(within, cast(PostmortemRow.slo_burns, Text) != "[]")  # most assessed no SLO
    return _BURNED.validate_python(
        [
            {
                "postmortem_id": stand_in_id(pm_id) if restricted_to else pm_id,
                "resolved_at": resolved_at,
                "slo_burns": burns,
            }
            for pm_id, resolved_at, restricted_to, burns in connection.execute(query)
            if burns
        ]
    )


_TAGGED = TypeAdapter(list[TaggedIncident])
_BURNED = TypeAdapter(list[BurnedIncident])
