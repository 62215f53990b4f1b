"""The incident.io and FireHydrant timeline collectors against test servers that speak those
vendors' documented endpoints, driven over HTTP on 127.0.0.1 (issue 18)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENT_TEXT_MOST, EVENTS_PER_SOURCE_MOST, EventKind
from followthrough.integrations.timeline import (
    SourceRefused,
    SourceUnavailable,
    configured_collectors,
)
from followthrough.integrations.timeline.common import WAITS_MOST
from followthrough.integrations.timeline.firehydrant import PER_PAGE, FireHydrantCollector
from followthrough.integrations.timeline.incident_io import PAGE_SIZE, IncidentIoCollector
from followthrough.settings import Settings
from tests.servers.daemon import is_loopback
from tests.servers.firehydrant_server import FireHydrantServer, event
from tests.servers.incident_io_server import IncidentIoServer, Timeline, timeline_item, update

IO_KEY = "inc-test-key"
FH_KEY = "fhb-test-key"
PERMALINK = "https://app.incident.io/acme/incidents/42"


def _incident(source: str, incident_id: str, url: str | None = None) -> Incident:
    return Incident(
        id=incident_id,
        title="Checkout returned 502s",
        severity="SEV2",
        resolved_at=datetime(2026, 11, 2, 12, tzinfo=UTC),
        source=source,
        url=url,
    )


class Sleeps:
    """Records the waits a collector asks for instead of sleeping them (the tests stay fast)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _io(server: IncidentIoServer, sleeps: Sleeps | None = None) -> IncidentIoCollector:
    assert is_loopback("127.0.0.1") and server.base_url.startswith("http://127.0.0.1:")
    return IncidentIoCollector(IO_KEY, server.base_url, timeout=5, sleep=sleeps or Sleeps())


def _fh(server: FireHydrantServer, sleeps: Sleeps | None = None) -> FireHydrantCollector:
    assert server.base_url.startswith("http://127.0.0.1:")
    return FireHydrantCollector(FH_KEY, server.base_url, timeout=5, sleep=sleeps or Sleeps())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- incident.io --------------------------------------------------------------------------------


def test_incident_io_updates_and_timeline_items_become_events_oldest_first() -> None:
    timeline = Timeline(
        updates=[
            update(
                "01UPD2",
                "01INC",
                "2026-11-02T10:30:00Z",
                message="Rolled back; error rate falling.",
                status="Monitoring",
                severity="Minor",
                updater={"workflow": {"id": "01WF", "name": "Post to status page"}},
            ),
            update("01UPD1", "01INC", "2026-11-02T10:05:00Z", message="Looking into 502s."),
        ],
        timeline_items=[
            timeline_item(
                "01ITEM",
                "01INC",
                "2026-11-02T10:12:00Z",
                "Rolled back payments-api",
                description="Config push **reverted**.",
                creator={"user": {"id": "01U2", "name": "Bob", "role": "owner"}},
            ),
        ],
    )
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": timeline}) as server:
        events = _io(server).collect(_incident("incidentio", "01INC", PERMALINK))

    assert [(e.source_id, e.kind, e.author) for e in events] == [
        ("update-01UPD1", EventKind.STATUS_UPDATE, "Lisa Karlin Curtis"),
        ("timeline-item-01ITEM", EventKind.NOTE, "Bob"),
        ("update-01UPD2", EventKind.STATUS_UPDATE, "Post to status page"),
    ]
    assert events[0].at == datetime(2026, 11, 2, 10, 5, tzinfo=UTC)
    assert events[1].text == "Rolled back payments-api\n\nConfig push **reverted**."
    assert events[2].text == "Rolled back; error rate falling.\nStatus: Monitoring\nSeverity: Minor"
    assert {e.source for e in events} == {"incidentio"}
    assert {e.link for e in events} == {PERMALINK}
    # The collector asked for this incident only, on both documented endpoints.
    assert {(path, query["incident_id"]) for path, query in server.calls} == {
        ("/v2/incident_updates", "01INC"),
        ("/v2/incident_timeline_items", "01INC"),
    }


def test_incident_io_follows_the_after_cursor_across_pages() -> None:
    updates = [
        update(f"01U{n:04d}", "01INC", f"2026-11-02T10:{n % 60:02d}:00Z", message=f"update {n}")
        for n in range(130)
    ]
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": Timeline(updates=updates)}) as srv:
        events = _io(srv).collect(_incident("incidentio", "01INC"))
        update_calls = [q for path, q in srv.calls if path == "/v2/incident_updates"]

    assert len(events) == 130
    assert {e.source_id for e in events} == {f"update-01U{n:04d}" for n in range(130)}
    assert [q.get("after") for q in update_calls] == [None, "01U0049", "01U0099"]
    assert {q["page_size"] for q in update_calls} == {str(PAGE_SIZE)}
    assert events[0].link is None  # no permalink on the incident: no link


def test_incident_io_keeps_at_most_the_events_per_source_and_bounds_text() -> None:
    long = "x" * (EVENT_TEXT_MOST + 500)
    updates = [
        update(f"01U{n:04d}", "01INC", f"2026-11-02T{n // 60 % 24:02d}:{n % 60:02d}:00Z")
        for n in range(EVENTS_PER_SOURCE_MOST + 20)
    ]
    items = [timeline_item("01ITEM", "01INC", "2026-11-01T09:00:00Z", "Long", description=long)]
    incidents = {"01INC": Timeline(updates=updates, timeline_items=items)}
    with IncidentIoServer(api_key=IO_KEY, incidents=incidents) as server:
        events = _io(server).collect(_incident("incidentio", "01INC"))
        pages = sum(path == "/v2/incident_updates" for path, _ in server.calls)

    assert len(events) == EVENTS_PER_SOURCE_MOST
    assert pages == EVENTS_PER_SOURCE_MOST // PAGE_SIZE  # it stopped asking once it had enough
    assert events[0].source_id == "timeline-item-01ITEM"  # the oldest are kept
    assert len(events[0].text) == EVENT_TEXT_MOST and events[0].text.endswith("…")


def test_incident_io_waits_out_a_429_by_its_retry_after() -> None:
    timeline = Timeline(updates=[update("01U1", "01INC", "2026-11-02T10:00:00Z", message="hi")])
    sleeps = Sleeps()
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": timeline}) as server:
        server.rate_limit_next(2, retry_after="2")
        events = _io(server, sleeps).collect(_incident("incidentio", "01INC"))

    assert [e.source_id for e in events] == ["update-01U1"]
    assert sleeps.waits == [2.0, 2.0]


def test_incident_io_that_keeps_rate_limiting_is_unavailable() -> None:
    sleeps = Sleeps()
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": Timeline()}) as server:
        server.rate_limit_next(WAITS_MOST + 1)
        with pytest.raises(SourceUnavailable, match="kept rate limiting"):
            _io(server, sleeps).collect(_incident("incidentio", "01INC"))
    assert len(sleeps.waits) == WAITS_MOST


def test_incident_io_429_asking_for_too_long_is_unavailable_without_waiting() -> None:
    sleeps = Sleeps()
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": Timeline()}) as server:
        server.rate_limit_next(1, retry_after="3600")
        with pytest.raises(SourceUnavailable, match="retry after 3600s"):
            _io(server, sleeps).collect(_incident("incidentio", "01INC"))
    assert sleeps.waits == []


def test_incident_io_wrong_key_is_refused_naming_the_setting() -> None:
    with (
        IncidentIoServer(api_key="another-key", incidents={"01INC": Timeline()}) as server,
        pytest.raises(SourceRefused, match="FOLLOWTHROUGH_INCIDENT_IO_API_KEY") as refused,
    ):
        _io(server).collect(_incident("incidentio", "01INC"))
    assert "401" in str(refused.value) and IO_KEY not in str(refused.value)


def test_incident_io_unknown_incident_is_refused() -> None:
    with (
        IncidentIoServer(api_key=IO_KEY, incidents={}) as server,
        pytest.raises(SourceRefused, match="no incident 01GONE"),
    ):
        _io(server).collect(_incident("incidentio", "01GONE"))


def test_incident_io_5xx_with_a_proxy_page_is_unavailable() -> None:
    with IncidentIoServer(api_key=IO_KEY, incidents={"01INC": Timeline()}) as server:
        server.fail_next(1, status=502)
        with pytest.raises(SourceUnavailable, match="answered 502"):
            _io(server).collect(_incident("incidentio", "01INC"))


def test_incident_io_record_missing_what_its_api_documents_is_unavailable() -> None:
    broken = update("01U1", "01INC", "2026-11-02T10:00:00Z")
    del broken["updater"]
    with (
        IncidentIoServer(api_key=IO_KEY, incidents={"01INC": Timeline(updates=[broken])}) as srv,
        pytest.raises(SourceUnavailable, match="not what its API documents"),
    ):
        _io(srv).collect(_incident("incidentio", "01INC"))


def test_incident_io_unreachable_is_unavailable() -> None:
    collector = IncidentIoCollector(IO_KEY, f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(SourceUnavailable, match="connection refused"):
        collector.collect(_incident("incidentio", "01INC"))


# -- FireHydrant --------------------------------------------------------------------------------


def test_firehydrant_events_are_mapped_and_bookkeeping_left_out() -> None:
    events_in = [
        event("e-ack", "incident_status", "2026-11-02T10:04:00Z", {"milestone": "acknowledged"}),
        event("e-note", "note", "2026-11-02T10:06:00Z", {"body": "Seeing 502s on checkout"}),
        event("e-role", "role_update", "2026-11-02T10:07:00Z", {"body": "Bob is commander"}),
        event(
            "e-chat", "chat_message", "2026-11-02T10:08:00Z", {"body": "rolling back"}, author="Al"
        ),
        event("e-upd", "general_update", "2026-11-02T10:20:00Z", {"note": "Fix deployed"}),
        event("e-mit", "incident_status", "2026-11-02T10:25:00Z", {"milestone": "mitigated"}),
        event("e-res", "incident_status", "2026-11-02T10:40:00Z", {"milestone": "resolved"}),
        event("e-alert", "alert_linked", "2026-11-02T10:01:00Z", {"summary": "5xx > 5%"}),
        event("e-task", "task_update", "2026-11-02T10:30:00Z", {"body": "done"}),
        event("e-none", "note", "2026-11-02T10:31:00Z", {"body": "anonymous"}, author=None),
    ]
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": events_in}) as server:
        events = _fh(server).collect(_incident("firehydrant", "inc-1"))

    assert [(e.source_id, e.kind, e.author, e.text) for e in events] == [
        ("e-alert", EventKind.ALERT, "Robert Ross", "5xx > 5%"),
        ("e-ack", EventKind.ACKNOWLEDGE, "Robert Ross", "Milestone: acknowledged"),
        ("e-note", EventKind.NOTE, "Robert Ross", "Seeing 502s on checkout"),
        ("e-chat", EventKind.CHAT_MESSAGE, "Al", "rolling back"),
        ("e-upd", EventKind.STATUS_UPDATE, "Robert Ross", "Fix deployed"),
        ("e-mit", EventKind.STATUS_UPDATE, "Robert Ross", "Milestone: mitigated"),
        ("e-none", EventKind.NOTE, None, "anonymous"),
        ("e-res", EventKind.RESOLVE, "Robert Ross", "Milestone: resolved"),
    ]
    assert events[1].at == datetime(2026, 11, 2, 10, 4, tzinfo=UTC)
    assert {e.source for e in events} == {"firehydrant"}
    assert [path for path, _ in server.calls] == ["/v1/incidents/inc-1/events"]


def test_firehydrant_follows_pages_until_next_is_null() -> None:
    events_in = [
        event(f"e-{n:03d}", "note", f"2026-11-02T10:{n % 60:02d}:{n // 60:02d}Z", {"body": str(n)})
        for n in range(250)
    ]
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": events_in}) as server:
        events = _fh(server).collect(_incident("firehydrant", "inc-1"))

    assert {e.source_id for e in events} == {f"e-{n:03d}" for n in range(250)}
    assert [q["page"] for _, q in server.calls] == ["1", "2", "3"]
    assert events == sorted(events, key=lambda e: e.at)


def test_firehydrant_keeps_at_most_the_events_per_source_and_bounds_text() -> None:
    events_in = [
        event(f"e-{n:04d}", "note", f"2026-11-02T{n // 60 % 24:02d}:{n % 60:02d}:00Z", {})
        for n in range(EVENTS_PER_SOURCE_MOST + 150)
    ]
    events_in[0]["data"] = {"body": "y" * (EVENT_TEXT_MOST * 2)}
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": events_in}) as server:
        events = _fh(server).collect(_incident("firehydrant", "inc-1"))
        pages = len(server.calls)

    assert len(events) == EVENTS_PER_SOURCE_MOST
    assert pages == EVENTS_PER_SOURCE_MOST // PER_PAGE
    assert len(events[0].text) == EVENT_TEXT_MOST


def test_firehydrant_waits_out_a_429_and_gives_up_on_one_that_repeats() -> None:
    events_in = [event("e-1", "note", "2026-11-02T10:00:00Z", {"body": "hi"})]
    sleeps = Sleeps()
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": events_in}) as server:
        server.rate_limit_next(1, retry_after="1")
        assert [e.source_id for e in _fh(server, sleeps).collect(_incident("firehydrant", "inc-1"))]
        assert sleeps.waits == [1.0]
        server.rate_limit_next(WAITS_MOST + 1, retry_after="0")
        with pytest.raises(SourceUnavailable, match="kept rate limiting"):
            _fh(server, sleeps).collect(_incident("firehydrant", "inc-1"))


def test_firehydrant_wrong_key_and_unknown_incident_are_refused() -> None:
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": []}) as server:
        wrong = FireHydrantCollector("fhb-wrong", server.base_url, sleep=Sleeps())
        with pytest.raises(SourceRefused, match="FOLLOWTHROUGH_FIREHYDRANT_API_KEY"):
            wrong.collect(_incident("firehydrant", "inc-1"))
        with pytest.raises(SourceRefused, match="no incident inc-404"):
            _fh(server).collect(_incident("firehydrant", "inc-404"))


def test_firehydrant_5xx_and_unreachable_are_unavailable() -> None:
    with FireHydrantServer(api_key=FH_KEY, incidents={"inc-1": []}) as server:
        server.fail_next(1, status=503)
        with pytest.raises(SourceUnavailable, match="answered 503"):
            _fh(server).collect(_incident("firehydrant", "inc-1"))
    closed = FireHydrantCollector(FH_KEY, f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(SourceUnavailable, match="connection refused"):
        closed.collect(_incident("firehydrant", "inc-1"))


# -- which incidents and settings --------------------------------------------------------------


def test_each_collector_applies_to_its_own_vendors_incidents_only() -> None:
    io, fh = IncidentIoCollector(IO_KEY), FireHydrantCollector(FH_KEY)
    assert io.applies_to(_incident("incidentio", "01INC"))
    assert not io.applies_to(_incident("firehydrant", "inc-1"))
    assert fh.applies_to(_incident("firehydrant", "inc-1"))
    assert not fh.applies_to(_incident("pagerduty", "P1"))


def test_configured_collectors_follow_the_api_keys() -> None:
    assert not [
        c for c in configured_collectors(Settings()) if c.source in ("incidentio", "firehydrant")
    ]
    settings = Settings(
        incident_io_api_key=IO_KEY,
        incident_io_url="http://127.0.0.1:1",
        firehydrant_api_key=FH_KEY,
    )
    chosen = {c.source: c for c in configured_collectors(settings)}
    io, fh = chosen["incidentio"], chosen["firehydrant"]
    assert isinstance(io, IncidentIoCollector) and io.base_url == "http://127.0.0.1:1"
    assert isinstance(fh, FireHydrantCollector) and fh.base_url == "https://api.firehydrant.io"
