"""The guard for what nobody has thought of yet: hostile values through the real product.

Hypothesis drives signed incident webhooks, draft submissions and people's actions on action items
with hostile values (huge and empty text, line breaks and other control characters, lone
surrogates and right-to-left marks, dates at the ends of the calendar and without an offset,
numbers that are not finite or absurdly large, URLs that point inward, people who are not the
owner or not in the directory at all) through the app served by uvicorn on loopback, a real worker
and the Temporal dev server, with SQLite as the record. After every example:

* each request was answered with 2xx or 4xx, within REQUEST_SECONDS;
* no workflow it touched holds a failed workflow task in its history (a task that fails keeps
  failing: the follow-up is wedged), and none has an activity past STUCK_ATTEMPTS attempts;
* nothing is half-written: what the record holds of each touched workflow is what the workflow
  itself says (state and audit sequence), once its last write has landed.

An accepted draft is approved at once, so its action items start: a value that would wedge an
item's ladder (a due date in the year 9999) shows up here, not weeks later.

CI runs a fixed number of examples from a fixed seed (derandomized), so every run sends the same
requests; set FOLLOWTHROUGH_HOSTILE_EXAMPLES to run more, from a random seed, locally.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from structlog.testing import capture_logs
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.storage import Store
from tests.api_support import WEBHOOK_SECRETS, api_for, api_served, api_settings, link_mailer
from tests.conftest import running_worker
from tests.factories import draft_data, incident_data
from tests.processes import free_port
from tests.webhook_signing import signed_request

IN_CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("FOLLOWTHROUGH_HOSTILE_EXAMPLES", "25"))
REQUEST_SECONDS = 30  # every answer, refusals of 2 MB bodies included, comes well within this
SETTLE_SECONDS = 20  # for a workflow's writes to reach the record
STUCK_ATTEMPTS = 5  # an activity retried more often than this is stuck, not unlucky

T = TypeVar("T")

# --- hostile values -----------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),  # any code point hypothesis likes: control characters, unicode
    st.sampled_from(
        [
            "",
            "   ",
            "line one\nline two",
            "Checkout down\r\nBcc: everyone@example.com",
            "nul \x00 byte",
            "bell \x07 and escape \x1b[31m",
            "\u202eevil right-to-left",
            "lone surrogate \ud800",
            "<script>alert(1)</script>",
            "{{ 7 * 7 }} {% raw %}",
            "x" * 10_001,
            "y" * 300_000,
            "z" * 1_900_000,  # near Temporal's 2 MB payload limit
        ]
    ),
)
HOSTILE_DATE = st.one_of(
    st.sampled_from(
        ["9999-12-31", "0001-01-01", "1969-12-31", "2026-02-30", "", "tomorrow", "+275760-09-13"]
    ),
    st.dates().map(lambda d: d.isoformat()),
)
HOSTILE_DATETIME = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00+00:00",
            "0001-01-01T00:00:00+14:00",
            "2026-12-02T10:00:00",  # no offset
            "1970-01-01T00:00:00Z",
            "not a time",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)
HOSTILE_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([1e308, -1e308, float("nan"), float("inf"), -0.0, 2**63]),
)
HOSTILE_URL = st.sampled_from(
    [
        "http://127.0.0.1:1/health",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:25/",
        "http://localhost:5432/",
    ]
)
PEOPLE = ["alice", "bob", "carol", "erin", "pat", "maria", "grace", "sam", "mallory", "", "bob\n"]
HOSTILE_PERSON = st.sampled_from(PEOPLE)
ANY_VALUE = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, HOSTILE_DATE, st.none(), st.booleans())

# --- what is sent --------------------------------------------------------------------------------

# Where in a valid draft a hostile value goes, and what kind of value it is there.
DRAFT_PLACES: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("summary",): HOSTILE_TEXT,
    ("impact",): HOSTILE_TEXT,
    ("timeline", 0, "at"): HOSTILE_DATETIME,
    ("timeline", 0, "description"): HOSTILE_TEXT,
    ("contributing_factors", 0, "description"): HOSTILE_TEXT,
    ("contributing_factors", 0, "tags", 0): HOSTILE_TEXT,
    ("detection_gaps", 0): HOSTILE_TEXT,
    ("recovery_steps", 0): HOSTILE_TEXT,
    ("action_items", 0, "title"): HOSTILE_TEXT,
    ("action_items", 0, "description"): HOSTILE_TEXT,
    ("action_items", 0, "due"): HOSTILE_DATE,
    ("action_items", 0, "owner"): HOSTILE_PERSON,
    ("action_items", 0, "priority"): HOSTILE_TEXT,
    ("action_items", 0, "acceptance_criterion", "description"): HOSTILE_TEXT,
    ("action_items", 0, "acceptance_criterion"): st.fixed_dictionaries(
        {"kind": st.just("http_check"), "url": HOSTILE_URL, "expect_status": HOSTILE_NUMBER}
    ),
    ("action_items", 1, "acceptance_criterion"): st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["prometheus_query", "alert_rule_present", "ticket_resolved"]),
            "description": HOSTILE_TEXT,
            "query": st.just("sum(rate(http_requests_total[5m]))"),
            "threshold": HOSTILE_NUMBER,
            "alert": st.just("CheckoutErrors"),
        }
    ),
    ("slo_impact",): st.fixed_dictionaries(
        {
            "fraction_affected": HOSTILE_NUMBER,
            "traffic_weight": HOSTILE_NUMBER,
            "budget_remaining_before": HOSTILE_NUMBER,
        }
    ),
}
# Where in a valid incident a hostile value goes.
INCIDENT_PLACES: dict[str, st.SearchStrategy[Any]] = {
    "id": HOSTILE_TEXT,
    "title": HOSTILE_TEXT,
    "summary": HOSTILE_TEXT,
    "severity": st.one_of(HOSTILE_TEXT, st.sampled_from(["SEV1", "SEV4", "sev2"])),
    "services": st.one_of(
        st.lists(HOSTILE_TEXT, max_size=5), st.just(["checkout"] * 20_000), st.just("checkout")
    ),
    "commander": HOSTILE_PERSON,
    "url": HOSTILE_URL,
    "started_at": HOSTILE_DATETIME,
    "detected_at": HOSTILE_DATETIME,
    "mitigated_at": HOSTILE_DATETIME,
    "resolved_at": HOSTILE_DATETIME,
}
# People's actions on an action item, and the fields of each one's body.
ITEM_ACTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "acknowledge": {},
    "claim-done": {"evidence": HOSTILE_TEXT},
    "verify": {"note": HOSTILE_TEXT},
    "reject": {"reason": HOSTILE_TEXT},
    "extension": {"until": HOSTILE_DATE, "reason": HOSTILE_TEXT},
    "extension/decision": {"approve": st.booleans(), "reason": HOSTILE_TEXT},
    "reassign": {"to": HOSTILE_PERSON, "team": HOSTILE_TEXT, "reason": HOSTILE_TEXT},
    "accept-risk": {"reason": HOSTILE_TEXT},
}


def body_of(value: Any) -> bytes:
    """JSON as a hostile client would send it: NaN and Infinity as bare words, lone surrogates
    escaped (a UTF-8 encoder would refuse them, the server's JSON reader does not)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def placed(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    at = changed
    for step in path[:-1]:
        at = at[step]
    at[path[-1]] = value
    return changed


# --- the product, and what may be checked of it --------------------------------------------------


@dataclass
class Product:
    """The served app, its worker's queue and record, and the loop they run on."""

    base_url: str
    client: Client
    store: Store
    loop: asyncio.AbstractEventLoop
    tokens: dict[str, str]
    http: httpx.Client

    def run(self, work: Coroutine[Any, Any, T], seconds: float = 60) -> T:
        """Run a coroutine on the product's loop from Hypothesis's thread."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(seconds)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        started = time.perf_counter()
        response = self.http.post(
            path, content=body, headers={"Content-Type": "application/json", **headers}
        )
        took = time.perf_counter() - started
        if currently_in_test_context():  # the set-up posts too, outside any example
            note(f"POST {path} ({len(body):,} bytes) -> {response.status_code} in {took:.2f} s")
        assert response.status_code < 500, f"{response.status_code}: {response.text[:1000]}"
        return response

    def as_person(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    def webhook(self, incident: dict[str, Any]) -> httpx.Response:
        body = body_of(incident)
        headers = signed_request("generic", WEBHOOK_SECRETS["generic"], body, datetime.now(UTC))
        headers["X-Followthrough-Delivery"] = uuid.uuid4().hex
        return self.post("/webhooks/generic", body, headers)

    def settled(self, workflow_id: str) -> None:
        """No failed workflow task, no stuck activity, and the record agrees with the workflow."""
        self.run(_settled(self.client, self.store, workflow_id), SETTLE_SECONDS + 30)


async def _settled(client: Client, store: Store, workflow_id: str) -> None:
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            failed = [
                event.workflow_task_failed_event_attributes.failure.message
                async for event in handle.fetch_history_events()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
        except RPCError as err:  # an action item its postmortem has not started yet
            assert err.status is RPCStatusCode.NOT_FOUND, err
            assert time.monotonic() < deadline, f"{workflow_id} never started"
            await asyncio.sleep(0.2)
            continue
        assert not failed, f"{workflow_id}: a workflow task failed: {failed[0][:1000]}"
        description = await handle.describe()
        stuck = [
            f"{a.activity_type.name} attempt {a.attempt}: {a.last_failure.message[:500]}"
            for a in description.raw_description.pending_activities
            if a.attempt > STUCK_ATTEMPTS
        ]
        assert not stuck, f"{workflow_id}: activities stuck: {stuck}"
        if await _record_agrees(client, store, workflow_id):
            return
        assert time.monotonic() < deadline, f"{workflow_id}: the record never caught up"
        await asyncio.sleep(0.2)


async def _record_agrees(client: Client, store: Store, workflow_id: str) -> bool:
    """What the record holds is what the workflow says, once its last write has landed."""
    handle = client.get_workflow_handle(workflow_id)
    is_item = "-item-" in workflow_id
    kind: type[ActionItem] | type[Postmortem] = ActionItem if is_item else Postmortem
    try:
        live = await handle.query("snapshot", result_type=kind)
    except RPCError:
        return True  # closed: its last write was awaited before it completed
    read: Callable[[str], Any] = store.records.action_item if is_item else store.records.postmortem
    stored = await asyncio.to_thread(read, workflow_id)
    return stored is not None and (stored.state, stored.last_seq) == (live.state, live.last_seq)


# --- the properties -------------------------------------------------------------------------------


def hostile_incidents(product: Product, examples: int) -> Callable[[], None]:
    @bounded(examples)
    @given(field=st.sampled_from(sorted(INCIDENT_PLACES)), data=st.data())
    def run(field: str, data: st.DataObject) -> None:
        value = data.draw(INCIDENT_PLACES[field], label=field)
        incident = incident_data(datetime.now(UTC), id=f"HOSTILE-{uuid.uuid4().hex[:10]}")
        incident[field] = value
        answer = product.webhook(incident)
        if answer.status_code == 202:
            product.settled(answer.json()["workflow_id"])

    return run


def hostile_drafts(product: Product, examples: int) -> Callable[[], None]:
    places = sorted(DRAFT_PLACES, key=repr)

    @bounded(examples)
    @given(
        place=st.sampled_from(places),
        author=st.sampled_from(["alice", "alice", "bob", "mallory"]),
        data=st.data(),
    )
    def run(place: tuple[Any, ...], author: str, data: st.DataObject) -> None:
        now = datetime.now(UTC)
        incident = incident_data(now - timedelta(hours=1), id=f"HOSTILE-{uuid.uuid4().hex[:10]}")
        answer = product.webhook(incident)
        assert answer.status_code == 202, answer.text
        pm_id = answer.json()["workflow_id"]
        product.settled(pm_id)

        draft = placed(draft_data(now), place, data.draw(DRAFT_PLACES[place], label=repr(place)))
        headers = product.as_person(author) if author in product.tokens else {}
        submitted = product.post(f"/api/postmortems/{pm_id}/draft", body_of(draft), headers)
        product.settled(pm_id)
        if not submitted.is_success:
            return
        approved = product.post(
            f"/api/postmortems/{pm_id}/approve", body_of({}), product.as_person("erin")
        )
        product.settled(pm_id)
        if approved.is_success:  # its action items start: each must open and stay well
            for number in range(1, len(draft["action_items"]) + 1):
                product.settled(f"{pm_id}-item-{number}")

    return run


def hostile_actions(product: Product, items: list[str], examples: int) -> Callable[[], None]:
    @bounded(examples)
    @given(
        item=st.sampled_from(items),
        action=st.sampled_from(sorted(ITEM_ACTIONS)),
        person=st.sampled_from(sorted(product.tokens)),
        data=st.data(),
    )
    def run(item: str, action: str, person: str, data: st.DataObject) -> None:
        fields = ITEM_ACTIONS[action]
        body = {name: data.draw(strategy, label=name) for name, strategy in fields.items()}
        if data.draw(st.booleans(), label="extra field"):
            body[data.draw(st.text(max_size=10), label="extra name")] = data.draw(ANY_VALUE)
        product.post(f"/api/action-items/{item}/{action}", body_of(body), product.as_person(person))
        product.settled(item)

    return run


def bounded(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=IN_CI or "FOLLOWTHROUGH_HOSTILE_EXAMPLES" not in os.environ,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


async def test_hostile_input_never_wedges_a_follow_up_nor_half_writes_it(
    dev_server: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    client = dev_server.client
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        served = api_settings(tmp_path, queue, api_port=free_port())
        async with api_served(client, sqlite_store, served) as base_url:
            async with api_for(client, sqlite_store, served) as api:
                tokens = {p: api.token(p) for p in PEOPLE if p in api.services.policy.people}
            with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http:
                product = Product(
                    base_url, client, sqlite_store, asyncio.get_running_loop(), tokens, http
                )
                items = await asyncio.to_thread(tracked_items, product)
                started = time.perf_counter()
                with capture_logs():  # every refusal logs a line: noise here
                    for name, run in (
                        ("incidents", hostile_incidents(product, EXAMPLES)),
                        ("drafts", hostile_drafts(product, EXAMPLES)),
                        ("actions", hostile_actions(product, items, EXAMPLES * 2)),
                    ):
                        await asyncio.to_thread(run)
                        print(f"\nhostile {name}: done at {time.perf_counter() - started:.1f} s")


def tracked_items(product: Product) -> list[str]:
    """A postmortem approved the ordinary way, whose two action items take the hostile actions."""
    now = datetime.now(UTC)
    answer = product.webhook(incident_data(now - timedelta(hours=1), id=f"TRACKED-{uuid.uuid4()}"))
    pm_id = answer.json()["workflow_id"]
    product.settled(pm_id)
    draft = body_of(draft_data(now))
    assert product.post(f"/api/postmortems/{pm_id}/draft", draft, product.as_person("alice"))
    approved = product.post(
        f"/api/postmortems/{pm_id}/approve", body_of({}), product.as_person("erin")
    )
    assert approved.is_success, approved.text
    items = [f"{pm_id}-item-1", f"{pm_id}-item-2"]
    for item in items:
        product.settled(item)
    return items
