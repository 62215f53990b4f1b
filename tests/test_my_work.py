"""My work: the landing page lists what waits on the signed-in person and nothing else; the
postmortems list shows owner, progress and lateness."""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from followthrough.api.dashboard import Viewer, _pages
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import Postmortem
from followthrough.domain.postmortem import open_postmortem as open_postmortem_record
from followthrough.domain.work import WORK_LIST_MOST, Candidates, my_work
from tests.api_support import Api
from tests.conftest import eventually
from tests.domain.examples import NOW
from tests.factories import draft_data, incident_data
from tests.test_api import open_postmortem, stored_item, stored_postmortem, tracked_postmortem
from tests.test_dashboard import browser, csrf_of, flash, text_of


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


async def test_my_work_offers_the_optional_postmortems_of_my_teams(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    payments = await open_postmortem(api, time_skipping, severity="SEV3")  # checkout: payments
    platform = await open_postmortem(api, time_skipping, severity="SEV4", services=["kubernetes"])
    required = await open_postmortem(api, time_skipping, severity="SEV2", commander="alice")
    button = 'action="/postmortems/{}/opt-in"'.format
    async with (
        browser(api, "bob") as bob,
        browser(api, "maria") as maria,
        browser(api, "dan") as dan,
        browser(api, "erin") as erin,
    ):
        page = await bob.get("/")
        offered = section(page.text, "opt-ins")
        assert button(payments) in offered and button(platform) not in offered
        assert required not in offered
        assert button(payments) in section((await maria.get("/")).text, "opt-ins")  # the manager
        dans = section((await dan.get("/")).text, "opt-ins")
        assert button(platform) in dans and button(payments) not in dans
        assert section((await erin.get("/")).text, "opt-ins") == ""  # sre has none

        # Bob opts in from My work: it is his to write, and nobody is offered it any more.
        done = await bob.post(f"/postmortems/{payments}/opt-in", data={"csrf": csrf_of(page)})
        assert done.headers["location"] == "/"
        assert "Opted in" in (await flash(bob, done))["done"]
        await eventually(lambda: stored_postmortem(api, payments).owner == "bob")
        mine = (await bob.get("/")).text
        assert button(payments) not in section(mine, "opt-ins")
        assert f'href="/postmortems/{payments}/draft"' in section(mine, "drafts")
        assert payments not in section((await maria.get("/")).text, "opt-ins")


def test_my_work_shows_a_bounded_list_of_opt_ins_and_links_to_the_rest(policy: Policy) -> None:
    def optional(number: int, service: str) -> Postmortem:
        incident = parse_incident(
            incident_data(NOW, id=f"INC-{number}", severity="SEV3", services=[service]), policy
        )
        return open_postmortem_record(incident, policy, NOW)

    # What the storage reads for pat's team: a platform one, then more than the list shows.
    platform = [optional(n, "kubernetes") for n in range(WORK_LIST_MOST + 2)]
    found = Candidates(
        drafts=[], optional=platform, in_review=[], owned_items=[], claimed=[], asking=[]
    )
    work = my_work("pat", found, policy, NOW.date())
    assert work.opt_ins == platform[:WORK_LIST_MOST]
    assert work.more_opt_ins == ["platform"]
    page = _pages.get_template("my_work.html.j2").render(
        viewer=Viewer(person="pat", csrf="0", session="-"),
        path="/",
        done="",
        error="",
        operator=False,
        today=NOW.date(),
        zone="UTC",
        work=work,
        local=str,
    )
    assert page.count("/opt-in") == WORK_LIST_MOST
    assert 'href="/postmortems?state=optional&amp;team=platform"' in section(page, "opt-ins")

    few = my_work("pat", found.model_copy(update={"optional": platform[:3]}), policy, NOW.date())
    assert len(few.opt_ins) == 3 and few.more_opt_ins == [] and not few.empty
