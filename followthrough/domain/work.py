"""What is waiting on one person ("my work", the dashboard's landing page), and how far each
postmortem's follow-ups have got (the postmortems list).

Pure: the storage reads the candidates (storage/work.py, indexed columns, bounded), and whether
each is this person's to act on is asked of domain/offers.py, the workflows' own rules.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from followthrough.domain.offers import (
    ItemAction,
    PostmortemAction,
    item_offers,
    postmortem_offers,
)
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, Postmortem

# Each list shows at most this many; the page says when there are more to see elsewhere.
WORK_LIST_MOST = 50


class Candidates(BaseModel):
    """What might be this person's: the storage's bounded, indexed reads."""

    drafts: list[Postmortem]  # drafting or changes requested, owned by the person
    optional: list[Postmortem]  # optional, of the person's teams
    in_review: list[Postmortem]
    owned_items: list[ActionItem]  # unresolved, owned by the person
    claimed: list[ActionItem]  # claimed done
    asking: list[ActionItem]  # unresolved, with an extension request recorded


class MyWork(BaseModel):
    model_config = ConfigDict(frozen=True)

    person: str
    drafts: list[Postmortem]
    opt_ins: list[Postmortem]  # optional postmortems of the person's teams they may opt in to
    more_opt_ins: list[str]  # the teams with more of those than the list shows
    reviews: list[Postmortem]
    items_due: list[ActionItem]  # soonest due first
    claims_to_verify: list[ActionItem]
    decisions: list[ActionItem]  # extension requests this person may decide
    today: date

    @property
    def empty(self) -> bool:
        return not (
            self.drafts
            or self.opt_ins
            or self.reviews
            or self.items_due
            or self.claims_to_verify
            or self.decisions
        )


def my_work(person: str, found: Candidates, policy: Policy, today: date) -> MyWork:
    def offered(pms: list[Postmortem], *actions: PostmortemAction) -> list[Postmortem]:
        wanted = set(actions)
        return [pm for pm in pms if wanted & postmortem_offers(pm, person, policy)]

    def pms(pms: list[Postmortem], *actions: PostmortemAction) -> list[Postmortem]:
        return offered(pms, *actions)[:WORK_LIST_MOST]

    def items(items: list[ActionItem], action: ItemAction) -> list[ActionItem]:
        mine = [item for item in items if action in item_offers(item, person, policy)]
        return sorted(mine, key=lambda item: (item.due, item.id))[:WORK_LIST_MOST]

    opt_ins = offered(found.optional, PostmortemAction.OPT_IN)
    shown = opt_ins[:WORK_LIST_MOST]
    # The postmortems list, filtered to a team's optional ones, shows the rest.
    more = sorted({pm.team for pm in opt_ins[WORK_LIST_MOST:] if pm.team})
    return MyWork(
        person=person,
        drafts=pms(found.drafts, PostmortemAction.WRITE_DRAFT),
        opt_ins=shown,
        more_opt_ins=more,
        reviews=pms(found.in_review, PostmortemAction.APPROVE, PostmortemAction.REQUEST_CHANGES),
        items_due=sorted(
            (item for item in found.owned_items if item.owner == person),
            key=lambda item: (item.due, item.id),
        )[:WORK_LIST_MOST],
        claims_to_verify=items(found.claimed, ItemAction.VERIFY),
        decisions=items(found.asking, ItemAction.DECIDE_EXTENSION),
        today=today,
    )


class Progress(BaseModel):
    """A postmortem's follow-ups: how many are done, and how late it runs."""

    model_config = ConfigDict(frozen=True)

    owner: str = ""
    items: int = 0
    verified: int = 0  # verified or their risk accepted: nothing left to do
    overdue: int = 0  # open items past their due date
    draft_late_days: int = 0  # a draft still unwritten past its due time, in days

    @property
    def done(self) -> str:
        return f"{self.verified}/{self.items} verified" if self.items else "no items yet"

    @property
    def lateness(self) -> str:
        said = []
        if self.draft_late_days:
            days = self.draft_late_days
            said.append(f"draft {days} day{'s' if days != 1 else ''} late")
        if self.overdue:
            said.append(f"{self.overdue} item{'s' if self.overdue != 1 else ''} overdue")
        return ", ".join(said)


def draft_lateness(state: str, draft_due: datetime, now: datetime) -> int:
    """Whole days a draft still being written is past its due time."""
    if state not in ("drafting", "changes_requested") or now <= draft_due:
        return 0
    return max(1, (now - draft_due).days)
