"""Notices in Slack, and Slack's buttons acting as the person who clicks them.

Real Temporal (time-skipping), a real worker and SQLite, the real app; Slack is the
Slack-Web-API-compatible server in tests/servers/slack_server.py, which slack_sdk talks to over
HTTP. Clicks are signed as Slack signs them: HMAC-SHA256 over `v0:{timestamp}:{body}` of a
form-encoded `payload=` JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.slack import SlackDelivery
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import (
    DigestRequest,
    ItemFacts,
    Notice,
    NoticeDelivery,
    NoticeKind,
    OutboxStatus,
    Recipient,
)
from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)
from followthrough.domain.postmortem import ActionItem, ActionItemState
from followthrough.integrations.slack import SlackApi, SlackConfig
from followthrough.notices.render import Links
from followthrough.notices.slack_blocks import (
    BUTTONS,
    SlackAction,
    SlackPost,
    buttons_for,
    slack_message,
)
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from followthrough.temporal.worker import build_worker
from tests.api_support import Api, api_for, api_settings, link_mailer, loopback_policy_file
from tests.conftest import eventually
from tests.factories import draft_data, incident_data
from tests.servers.slack_server import SlackServer
from tests.test_notices import postmortem_with_an_item
from workflows.council_digest import CouncilDigestWorkflow

TOKEN = "xoxb-test-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MARIA, ALICE, BOB, PAT = "U0MARIA", "U0ALICE", "U0BOB", "U0GONE"
PAYMENTS = "C0PAYMENTS"


# --- the Block Kit message ------------------------------------------------------------------------


def test_each_kind_carries_its_buttons_and_others_fall_back_to_words_and_a_link(
    policy: Policy,
) -> None:
    pm, item = postmortem_with_an_item(policy, "INC-7")
    links = Links(temporal_ui="http://127.0.0.1:8233", public_url="http://ft.test")
    ask = Notice(
        dedupe_key="k1",
        kind=NoticeKind.EXTENSION_REQUESTED,
        at=datetime(2026, 11, 20, tzinfo=UTC),
        to=[Recipient(name="maria", email="maria@example.com")],
        postmortem_id=pm.id,
        action_item_id=item.id,
        facts=ItemFacts(by=item.owner, reason="vendor <delay> & more"),
    )
    message = slack_message(ask, pm, item, links, "maria")
    section, actions = message.blocks
    assert "vendor &lt;delay&gt; &amp; more" in section["text"]["text"]  # mrkdwn escaped
    assert f"<http://ft.test/postmortems/{pm.id}|Open in Followthrough>" in section["text"]["text"]
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == ["followthrough:approve_extension", "followthrough:deny_extension"]

    step = ask.model_copy(update={"kind": NoticeKind.ITEM_STEP, "facts": None})
    owners = [SlackAction.ACKNOWLEDGE, SlackAction.CLAIM_DONE, SlackAction.REQUEST_EXTENSION]
    assert buttons_for(step, item, item.owner) == owners
    assert buttons_for(step, item, "maria") == []  # the owner's actions, offered to the owner
    assert buttons_for(step, item, None) == owners
    failed = ask.model_copy(update={"kind": NoticeKind.CHECK_FAILED, "facts": None})
    assert buttons_for(failed, item, item.owner) == [
        SlackAction.CLAIM_DONE,
        SlackAction.REQUEST_EXTENSION,
    ]
    claimed = ask.model_copy(update={"kind": NoticeKind.DONE_CLAIMED, "facts": None})
    assert buttons_for(claimed, item, "alice") == [SlackAction.VERIFY, SlackAction.REJECT]
    submitted = ask.model_copy(
        update={"kind": NoticeKind.DRAFT_SUBMITTED, "facts": None, "action_item_id": None}
    )
    review = [SlackAction.APPROVE, SlackAction.REQUEST_CHANGES]
    assert buttons_for(submitted, None, "maria") == review
    (_, buttons) = slack_message(submitted, pm, None, links, "maria").blocks
    assert [e["text"]["text"] for e in buttons["elements"]] == ["Approve", "Request changes"]

    unmapped = ask.model_copy(update={"kind": NoticeKind.RISK_ACCEPTED, "facts": None})
    assert NoticeKind.RISK_ACCEPTED not in BUTTONS
    (only,) = slack_message(unmapped, pm, item, links, "maria").blocks
    assert "Open in Followthrough" in only["text"]["text"]


def test_the_policy_names_slack_ids_and_channels_or_says_what_is_wrong() -> None:
    shipped = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    assert load_policy().directory == {}  # the shipped policy stays valid without Slack
    shipped["teams"]["payments"]["slack_channel"] = "general"
    with pytest.raises(InvalidPolicy, match=r"teams\.payments\.slack_channel"):
        parse_policy(shipped)
    shipped["teams"]["payments"]["slack_channel"] = PAYMENTS
    shipped["people"] = {"maria": {"slack": MARIA}, "mallory": {"slack": "U0X"}}
    with pytest.raises(InvalidPolicy, match=r"people\.mallory: 'mallory' is not a member"):
        parse_policy(shipped)
    shipped["people"] = {"maria": {"slack": MARIA}}
    parsed = parse_policy(shipped)
    assert parsed.slack_id_of("maria") == MARIA and parsed.slack_id_of("bob") is None
    assert Policy.model_validate_json(parsed.model_dump_json()) == parsed  # as workflows get it


def test_forgetting_old_replay_signatures_is_bounded_and_idempotent(store: Store) -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    old = now - timedelta(minutes=16)
    for n in range(5):
        store.deliveries.record("slack", f"v0=old{n}", old, "received", None)
    store.deliveries.record("slack", "v0=recent", now - timedelta(minutes=9), "received", None)
    store.deliveries.record("jira", "old-delivery", old, "claimed", None)
    cutoff = now - timedelta(minutes=15)
    forgotten = [store.deliveries.forget("slack", before=cutoff, limit=2) for _ in range(4)]
    assert forgotten == [2, 2, 1, 0]  # a bounded batch each time; then nothing more to do
    assert not store.deliveries.record("slack", "v0=recent", now, "received", None)
    assert not store.deliveries.record("jira", "old-delivery", now, "claimed", None)
    assert all(store.deliveries.record("slack", f"v0=old{n}", now, "x", None) for n in range(5))


# --- with Temporal, a worker and the app ----------------------------------------------------------


def slack_policy_file(directory: Path) -> Path:
    """The tests' policy with Slack ids (bob has none: looked up by email) and a team channel."""
    path = loopback_policy_file(directory)
    data = yaml.safe_load(path.read_text())
    data["people"] = {"maria": {"slack": MARIA}, "alice": {"slack": ALICE}, "pat": {"slack": PAT}}
    data["teams"]["payments"]["slack_channel"] = PAYMENTS
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    users = {MARIA: "maria@example.com", ALICE: "alice@example.com", BOB: "bob@example.com"}
    with SlackServer(token=TOKEN, users=users, channels={PAYMENTS}) as server:
        yield server


@pytest.fixture
async def slack_api(
    time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    slack_server: SlackServer,
) -> AsyncIterator[Api]:
    """The app and a worker, both with Slack configured."""
    policy_file = slack_policy_file(tmp_path)
    policy = load_policy(policy_file)
    config = SlackConfig(token=TOKEN, signing_secret=SECRET, api_url=slack_server.api_url)
    client, queue = time_skipping.client, f"test-slack-{time.monotonic_ns()}"
    settings = api_settings(
        tmp_path,
        queue,
        policy=policy_file,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack_server.api_url,
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        mailer = link_mailer(tmp_path / "outbox")
        worker = build_worker(
            client, sqlite_store, executor, mailer, policy, task_queue=queue, slack=config
        )
        async with worker, api_for(client, sqlite_store, settings) as api:
            try:
                yield api
            finally:
                ids = [pm.id for pm in sqlite_store.records.postmortems()]
                ids += [item.id for item in sqlite_store.records.action_items()]
                for workflow_id in ids:
                    with suppress(RPCError):
                        await client.get_workflow_handle(workflow_id).terminate("test over")


async def in_review(api: Api, env: WorkflowEnvironment) -> str:
    """A SEV2 postmortem whose draft alice submitted through the API: its id."""
    now = await env.get_current_time()
    policy = api.services.policy
    incident = parse_incident(incident_data(now), policy)
    started = await start_postmortem(
        api.services.client, incident, policy, task_queue=api.services.task_queue
    )
    pm_id, store = started.workflow_id, api.services.store
    await eventually(lambda: store.records.postmortem(pm_id))
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
    return pm_id


async def approved(api: Api, env: WorkflowEnvironment) -> tuple[str, str, str]:
    """A SEV2 postmortem approved through the API: (its id, bob's item, carol's item)."""
    pm_id, store = await in_review(api, env), api.services.store
    assert (await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {})).is_success
    bob_item, carol_item = f"{pm_id}-item-1", f"{pm_id}-item-2"
    await eventually(
        lambda: store.records.action_item(bob_item) and store.records.action_item(carol_item)
    )
    return pm_id, bob_item, carol_item


async def ask_for_time(api: Api, item_id: str, owner: str) -> None:
    item = api.services.store.records.action_item(item_id)
    assert item is not None
    until = (item.due + timedelta(days=10)).isoformat()
    answer = await api.post(
        f"/api/action-items/{item_id}/extension", owner, {"until": until, "reason": "vendor"}
    )
    assert answer.status_code == 200, answer.text


def signed(body: bytes, at: float, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack sends: v0 HMAC-SHA256 over 'v0:{timestamp}:{body}'."""
    timestamp = str(int(at))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def click_body(user: str, message: dict[str, Any], action: str) -> bytes:
    """A block_actions payload as Slack sends it when `user` clicks a button on `message`."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "token": "verification-token-unused",
        "trigger_id": f"{time.monotonic_ns()}.trigger",
        "team": {"id": "T0TEST", "domain": "test"},
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": message["channel"],
            "is_ephemeral": False,
        },
        "channel": {"id": message["channel"], "name": "x"},
        "message": {"type": "message", "ts": message["ts"], "blocks": message["blocks"]},
        "response_url": "https://hooks.slack.invalid/actions/T0TEST/1/x",
        "actions": [
            {
                "type": "button",
                "action_id": f"followthrough:{action}",
                "block_id": "followthrough-actions",
                "value": "x",
                "action_ts": str(time.time()),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def submit_body(user: str, view: dict[str, Any], text: str, until: str | None = None) -> bytes:
    """A view_submission payload: `user` filled in the modal's text field (and picked `until`
    in its date picker) and pressed Send."""
    values: dict[str, Any] = {
        "followthrough-text": {"text": {"type": "plain_text_input", "value": text}}
    }
    if until is not None:
        values["followthrough-until"] = {"until": {"type": "datepicker", "selected_date": until}}
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "trigger_id": f"{time.monotonic_ns()}.trigger",
        "view": {**view, "id": "V0TEST", "state": {"values": values}},
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


async def send(api: Api, body: bytes, *, at: float | None = None, secret: str = SECRET) -> Any:
    now = api.services.clock().timestamp() if at is None else at
    return await api.http.post(
        "/slack/interactions", content=body, headers=signed(body, now, secret)
    )


def posted_as(
    api: Api, server: SlackServer, channel: str, kind: NoticeKind
) -> list[dict[str, Any]]:
    """What was posted in `channel` for notices of `kind`: hand-offs share DMs and channels."""
    ts = {m.ts for m in api.services.store.slack.messages() if m.kind == kind.value and m.ts}
    return [m for m in server.messages_in(channel) if m["ts"] in ts]


def item_of(api: Api, item_id: str) -> ActionItem:
    found = api.services.store.records.action_item(item_id)
    assert found is not None, item_id
    return found


async def test_notices_reach_dms_and_the_team_channel_and_buttons_act_as_the_clicker(
    slack_api: Api, time_skipping: WorkflowEnvironment, slack_server: SlackServer
) -> None:
    api, store = slack_api, slack_api.services.store
    _, bob_item, carol_item = await approved(api, time_skipping)
    await eventually(  # the approval's hand-offs are out: what is limited next is ours
        lambda: (
            posted_as(api, slack_server, "D0BOB", NoticeKind.ITEM_ASSIGNED)
            and posted_as(api, slack_server, "D0BOB", NoticeKind.POSTMORTEM_APPROVED)
            and all(m.status != "pending" for m in store.slack.messages())
        )
    )

    # Slack limits the first post: slack_sdk waits out Retry-After, and it is posted once.
    slack_server.rate_limit_next(1, retry_after=1, method="chat.postMessage")
    await ask_for_time(api, bob_item, "bob")  # maria (directory) decides; the channel hears
    asked = NoticeKind.EXTENSION_REQUESTED
    maria_dm = (await eventually(lambda: posted_as(api, slack_server, "D0MARIA", asked)))[0]
    channel = (await eventually(lambda: posted_as(api, slack_server, PAYMENTS, asked)))[0]
    assert len(posted_as(api, slack_server, "D0MARIA", asked)) == 1
    assert slack_server.limited == ["chat.postMessage"]
    assert slack_server.calls.count("chat.postMessage") >= 3  # the 429, maria, the channel
    buttons = [
        e["action_id"] for b in maria_dm["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["followthrough:approve_extension", "followthrough:deny_extension"]
    assert "Alert on checkout 5xx ratio" in maria_dm["blocks"][0]["text"]["text"]
    assert store.outbox.messages(action_item_id=bob_item)  # and the email, as ever

    # Slack still limiting after slack_sdk's retries: the activity retries later, the email is
    # not sent again. Then a Slack id Slack does not know: refused for good, recorded.
    slack_server.rate_limit_next(3, retry_after=1, method="chat.postMessage")
    await ask_for_time(api, carol_item, "carol")  # pat may decide; pat's id is not in Slack
    failed = await eventually(
        lambda: [
            m
            for m in store.slack.messages()
            if m.target == PAT and m.status == "failed" and m.kind == asked.value
        ],
        seconds=30,
    )
    assert failed[0].error == "channel_not_found"
    assert len(slack_server.limited) == 4  # the one above, and three in a row for pat
    (email,) = [m for m in store.outbox.messages(action_item_id=carol_item) if m.kind == asked]
    # Everyone who may decide it has the email: pat (platform's manager) and the council.
    assert email.status.value == "kept"
    assert email.recipients == ["grace@example.com", "heidi@example.com", "pat@example.com"]

    # bob (owner, found by email) may not decide his own extension: refused, and told why.
    body = click_body(BOB, channel, "approve_extension")
    assert (await send(api, body)).status_code == 200
    told = await eventually(lambda: [e for e in slack_server.ephemeral if e["user"] == BOB])
    assert "cannot decide their own" in told[0]["text"]
    assert item_of(api, bob_item).pending_extension is not None

    # A forged signature, a stale timestamp: 401, nothing done.
    body = click_body(MARIA, maria_dm, "approve_extension")
    assert (await send(api, body, secret="not-the-secret")).status_code == 401
    stale = api.services.clock().timestamp() - 6 * 60
    assert (await send(api, body, at=stale)).status_code == 401
    assert item_of(api, bob_item).pending_extension is not None

    # maria's genuine click approves it; the message then says so instead of its buttons.
    now = api.services.clock().timestamp()
    assert (await send(api, body, at=now)).status_code == 200
    await eventually(lambda: item_of(api, bob_item).pending_extension is None)
    updated = await eventually(
        lambda: [u for u in slack_server.updates if u["channel"] == "D0MARIA"]
    )
    assert "done by maria" in updated[0]["blocks"][-1]["elements"][0]["text"]
    assert all(b["type"] != "actions" for b in updated[0]["blocks"])
    decided = await eventually(  # to bob, found by email
        lambda: posted_as(api, slack_server, "D0BOB", NoticeKind.EXTENSION_DECIDED)
    )
    assert "Extension approved" in decided[0]["text"]

    # The very same request again (a replay within the window): nothing more happens. The
    # decision's own notices settle first: a post still in flight is not the replay's doing.
    await eventually(lambda: posted_as(api, slack_server, PAYMENTS, NoticeKind.EXTENSION_DECIDED))
    await eventually(lambda: all(m.status != "pending" for m in store.slack.messages()))
    pm_id = item_of(api, bob_item).postmortem_id
    trail = len(store.records.audit_trail(pm_id))
    calls = len(slack_server.calls)
    assert (await send(api, body, at=now)).status_code == 200
    assert len(slack_server.calls) == calls
    assert len(store.records.audit_trail(item_of(api, bob_item).postmortem_id)) == trail

    # Claim done asks for the evidence in a modal, then claims it as bob.
    assert (await send(api, click_body(BOB, channel, "claim_done"))).status_code == 200
    view = (await eventually(lambda: slack_server.views))[0]["view"]
    empty = await send(api, submit_body(BOB, view, "  "))
    assert "evidence is required" in empty.json()["errors"]["followthrough-text"]
    assert (await send(api, submit_body(BOB, view, "PR #812"))).status_code == 200
    assert item_of(api, bob_item).state is ActionItemState.DONE_CLAIMED

    # bob cannot verify his own claim from Slack any more than in the browser; alice can.
    assert (await send(api, click_body(BOB, channel, "verify"))).status_code == 200
    told = await eventually(lambda: [e for e in slack_server.ephemeral if "own work" in e["text"]])
    assert told[0]["user"] == BOB
    assert item_of(api, bob_item).state is ActionItemState.DONE_CLAIMED
    assert (await send(api, click_body(ALICE, channel, "verify"))).status_code == 200
    await eventually(lambda: item_of(api, bob_item).state is ActionItemState.VERIFIED)

    # Someone Slack knows but the directory does not: nothing, and told so.
    slack_server.users["U0STRANGER"] = "stranger@elsewhere.example"
    assert (await send(api, click_body("U0STRANGER", channel, "verify"))).status_code == 200
    await eventually(lambda: [e for e in slack_server.ephemeral if e["user"] == "U0STRANGER"])
    # Every notice went to each Slack target once, however often the activity ran.
    keys = [(m.dedupe_key, m.target) for m in store.slack.messages()]
    assert len(keys) == len(set(keys))

    def posted_once_each() -> bool:
        # The verified notice may be posted and not yet recorded as posted: wait for the record,
        # never for a second post (a post twice would keep the counts apart).
        posted_ts = [m["ts"] for m in slack_server.posted if not m.get("thread_ts")]
        recorded = {m.ts for m in store.slack.messages() if m.status == "posted"}
        return len(posted_ts) == len(set(posted_ts)) == len(recorded)

    await eventually(posted_once_each)


async def test_without_slack_nothing_changes(api: Api, time_skipping: WorkflowEnvironment) -> None:
    """The conftest's app and worker have no Slack settings."""
    store = api.services.store
    _, bob_item, _ = await approved(api, time_skipping)
    await ask_for_time(api, bob_item, "bob")
    assert await eventually(lambda: store.outbox.messages(action_item_id=bob_item))
    assert store.slack.messages() == []
    body = urlencode({"payload": "{}"}).encode()
    answer = await api.http.post(
        "/slack/interactions", content=body, headers=signed(body, time.time())
    )
    assert answer.status_code == 404


def message_about(
    api: Api, server: SlackServer, channel: str, kind: NoticeKind, about: str
) -> list[dict[str, Any]]:
    """What was posted in `channel` for notices of `kind` about one item or postmortem."""
    ts = {
        m.ts
        for m in api.services.store.slack.messages()
        if m.kind == kind.value and m.ts and about in (m.action_item_id, m.postmortem_id)
    }
    return [m for m in server.messages_in(channel) if m["ts"] in ts]


def input_blocks(view: dict[str, Any]) -> set[str]:
    return {b["block_id"] for b in view["blocks"] if b["type"] == "input"}


async def opened(server: SlackServer, seen: int) -> dict[str, Any]:
    """The modal views.open was called with after the first `seen`."""
    views = await eventually(lambda: server.views[seen:])
    view: dict[str, Any] = views[0]["view"]
    return view


async def test_reject_and_more_time_ask_in_modals_judged_as_in_the_browser(
    slack_api: Api, time_skipping: WorkflowEnvironment, slack_server: SlackServer
) -> None:
    api, store = slack_api, slack_api.services.store
    _, bob_item, _ = await approved(api, time_skipping)
    claim = {"evidence": "PR #812"}
    assert (await api.post(f"/api/action-items/{bob_item}/claim-done", "bob", claim)).is_success
    claimed = NoticeKind.DONE_CLAIMED
    channel = (
        await eventually(lambda: message_about(api, slack_server, PAYMENTS, claimed, bob_item))
    )[0]
    buttons = [
        e["action_id"] for b in channel["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["followthrough:verify", "followthrough:reject"]

    # Reject asks why in a modal; bob may not judge his own claim, alice must say why.
    assert (await send(api, click_body(BOB, channel, "reject"))).status_code == 200
    view = await opened(slack_server, 0)
    assert view["callback_id"] == "followthrough:reject"
    assert input_blocks(view) == {"followthrough-text"}
    own = (await send(api, submit_body(BOB, view, "not done after all"))).json()
    assert own["response_action"] == "errors" and "own work" in own["errors"]["followthrough-text"]
    empty = (await send(api, submit_body(ALICE, view, " "))).json()
    assert "a reason is required" in empty["errors"]["followthrough-text"]
    too_long = (await send(api, submit_body(ALICE, view, "x" * 10_001))).json()
    assert too_long["errors"] == {
        "followthrough-text": "reason: at most 10000 characters (this is 10001)"
    }
    forged = submit_body(ALICE, view, "the alert never fired")
    assert (await send(api, forged, secret="not-the-secret")).status_code == 401
    stale = api.services.clock().timestamp() - 6 * 60
    assert (await send(api, forged, at=stale)).status_code == 401
    assert item_of(api, bob_item).state is ActionItemState.DONE_CLAIMED  # nothing changed
    assert (await send(api, forged)).status_code == 200
    assert item_of(api, bob_item).state is ActionItemState.OPEN
    await eventually(
        lambda: [m for m in slack_server.posted if m.get("thread_ts") == channel["ts"]]
    )

    # Ask for more time: the owner's button on his own items' notices, a date and a reason.
    assigned = NoticeKind.ITEM_ASSIGNED
    dm = (await eventually(lambda: message_about(api, slack_server, "D0BOB", assigned, bob_item)))[
        0
    ]
    assert "followthrough:request_extension" in json.dumps(dm["blocks"])
    due = item_of(api, bob_item).due
    seen = len(slack_server.views)
    assert (await send(api, click_body(BOB, dm, "request_extension"))).status_code == 200
    view = await opened(slack_server, seen)
    assert input_blocks(view) == {"followthrough-until", "followthrough-text"}
    picker = view["blocks"][0]["element"]
    assert picker == {"type": "datepicker", "action_id": "until", "initial_date": due.isoformat()}
    later = (due + timedelta(days=10)).isoformat()

    async def refused(user: str, reason: str, until: str) -> dict[str, str]:
        answer = (await send(api, submit_body(user, view, reason, until))).json()
        assert answer["response_action"] == "errors"
        assert set(answer["errors"]) <= input_blocks(view)  # Slack shows them under fields
        assert item_of(api, bob_item).pending_extension is None  # nothing changed
        errors: dict[str, str] = answer["errors"]
        return errors

    assert await refused(BOB, "vendor", "2026-13-45") == {
        "followthrough-until": "until: '2026-13-45' is not a date (YYYY-MM-DD)"
    }
    assert await refused(BOB, "vendor", "") == {
        "followthrough-until": "until: a date is required (YYYY-MM-DD)"
    }
    assert await refused(BOB, "vendor", "3026-01-01") == {
        "followthrough-until": "until: 3026-01-01 is outside 2000-01-01 to 2099-12-31"
    }
    assert await refused(BOB, "x" * 10_001, later) == {
        "followthrough-text": "reason: at most 10000 characters (this is 10001)"
    }
    not_after = await refused(BOB, "vendor", due.isoformat())
    assert "must be after the current one" in not_after["followthrough-until"]
    not_owner = await refused(ALICE, "vendor", later)
    assert "only the owner (bob)" in not_owner["followthrough-text"]
    assert (await send(api, submit_body(BOB, view, "vendor delay", later))).status_code == 200
    pending = item_of(api, bob_item).pending_extension
    assert pending is not None and pending.until.isoformat() == later
    assert pending.reason == "vendor delay"
    assert store.outbox.messages(action_item_id=bob_item)


async def test_request_changes_asks_the_reviewer_and_forgets_old_signatures(
    slack_api: Api, time_skipping: WorkflowEnvironment, slack_server: SlackServer
) -> None:
    api, store = slack_api, slack_api.services.store
    now = api.services.clock()
    # Replay records: one no replay can use any more, one it still could, another source's.
    store.deliveries.record("slack", "v0=old", now - timedelta(minutes=16), "received", None)
    store.deliveries.record("slack", "v0=recent", now - timedelta(minutes=9), "received", None)
    store.deliveries.record("jira", "old-delivery", now - timedelta(days=9), "claimed", None)

    pm_id = await in_review(api, time_skipping)
    submitted = NoticeKind.DRAFT_SUBMITTED
    dm = (await eventually(lambda: message_about(api, slack_server, "D0MARIA", submitted, pm_id)))[
        0
    ]
    assert (await send(api, click_body(MARIA, dm, "request_changes"))).status_code == 200
    view = await opened(slack_server, 0)
    assert view["callback_id"] == "followthrough:request_changes"
    # Seen once: the old slack record is forgotten, the recent one and Jira's are kept.
    assert not store.deliveries.record("slack", "v0=recent", now, "received", None)
    assert not store.deliveries.record("jira", "old-delivery", now, "claimed", None)
    assert store.deliveries.record("slack", "v0=old", now, "received", None)

    # alice wrote it and is no reviewer: refused under the field, nothing changed.
    author = (await send(api, submit_body(ALICE, view, "looks fine to me"))).json()
    assert author["errors"] == {"followthrough-text": "alice is not a reviewer in the policy"}
    empty = (await send(api, submit_body(MARIA, view, ""))).json()
    assert "a reason is required" in empty["errors"]["followthrough-text"]
    pm = store.records.postmortem(pm_id)
    assert pm is not None and pm.state.value == "in_review"
    body = submit_body(MARIA, view, "The timeline misses the rollback.")
    assert (await send(api, body)).status_code == 200
    assert (await send(api, body)).status_code == 200  # the replay: nothing more
    pm = store.records.postmortem(pm_id)
    assert pm is not None and pm.state.value != "in_review"
    requested = [
        e
        for e in store.records.audit_trail(pm_id)
        if "rollback" in json.dumps(e.model_dump(mode="json"))
    ]
    assert len(requested) == 1


async def test_a_daily_digest_holds_slack_dms_too_and_posts_them_once_in_one_dm(
    slack_api: Api,
    time_skipping: WorkflowEnvironment,
    slack_server: SlackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, store = slack_api, slack_api.services.store
    store.preferences.choose("bob", NoticeDelivery.DAILY, api.services.clock())
    _, bob_item, _ = await approved(api, time_skipping)
    assigned = NoticeKind.ITEM_ASSIGNED
    # The team's channel hears at once (no one's choice); bob's DM waits for his digest.
    await eventually(lambda: message_about(api, slack_server, PAYMENTS, assigned, bob_item))
    held = await eventually(lambda: store.outbox.message(f"{bob_item}/assigned"))
    assert held.status is OutboxStatus.HELD
    assert slack_server.messages_in("D0BOB") == []
    assert [m.target for m in store.slack.messages(f"{bob_item}/assigned")] == [PAYMENTS]

    await eventually(  # the hand-offs are out: what Slack limits next is the digest's post
        lambda: (
            store.outbox.message(f"{bob_item}/assigned")
            and all(m.status != "pending" for m in store.slack.messages())
            and all(m.status is not OutboxStatus.PENDING for m in store.outbox.messages())
        )
    )

    # The day's digest, run twice: one DM to bob listing what was held, linked to its page.
    # Slack limits the first attempt past slack_sdk's retries: the email goes, the activity
    # retries, and the retry posts the DM (and sends no second email).
    slack_server.rate_limit_next(3, retry_after=1, method="chat.postMessage")
    at = api.services.clock()
    attempts = []
    for _ in range(2):
        handle = await api.services.client.start_workflow(
            CouncilDigestWorkflow.run,
            DigestRequest(period="day", at=at),
            id=f"handoff-digest-{uuid.uuid4().hex[:8]}",
            task_queue=api.services.task_queue,
        )
        await handle.result()
        attempts += [
            event.activity_task_started_event_attributes.attempt
            async for event in handle.fetch_history_events()
            if event.HasField("activity_task_started_event_attributes")
        ]
    assert attempts == [2, 1] and slack_server.limited == ["chat.postMessage"] * 3
    (digest,) = slack_server.messages_in("D0BOB")
    assert digest["text"].startswith("Your Followthrough digest for")
    listing = json.dumps(digest["blocks"])
    assert "Alert on checkout 5xx ratio" in listing and "Approved: the postmortem" in listing
    assert "http://" in listing and "actions" not in {b["type"] for b in digest["blocks"]}
    (email,) = [m for m in store.outbox.messages() if m.kind is NoticeKind.HANDOFF_DIGEST]
    assert [m.dedupe_key for m in store.slack.messages(email.dedupe_key)] == [email.dedupe_key]

    # An escalation (the ladder's reminder) reaches bob's DM at once, digest or not; a held
    # hand-off does not. (Delivered here as the notice activity delivers it, without skipping
    # the weeks to the ladder's step.)
    config = SlackConfig(token=TOKEN, signing_secret=SECRET, api_url=slack_server.api_url)
    links = Links(temporal_ui="http://127.0.0.1:8233", public_url="http://ft.test")
    delivery = SlackDelivery(store, SlackApi(config), api.services.policy, links)
    bob = Recipient(name="bob", email="bob@example.com")
    item = item_of(api, bob_item)
    step = Notice(
        dedupe_key=f"{bob_item}/step-test",
        kind=NoticeKind.ITEM_STEP,
        at=at,
        to=[bob],
        postmortem_id=item.postmortem_id,
        action_item_id=bob_item,
    )
    handed = step.model_copy(
        update={"dedupe_key": f"{bob_item}/moved", "kind": NoticeKind.REASSIGNED}
    )
    store.preferences.hold(handed.dedupe_key, {"bob": bob.email}, at)
    assert not await delivery.deliver(step) and not await delivery.deliver(handed)
    (reminder,) = message_about(api, slack_server, "D0BOB", NoticeKind.ITEM_STEP, bob_item)
    assert "followthrough:request_extension" in json.dumps(reminder["blocks"])
    assert message_about(api, slack_server, "D0BOB", NoticeKind.REASSIGNED, bob_item) == []

    # A message that cannot be rendered would fail the same way on every retry: recorded as
    # failed, no retry asked for (the email's notice goes on regardless).
    def unrenderable(*_: object, **__: object) -> SlackPost:
        raise ValueError("the template broke")

    monkeypatch.setattr("activities.slack.slack_message", unrenderable)
    broken = step.model_copy(update={"dedupe_key": f"{bob_item}/unrenderable"})
    assert not await delivery.deliver(broken)
    (record,) = store.slack.messages(broken.dedupe_key)
    assert record.status == "failed" and "the template broke" in (record.error or "")
