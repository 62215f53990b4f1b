"""The council decision's activities: record the decision as it stands, and ask whether a
pause's or a freeze's lift condition holds (Prometheus for a budget, the record for items)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities import CHECK_LIFT, RECORD_DECISION
from activities.records import refused_for_good
from followthrough.checks import CheckConfig
from followthrough.domain.decisions import Decision, LiftAnswer, LiftCheck, LiftKind
from followthrough.integrations.slo_measurement import MeasurementFailed, measure_budget_remaining
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)

MEASUREMENT_TIMEOUT = 10.0  # seconds per PromQL query


class DecisionActivities:
    def __init__(self, store: Store, config: CheckConfig) -> None:
        self.store = store
        self.prometheus_url = config.prometheus_url

    @activity.defn(name=RECORD_DECISION)
    def record_decision(self, decision: Decision) -> None:
        """An upsert of the snapshot: a retried or replayed write changes nothing more."""
        with refused_for_good():
            self.store.decisions.save(decision)
        log.info("decision recorded", decision_id=decision.id, state=decision.state.value)

    @activity.defn(name=CHECK_LIFT)
    async def check_lift(self, check: LiftCheck) -> LiftAnswer:
        """Whether the condition holds at the workflow's time. What cannot be measured is an
        answer too (not holding, and why): the freeze stays and the next check asks again."""
        condition = check.condition
        if condition.kind is LiftKind.DATE:
            assert condition.on is not None
            holds = check.at >= condition.on
            answer = LiftAnswer(holds=holds, evidence=f"it is {check.at:%Y-%m-%d %H:%M} UTC")
        elif condition.kind is LiftKind.ITEMS_VERIFIED:
            answer = await asyncio.to_thread(self._items, condition.item_ids)
        else:
            answer = await self._budget(condition.slo_id or "", condition.level or 1.0, check)
        log.info(
            "lift condition checked",
            decision_id=check.decision_id,
            holds=answer.holds,
            evidence=answer.evidence,
        )
        return answer

    def _items(self, item_ids: list[str]) -> LiftAnswer:
        open_ones = []
        for item_id in item_ids:
            item = self.store.records.action_item(item_id)
            if item is None or not item.resolved:
                open_ones.append(f"{item_id} ({item.state.value if item else 'not recorded'})")
        if open_ones:
            return LiftAnswer(holds=False, evidence="not yet verified: " + ", ".join(open_ones))
        return LiftAnswer(holds=True, evidence="every named action item is verified")

    async def _budget(self, slo_id: str, level: float, check: LiftCheck) -> LiftAnswer:
        slos = {s.id: s for s in await asyncio.to_thread(self.store.slos.all)}
        slo = slos.get(slo_id)
        if slo is None:
            return LiftAnswer(holds=False, evidence=f"there is no SLO '{slo_id}' to measure")
        if not self.prometheus_url:
            return LiftAnswer(
                holds=False, evidence="no Prometheus to ask (set FOLLOWTHROUGH_PROMETHEUS_URL)"
            )
        try:
            remaining = await measure_budget_remaining(
                slo, self.prometheus_url, check.at, timeout=MEASUREMENT_TIMEOUT
            )
        except (MeasurementFailed, ValueError) as err:
            return LiftAnswer(holds=False, evidence=f"{slo_id} could not be measured: {err}")
        side = "above" if remaining > level else "not above"
        return LiftAnswer(
            holds=remaining > level,
            evidence=f"{slo_id}: budget remaining {remaining:.1%} ({side} {level:.0%})",
        )
