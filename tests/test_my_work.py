"""My work: the landing page lists what waits on the signed-in person and nothing else; the
postmortems list shows owner, progress and lateness."""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from tests.api_support import Api
from tests.conftest import eventually
from tests.factories import draft_data
from tests.test_api import open_postmortem, stored_item, tracked_postmortem
from tests.test_dashboard import browser, text_of


def section(page_text: str, name: str) -> str:
    found = re.search(rf'<div class="section" id="{name}">(.*?)</div>', page_text, re.S)
    return found.group(1) if found else ""


async def test_my_work_lists_what_waits_on_each_person(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    drafting = await open_postmortem(api, time_skipping, severity="SEV1", commander="alice")
    in_review = await open_postmortem(api, time_skipping, commander="alice")
    now = await time_skipping.get_current_time()
    posted = await api.post(f"/api/postmortems/{in_review}/draft", "alice", draft_data(now))
    assert posted.is_success, posted.text

    async with (
        browser(api, "alice") as alice,
        browser(api, "bob") as bob,
        browser(api, "erin") as erin,
        browser(api, "maria") as maria,
        browser(api, "dan") as dan,
    ):
        mine = (await alice.get("/")).text
        assert f'href="/postmortems/{drafting}/draft"' in section(mine, "drafts")
        assert in_review not in section(mine, "drafts")  # submitted: not hers to write now
        assert section(mine, "reviews") == ""  # she wrote it; she cannot review it

        reviews = section((await erin.get("/")).text, "reviews")
        assert f'href="/postmortems/{in_review}#review"' in reviews
        assert drafting not in reviews

        bobs = (await bob.get("/")).text
        assert bob_item in section(bobs, "items-due")
        assert carol_item not in section(bobs, "items-due")
        assert section(bobs, "drafts") == "" and section(bobs, "reviews") == ""

        # Bob claims done: carol (not the owner, in the directory) may verify it; bob may not.
        claimed = await api.post(
            f"/api/action-items/{bob_item}/claim-done", "bob", {"evidence": "PR 42"}
        )
        assert claimed.is_success, claimed.text
        await eventually(lambda: stored_item(api, bob_item).state.value == "done_claimed")
        assert bob_item in section((await dan.get("/")).text, "claims")
        assert section((await bob.get("/")).text, "claims") == ""

        # Carol asks for more time: her manager (pat) decides, maria (another team's) does not.
        until = (stored_item(api, carol_item).due + timedelta(days=5)).isoformat()
        asked = await api.post(
            f"/api/action-items/{carol_item}/extension",
            "carol",
            {"until": until, "reason": "waiting on the vendor"},
        )
        assert asked.is_success, asked.text
        await eventually(lambda: stored_item(api, carol_item).pending_extension is not None)
        async with browser(api, "pat") as pat:
            assert carol_item in section((await pat.get("/")).text, "decisions")
        assert section((await maria.get("/")).text, "decisions") == ""

        nothing = await dan.get("/")  # dan: only the claim to verify
        assert section(nothing.text, "drafts") == "" and section(nothing.text, "decisions") == ""

        # The postmortems list: owner, progress and lateness.
        listed = await dan.get("/postmortems")
        row = next(r for r in listed.text.split("<tr>") if f"/postmortems/{pm_id}" in r)
        assert "0/2 verified" in row and "alice" in row
        assert "no items yet" in text_of(listed)
