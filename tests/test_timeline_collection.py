"""Collecting an incident's timeline (issue 18): the storage (SQLite and PostgreSQL), the
collection activity's reports and idempotence, with collectors of the test's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from followthrough.domain.timeline import CollectedEvent, EventKind, SourceReport
from followthrough.storage import Store

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PM = "postmortem-pagerduty-P123"


def event(
    source_id: str, minutes: int = 0, text: str = "paged", **fields: object
) -> CollectedEvent:
    values: dict[str, object] = {
        "source": "pagerduty",
        "source_id": source_id,
        "at": AT + timedelta(minutes=minutes),
        "kind": EventKind.ALERT,
        "text": text,
    }
    return CollectedEvent.model_validate(values | fields)


def collected(n: int) -> SourceReport:
    return SourceReport(source="pagerduty", status="collected", events=n)


def test_collecting_again_updates_and_never_duplicates(store: Store) -> None:
    store.timeline.keep(PM, collected(2), [event("a", 5), event("b", 1)], AT)
    store.timeline.keep(PM, collected(2), [event("a", 5, "paged again"), event("b", 1)], AT)
    found = store.timeline.events(PM)
    assert [(e.source_id, e.text) for e in found] == [("b", "paged"), ("a", "paged again")]
    assert store.timeline.events("postmortem-generic-other") == []


def test_the_latest_report_per_source_replaces_the_last(store: Store) -> None:
    store.timeline.keep(PM, collected(1), [event("a")], AT)
    failed = SourceReport(source="pagerduty", status="failed", detail="PagerDuty answered 503")
    store.timeline.keep(PM, failed, [], AT + timedelta(hours=1))
    store.timeline.keep(PM, SourceReport(source="prometheus", status="not_configured"), [], AT)
    assert store.timeline.reports(PM) == [
        failed,
        SourceReport(source="prometheus", status="not_configured"),
    ]
    assert [e.source_id for e in store.timeline.events(PM)] == ["a"]  # a failure keeps events


def test_a_dropped_event_stays_dropped_when_collected_again(store: Store) -> None:
    store.timeline.keep(PM, collected(2), [event("a"), event("b", 1, author="ann")], AT)
    store.timeline.drop(PM, [("pagerduty", "a")])
    store.timeline.keep(PM, collected(2), [event("a"), event("b", 1, author="ann")], AT)
    [left] = store.timeline.events(PM)
    assert (left.source_id, left.author) == ("b", "ann")
