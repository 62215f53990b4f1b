"""One-click links reach only their addressee: the outbox shows a person their own mail, no view
shows anyone else's links, and a link opened in someone else's signed-in browser does nothing.

Real Temporal (time-skipping server), a real worker and SQLite; requests go through the real app
as a browser sends them; the CLI runs in-process on the same database.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape

from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from followthrough.cli import app
from followthrough.domain.access import link_addressee, read_link
from followthrough.domain.notice import NoticeKind, OutboxMessage, OutboxStatus
from followthrough.storage import Store
from tests.api_support import LINK_SECRET, Api
from tests.conftest import eventually
from tests.test_api import expect, links_in_outbox, stored_item, tracked_postmortem
from tests.test_dashboard import browser


async def alice_owns_an_item_by_email(api: Api, env: WorkflowEnvironment) -> tuple[str, str]:
    """bob's item reassigned to alice: the email telling her carries her one-click links."""
    _, bob_item, _ = await tracked_postmortem(api, env)
    expect(await api.post(f"/api/action-items/{bob_item}/reassign", "maria", {"to": "alice"}), 200)
    await eventually(lambda: links_in_outbox(api.services.store, bob_item, "alice@example.com"))
    return bob_item, f"{bob_item}/reassigned-2"


def message(api: Api, key: str) -> OutboxMessage:
    found = api.services.store.outbox.message(key)
    assert found is not None, key
    return found


async def test_people_see_their_own_mail_and_only_their_own_links(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, key = await alice_owns_an_item_by_email(api, time_skipping)
    to_alice = message(api, key)
    assert "/act/" in to_alice.text

    async with browser(api, "alice") as alice:
        mine = unescape((await alice.get("/outbox")).text)
    assert to_alice.subject in mine and to_alice.text in mine  # her links, as sent

    async with browser(api, "bob") as bob:
        theirs = unescape((await bob.get("/outbox")).text)
    assert to_alice.subject not in theirs
    # bob sees links only in his own mail (the "item assigned" email, sent when it was his).
    assert {link_addressee(t) for t in re.findall(r"/act/([A-Za-z0-9_-]+)", theirs)} <= {"bob"}

    async with browser(api, "sam") as operator:  # the policy's operator follows all mail
        everyone = unescape((await operator.get("/outbox")).text)
    assert to_alice.subject in everyone and "/act/" not in everyone
    assert "[one-click link for alice, shown only to them]" in everyone


async def test_a_link_in_someone_elses_signed_in_browser_does_nothing(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    item_id, _ = await alice_owns_an_item_by_email(api, time_skipping)
    link = links_in_outbox(api.services.store, item_id, "alice@example.com")["acknowledge"]

    async with browser(api, "bob") as bob:
        shown = await bob.get(link)
        used = await bob.post(link)
    for page in (shown, used):
        assert page.status_code == 403
        assert "this link is for alice, and you are signed in as bob" in unescape(page.text)
    assert stored_item(api, item_id).acknowledged_at is None
    token = link.rsplit("/", 1)[-1]
    nonce = read_link(token, LINK_SECRET, datetime.now(UTC)).nonce
    assert api.services.store.links.use(nonce) is None  # not spent: alice can still use it

    async with browser(api, "alice") as alice:
        done = await alice.post(link)
    assert done.status_code == 200 and "Acknowledged" in done.text
    assert stored_item(api, item_id).acknowledged_by == "alice"


async def test_the_cli_shows_mail_without_anyones_links(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, key = await alice_owns_an_item_by_email(api, time_skipping)
    env = {"FOLLOWTHROUGH_DATABASE_URL": str(api.services.store.engine.url)}
    runner = CliRunner()

    shown = runner.invoke(app, ["outbox", "show", key], env=env)
    html = runner.invoke(app, ["outbox", "show", key, "--html"], env=env)
    listed = runner.invoke(app, ["outbox", "list", "--json"], env=env)
    for result in (shown, html, listed):
        assert result.exit_code == 0, result.output
        assert "/act/" not in result.output
    assert "[one-click link for alice, shown only to them]" in shown.output
    assert "You now own" in json.dumps(json.loads(listed.output))


def test_mail_to_a_person_is_found_by_their_exact_address(store: Store) -> None:
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)

    def sent(key: str, *recipients: str) -> None:
        store.outbox.claim(
            OutboxMessage(
                dedupe_key=key,
                kind=NoticeKind.ITEM_STEP,
                postmortem_id="postmortem-generic-INC-1",
                action_item_id=None,
                recipients=list(recipients),
                subject=key,
                text="",
                html="",
                status=OutboxStatus.KEPT,
                created_at=at,
                sent_at=at,
            )
        )

    sent("to-ann", "ann_lee@example.com")
    sent("to-both", "bo@example.com", "ann_lee@example.com")
    sent("look-alike", "annxlee@example.com")  # '_' is a LIKE wildcard: must not match
    sent("longer", "joann_lee@example.com")

    found = store.outbox.messages(recipient="ann_lee@example.com")
    assert sorted(m.dedupe_key for m in found) == ["to-ann", "to-both"]
    assert [m.dedupe_key for m in store.outbox.messages(recipient="bo@example.com")] == ["to-both"]
