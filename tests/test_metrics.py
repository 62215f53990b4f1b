"""The reliability metrics: every figure worked out by hand from a few incidents and items."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.metrics import (
    DURATIONS,
    BudgetByService,
    BudgetBySlo,
    Duration,
    DurationStats,
    IncidentFacts,
    ItemFacts,
    ReliabilityMetrics,
    RepeatFactor,
    SloBurn,
    StateCount,
    budget_meaning,
    figures_basis,
    format_coverage,
    format_duration,
    format_percent,
    headline,
    median,
    month_bounds,
    p90,
    quarter_bounds,
    reliability_metrics,
    response_coverage,
    timing_cells,
    trend_series,
)
from followthrough.domain.postmortem import ActionItemState

UTC_CALENDAR = BusinessCalendar()
# West of UTC: 23:30 local is already the next day in UTC (EDT is UTC-4 until 2026-11-01).
NEW_YORK = BusinessCalendar(timezone="America/New_York")
SEVERITIES = ["SEV1", "SEV2", "SEV3"]
Q4_START = datetime(2026, 10, 1, tzinfo=UTC)
Q4_END = datetime(2027, 1, 1, tzinfo=UTC)
AS_OF = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def at(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def incident(pm: str, **fields: Any) -> IncidentFacts:
    values: dict[str, Any] = {
        "postmortem_id": pm,
        "incident_id": f"inc-{pm}",
        "title": f"Outage {pm}",
        "severity": "SEV2",
        "team": "payments",
        "state": "tracking",
        "resolved_at": at(10, 5),
    }
    values.update(fields)
    return IncidentFacts.model_validate(values)


def timed(
    pm: str, start: datetime, severity: str = "SEV2", **offsets: float | None
) -> IncidentFacts:
    """An incident started at `start`, each milestone given in minutes after it."""
    fields: dict[str, Any] = {"started_at": start, "resolved_at": start + minutes(600)}
    for name, offset in offsets.items():
        fields[f"{name}_at"] = None if offset is None else start + minutes(offset)
    return incident(pm, severity=severity, **fields)


def item(n: int, pm: str, state: ActionItemState, due: date, **fields: Any) -> ItemFacts:
    values: dict[str, Any] = {
        "id": f"{pm}-item-{n}",
        "postmortem_id": pm,
        "title": f"Fix {n}",
        "team": "payments",
        "owner": "ana",
        "priority": "P1",
        "state": state,
        "due": due,
        "opened_at": at(10, 6),
        "verified_at": None,
    }
    values.update(fields)
    return ItemFacts.model_validate(values)


def metrics(
    incidents: list[IncidentFacts],
    items: list[ItemFacts] | None = None,
    *,
    as_of: datetime = AS_OF,
    calendar: BusinessCalendar = UTC_CALENDAR,
    start: datetime = Q4_START,
    end: datetime = Q4_END,
    severities: list[str] | None = None,
) -> ReliabilityMetrics:
    return reliability_metrics(
        incidents,
        items or [],
        period_start=start,
        period_end=end,
        as_of=as_of,
        calendar=calendar,
        severities=SEVERITIES if severities is None else severities,
    )


EMPTY = DurationStats(count=0, median=None, p90=None)


def test_no_incidents_gives_zeros_and_nones() -> None:
    result = metrics([])
    assert result.incidents == 0
    assert [s.severity for s in result.severities] == SEVERITIES
    for row in result.severities:
        assert row.incidents == 0
        assert all(row.of(d) == EMPTY for d in DURATIONS)
    # Q4: October, November and December, all empty.
    assert [(m.month, m.incidents) for m in result.trend] == [
        ("2026-10", 0),
        ("2026-11", 0),
        ("2026-12", 0),
    ]
    assert all(r.of(d) is None for m in result.trend for r in m.by_severity for d in DURATIONS)
    follow = result.follow_up
    assert (follow.total, follow.verified, follow.risk_accepted, follow.open) == (0, 0, 0, 0)
    assert (follow.completion_rate, follow.on_time_rate, follow.median_time_to_verify) == (
        None,
        None,
        None,
    )
    assert result.within_four_weeks.model_dump() == {"qualified": 0, "eligible": 0, "share": None}
    assert result.repeat_factors == []
    assert result.budget_by_service == []
    assert result.budget_by_slo == []
    assert result.slo_breaches.share is None
    assert result.postmortems_by_state == []
    assert headline(result) == [
        ("Incidents", "0"),
        ("Follow-ups completed", "—"),
        ("On time", "—"),
        ("Median time to verify", "—"),
        ("Follow-ups all verified within 4 weeks", "—"),
        ("Incidents breaching a customer SLO", "—"),
    ]
    assert json.dumps(result.model_dump(mode="json"))


def test_a_single_incident() -> None:
    # started 10:00; detected 10:05, acknowledged 10:07, communicated 10:20, mitigated 10:30,
    # resolved 11:00 -> detect 5, acknowledge 2, mitigate 30, resolve 60, communicate 20 min.
    one = timed(
        "pm-1",
        at(10, 5, 10),
        detected=5,
        acknowledged=7,
        communicated=20,
        mitigated=30,
        resolved=60,
    )
    result = metrics([one])
    sev2 = result.severities[1]
    assert (sev2.severity, sev2.incidents) == ("SEV2", 1)
    expected: dict[Duration, int] = {
        "detect": 5,
        "acknowledge": 2,
        "mitigate": 30,
        "resolve": 60,
        "communicate": 20,
    }
    for duration, value in expected.items():
        assert sev2.of(duration) == DurationStats(
            count=1, median=minutes(value), p90=minutes(value)
        )
    assert result.severities[0].incidents == 0


def test_odd_and_even_medians_and_missing_milestones() -> None:
    start = at(10, 5, 10)
    incidents = [
        timed("a", start, detected=5, acknowledged=6, resolved=60),
        timed("b", start, detected=10, acknowledged=13, resolved=90),
        timed("c", start, detected=20, resolved=120),  # acknowledgement not recorded
        timed("d", start, detected=None, acknowledged=None, resolved=240),  # detection neither
    ]
    sev2 = metrics(incidents).severities[1]
    # detect: 5, 10, 20 min (d has none) -> median 10; p90 rank ceil(2.7) = 3 -> 20
    assert sev2.detect == DurationStats(count=3, median=minutes(10), p90=minutes(20))
    # acknowledge: 1, 3 min -> median (1 + 3) / 2 = 2; p90 rank ceil(1.8) = 2 -> 3
    assert sev2.acknowledge == DurationStats(count=2, median=minutes(2), p90=minutes(3))
    # resolve: 60, 90, 120, 240 -> median (90 + 120) / 2 = 105; p90 rank ceil(3.6) = 4 -> 240
    assert sev2.resolve == DurationStats(count=4, median=minutes(105), p90=minutes(240))
    # none mitigated or communicated: nothing is invented
    assert sev2.mitigate == EMPTY
    assert sev2.communicate == EMPTY


def test_every_figure_says_how_many_incidents_it_stands_on() -> None:
    """Like a PagerDuty incident: start and resolution only, unless its reviewed timeline adds
    the rest; 'time to detect: 2 of 5 incidents' makes the hollow figure visible."""
    start = at(10, 5, 10)
    incidents = [
        timed("a", start, "SEV1", detected=5, acknowledged=6, communicated=15, resolved=60),
        timed("b", start, "SEV1", resolved=90),  # the webhook's start and resolution only
        timed("c", start, detected=20, mitigated=30, resolved=120),
        incident("d", state="drafting"),  # no start at all: nothing measurable
        timed("e", start, "SEV3", resolved=30).model_copy(update={"state": "in_review"}),
    ]
    result = metrics(incidents)

    assert [(c.duration, c.count, c.incidents) for c in result.coverage] == [
        ("detect", 2, 5),  # a, c
        ("acknowledge", 1, 5),  # a (c has a detection but no acknowledgement)
        ("mitigate", 1, 5),  # c
        ("resolve", 4, 5),  # all but d, which has no start
        ("communicate", 1, 5),  # a
    ]
    assert response_coverage(result) == [
        ("Time to detect", "2 of 5 incidents"),
        ("Time to acknowledge", "1 of 5 incidents"),
        ("Time to mitigate", "1 of 5 incidents"),
        ("Time to resolve", "4 of 5 incidents"),
        ("Time to communicate", "1 of 5 incidents"),
    ]
    assert result.reviewed == 3  # a, b, c are tracking; d drafting, e in review
    assert figures_basis(result).startswith(
        "The response times of 3 of 5 incidents come from their approved postmortem's reviewed "
        "timeline; the others' postmortems are not yet approved"
    )
    # SEV1: a took 5 min to detect, b is unknown: median and p90 both 5 min, on 1 of 2.
    assert timing_cells(result.severities[0]) == [
        "5 min / 5 min (1 of 2)",
        "1 min / 1 min (1 of 2)",
        "— / — (0 of 2)",
        "1.3 h / 1.5 h (2 of 2)",  # 60 and 90 min: median 75 min = 1.25 h, half up
        "15 min / 15 min (1 of 2)",
    ]
    assert format_coverage(1, 1) == "1 of 1 incident"
    assert figures_basis(metrics([])) == "No incident was resolved in the period."


def test_an_incident_without_a_start_has_only_acknowledge() -> None:
    no_start = incident(
        "a", detected_at=at(10, 5, 10), acknowledged_at=at(10, 5, 10, 4), mitigated_at=at(10, 5, 11)
    )
    sev2 = metrics([no_start]).severities[1]
    assert sev2.acknowledge.median == minutes(4)
    assert [sev2.of(d).count for d in DURATIONS] == [0, 1, 0, 0, 0]


def test_p90_is_the_nearest_rank() -> None:
    ten = [minutes(n) for n in range(10, 0, -1)]  # 1..10 min, unsorted
    eleven = [minutes(n) for n in range(1, 12)]
    # 10 values: rank ceil(9.0) = 9 -> 9 min; 11 values: rank ceil(9.9) = 10 -> 10 min
    assert p90(ten) == minutes(9)
    assert p90(eleven) == minutes(10)
    # medians: 10 values -> (5 + 6) / 2 = 5.5 min; 11 values -> the 6th, 6 min
    assert median(ten) == minutes(5.5)
    assert median(eleven) == minutes(6)
    assert median([]) is None
    assert p90([]) is None
    assert p90([minutes(7)]) == minutes(7)


def test_communicating_before_the_recorded_start_counts_as_zero() -> None:
    start = at(10, 5, 10)
    early = timed("early", start, communicated=-10)  # announced 10 min before the start
    late = timed("late", start, communicated=30)
    unknown_start = incident("u", communicated_at=start)  # no start: no duration at all
    sev2 = metrics([early, late, unknown_start]).severities[1]
    # 0 and 30 min -> median 15; p90 rank ceil(1.8) = 2 -> 30
    assert sev2.communicate == DurationStats(count=2, median=minutes(15), p90=minutes(30))


def test_severities_in_the_callers_order_then_unknown_ones_sorted() -> None:
    incidents = [
        incident("a", severity="SEV3"),
        incident("b", severity="SEV9"),
        incident("c", severity="P2"),
        incident("d", severity="SEV1"),
        incident("e", severity="SEV1"),
    ]
    result = metrics(incidents, severities=["SEV1", "SEV2", "SEV1"])
    assert [(s.severity, s.incidents) for s in result.severities] == [
        ("SEV1", 2),
        ("SEV2", 0),
        ("P2", 1),
        ("SEV3", 1),
        ("SEV9", 1),
    ]
    assert [r.severity for r in result.trend[0].by_severity] == [
        "SEV1",
        "SEV2",
        "P2",
        "SEV3",
        "SEV9",
    ]


def test_incidents_outside_the_period_and_items_of_other_postmortems_are_left_out() -> None:
    inside = incident("in", resolved_at=at(12, 31, 23, 59))
    before = incident("before", resolved_at=at(9, 30, 23, 59))
    at_end = incident("at-end", resolved_at=Q4_END)  # the end is exclusive
    items = [
        item(1, "in", ActionItemState.OPEN, date(2026, 12, 1)),
        item(1, "before", ActionItemState.OPEN, date(2026, 12, 1)),
        item(1, "elsewhere", ActionItemState.OPEN, date(2026, 12, 1)),
    ]
    result = metrics([inside, before, at_end], items)
    assert result.incidents == 1
    assert result.follow_up.total == 1


def test_postmortems_by_state_in_lifecycle_order() -> None:
    states = ["closed", "tracking", "drafting", "tracking", "archived"]
    result = metrics([incident(f"pm-{n}", state=s) for n, s in enumerate(states)])
    assert result.postmortems_by_state == [
        StateCount(state="drafting", postmortems=1),
        StateCount(state="tracking", postmortems=2),
        StateCount(state="closed", postmortems=1),
        StateCount(state="archived", postmortems=1),  # not a known state: after the known ones
    ]


# --- Follow-up -----------------------------------------------------------------------------


DUE = date(2026, 10, 20)
# 03:00Z on 22 October is 23:00 on 21 October in New York.
AS_OF_NY = datetime(2026, 10, 22, 3, 0, tzinfo=UTC)


def follow_up_items() -> list[ItemFacts]:
    opened = at(10, 14, 3, 30)
    return [
        # a: verified 23:30 New York time on its due date (03:30Z the next day), 7 days after
        #    it opened
        item(
            1,
            "pm-1",
            ActionItemState.VERIFIED,
            DUE,
            opened_at=opened,
            verified_at=datetime(2026, 10, 21, 3, 30, tzinfo=UTC),
        ),
        # b: verified 00:30 New York time the day after its due date, 2 days after it opened
        item(
            2,
            "pm-1",
            ActionItemState.VERIFIED,
            DUE,
            opened_at=opened + timedelta(days=5, hours=1),
            verified_at=datetime(2026, 10, 21, 4, 30, tzinfo=UTC),
        ),
        # c: open, due on the 19th: past due on the 21st
        item(3, "pm-1", ActionItemState.OPEN, date(2026, 10, 19)),
        # d: open, due on the 21st, which it still is in New York (not in UTC)
        item(4, "pm-1", ActionItemState.OPEN, date(2026, 10, 21)),
        # e: risk accepted long past its due date: not decided
        item(5, "pm-1", ActionItemState.RISK_ACCEPTED, date(2026, 10, 1)),
        # f: claimed done but not verified, past due: decided, and not on time
        item(6, "pm-1", ActionItemState.DONE_CLAIMED, date(2026, 10, 10)),
        # g: queued, not due for weeks
        item(7, "pm-1", ActionItemState.QUEUED, date(2026, 12, 1)),
    ]


def test_follow_up_reads_due_dates_in_the_calendars_time_zone() -> None:
    pm = incident("pm-1", resolved_at=at(10, 12))
    result = metrics([pm], follow_up_items(), as_of=AS_OF_NY, calendar=NEW_YORK)
    follow = result.follow_up
    # 7 items: verified a, b; risk accepted e; open c, d, f, g
    assert (follow.total, follow.verified, follow.risk_accepted, follow.open) == (7, 2, 1, 4)
    assert follow.completion_rate == pytest.approx(2 / 7)
    # decided: a, b (verified) + c, f (unresolved and past due) = 4; on time: a only
    assert (follow.on_time, follow.decided) == (1, 4)
    assert follow.on_time_rate == 0.25
    # time to verify: a 7 days, b 7 days - 5 days 1 hour + 1 hour = 2 days -> median 4.5 days
    assert follow.median_time_to_verify == timedelta(days=4.5)


def test_the_same_items_in_utc_are_late() -> None:
    pm = incident("pm-1", resolved_at=at(10, 12))
    follow = metrics([pm], follow_up_items(), as_of=AS_OF_NY).follow_up
    # In UTC a and b were verified on the 21st, after the 20th; and on the 22nd d is past due:
    # decided a, b, c, d, f = 5, none on time.
    assert (follow.on_time, follow.decided, follow.on_time_rate) == (0, 5, 0.0)


def test_only_risk_accepted_and_not_yet_due_items_leave_on_time_undecided() -> None:
    pm = incident("pm-1")
    items = [
        item(1, "pm-1", ActionItemState.RISK_ACCEPTED, date(2026, 10, 1)),
        item(2, "pm-1", ActionItemState.OPEN, date(2026, 12, 1)),
    ]
    follow = metrics([pm], items, as_of=at(11, 1)).follow_up
    assert (follow.decided, follow.on_time_rate) == (0, None)
    assert follow.completion_rate == 0.0


def test_a_verified_item_without_its_time_counts_as_done_but_not_in_timings() -> None:
    pm = incident("pm-1", resolved_at=at(10, 1))
    items = [
        item(1, "pm-1", ActionItemState.VERIFIED, DUE, verified_at=at(10, 15)),  # 9 days, on time
        item(2, "pm-1", ActionItemState.VERIFIED, DUE),  # no verified_at
    ]
    result = metrics([pm], items, as_of=at(12, 1))
    follow = result.follow_up
    assert (follow.verified, follow.completion_rate) == (2, 1.0)
    # only item 1 is decided, on time; time to verify: 6 Oct noon to 15 Oct noon = 9 days
    assert (follow.on_time, follow.decided) == (1, 1)
    assert follow.median_time_to_verify == timedelta(days=9)
    # item 2 cannot be shown verified within four weeks; those weeks are over: eligible only
    assert (result.within_four_weeks.qualified, result.within_four_weeks.eligible) == (0, 1)


def test_follow_ups_all_verified_within_four_weeks() -> None:
    as_of = at(12, 20)
    incidents = [
        incident(f"pm-{n}", resolved_at=resolved)
        for n, resolved in enumerate(
            [at(10, 1), at(10, 2), at(10, 3), at(12, 1), at(12, 5), at(10, 4), at(11, 22)], 1
        )
    ]

    def verified(n: int, pm: str, when: datetime) -> ItemFacts:
        return item(n, pm, ActionItemState.VERIFIED, DUE, verified_at=when)

    items = [
        # pm-1: both verified, the last exactly 28 days after resolution -> qualified
        verified(1, "pm-1", at(10, 10)),
        verified(2, "pm-1", at(10, 29)),
        # pm-2: the second verified 29 days after -> not qualified; its 4 weeks are over
        verified(1, "pm-2", at(10, 12)),
        verified(2, "pm-2", at(10, 31)),
        # pm-3: one verified, one risk accepted -> not qualified; over
        verified(1, "pm-3", at(10, 4)),
        item(2, "pm-3", ActionItemState.RISK_ACCEPTED, DUE),
        # pm-4: resolved 1 Dec, still open, its 4 weeks run to 29 Dec -> not yet eligible
        item(1, "pm-4", ActionItemState.OPEN, date(2026, 12, 24)),
        # pm-5: resolved 5 Dec, all verified already -> qualified although its weeks still run
        verified(1, "pm-5", at(12, 10)),
        # pm-6: no action items -> not counted at all
        # pm-7: resolved 22 Nov noon, open; its 4 weeks end 20 Dec noon, which is as_of
        item(1, "pm-7", ActionItemState.OPEN, date(2026, 12, 24)),
    ]
    four = metrics(incidents, items, as_of=as_of).within_four_weeks
    # qualified: pm-1, pm-5; eligible: those + pm-2, pm-3, pm-7 = 5
    assert (four.qualified, four.eligible) == (2, 5)
    assert four.share == 0.4
    figures = dict(headline(metrics(incidents, items, as_of=as_of)))
    assert figures["Follow-ups all verified within 4 weeks"] == "2 of 5 (40%)"


# --- Repeats, budgets, breaches --------------------------------------------------------------


def test_repeat_incidents_by_shared_contributing_factor() -> None:
    incidents = [
        incident("a", resolved_at=at(10, 3), factor_tags=["dns", "config"]),
        incident("b", resolved_at=at(10, 1), factor_tags=["dns", "dns"]),  # one incident
        incident("c", resolved_at=at(10, 2), factor_tags=["config", "capacity", "alerting"]),
        incident("d", resolved_at=at(10, 4), factor_tags=["dns", "alerting"]),
    ]
    # dns: a, b, d (3); config: a, c; alerting: c, d; capacity: c only (not a repeat).
    # By count, then tag; members oldest first.
    assert metrics(incidents).repeat_factors == [
        RepeatFactor(tag="dns", incidents=3, postmortem_ids=["b", "a", "d"]),
        RepeatFactor(tag="alerting", incidents=2, postmortem_ids=["c", "d"]),
        RepeatFactor(tag="config", incidents=2, postmortem_ids=["c", "a"]),
    ]


def burn(slo: str, service: str, consumed: float, rate: float) -> SloBurn:
    return SloBurn(slo=slo, service=service, budget_consumed=consumed, burn_rate=rate)


def known_burn(
    slo: str, service: str, consumed: float, rate: float, *, name: str, objective: float, days: int
) -> SloBurn:
    return SloBurn(
        slo=slo,
        service=service,
        budget_consumed=consumed,
        burn_rate=rate,
        name=name,
        objective=objective,
        period_days=days,
    )


BURNING = [
    incident(
        "i1",
        slo_burns=[
            known_burn(
                "checkout-availability",
                "checkout",
                0.375,
                12.0,
                name="availability",
                objective=0.999,
                days=30,
            ),
            burn("checkout-latency", "checkout", 0.125, 0.8),
        ],
    ),
    incident(
        "i2",
        slo_burns=[
            burn("checkout-availability", "checkout", 0.25, 3.0),
            known_burn(
                "search-availability",
                "search",
                0.5,
                0.5,
                name="search",
                objective=0.995,
                days=28,
            ),
        ],
    ),
    # exactly at its objective while users were hurt: not a breach
    incident("i3", slo_burns=[burn("search-availability", "search", 0.0625, 1.0)]),
    incident("i4"),
]


AVAILABILITY = "100% = the whole 30-day budget of 99.9% availability: 43 min of failed requests"


def test_error_budget_consumed_per_slo_never_summed_per_service() -> None:
    result = metrics(BURNING)
    # checkout-availability 0.375 + 0.25 = 0.625 over i1, i2; search-availability 0.5 + 0.0625
    # = 0.5625 over i2, i3; checkout-latency 0.125 over i1.
    availability = BudgetBySlo(
        slo="checkout-availability",
        service="checkout",
        consumed=0.625,
        incidents=2,
        meaning=AVAILABILITY,
    )
    search = BudgetBySlo(
        slo="search-availability",
        service="search",
        consumed=0.5625,
        incidents=2,
        meaning="100% = the whole 28-day budget of 99.5% search: 3.4 h of failed requests",
    )
    latency = BudgetBySlo(
        slo="checkout-latency",
        service="checkout",
        consumed=0.125,
        incidents=1,
        meaning="100% = the whole error budget of this SLO for one SLO period",
    )
    assert result.budget_by_slo == [availability, search, latency]
    # checkout is not 0.75 (0.625 + 0.125 adds two different budgets): its SLOs side by side.
    assert result.budget_by_service == [
        BudgetByService(service="checkout", slos=[availability, latency], incidents=2),
        BudgetByService(service="search", slos=[search], incidents=2),
    ]


@pytest.mark.parametrize(
    ("objective", "days", "meaning"),
    [
        # 0.001 x 30 days = 43.2 min
        (0.999, 30, "the whole 30-day budget of 99.9% x: 43 min of failed requests"),
        # 0.0005 x 28 days = 20.16 min
        (0.9995, 28, "the whole 28-day budget of 99.95% x: 20 min of failed requests"),
        # 0.01 x 30 days = 7.2 h
        (0.99, 30, "the whole 30-day budget of 99% x: 7.2 h of failed requests"),
        # 0.1 x 7 days = 16.8 h
        (0.9, 7, "the whole 7-day budget of 90% x: 16.8 h of failed requests"),
    ],
)
def test_what_100_percent_of_a_budget_means(objective: float, days: int, meaning: str) -> None:
    assert budget_meaning("x", objective, days) == f"100% = {meaning}"


@pytest.mark.parametrize("objective", [float("nan"), 1.5, 0, 1, True, "0.999"])
def test_an_implausible_stored_objective_is_read_as_unknown(objective: object) -> None:
    burn = SloBurn.model_validate(
        {
            "slo": "s",
            "service": "x",
            "budget_consumed": 0.1,
            "burn_rate": 1,
            "objective": objective,
            "period_days": 30,
        }
    )
    assert burn.objective is None


def test_equal_budgets_are_ordered_by_name() -> None:
    tied = [incident("x", slo_burns=[burn("b-slo", "b", 0.5, 2), burn("a-slo", "a", 0.5, 2)])]
    result = metrics(tied)
    assert [r.service for r in result.budget_by_service] == ["a", "b"]
    assert [r.slo for r in result.budget_by_slo] == ["a-slo", "b-slo"]


def test_share_of_incidents_breaching_a_customer_slo() -> None:
    breaches = metrics(BURNING).slo_breaches
    # i1 (burn rate 12) and i2 (3) breached; i3 (1.0) and i4 (no SLO) did not -> 2 of 4
    assert (breaches.breached, breaches.incidents, breaches.share) == (2, 4, 0.5)
    assert dict(headline(metrics(BURNING)))["Incidents breaching a customer SLO"] == "50%"


# --- Trend -----------------------------------------------------------------------------------


def test_the_trend_has_every_month_of_the_period_in_local_time() -> None:
    start, end = quarter_bounds("2026Q4", NEW_YORK)
    incidents = [
        # resolved 02:00Z on 1 October: still 30 September in New York, so outside Q4
        timed("sep", at(10, 1, 1, 0), resolved=60),
        # SEV1, resolve 30 and 90 min -> October median 60 min
        timed("oct-1", at(10, 10), resolved=30, severity="SEV1"),
        # 22:00 on 31 October in New York (02:00Z on 1 November): an October incident
        timed("oct-2", at(11, 1, 0, 30), resolved=90, severity="SEV1"),
        # December, SEV2, resolve 45 min
        timed("dec", at(12, 15), resolved=45),
    ]
    result = metrics(incidents, calendar=NEW_YORK, start=start, end=end, as_of=at(12, 31))
    assert result.incidents == 3
    assert [(m.month, m.incidents) for m in result.trend] == [
        ("2026-10", 2),
        ("2026-11", 0),
        ("2026-12", 1),
    ]
    october, november, december = result.trend
    assert october.by_severity[0].resolve == minutes(60)
    assert october.by_severity[1].resolve is None
    assert all(r.incidents == 0 and r.resolve is None for r in november.by_severity)
    assert december.by_severity[1].resolve == minutes(45)
    months, series = trend_series(result, "resolve")
    assert months == ["2026-10", "2026-11", "2026-12"]
    assert series == {
        "SEV1": [1.0, None, None],
        "SEV2": [None, None, 0.75],
        "SEV3": [None, None, None],
    }


def test_a_period_within_one_month_has_one_month() -> None:
    start, end = month_bounds(2026, 11, UTC_CALENDAR)
    assert [m.month for m in metrics([], start=start, end=end).trend] == ["2026-11"]
    assert metrics([], start=end, end=start).trend == []  # backwards: nothing, not an error


# --- Periods ---------------------------------------------------------------------------------


def test_quarter_bounds() -> None:
    assert quarter_bounds("2026Q4", UTC_CALENDAR) == (Q4_START, Q4_END)
    # Berlin: 1 January 00:00 CET is 23:00Z the day before; 1 April 00:00 CEST is 22:00Z.
    berlin = BusinessCalendar(timezone="Europe/Berlin")
    assert quarter_bounds("2026q1", berlin) == (
        datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC),
    )
    assert quarter_bounds("2027Q2", UTC_CALENDAR) == (
        at(4, 1, 0, year=2027),
        at(7, 1, 0, year=2027),
    )


@pytest.mark.parametrize("text", ["2026Q5", "26Q1", "2026-Q1", "Q4 2026", "2026Q0", ""])
def test_quarter_bounds_refuses_what_is_not_a_quarter(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"quarter '{text}' is not a quarter")):
        quarter_bounds(text, UTC_CALENDAR)


def test_quarter_bounds_refuses_years_a_date_cannot_hold() -> None:
    with pytest.raises(ValueError, match="quarter '9999Q4' is outside the years"):
        quarter_bounds("9999Q4", UTC_CALENDAR)


def test_month_bounds() -> None:
    assert month_bounds(2026, 12, UTC_CALENDAR) == (at(12, 1, 0), at(1, 1, 0, year=2027))
    with pytest.raises(ValueError, match="month 13 is not a month"):
        month_bounds(2026, 13, UTC_CALENDAR)


def test_a_period_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"period_start \(2026-10-01T00:00:00\) has no time zone"):
        metrics([], start=datetime(2026, 10, 1))


# --- Formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (None, "—"),
        (timedelta(0), "0 s"),
        (timedelta(seconds=42), "42 s"),
        (minutes(42), "42 min"),
        (minutes(59) + timedelta(seconds=40), "1 h"),  # 59.7 min rounds to an hour
        (timedelta(hours=3.5), "3.5 h"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=2.1), "2.1 days"),
        (timedelta(hours=23, minutes=58), "1 day"),  # 23.97 h: a day, not "24 h"
        (timedelta(days=9.5), "9.5 days"),
        (-minutes(5), "-5 min"),
    ],
)
def test_format_duration(duration: timedelta | None, text: str) -> None:
    assert format_duration(duration) == text


@pytest.mark.parametrize(
    ("rate", "text"), [(None, "—"), (0.0, "0%"), (1.0, "100%"), (5 / 7, "71%"), (1 / 8, "13%")]
)
def test_format_percent(rate: float | None, text: str) -> None:
    assert format_percent(rate) == text


def test_headline_numbers() -> None:
    pm = incident("pm-1", resolved_at=at(10, 12))
    result = metrics([pm], follow_up_items(), as_of=AS_OF_NY, calendar=NEW_YORK)
    assert headline(result) == [
        ("Incidents", "1"),
        ("Follow-ups completed", "29%"),  # 2 of 7
        ("On time", "25%"),  # 1 of 4
        ("Median time to verify", "4.5 days"),
        # resolved 12 Oct; its four weeks run to 9 Nov, after as_of, and items are open
        ("Follow-ups all verified within 4 weeks", "—"),
        ("Incidents breaching a customer SLO", "0%"),  # no SLO burned
    ]


def test_the_metrics_survive_a_json_round_trip() -> None:
    pm = incident(
        "pm-1", resolved_at=at(10, 12), factor_tags=["dns"], slo_burns=BURNING[0].slo_burns
    )
    result = metrics([pm, *BURNING[1:]], follow_up_items(), as_of=AS_OF_NY, calendar=NEW_YORK)
    text = json.dumps(result.model_dump(mode="json"))
    assert ReliabilityMetrics.model_validate(json.loads(text)) == result


# --- Properties ------------------------------------------------------------------------------

durations = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40).map(
    lambda seconds: [timedelta(seconds=s) for s in seconds]
)


@given(durations)
def test_median_and_p90_lie_within_the_values(values: list[timedelta]) -> None:
    middle, high = median(values), p90(values)
    assert middle is not None and high is not None
    assert min(values) <= middle <= max(values)
    assert middle <= high <= max(values)
    assert high in values


states = st.sampled_from(list(ActionItemState))
days = st.integers(min_value=0, max_value=60)


@given(st.lists(st.tuples(states, days, days), max_size=20), days)
def test_rates_lie_between_zero_and_one(
    specs: list[tuple[ActionItemState, int, int]], as_of_day: int
) -> None:
    origin = at(10, 1)
    items = [
        item(
            n,
            "pm-1",
            state,
            (origin + timedelta(days=due)).date(),
            opened_at=origin,
            verified_at=origin + timedelta(days=done)
            if state is ActionItemState.VERIFIED
            else None,
        )
        for n, (state, due, done) in enumerate(specs)
    ]
    result = metrics(
        [incident("pm-1", resolved_at=origin)], items, as_of=origin + timedelta(days=as_of_day)
    )
    follow = result.follow_up
    assert follow.verified + follow.risk_accepted + follow.open == follow.total == len(items)
    assert follow.on_time <= follow.verified
    assert follow.on_time <= follow.decided
    for rate in (follow.completion_rate, follow.on_time_rate, result.within_four_weeks.share):
        assert rate is None or 0 <= rate <= 1
