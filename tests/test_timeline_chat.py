"""The incident channel's chat as timeline material: the Slack chat collector driven by slack_sdk
over HTTP against the Slack-Web-API-compatible server (tests/servers/slack_server.py), the
transcript kept with the postmortem, and the postmortem page that shows it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from followthrough.domain.chat import ChatMarks, ChatPolicy
from followthrough.domain.incident import Incident, InvalidIncident, parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.timeline import EventKind
from followthrough.domain.transcript import (
    CHAT_TEXT_MOST,
    TRANSCRIPT_CHARS_MOST,
    TRANSCRIPT_MESSAGES_MOST,
    ChatMessage,
    events_from,
)
from followthrough.integrations.slack import SlackApi, SlackConfig
from followthrough.integrations.timeline import (
    SourceRefused,
    SourceUnavailable,
    configured_collectors,
)
from followthrough.integrations.timeline.slack_chat import SlackChatCollector, keep_transcript
from followthrough.storage import Store
from followthrough.webhooks.fields import Fields
from followthrough.webhooks.firehydrant import FireHydrant
from followthrough.webhooks.incidentio import IncidentIo
from tests.api_support import api_for, api_settings
from tests.factories import incident_data
from tests.processes import free_port
from tests.servers.slack_server import SlackServer
from tests.test_dashboard import browser, text_of
from tests.test_storage import make_postmortem, pm_change

TOKEN = "xoxb-chat-test"
START = datetime(2025, 3, 10, 11, 0, tzinfo=UTC)
RESOLVED = START + timedelta(hours=1)
ALICE, BOB = "U0ALICE", "U0BOB"
CHANNEL = "C0INC7"
CHAT = ChatPolicy(
    slack_channel_pattern="inc-{id}",
    decision=ChatMarks(reactions=["decision"], prefixes=["DECISION:"]),
    status_update=ChatMarks(reactions=["loudspeaker"], prefixes=["UPDATE:"]),
    chat_message=ChatMarks(reactions=["pushpin"]),
)


def ts(at: datetime, n: int = 0) -> str:
    return f"{int(at.timestamp())}.{n:06d}"


def incident(incident_id: str = "INC-7", **fields: Any) -> Incident:
    return Incident(
        id=incident_id,
        title="Checkout errors",
        severity="SEV2",
        resolved_at=RESOLVED,
        started_at=START,
        **fields,
    )


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    users = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    with SlackServer(token=TOKEN, users=users, names={ALICE: "Alice Ng"}) as server:
        yield server


def collector(slack: SlackServer, chat: ChatPolicy = CHAT, **options: Any) -> SlackChatCollector:
    config = SlackConfig(token=TOKEN, api_url=slack.api_url, **options)
    return SlackChatCollector(SlackApi(config), chat)


def incident_channel(slack: SlackServer, channel: str = CHANNEL, name: str = "inc-inc-7") -> None:
    """The incident's channel with a few lines said during the incident, and some outside it."""
    slack.add_channel(channel, name)
    slack.add_message(channel, ts(START - timedelta(minutes=5)), "before it began", user=BOB)
    slack.add_message(channel, ts(START), "checkout is failing, paging payments", user=ALICE)
    slack.add_message(channel, ts(START, 1), "", subtype="channel_join", user=BOB)
    slack.add_message(
        channel, ts(START + timedelta(minutes=10)), "DECISION: roll back the deploy", user=ALICE
    )
    slack.add_message(
        channel,
        ts(START + timedelta(minutes=20)),
        "Customers see errors at checkout; next update in 30 minutes",
        user=BOB,
        reactions={"loudspeaker": [ALICE]},
    )
    slack.add_message(
        channel,
        ts(START + timedelta(minutes=30)),
        "graph: <https://grafana.example/d/1|error rate> &lt;3 <@U0ALICE>",
        user=BOB,
        reactions={"pushpin": [BOB], "eyes": [ALICE]},
    )
    slack.add_message(
        channel,
        ts(RESOLVED),
        "resolved",
        bot_id="B0PD",
        username="PagerDuty",
        subtype="bot_message",
    )
    slack.add_message(channel, ts(RESOLVED + timedelta(minutes=1)), "after it ended", user=BOB)


# --- the channel ----------------------------------------------------------------------------------


def test_the_channel_the_policys_pattern_names_is_read_within_the_incident(
    slack: SlackServer,
) -> None:
    incident_channel(slack)
    slack.add_channel("C0OTHER", "inc-inc-70")  # the pattern is the whole name: not this one
    messages = collector(slack).transcript(incident())

    assert [m.text for m in messages] == [
        "checkout is failing, paging payments",
        "DECISION: roll back the deploy",
        "Customers see errors at checkout; next update in 30 minutes",
        "graph: error rate (https://grafana.example/d/1) <3 @Alice Ng",
        "resolved",
    ]  # oldest first, both ends included, joins left out
    assert [m.author for m in messages] == ["Alice Ng", "Alice Ng", "bob", "bob", "PagerDuty"]
    assert [m.mark for m in messages] == [None, "decision", "status_update", "chat_message", None]
    assert messages[3].reactions == ["pushpin", "eyes"]
    first = messages[0]
    assert first.channel == CHANNEL and first.at == START and first.ts == ts(START)
    assert (
        first.link == f"https://followthrough-test.slack.com/archives/{CHANNEL}/p{START:%s}000000"
    )
    # Each author looked up once, the workspace's address once: no call per message.
    assert slack.calls.count("users.info") == 2 and slack.calls.count("auth.test") == 1


def test_an_incident_names_its_channel_by_id_or_by_name(slack: SlackServer) -> None:
    incident_channel(slack, "C0NAMED", "inc-217-api-gateway")
    by_id = collector(slack).transcript(incident(chat_channel="C0NAMED"))
    assert len(by_id) == 5 and "conversations.list" not in slack.calls
    by_name = collector(slack).transcript(incident(chat_channel="#inc-217-api-gateway"))
    assert by_name == by_id


def test_incident_io_and_firehydrant_name_the_channel_in_their_webhooks(policy: Policy) -> None:
    payloads = Path(__file__).parent / "webhook_payloads"
    incident_io = json.loads((payloads / "incidentio_resolved.json").read_text())
    firehydrant = json.loads((payloads / "firehydrant_resolved.json").read_text())
    found = IncidentIo().interpret(Fields(incident_io, ""), policy)
    assert isinstance(found, Incident) and found.chat_channel == "C02AW36C1M5"
    found = FireHydrant().interpret(Fields(firehydrant, ""), policy)
    assert isinstance(found, Incident) and found.chat_channel == "C05J7JSEA23"
    # A channel that is not a Slack id is left out, as an unfit URL is.
    firehydrant["data"]["incident"]["incident_channels"][0]["id"] = "not a channel"
    found = FireHydrant().interpret(Fields(firehydrant, ""), policy)
    assert isinstance(found, Incident) and found.chat_channel is None


def test_a_generic_incident_may_name_its_channel_and_a_wrong_one_is_refused_by_name(
    policy: Policy,
) -> None:
    data = incident_data(START, id="INC-9")
    assert parse_incident({**data, "chat_channel": "#inc-9"}, policy).chat_channel == "#inc-9"
    assert parse_incident(data, policy).chat_channel is None  # and incidents without one load
    with pytest.raises(InvalidIncident, match="chat_channel"):
        parse_incident({**data, "chat_channel": "inc 9; DROP"}, policy)


def test_channels_are_looked_for_page_by_page_and_a_wildcard_takes_the_latest_before_resolution(
    slack: SlackServer,
) -> None:
    for n in range(450):
        slack.add_channel(f"C0N{n:04d}", f"general-{n}")
    slack.add_channel("C0OLD", "inc-inc-7-first-try", created=int(START.timestamp()) - 86400)
    slack.add_channel("C0NEW", "inc-inc-7-checkout", created=int(START.timestamp()))
    slack.add_channel("C0LATE", "inc-inc-7-review", created=int(RESOLVED.timestamp()) + 3600)
    slack.add_message("C0NEW", ts(START, 5), "here", user=ALICE)
    chat = CHAT.model_copy(update={"slack_channel_pattern": "inc-{id}-*"})
    messages = collector(slack, chat).transcript(incident())
    assert [(m.channel, m.text) for m in messages] == [("C0NEW", "here")]
    assert slack.calls.count("conversations.list") == 3  # 200 a page


def test_the_history_is_read_page_by_page_and_bounded(slack: SlackServer) -> None:
    slack.add_channel(CHANNEL, "inc-inc-7")
    for n in range(TRANSCRIPT_MESSAGES_MOST + 50):
        slack.add_message(CHANNEL, ts(START, n), f"line {n}", user=ALICE)
    slack.add_message(CHANNEL, ts(RESOLVED), "x" * (CHAT_TEXT_MOST + 10), user=ALICE)
    messages = collector(slack).transcript(incident())
    assert len(messages) == TRANSCRIPT_MESSAGES_MOST  # the latest are kept
    assert messages[0].ts == ts(START, 51) and messages[-1].ts == ts(RESOLVED)
    assert len(messages[-1].text) == CHAT_TEXT_MOST and messages[-1].text.endswith("…")
    assert slack.calls.count("conversations.history") == TRANSCRIPT_MESSAGES_MOST // 200


def test_a_transcript_too_large_keeps_its_latest_words(slack: SlackServer) -> None:
    slack.add_channel(CHANNEL, "inc-inc-7")
    room = TRANSCRIPT_CHARS_MOST // CHAT_TEXT_MOST
    for n in range(room + 5):
        slack.add_message(CHANNEL, ts(START, n), str(n).ljust(CHAT_TEXT_MOST, "."), user=ALICE)
    messages = collector(slack).transcript(incident())
    assert len(messages) == room and messages[0].ts == ts(START, 5)
    assert sum(len(m.text) for m in messages) <= TRANSCRIPT_CHARS_MOST


# --- marks ----------------------------------------------------------------------------------------


def test_marked_messages_become_decisions_status_updates_and_chat_messages(
    slack: SlackServer,
) -> None:
    incident_channel(slack)
    events = collector(slack).collect(incident())
    assert [(e.kind, e.author, e.text) for e in events] == [
        (EventKind.DECISION, "Alice Ng", "DECISION: roll back the deploy"),
        (
            EventKind.STATUS_UPDATE,
            "bob",
            "Customers see errors at checkout; next update in 30 minutes",
        ),
        (
            EventKind.CHAT_MESSAGE,
            "bob",
            "graph: error rate (https://grafana.example/d/1) <3 @Alice Ng",
        ),
    ]
    assert all(e.source == "slack" for e in events)
    assert events[0].source_id == ts(START + timedelta(minutes=10))
    assert events[0].link is not None and events[0].link.endswith(
        events[0].source_id.replace(".", "")
    )


def test_a_prefix_is_matched_without_case_and_the_first_mark_wins() -> None:
    assert CHAT.mark_of("  decision: ship it", []) == "decision"
    assert CHAT.mark_of("update: still down", ["decision"]) == "decision"
    assert CHAT.mark_of("we decided", ["thumbsup"]) is None
    with pytest.raises(ValueError, match="placeholder"):
        ChatPolicy(slack_channel_pattern="inc-{title}-{id}")
    with pytest.raises(ValueError, match="emoji name"):
        ChatMarks(reactions=[":pushpin:"])
    assert CHAT.channel_pattern("PD.Q1:Ab C", "pagerduty") == "inc-pd-q1-ab-c"


# --- refusals -------------------------------------------------------------------------------------


def test_what_slack_refuses_for_good_is_refused_saying_what_to_do(slack: SlackServer) -> None:
    slack.add_channel(CHANNEL, "inc-inc-7", member=False)
    with pytest.raises(SourceRefused, match="not in the channel #inc-inc-7: invite it"):
        collector(slack).transcript(incident())
    with pytest.raises(SourceRefused, match="no channel C0GONE"):
        collector(slack).transcript(incident(chat_channel="C0GONE"))
    with pytest.raises(SourceRefused, match="no channel named inc-inc-8"):
        collector(slack).transcript(incident("INC-8"))
    with pytest.raises(SourceRefused, match=r"no chat\.slack_channel_pattern"):
        collector(slack, ChatPolicy()).transcript(incident())
    wrong = SlackChatCollector(
        SlackApi(SlackConfig(token="xoxb-wrong", api_url=slack.api_url)), CHAT
    )
    with pytest.raises(SourceRefused, match="invalid_auth"):
        wrong.transcript(incident())


def test_slack_limiting_is_waited_out_and_then_reported_unavailable(slack: SlackServer) -> None:
    incident_channel(slack)
    slack.rate_limit_next(1, retry_after=0, method="conversations.history")
    assert len(collector(slack).transcript(incident())) == 5  # after its Retry-After
    assert slack.limited == ["conversations.history"]
    slack.rate_limit_next(2, retry_after=0, method="conversations.history")
    with pytest.raises(SourceUnavailable, match="ratelimited"):
        collector(slack, rate_limit_retries=1).transcript(incident())
    gone = SlackChatCollector(
        SlackApi(SlackConfig(token=TOKEN, api_url=f"http://127.0.0.1:{free_port()}/api/")), CHAT
    )
    with pytest.raises(SourceUnavailable):
        gone.transcript(incident())


def test_the_collector_is_configured_with_slack_and_applies_where_a_channel_can_be_found(
    tmp_path: Path,
) -> None:
    without = api_settings(tmp_path, "q")
    assert not [c for c in configured_collectors(without) if c.source == "slack"]
    settings = api_settings(tmp_path, "q", slack_bot_token=TOKEN)
    (chat,) = [c for c in configured_collectors(settings) if c.source == "slack"]
    assert chat.applies_to(incident())  # the shipped policy has a pattern
    assert not collector_without_pattern().applies_to(incident())
    assert collector_without_pattern().applies_to(incident(chat_channel="#inc-7"))


def collector_without_pattern() -> SlackChatCollector:
    return SlackChatCollector(SlackApi(SlackConfig(token=TOKEN)), ChatPolicy())


# --- the transcript kept --------------------------------------------------------------------------


def test_the_transcript_is_kept_once_however_often_it_is_collected(
    slack: SlackServer, store: Store, policy: Policy
) -> None:
    incident_channel(slack)
    chat = collector(slack)
    pm_id = incident().postmortem_id
    first = chat.transcript(incident())
    assert keep_transcript(store, pm_id, first) == 5
    # Someone marks a message before the owner collects again: the same rows, the mark updated.
    slack.history[CHANNEL][1]["reactions"] = [{"name": "decision", "users": [BOB], "count": 1}]
    assert keep_transcript(store, pm_id, chat.transcript(incident())) == 5
    kept = store.chat.transcript(pm_id)
    assert [m.ts for m in kept] == [m.ts for m in first]
    assert kept[0].mark == "decision" and kept[0].reactions == ["decision"]
    assert store.chat.counts(pm_id) == (5, 4)
    assert events_from(kept)[0].kind == EventKind.DECISION
    assert store.chat.transcript("postmortem-generic-other") == []


def test_a_postmortem_keeps_at_most_so_many_messages(store: Store) -> None:
    def message(n: int) -> ChatMessage:
        return ChatMessage(channel=CHANNEL, ts=ts(START, n), at=START + timedelta(seconds=n))

    too_many = [message(n) for n in range(TRANSCRIPT_MESSAGES_MOST + 1)]
    with pytest.raises(ValueError, match="messages: at most"):
        store.chat.keep("pm", too_many)
    assert store.chat.keep("pm", too_many[1:]) == TRANSCRIPT_MESSAGES_MOST
    assert store.chat.keep("pm", too_many[:1]) == TRANSCRIPT_MESSAGES_MOST  # no room: left out
    assert store.chat.transcript("pm")[0].ts == ts(START, 1)


# --- the page -------------------------------------------------------------------------------------


async def test_the_postmortem_page_links_the_transcript_shown_escaped(
    sqlite_store: Store, policy: Policy, tmp_path: Path
) -> None:
    pm = make_postmortem(policy, "INC-7")
    sqlite_store.records.record_postmortem(pm_change(pm, 1))
    said = [
        ChatMessage(
            channel=CHANNEL,
            ts=ts(START),
            at=START,
            author="Alice Ng",
            text="<script>alert(1)</script> see https://grafana.example/d/1",
            mark="decision",
            link="https://followthrough-test.slack.com/archives/C0INC7/p1741604400000000",
        ),
        ChatMessage(
            channel=CHANNEL, ts=ts(START, 1), at=START, text="later", link="javascript:alert(2)"
        ),
    ]
    sqlite_store.chat.keep(pm.id, said)
    nobody = await Client.connect(
        f"127.0.0.1:{free_port()}", data_converter=pydantic_data_converter, lazy=True
    )
    async with (
        api_for(nobody, sqlite_store, api_settings(tmp_path, "unused")) as api,
        browser(api, "dan") as dan,
    ):
        page = await dan.get(f"/postmortems/{pm.id}")
        assert page.status_code == 200
        assert "Chat transcript" in page.text and "2 messages, 1 marked" in text_of(page)
        assert f'href="/postmortems/{pm.id}/chat"' in page.text
        chat = await dan.get(f"/postmortems/{pm.id}/chat")
        assert chat.status_code == 200
        assert "<script>alert(1)" not in chat.text and "&lt;script&gt;" in chat.text
        assert 'href="https://grafana.example/d/1"' in chat.text
        assert (
            'href="https://followthrough-test.slack.com/archives/C0INC7/p1741604400000000"'
            in chat.text
        )
        assert "javascript:" not in chat.text
        assert "Alice Ng" in chat.text and "decision" in text_of(chat)
        missing = await dan.get("/postmortems/INC-nope/chat")
        assert missing.status_code == 404
