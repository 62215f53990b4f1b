"""Checks call out only where the policy allows, only for people who may act, and only a little.

A loopback HTTP server counts every request it gets, so "no request was made" is observed, not
assumed. The shipped policy lists no hosts; the tests' API and worker list loopback
(tests/api_support.py, LOOPBACK_HOSTS), as an operator lists internal hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from followthrough.checks import CheckConfig, preflight_problems, run_check
from followthrough.domain.criteria import HttpCheck, PrometheusQuery
from followthrough.domain.evidence import HIDDEN_ANSWER
from followthrough.domain.incident import parse_incident
from followthrough.domain.limits import EVIDENCE_EXCERPT_CHARS, PREFLIGHT_PROBES
from followthrough.domain.outbound import OutboundPolicy
from followthrough.domain.policy import load_policy
from followthrough.domain.postmortem import AuditEvent, PostmortemChange
from followthrough.domain.postmortem import open_postmortem as opened
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from tests.api_support import Api, loopback_policy_file
from tests.factories import draft_data, incident_data
from tests.processes import Followthrough, free_port
from tests.test_api import expect, open_postmortem
from tests.test_verification import Health, approved_with, settled

SHIPPED = CheckConfig()  # the shipped policy's outbound section: no host listed
LOOPBACK_LISTED = CheckConfig(outbound=OutboundPolicy(allowed_hosts=["127.0.0.1"]))


@pytest.fixture
def health() -> Iterator[Health]:
    """A loopback HTTP server that counts the requests it gets (answering 503 "down")."""
    service = Health()
    service.serve()
    yield service
    service.server.shutdown()
    service.server.server_close()


def prometheus_at(url: str, title: str = "Error rate back under 1%") -> dict[str, Any]:
    return {
        "title": title,
        "acceptance_criterion": {
            "kind": "prometheus_query",
            "query": "up",
            "op": "==",
            "threshold": 1,
            "prometheus_url": url,
        },
    }


def drafted(now: datetime, *items: dict[str, Any]) -> dict[str, Any]:
    draft = draft_data(now)
    base = draft["action_items"][0]
    draft["action_items"] = [{**base, **item} for item in items]
    return draft


async def test_checks_reach_loopback_and_metadata_only_when_the_policy_lists_them(
    health: Health,
) -> None:
    now = datetime.now(UTC)
    refused = await run_check(HttpCheck(url=health.url), SHIPPED, now)
    assert not refused.passed
    assert refused.reason == (
        "not called: 127.0.0.1 is a loopback address, which checks may reach only when the "
        "policy lists it under outbound.allowed_hosts"
    )
    # A name is judged by what it resolves to: localhost is loopback too.
    by_name = await run_check(
        HttpCheck(url=health.url.replace("127.0.0.1", "localhost")), SHIPPED, now
    )
    assert "localhost (127.0.0.1) is a loopback address" in by_name.reason or (
        "localhost (::1) is a loopback address" in by_name.reason
    )
    metadata = await run_check(
        HttpCheck(url="http://169.254.169.254/latest/meta-data/"), SHIPPED, now
    )
    assert "169.254.169.254 is a link-local (cloud metadata) address" in metadata.reason
    assert health.requests == 0

    listed = await run_check(HttpCheck(url=health.url), LOOPBACK_LISTED, now)
    assert "503 where 200 was expected" in listed.reason and health.requests == 1


async def test_a_drafts_prometheus_is_judged_and_the_installations_own_is_trusted(
    health: Health,
) -> None:
    base = health.url.removesuffix("/health")
    named = PrometheusQuery(query="up", op="==", threshold=1, prometheus_url=base)
    assert await preflight_problems(named, SHIPPED) == [
        "prometheus_url: not asked: 127.0.0.1 is a loopback address, which checks may reach "
        "only when the policy lists it under outbound.allowed_hosts"
    ]
    assert health.requests == 0
    # FOLLOWTHROUGH_PROMETHEUS_URL is the operator's choice: asked whatever the allow-list says.
    configured = named.model_copy(update={"prometheus_url": None})
    await preflight_problems(configured, CheckConfig(prometheus_url=base))
    assert health.requests == 1


async def test_a_non_owners_submission_makes_no_request_and_is_refused_first(
    api: Api, time_skipping: WorkflowEnvironment, health: Health
) -> None:
    pm_id = await open_postmortem(api, time_skipping)  # alice's
    draft = drafted(await time_skipping.get_current_time(), prometheus_at(health.url))
    url = f"/api/postmortems/{pm_id}/draft"

    expect(await api.post(url, "bob", draft), 403, r"only the postmortem owner \(alice\)")
    assert health.requests == 0

    expect(await api.post(url, "alice", draft), 200)  # the owner's draft is probed, once
    assert health.requests == 1


async def test_one_submission_probes_a_bounded_number_of_criteria(
    api: Api, time_skipping: WorkflowEnvironment, health: Health
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    items = [prometheus_at(health.url, f"Fix number {n}") for n in range(PREFLIGHT_PROBES + 3)]
    draft = drafted(await time_skipping.get_current_time(), *items)

    expect(await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft), 200)
    assert health.requests == PREFLIGHT_PROBES


async def test_evidence_is_a_short_excerpt_shown_only_to_those_who_work_on_the_item(
    api: Api, time_skipping: WorkflowEnvironment, health: Health
) -> None:
    health.answer = (503, "internal status page " * 200)  # 4,200 characters
    item_id = await approved_with(api, time_skipping, {"kind": "http_check", "url": health.url})
    claim = f"/api/action-items/{item_id}/claim-done"
    expect(await api.post(claim, "bob", {"evidence": "deployed the fix"}), 200)
    await settled(api, item_id, attempts=1)

    def answers(shown: dict[str, Any]) -> list[str]:
        return [c["result"]["answer"] for c in shown["action_item"]["checks"]]

    owner = expect(await api.get(f"/api/action-items/{item_id}", "bob"), 200)
    [excerpt] = answers(owner)
    assert excerpt.startswith("HTTP/1.1 503") and len(excerpt) <= EVIDENCE_EXCERPT_CHARS
    assert "internal status page" in excerpt
    for insider in ("maria", "erin", "grace", "sam"):  # manager, reviewer, council, operator
        seen = expect(await api.get(f"/api/action-items/{item_id}", insider), 200)
        assert answers(seen) == [excerpt]

    # dan is on another team and reviews nothing: the verdict and its reason, not the answer.
    outsider = expect(await api.get(f"/api/action-items/{item_id}", "dan"), 200)
    assert answers(outsider) == [HIDDEN_ANSWER]
    assert "503 where 200 was expected" in outsider["action_item"]["checks"][0]["result"]["reason"]
    listed = expect(
        await api.get(f"/api/action-items?postmortem={item_id.removesuffix('-item-1')}", "dan"), 200
    )
    assert [c["result"]["answer"] for c in listed[0]["checks"]] == [HIDDEN_ANSWER]


def test_the_cli_refuses_a_non_owner_before_the_draft_calls_out(
    tmp_path: Path, health: Health
) -> None:
    """`postmortem submit` repeats the API's preflight on the user's machine: same order."""
    ft = Followthrough.create(
        tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing listens: nothing reaches Temporal
        database_url=None,
        task_queue="outbound-test",
    )
    ft.env["FOLLOWTHROUGH_POLICY"] = str(loopback_policy_file(tmp_path))  # loopback is allowed
    now = datetime.now(UTC)
    pm = opened(parse_incident(incident_data(now), load_policy()), load_policy(), now)  # alice's
    url = f"sqlite:///{tmp_path / 'data' / 'followthrough.db'}"
    (tmp_path / "data").mkdir()
    upgrade(url)
    store = Store(url)
    opening = AuditEvent(
        workflow_id=pm.id,
        postmortem_id=pm.id,
        seq=1,
        at=now,
        actor="system",
        action="postmortem.opened",
        detail="opened",
    )
    store.records.record_postmortem(PostmortemChange(postmortem=pm, event=opening))
    store.close()
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(drafted(now, prometheus_at(health.url))))

    refused = ft.cli("postmortem", "submit", pm.id, str(draft), "--as", "bob", check=False)
    assert health.requests == 0  # before this fix the preflight asked it, then Temporal refused
    assert refused.returncode == 1
    assert "only the postmortem owner (alice) can submit its draft" in refused.stderr
