"""The timeline activity: ask each configured source what it recorded of the incident.

Each collector runs in a thread of its own with a time bound; whatever one does (raises
SourceUnavailable or SourceRefused, raises anything else, or never answers) becomes that source's
`failed` report in words, never an error: the draft is never blocked by a source. A source that
would apply to the incident but has no collector configured is reported `not_configured`. Events
are kept by (postmortem, source, source id), so running it again updates rather than duplicates;
only the database failing raises (and is retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from temporalio import activity

from activities import COLLECT_TIMELINE
from followthrough.domain.incident import Incident
from followthrough.domain.timeline import (
    EVENTS_PER_SOURCE_MOST,
    CollectedEvent,
    SourceReport,
    TimelineRequest,
    expected_sources,
)
from followthrough.domain.transcript import events_from
from followthrough.integrations.timeline import Collector, SourceRefused, SourceUnavailable
from followthrough.integrations.timeline.slack_chat import SlackChatCollector, keep_transcript
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)

COLLECTOR_SECONDS = 60.0  # per source; the workflow allows the activity 3 minutes in all
_DETAIL_MOST = 500  # SourceReport.detail's bound


class TimelineActivities:
    def __init__(
        self,
        store: Store,
        collectors: Sequence[Collector],
        seconds: float = COLLECTOR_SECONDS,
    ) -> None:
        self.store = store
        self.collectors = list(collectors)
        self.seconds = seconds

    @activity.defn(name=COLLECT_TIMELINE)
    async def collect_timeline(self, request: TimelineRequest) -> list[SourceReport]:
        """Every applicable source's report (and its events kept), by source name."""
        incident = request.incident
        configured = {c.source for c in self.collectors}
        found = await asyncio.gather(
            *(self._collect(c, incident, request.postmortem_id) for c in self.collectors)
        )
        outcomes = [outcome for outcome in found if outcome is not None]
        outcomes += [
            (SourceReport(source=source, status="not_configured", detail=_NOT_CONFIGURED), [])
            for source in expected_sources(incident)
            if source not in configured
        ]
        now = datetime.now(UTC)
        for report, events in outcomes:
            await asyncio.to_thread(
                self.store.timeline.keep, request.postmortem_id, report, events, now
            )
        reports = sorted((report for report, _ in outcomes), key=lambda r: r.source)
        log.info(
            "timeline collected",
            postmortem_id=request.postmortem_id,
            reports={r.source: r.status for r in reports},
            events={r.source: r.events for r in reports},
        )
        return reports

    async def _collect(
        self, collector: Collector, incident: Incident, postmortem_id: str
    ) -> tuple[SourceReport, list[CollectedEvent]] | None:
        """The source's report and events; None when it does not apply to the incident."""
        source = collector.source
        try:
            async with asyncio.timeout(self.seconds):
                if not await asyncio.to_thread(collector.applies_to, incident):
                    return None
                # A thread cannot be stopped: one that never answers is left behind, reported.
                events = await asyncio.to_thread(self._events, collector, incident, postmortem_id)
        except TimeoutError:
            return _failed(source, f"{source} did not answer within {self.seconds:g}s"), []
        except SourceUnavailable as err:
            return _failed(source, f"{source} could not answer now: {err}"), []
        except SourceRefused as err:
            return _failed(source, f"{source} refused: {err}"), []
        except Exception as err:  # a collector's bug must not block the draft either
            log.exception("timeline collector failed", source=source)
            return _failed(source, f"{source} failed: {type(err).__name__}: {err}"), []
        kept = [e for e in events if e.source == source][:EVENTS_PER_SOURCE_MOST]
        detail = ""
        if len(events) > len(kept):
            detail = f"kept {len(kept)} of the {len(events)} events it gave"
        return SourceReport(
            source=source, status="collected", detail=detail, events=len(kept)
        ), kept

    def _events(
        self, collector: Collector, incident: Incident, postmortem_id: str
    ) -> list[CollectedEvent]:
        if isinstance(collector, SlackChatCollector):  # the channel's transcript is kept too
            messages = collector.transcript(incident)
            keep_transcript(self.store, postmortem_id, messages)
            return events_from(messages)
        return collector.collect(incident)


_NOT_CONFIGURED = "its token or URL is not set (see the README's settings)"


def _failed(source: str, detail: str) -> SourceReport:
    text = detail if len(detail) <= _DETAIL_MOST else detail[: _DETAIL_MOST - 1] + "…"
    return SourceReport(source=source, status="failed", detail=text)
