"""The forms for an item's remaining actions: ask for more time, decide it, reassign, accept the
risk; opting in to an optional postmortem; a person's notice settings. Each is shown only to who
may use it (domain/offers.py, from the workflows' own rules), refused by name when a field is
wrong, and changes nothing when refused."""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from followthrough.domain.notice import NoticeDelivery
from followthrough.domain.offers import ItemAction, item_offers, postmortem_offers
from followthrough.domain.policy import Policy
from tests.api_support import Api
from tests.conftest import eventually
from tests.test_api import open_postmortem, stored_item, stored_postmortem, tracked_postmortem
from tests.test_dashboard import browser, csrf_of, flash

FORMS = ("request-extension", "decide-extension", "reassign", "accept-risk")


def forms_on(page_text: str, item_id: str) -> set[str]:
    return {name for name in FORMS if f'action="/action-items/{item_id}/{name}"' in page_text}


async def test_each_form_is_shown_to_those_who_may_use_it_and_works(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, _ = await tracked_postmortem(api, time_skipping)
    path = f"/postmortems/{pm_id}"
    back = f"{path}#{bob_item}"
    due = stored_item(api, bob_item).due
    async with (
        browser(api, "bob") as bob,
        browser(api, "maria") as maria,
        browser(api, "dan") as dan,
        browser(api, "grace") as grace,
    ):
        # The owner may ask and reassign; their manager may reassign; the council may also
        # accept the risk; someone else may do none of it. Nobody decides: nothing is asked yet.
        assert forms_on((await bob.get(path)).text, bob_item) == {"request-extension", "reassign"}
        assert forms_on((await maria.get(path)).text, bob_item) == {"reassign"}
        assert forms_on((await grace.get(path)).text, bob_item) == {"reassign", "accept-risk"}
        assert forms_on((await dan.get(path)).text, bob_item) == set()

        page = await bob.get(path)
        ask = f"/action-items/{bob_item}/request-extension"

        async def bob_asks(**fields: str) -> dict[str, str]:
            sent = {"csrf": csrf_of(page), "back": back, **fields}
            return await flash(bob, await bob.post(ask, data=sent))

        later = (due + timedelta(days=7)).isoformat()
        for fields, named in [
            ({"until": "2026-13-40", "reason": "waiting on a vendor"}, "until: "),
            ({"until": "", "reason": "waiting on a vendor"}, "until: a date is required"),
            ({"until": "1" * 500, "reason": "waiting on a vendor"}, "until: not a date"),
            ({"until": later, "reason": ""}, "reason is required"),
            ({"until": later, "reason": "x" * 10_001}, "reason"),
            ({"until": due.isoformat(), "reason": "waiting"}, "must be after the current one"),
        ]:
            assert named in (await bob_asks(**fields))["error"], fields
            assert stored_item(api, bob_item).extensions == []
        assert "Asked." in (await bob_asks(until=later, reason="waiting on a vendor"))["done"]
        await eventually(lambda: stored_item(api, bob_item).pending_extension is not None)

        # Now the manager, and not the owner, sees the decision; dan cannot decide by posting.
        assert "decide-extension" in forms_on((await maria.get(path)).text, bob_item)
        assert "decide-extension" not in forms_on((await bob.get(path)).text, bob_item)
        decide = f"/action-items/{bob_item}/decide-extension"
        dan_page = await dan.get(path)
        refused = await dan.post(
            decide, data={"csrf": csrf_of(dan_page), "back": back, "decision": "grant"}
        )
        assert "manager (maria)" in (await flash(dan, refused))["error"]
        maria_page = await maria.get(path)
        for fields, named in [
            ({"decision": "maybe"}, "decision: choose grant or deny"),
            ({"decision": "deny", "reason": " "}, "why the extension is denied"),
        ]:
            sent = {"csrf": csrf_of(maria_page), "back": back, **fields}
            assert named in (await flash(maria, await maria.post(decide, data=sent)))["error"]
            assert stored_item(api, bob_item).pending_extension is not None
        granted = await maria.post(
            decide, data={"csrf": csrf_of(maria_page), "back": back, "decision": "grant"}
        )
        assert "Extension granted." in (await flash(maria, granted))["done"]
        await eventually(lambda: stored_item(api, bob_item).due.isoformat() == later)

        # Reassign: the new owner must be someone the policy knows, in the team.
        reassign = f"/action-items/{bob_item}/reassign"
        for fields, named in [
            ({"to": ""}, "to: say who the new owner is"),
            ({"to": "zed"}, "'zed' is not in the policy's directory"),
            ({"to": "carol"}, "'carol' is not in team 'payments'"),
            ({"to": "alice", "team": "nowhere"}, "team 'nowhere' is not in the policy"),
            ({"to": "a" * 129}, "to: "),  # past a name's length: refused by name, never cut
            ({"to": "alice", "reason": "x" * 10_001}, "reason: "),
        ]:
            sent = {"csrf": csrf_of(maria_page), "back": back, **fields}
            assert named in (await flash(maria, await maria.post(reassign, data=sent)))["error"]
            assert stored_item(api, bob_item).owner == "bob"
        moved = await maria.post(
            reassign,
            data={"csrf": csrf_of(maria_page), "back": back, "to": "alice", "reason": "bob is out"},
        )
        assert "Reassigned." in (await flash(maria, moved))["done"]
        await eventually(lambda: stored_item(api, bob_item).owner == "alice")
        # Bob no longer owns it: his forms are gone.
        assert forms_on((await bob.get(path)).text, bob_item) == set()

        # Accept the risk: the council only, with a reason of a few words.
        accept = f"/action-items/{bob_item}/accept-risk"
        dan_page = await dan.get(path)
        said = await flash(
            dan,
            await dan.post(
                accept,
                data={"csrf": csrf_of(dan_page), "back": back, "reason": "we can live with it"},
            ),
        )
        assert "only the reliability council" in said["error"]
        grace_page = await grace.get(path)
        short = await grace.post(
            accept, data={"csrf": csrf_of(grace_page), "back": back, "reason": "fine"}
        )
        assert "a reason of a few words" in (await flash(grace, short))["error"]
        assert stored_item(api, bob_item).risk_acceptance is None
        accepted = await grace.post(
            accept,
            data={
                "csrf": csrf_of(grace_page),
                "back": back,
                "reason": "the vendor retires this path next quarter",
            },
        )
        assert "Risk accepted." in (await flash(grace, accepted))["done"]
        await eventually(lambda: stored_item(api, bob_item).state.value == "risk_accepted")
        # Resolved: nobody is offered anything on it any more.
        for person in (bob, maria, grace, dan):
            assert forms_on((await person.get(path)).text, bob_item) == set()


async def test_offers_follow_the_workflows_rules(
    api: Api, time_skipping: WorkflowEnvironment, policy: Policy
) -> None:
    pm_id, bob_item, _ = await tracked_postmortem(api, time_skipping)
    item = stored_item(api, bob_item)
    assert item_offers(item, "bob", policy) >= {
        ItemAction.ACKNOWLEDGE,
        ItemAction.CLAIM_DONE,
        ItemAction.REQUEST_EXTENSION,
        ItemAction.REASSIGN,
    }
    assert ItemAction.VERIFY not in item_offers(item, "carol", policy)  # nothing claimed yet
    assert item_offers(item, "dan", policy) == frozenset()
    assert ItemAction.ACCEPT_RISK in item_offers(item, "heidi", policy)
    # An approved postmortem offers no review to anyone, and no draft to its owner.
    pm = stored_postmortem(api, pm_id)
    for person in ("alice", "erin", "dan"):
        assert postmortem_offers(pm, person, policy) == frozenset()


async def test_anyone_in_the_directory_opts_in_to_an_optional_postmortem(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    optional = await open_postmortem(api, time_skipping, severity="SEV3")
    required = await open_postmortem(api, time_skipping, severity="SEV1")
    assert stored_postmortem(api, optional).state.value == "optional"
    path = f"/postmortems/{optional}"
    async with browser(api, "dan") as dan, browser(api, "erin") as erin:
        assert (
            f'action="/postmortems/{required}/opt-in"'
            not in (await dan.get(f"/postmortems/{required}")).text
        )
        page = await dan.get(path)
        assert f'action="{path}/opt-in"' in page.text
        done = await dan.post(f"{path}/opt-in", data={"csrf": csrf_of(page), "back": path})
        assert "Opted in" in (await flash(dan, done))["done"]
        await eventually(lambda: stored_postmortem(api, optional).state.value == "drafting")
        pm = stored_postmortem(api, optional)
        assert pm.owner == "dan"
        assert api.services.store.records.audit_trail(optional)[-1].action == "postmortem.opted_in"
        # Now it is dan's to write: nobody is offered the opt-in, and it is on his My work.
        assert f'action="{path}/opt-in"' not in (await erin.get(path)).text
        assert f'href="{path}/draft"' in (await dan.get(path)).text
        assert f'href="{path}/draft"' in (await dan.get("/")).text
        # A second opt-in (a stale page, or the API) is refused and changes nothing.
        late = await api.post(f"/api/postmortems/{optional}/opt-in", "erin", {})
        assert late.status_code == 409, late.text
        assert "only an optional postmortem" in late.json()["detail"]
        assert stored_postmortem(api, optional).owner == "dan"


def chosen_on(page_text: str) -> str:
    """The notice delivery the settings page shows as chosen."""
    found: list[str] = re.findall(r'name="digest" value="(\w+)" checked', page_text)
    assert len(found) == 1, found
    return found[0]


async def test_each_person_chooses_their_notices_on_the_settings_page(api: Api) -> None:
    preferences = api.services.store.preferences
    form = "/settings/notices"
    async with (
        browser(api, "bob") as bob,
        browser(api, "carol") as carol,
        browser(api) as anonymous,
    ):
        page = await bob.get("/settings")
        assert page.status_code == 200 and chosen_on(page.text) == "immediate"

        # Not signed in, no CSRF token, or another session's: refused, and nothing changes.
        out = await anonymous.post(form, data={"csrf": csrf_of(page), "digest": "daily"})
        assert out.status_code == 303 and out.headers["location"].startswith("/login")
        assert (await bob.post(form, data={"digest": "daily"})).status_code == 403
        carols = csrf_of(await carol.get("/settings"))
        assert (await bob.post(form, data={"csrf": carols, "digest": "daily"})).status_code == 403
        assert preferences.delivery("bob") is NoticeDelivery.IMMEDIATE

        # A value that is not a choice is refused naming the field.
        for digest in ("hourly", "", "DAILY", "d" * 10_001):
            sent = {"csrf": csrf_of(page), "digest": digest}
            said = await flash(bob, await bob.post(form, data=sent))
            assert said == {"error": "digest: choose immediate or daily"}, digest
            assert preferences.delivery("bob") is NoticeDelivery.IMMEDIATE
        said = await flash(bob, await bob.post(form, data={"csrf": csrf_of(page)}))
        assert said["error"] == "digest: choose immediate or daily"

        # Chosen: bob's own preference only (a person field is no way to choose for carol).
        sent = {"csrf": csrf_of(page), "digest": "daily", "person": "carol"}
        chose = await bob.post(form, data=sent)
        assert chose.headers["location"] == "/settings"
        assert (await flash(bob, chose))["done"] == "You now get hand-offs in a daily digest."
        assert preferences.delivery("bob") is NoticeDelivery.DAILY
        assert preferences.delivery("carol") is NoticeDelivery.IMMEDIATE
        assert chosen_on((await bob.get("/settings")).text) == "daily"
        assert chosen_on((await carol.get("/settings")).text) == "immediate"
        assert (await api.get("/api/me/notices", "bob")).json() == {"digest": "daily"}

        back = await bob.post(form, data={"csrf": csrf_of(page), "digest": "immediate"})
        assert (await flash(bob, back))["done"] == "You now get hand-offs each as it happens."
        assert preferences.delivery("bob") is NoticeDelivery.IMMEDIATE
