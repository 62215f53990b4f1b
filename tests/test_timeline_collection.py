"""Collecting an incident's timeline (issue 18): the storage (SQLite and PostgreSQL), the
collection activity's reports and idempotence, with collectors of the test's own."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.timeline import TimelineActivities
from followthrough.actions import ActionRefused, act
from followthrough.api.drafting import drafts
from followthrough.domain.draft import Draft
from followthrough.domain.draft_form import timeline_row
from followthrough.domain.incident import Incident, parse_incident
from followthrough.domain.policy import load_policy
from followthrough.domain.postmortem import Approval, CollectAgain
from followthrough.domain.problems import RefusalKind
from followthrough.domain.timeline import (
    EVENTS_PER_SOURCE_MOST,
    CollectedEvent,
    EventKind,
    SourceReport,
    TimelineRequest,
    proposed_entry,
)
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from tests.api_support import Api, loopback_policy
from tests.conftest import eventually, running_worker
from tests.factories import draft_data, incident_data
from tests.lifecycle import start, submit
from tests.test_api import open_postmortem, stored_postmortem
from tests.test_dashboard import browser, csrf_of, flash, text_of
from tests.test_drafting import form_of, with_kinds
from workflows.postmortem import PostmortemWorkflow

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


# --- the activity, with collectors of the test's own ---------------------------------------------


class Fake:
    """A collector that gives `events`, or raises `error`, or waits for `release` (a hang)."""

    def __init__(
        self,
        source: str,
        events: list[CollectedEvent] | None = None,
        error: Exception | None = None,
        applies: bool = True,
        release: threading.Event | None = None,
    ) -> None:
        self.source, self.events, self.error = source, events or [], error
        self.applies, self.release, self.calls = applies, release, 0

    def applies_to(self, incident: Incident) -> bool:
        return self.applies

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        self.calls += 1
        if self.release is not None:
            self.release.wait(5)
        if self.error is not None:
            raise self.error
        return self.events


def request(source: str = "pagerduty") -> TimelineRequest:
    incident = parse_incident(incident_data(AT, id="P123", source=source), load_policy())
    return TimelineRequest(postmortem_id=incident.postmortem_id, incident=incident)


async def test_each_source_is_reported_and_none_blocks_the_others(sqlite_store: Store) -> None:
    hang = threading.Event()
    collectors = [
        Fake("pagerduty", [event("a", 2), event("b", 1)]),
        Fake("opsgenie", error=SourceUnavailable("HTTP 503 after waiting out Retry-After 2s")),
        Fake("incidentio", error=SourceRefused("401: the API key is not valid")),
        Fake("firehydrant", error=KeyError("data")),
        Fake("slack", release=hang),
        Fake("other", [event("z")], applies=False),
    ]
    activities = TimelineActivities(sqlite_store, collectors, seconds=0.5)
    try:
        reports = await activities.collect_timeline(request())
    finally:
        hang.set()
    by_source = {r.source: r for r in reports}
    assert sorted(by_source) == ["firehydrant", "incidentio", "opsgenie", "pagerduty", "slack"]
    assert by_source["pagerduty"] == collected(2)
    assert by_source["opsgenie"].status == "failed"
    assert by_source["opsgenie"].detail == (
        "opsgenie could not answer now: HTTP 503 after waiting out Retry-After 2s"
    )
    assert by_source["incidentio"].detail == "incidentio refused: 401: the API key is not valid"
    assert by_source["firehydrant"].detail == "firehydrant failed: KeyError: 'data'"
    assert by_source["slack"].detail == "slack did not answer within 0.5s"
    assert sqlite_store.timeline.reports(PM) == reports
    assert [e.source_id for e in sqlite_store.timeline.events(PM)] == ["b", "a"]


async def test_a_source_that_would_apply_unconfigured_is_said(sqlite_store: Store) -> None:
    prometheus = Fake("prometheus", [event("x", source="prometheus")])
    reports = await TimelineActivities(sqlite_store, [prometheus]).collect_timeline(request())
    assert [(r.source, r.status) for r in reports] == [
        ("pagerduty", "not_configured"),  # a PagerDuty incident without a PagerDuty token
        ("prometheus", "collected"),
    ]
    generic = request("generic")  # a source nobody could ask: nothing to say
    assert await TimelineActivities(sqlite_store, []).collect_timeline(generic) == []


async def test_collecting_again_is_idempotent_and_at_most_the_bound(sqlite_store: Store) -> None:
    many = [event(f"e{i}", i % 50) for i in range(EVENTS_PER_SOURCE_MOST + 3)]
    activities = TimelineActivities(sqlite_store, [Fake("pagerduty", many)])
    first = await activities.collect_timeline(request())
    again = await activities.collect_timeline(request())
    assert first == again
    assert first[0].events == EVENTS_PER_SOURCE_MOST
    assert first[0].detail == f"kept 500 of the {EVENTS_PER_SOURCE_MOST + 3} events it gave"
    assert len(sqlite_store.timeline.events(PM)) == EVENTS_PER_SOURCE_MOST


# --- the workflow: collected on opening, and again on request ------------------------------------


async def test_collected_when_opened_and_again_until_approval(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, mailer: Mailer
) -> None:
    client, policy = time_skipping.client, loopback_policy()
    now = await time_skipping.get_current_time()
    pager = Fake("pagerduty", [event("a")])
    async with running_worker(client, sqlite_store, mailer, collectors=[pager]) as queue:
        pm_id = await start(client, policy, queue, now, id="P9", source="pagerduty")
        reports = await eventually(lambda: sqlite_store.timeline.reports(pm_id))
        assert reports == [collected(1)]
        assert pager.calls == 1

        stranger = CollectAgain(by="bob")  # in the directory, neither owner nor reviewer
        with pytest.raises(ActionRefused, match=r"only the postmortem owner \(alice\) or a"):
            await act(client, pm_id, PostmortemWorkflow.collect_again, stranger)
        await act(client, pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="alice"))
        await act(client, pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="erin"))
        await eventually(lambda: pager.calls == 3)
        assert len(sqlite_store.timeline.events(pm_id)) == 1  # collected thrice, kept once

        await submit(client, pm_id, "alice", draft_data(now))
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        with pytest.raises(ActionRefused, match="only until approval") as refused:
            await act(client, pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="alice"))
        assert refused.value.kind is RefusalKind.CONFLICT


# --- the draft editor: what came, kept, edited or dropped, and where each entry came from ---------


async def test_the_owner_keeps_edits_and_drops_proposed_entries(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping, source="pagerduty")
    now = await time_skipping.get_current_time()
    store, editor = api.services.store, f"/postmortems/{pm_id}/draft"
    # The API's worker has no collectors: its collection says so, then these stand in for one.
    not_configured = await eventually(lambda: store.timeline.reports(pm_id))
    assert [(r.source, r.status) for r in not_configured] == [("pagerduty", "not_configured")]
    page_link = "https://acme.pagerduty.com/incidents/P1/log_entries/L1"
    paged = event("L1", author="ann", link=page_link, at=now - timedelta(hours=3, minutes=39))
    note = event("L2", text="Looking at the LB", kind=EventKind.NOTE, at=now - timedelta(hours=3))
    hostile = event("L3", text="click me", link="javascript:alert(1)", at=now - timedelta(hours=2))
    store.timeline.keep(pm_id, collected(3), [paged, note, hostile], now)
    failed = SourceReport(source="prometheus", status="failed", detail="prometheus refused: 401")
    store.timeline.keep(pm_id, failed, [], now)
    data = with_kinds(draft_data(now))

    async with browser(api, "alice") as alice:
        page = await alice.get(editor)
        shown = text_of(page)
        assert "pagerduty: collected 3" in shown
        assert "prometheus: failed: prometheus refused: 401" in shown
        assert f'href="{page_link}"' in page.text and "from pagerduty · ann" in shown
        assert "javascript:" not in page.text.replace('value="javascript:alert(1)"', "")
        rows = {
            re.sub(r"^proposed-\d+-", "", k): v
            for k, v in re.findall(r'name="(proposed-0-[a-z_]+)" value="([^"]*)"', page.text)
        }
        assert rows["source_id"] == "L1" and rows["author"] == "ann"

        # A save refused shows the page again, what the sources gave still on it.
        bad = form_of(data) | {"csrf": csrf_of(page), "version": "0", "timeline-0-at": "soon"}
        refused = await alice.post(editor, data=bad)
        assert refused.status_code == 422 and "pagerduty: collected 3" in text_of(refused)

        # Keep the page (its words edited, as a detection), drop the note, leave the third.
        form = form_of(data) | {"csrf": csrf_of(page), "version": "0", "intent": "save"}
        for i, (source_id, decision) in enumerate((("L1", "keep"), ("L2", "drop"))):
            found = next(e for e in (paged, note) if e.source_id == source_id)
            row = timeline_row(proposed_entry(found), "UTC")
            form |= {f"proposed-{i}-{k}": v for k, v in row.items()}
            form[f"proposed-{i}-decision"] = decision
        form["proposed-0-description"] = "Paged ann: checkout 5xx"
        form["proposed-0-kind"] = "detected"
        saved = await alice.post(editor, data=form)
        assert (await flash(alice, saved)) == {"done": "Saved version 1."}
        again = await alice.post(editor, data=form | {"version": "1"})  # posted twice: kept once
        assert (await flash(alice, again)) == {"done": "Saved version 2."}

        kept = Draft.model_validate(drafts(api.services).latest(pm_id).draft)  # type: ignore[union-attr]
        [detected] = [e for e in kept.timeline if e.source]
        assert (detected.kind, detected.description, detected.source_id) == (
            "detected",
            "Paged ann: checkout 5xx",
            "L1",
        )
        at = paged.at.replace(microsecond=0)  # the form shows seconds
        assert (detected.author, detected.link, detected.at) == ("ann", page_link, at)
        assert [e.source_id for e in store.timeline.events(pm_id)] == ["L1", "L3"]  # L2 dropped

        page = await alice.get(editor)
        proposed = re.findall(r'name="proposed-\d+-source_id" value="([^"]*)"', page.text)
        assert proposed == ["L3"]  # L1 is in the timeline now, L2 is gone
        assert 'name="timeline-1-source_id" value="L1"' in page.text  # carried as it is

        submitted = await alice.post(editor, data=form_of(kept.model_dump(mode="json")) | {
            "csrf": csrf_of(page), "version": "2", "intent": "submit",
            **{f"timeline-{i}-{k}": v for i, e in enumerate(kept.timeline)
               for k, v in timeline_row(e, "UTC").items()},
        })  # fmt: skip
        assert "in review" in (await flash(alice, submitted))["done"]
        pm = stored_postmortem(api, pm_id)
        assert pm.draft is not None and [e for e in pm.draft.timeline if e.source] == [detected]
        for page_path in (f"/postmortems/{pm_id}", f"/postmortems/{pm_id}/document"):
            shown_page = await alice.get(page_path)
            assert "from pagerduty · ann" in text_of(shown_page), page_path
            assert f'href="{page_link}"' in shown_page.text, page_path
        markdown = (await alice.get(f"/postmortems/{pm_id}/document.md")).text
        assert f"Paged ann: checkout 5xx (from pagerduty · ann · <{page_link}>)" in markdown

        collect = await alice.post(
            f"/postmortems/{pm_id}/collect", data={"csrf": csrf_of(page), "back": editor}
        )
        assert "Collecting the timeline again" in (await flash(alice, collect))["done"]

    # The HTTP API's door: the owner or a reviewer (the review is still open).
    stranger = await api.post(f"/api/postmortems/{pm_id}/collect", "bob")
    assert stranger.status_code == 403, stranger.text
    reviewer = await api.post(f"/api/postmortems/{pm_id}/collect", "erin")
    assert reviewer.status_code == 200 and reviewer.json()["state"] == "in_review"
