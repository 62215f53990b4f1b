"""The PagerDuty and Opsgenie timeline collectors against test servers speaking each vendor's
documented API on 127.0.0.1, driven by the real client libraries (issue 18).

A 429's Retry-After is waited out through `common.RateLimitWaits`, whose sleep the tests record
instead of sleeping, so they stay fast and can still tell how long the collector would have waited.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENT_TEXT_MOST, EVENTS_PER_SOURCE_MOST, EventKind
from followthrough.integrations.timeline import (
    SourceRefused,
    SourceUnavailable,
    configured_collectors,
)
from followthrough.integrations.timeline.common import UNHINTED_WAIT_SECONDS, WAIT_MOST_SECONDS
from followthrough.integrations.timeline.opsgenie import OpsgenieCollector
from followthrough.integrations.timeline.pagerduty import PagerDutyCollector
from followthrough.settings import Settings
from tests.factories import incident_data
from tests.servers.daemon import is_loopback
from tests.servers.opsgenie_server import OpsgenieAlert, OpsgenieServer
from tests.servers.opsgenie_server import log as og_log
from tests.servers.opsgenie_server import note as og_note
from tests.servers.pagerduty_server import PagerDutyIncident, PagerDutyServer, log_entry, note
from tests.servers.tls import loopback_certificate, trusting

PD_TOKEN = "pd-test-token"
OG_KEY = "og-test-key"
PD_ID = "PABC123"
OG_ID = "8418d193-2dab-4490-b331-8c02cdd196b7"


def _incident(source: str, incident_id: str, url: str | None = None) -> Incident:
    now = datetime.now(UTC)
    return Incident.model_validate(incident_data(now, id=incident_id, source=source, url=url))


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return loopback_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def pd(certificate: tuple[Path, Path]) -> Iterator[PagerDutyServer]:
    with PagerDutyServer(token=PD_TOKEN, tls=certificate) as server:
        assert is_loopback(str(urlsplit(server.base_url).hostname))
        yield server


@pytest.fixture
def og() -> Iterator[OpsgenieServer]:
    with OpsgenieServer(api_key=OG_KEY) as server:
        assert is_loopback(str(urlsplit(server.base_url).hostname))
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def _pd_collector(
    pd: PagerDutyServer,
    certificate: tuple[Path, Path],
    sleeps: Sleeps,
    *,
    token: str = PD_TOKEN,
    base_url: str | None = None,
) -> PagerDutyCollector:
    return PagerDutyCollector(
        token,
        base_url or pd.base_url,
        timeout=5,
        sleep=sleeps,
        verify=trusting(certificate[0]),
    )


def _og_collector(
    og: OpsgenieServer, sleeps: Sleeps, *, key: str = OG_KEY, base_url: str | None = None
) -> OpsgenieCollector:
    return OpsgenieCollector(key, base_url or og.base_url, timeout=5, sleep=sleeps)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- PagerDuty ---------------------------------------------------------------------------------

PD_LOG = [
    log_entry(
        "Q0TRIGGER",
        "trigger_log_entry",
        "2026-03-01T10:00:00Z",
        agent="Checkout Prometheus",
        summary="Triggered through the API",
        event_details={"description": "High error rate on checkout"},
    ),
    log_entry("Q0NOTIFY1", "notify_log_entry", "2026-03-01T10:00:05Z", agent=None),
    log_entry("Q0ESCALAT", "escalate_log_entry", "2026-03-01T10:05:00Z", agent=None),
    log_entry("Q0ACKNOWL", "acknowledge_log_entry", "2026-03-01T10:07:00Z", agent="Bob Brown"),
    log_entry("Q0ANNOTAT", "annotate_log_entry", "2026-03-01T10:08:00Z"),
    log_entry(
        "Q0STATUSU",
        "status_update_log_entry",
        "2026-03-01T10:10:00Z",
        message="Checkout is degraded; a rollback is under way.",
    ),
    log_entry("Q0SNOOZED", "snooze_log_entry", "2026-03-01T10:11:00Z"),
    log_entry("Q0RESOLVE", "resolve_log_entry", "2026-03-01T10:30:00Z", agent="Bob Brown"),
]


def test_pagerduty_log_entries_and_notes_become_events(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    notes = [note("PNOTE01", "Rolled back config 42.", "2026-03-01T10:08:00Z", user="Bob Brown")]
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=PD_LOG, notes=notes)
    incident = _incident("pagerduty", PD_ID, url=f"https://acme.pagerduty.com/incidents/{PD_ID}")

    events = _pd_collector(pd, certificate, sleeps).collect(incident)

    assert [(e.source_id, e.kind) for e in events] == [
        ("Q0TRIGGER", EventKind.ALERT),
        ("Q0ESCALAT", EventKind.ESCALATION),
        ("Q0ACKNOWL", EventKind.ACKNOWLEDGE),
        ("PNOTE01", EventKind.NOTE),
        ("Q0STATUSU", EventKind.STATUS_UPDATE),
        ("Q0RESOLVE", EventKind.RESOLVE),
    ]
    by_id = {e.source_id: e for e in events}
    trigger = by_id["Q0TRIGGER"]
    assert trigger.source == "pagerduty"
    assert trigger.at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert trigger.author == "Checkout Prometheus"
    assert trigger.text == "Triggered through the API: High error rate on checkout"
    assert trigger.link == f"https://acme.pagerduty.com/incidents/{PD_ID}/log_entries/Q0TRIGGER"
    assert by_id["Q0ACKNOWL"].author == "Bob Brown"
    assert by_id["Q0ESCALAT"].author is None
    assert by_id["Q0STATUSU"].text == "Checkout is degraded; a rollback is under way."
    assert by_id["PNOTE01"].text == "Rolled back config 42."
    assert by_id["PNOTE01"].author == "Bob Brown"
    assert by_id["PNOTE01"].link == incident.url  # a note has no page of its own
    # The full log, not the overview, with channels; then the notes.
    assert pd.requests[0].startswith(f"/incidents/{PD_ID}/log_entries?")
    assert "is_overview=false" in pd.requests[0] and "include[]=channels" in pd.requests[0]
    assert pd.requests[-1] == f"/incidents/{PD_ID}/notes"


def test_pagerduty_reads_every_page(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    entries = [
        log_entry(
            f"QESC{n:04d}", "escalate_log_entry", f"2026-03-01T10:{n // 60:02d}:{n % 60:02d}Z"
        )
        for n in range(230)
    ]
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=entries)

    events = _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))

    assert [e.source_id for e in events] == [e["id"] for e in entries]
    pages = [r for r in pd.requests if "/log_entries" in r]
    assert len(pages) == 3
    assert "offset=100" in pages[1] and "offset=200" in pages[2]


def test_pagerduty_keeps_at_most_the_bound_and_cuts_long_text(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    entries = [
        log_entry(
            f"QSU{n:04d}",
            "status_update_log_entry",
            f"2026-03-0{1 + n // 1440}T{n // 60 % 24:02d}:{n % 60:02d}:00Z",
            message="x" * (EVENT_TEXT_MOST + 500),
        )
        for n in range(EVENTS_PER_SOURCE_MOST + 20)
    ]
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=entries)

    events = _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))

    assert len(events) == EVENTS_PER_SOURCE_MOST
    assert events[0].source_id == "QSU0000"  # the oldest are kept
    assert all(len(e.text) == EVENT_TEXT_MOST and e.text.endswith("…") for e in events)


def test_pagerduty_429_is_waited_out_as_retry_after_says(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=PD_LOG)
    pd.rate_limit_next(2, retry_after=7)

    events = _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))

    assert sleeps.slept == [7.0, 7.0]
    assert len(events) == 5
    assert len(pd.requests) == 4  # two 429s, the log entries, the notes


def test_pagerduty_429_past_the_bound_is_unavailable(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=PD_LOG)
    pd.rate_limit_next(1, retry_after=int(WAIT_MOST_SECONDS) + 1)

    with pytest.raises(SourceUnavailable, match="429"):
        _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))
    assert sleeps.slept == []


def test_pagerduty_bad_token_is_refused_without_showing_it(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=PD_LOG)
    collector = _pd_collector(pd, certificate, sleeps, token="wrong-token-123")

    with pytest.raises(SourceRefused, match="401") as refused:
        collector.collect(_incident("pagerduty", PD_ID))
    assert "FOLLOWTHROUGH_PAGERDUTY_API_TOKEN" in str(refused.value)
    assert "wrong-token-123" not in str(refused.value)


def test_pagerduty_unknown_incident_is_refused(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    with pytest.raises(SourceRefused, match="no incident PNOSUCH"):
        _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", "PNOSUCH"))


def test_pagerduty_server_error_is_unavailable(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=PD_LOG)
    pd.fail_next(1, status=503)

    with pytest.raises(SourceUnavailable, match="503"):
        _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))


def test_pagerduty_unreachable_is_unavailable(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    collector = _pd_collector(pd, certificate, sleeps, base_url=f"https://127.0.0.1:{_free_port()}")
    with pytest.raises(SourceUnavailable, match="connection refused"):
        collector.collect(_incident("pagerduty", PD_ID))


def test_pagerduty_entry_without_a_time_is_refused_naming_the_field(
    pd: PagerDutyServer, certificate: tuple[Path, Path], sleeps: Sleeps
) -> None:
    broken = log_entry("Q0BROKEN", "acknowledge_log_entry", "yesterday")
    pd.incidents[PD_ID] = PagerDutyIncident(log_entries=[*PD_LOG, broken])

    with pytest.raises(SourceRefused, match="log entry Q0BROKEN: created_at 'yesterday'"):
        _pd_collector(pd, certificate, sleeps).collect(_incident("pagerduty", PD_ID))


def test_pagerduty_http_url_is_refused(sleeps: Sleeps) -> None:
    collector = PagerDutyCollector(PD_TOKEN, "http://127.0.0.1:1")
    with pytest.raises(SourceRefused, match="FOLLOWTHROUGH_PAGERDUTY_API_URL"):
        collector.collect(_incident("pagerduty", PD_ID))


# -- Opsgenie ----------------------------------------------------------------------------------

OG_LOGS = [
    og_log("Alert created via API", "2026-03-01T10:00:00Z", owner="System"),
    og_log(
        "Sent notification to bob@example.com via sms (escalation Checkout_escalation)",
        "2026-03-01T10:00:02Z",
    ),
    og_log("Escalated to next via Checkout_escalation", "2026-03-01T10:05:00Z", owner="System"),
    og_log("Alert acknowledged via web", "2026-03-01T10:07:00Z", owner="bob@example.com"),
    og_log("Note added: rolled back", "2026-03-01T10:08:00Z", owner="bob@example.com"),
    og_log("Priority changed to P2", "2026-03-01T10:09:00Z"),
    og_log("Alert closed via web", "2026-03-01T10:30:00Z", owner="bob@example.com"),
]


def test_opsgenie_logs_and_notes_become_events(og: OpsgenieServer, sleeps: Sleeps) -> None:
    notes = [og_note("Rolled back config 42.", "2026-03-01T10:08:00Z", owner="bob@example.com")]
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS, notes=notes)
    incident = _incident("opsgenie", OG_ID, url="https://acme.app.opsgenie.com/alert/detail/x")

    events = _og_collector(og, sleeps).collect(incident)

    assert [(e.kind, e.text) for e in events] == [
        (EventKind.ALERT, "Alert created via API"),
        (EventKind.ESCALATION, "Escalated to next via Checkout_escalation"),
        (EventKind.ACKNOWLEDGE, "Alert acknowledged via web"),
        (EventKind.NOTE, "Rolled back config 42."),
        (EventKind.RESOLVE, "Alert closed via web"),
    ]
    acknowledged = events[2]
    assert acknowledged.source == "opsgenie"
    assert acknowledged.author == "bob@example.com"
    assert acknowledged.at == datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    assert acknowledged.source_id == f"log-{OG_LOGS[3]['offset']}"
    assert events[3].source_id == f"note-{notes[0]['offset']}"
    assert all(e.link == incident.url for e in events)
    assert og.requests[0].startswith(f"/v2/alerts/{OG_ID}/logs?identifierType=id")
    assert og.requests[-1].startswith(f"/v2/alerts/{OG_ID}/notes?")


def test_opsgenie_reads_every_page_by_paging_next(og: OpsgenieServer, sleeps: Sleeps) -> None:
    logs = [
        og_log("Alert acknowledged via web", f"2026-03-01T10:{n // 60:02d}:{n % 60:02d}Z")
        for n in range(250)
    ]
    og.alerts[OG_ID] = OpsgenieAlert(logs=logs)

    events = _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))

    assert [e.source_id for e in events] == [f"log-{entry['offset']}" for entry in logs]
    pages = [r for r in og.requests if "/logs" in r]
    assert len(pages) == 3
    assert f"offset={logs[99]['offset']}" in pages[1]
    assert f"offset={logs[199]['offset']}" in pages[2]


def test_opsgenie_keeps_at_most_the_bound_and_cuts_long_text(
    og: OpsgenieServer, sleeps: Sleeps
) -> None:
    notes = [
        og_note("y" * (EVENT_TEXT_MOST + 1), f"2026-03-01T{n // 60:02d}:{n % 60:02d}:00Z")
        for n in range(EVENTS_PER_SOURCE_MOST + 10)
    ]
    og.alerts[OG_ID] = OpsgenieAlert(notes=notes)

    events = _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))

    assert len(events) == EVENTS_PER_SOURCE_MOST
    assert all(len(e.text) == EVENT_TEXT_MOST for e in events)


def test_opsgenie_429_is_waited_out(og: OpsgenieServer, sleeps: Sleeps) -> None:
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS)
    og.rate_limit_next(1, retry_after=3)

    events = _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))

    assert sleeps.slept == [3.0]
    assert len(events) == 4


def test_opsgenie_429_without_retry_after_waits_a_short_while(
    og: OpsgenieServer, sleeps: Sleeps
) -> None:
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS)
    og.rate_limit_next(1, retry_after=None)

    events = _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))

    assert sleeps.slept == [UNHINTED_WAIT_SECONDS]
    assert len(events) == 4


def test_opsgenie_429_without_end_is_unavailable(og: OpsgenieServer, sleeps: Sleeps) -> None:
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS)
    og.rate_limit_next(100, retry_after=1)

    with pytest.raises(SourceUnavailable, match="rate limiting"):
        _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))
    assert 0 < len(sleeps.slept) < 100


def test_opsgenie_bad_key_is_refused(og: OpsgenieServer, sleeps: Sleeps) -> None:
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS)
    with pytest.raises(SourceRefused, match="401") as refused:
        _og_collector(og, sleeps, key="wrong-key-456").collect(_incident("opsgenie", OG_ID))
    assert "FOLLOWTHROUGH_OPSGENIE_API_KEY" in str(refused.value)
    assert "wrong-key-456" not in str(refused.value)


def test_opsgenie_unknown_alert_is_refused(og: OpsgenieServer, sleeps: Sleeps) -> None:
    with pytest.raises(SourceRefused, match="Alert does not exist"):
        _og_collector(og, sleeps).collect(_incident("opsgenie", "no-such-alert"))


def test_opsgenie_server_error_is_unavailable(og: OpsgenieServer, sleeps: Sleeps) -> None:
    og.alerts[OG_ID] = OpsgenieAlert(logs=OG_LOGS)
    og.fail_next(1, status=502)
    with pytest.raises(SourceUnavailable, match="502"):
        _og_collector(og, sleeps).collect(_incident("opsgenie", OG_ID))


def test_opsgenie_unreachable_is_unavailable(og: OpsgenieServer, sleeps: Sleeps) -> None:
    collector = _og_collector(og, sleeps, base_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(SourceUnavailable, match="connection refused"):
        collector.collect(_incident("opsgenie", OG_ID))


# -- which collectors the settings configure ---------------------------------------------------


def test_each_collector_applies_to_its_own_incidents() -> None:
    pagerduty, opsgenie = PagerDutyCollector(PD_TOKEN), OpsgenieCollector(OG_KEY)
    assert pagerduty.applies_to(_incident("pagerduty", PD_ID))
    assert not pagerduty.applies_to(_incident("opsgenie", OG_ID))
    assert opsgenie.applies_to(_incident("opsgenie", OG_ID))
    assert not opsgenie.applies_to(_incident("incidentio", "01HX"))


def test_configured_collectors_follow_the_settings(tmp_path: Path) -> None:
    none = Settings(data_dir=tmp_path)
    assert {c.source for c in configured_collectors(none)} & {"pagerduty", "opsgenie"} == set()
    both = Settings(
        data_dir=tmp_path,
        pagerduty_api_token=PD_TOKEN,
        opsgenie_api_key=OG_KEY,
        opsgenie_api_url="https://api.eu.opsgenie.com/",
    )
    found = {c.source: c for c in configured_collectors(both)}
    pagerduty, opsgenie = found["pagerduty"], found["opsgenie"]
    assert isinstance(pagerduty, PagerDutyCollector)
    assert pagerduty.base_url == "https://api.pagerduty.com"
    assert isinstance(opsgenie, OpsgenieCollector)
    assert opsgenie.base_url == "https://api.eu.opsgenie.com"
