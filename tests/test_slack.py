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

from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import ItemFacts, Notice, NoticeKind, Recipient
from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)
from followthrough.domain.postmortem import ActionItem, ActionItemState
from followthrough.integrations.slack import SlackConfig
from followthrough.notices.render import Links
from followthrough.notices.slack_blocks import BUTTONS, SlackAction, buttons_for, slack_message
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from followthrough.temporal.worker import build_worker
from tests.api_support import Api, api_for, api_settings, link_mailer, loopback_policy_file
from tests.conftest import eventually
from tests.factories import draft_data, incident_data
from tests.servers.slack_server import SlackServer
from tests.test_notices import postmortem_with_an_item

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
    assert buttons_for(step, item, item.owner) == [SlackAction.ACKNOWLEDGE, SlackAction.CLAIM_DONE]
    assert buttons_for(step, item, "maria") == []  # the owner's actions, offered to the owner
    assert buttons_for(step, item, None) == [SlackAction.ACKNOWLEDGE, SlackAction.CLAIM_DONE]

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


async def approved(api: Api, env: WorkflowEnvironment) -> tuple[str, str, str]:
    """A SEV2 postmortem approved through the API: (its id, bob's item, carol's item)."""
    now = await env.get_current_time()
    policy = api.services.policy
    incident = parse_incident(incident_data(now), policy)
    started = await start_postmortem(
        api.services.client, incident, policy, task_queue=api.services.task_queue
    )
    pm_id, store = started.workflow_id, api.services.store
    await eventually(lambda: store.records.postmortem(pm_id))
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
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


def submit_body(user: str, view: dict[str, Any], text: str) -> bytes:
    """A view_submission payload: `user` filled in the modal's text field and pressed Send."""
    payload = {
        "type": "view_submission",
        "user": {"id": user},
        "view": {
            **view,
            "state": {
                "values": {
                    "followthrough-text": {"text": {"type": "plain_text_input", "value": text}}
                }
            },
        },
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

    # Slack limits the first call: slack_sdk waits out Retry-After, and it is posted once.
    slack_server.rate_limit_next(1, retry_after=1)
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
    slack_server.rate_limit_next(3, retry_after=1)
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

    # The very same request again (a replay within the window): nothing more happens.
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
    posted_ts = [m["ts"] for m in slack_server.posted if not m.get("thread_ts")]
    assert len(posted_ts) == len({m.ts for m in store.slack.messages() if m.status == "posted"})


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
