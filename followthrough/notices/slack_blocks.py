"""A notice as a Slack Block Kit message: its words (templates/slack.mrkdwn.j2) and its buttons.

Which buttons a kind of notice carries is BUTTONS, one line per kind; a kind not listed is sent
as its words and a link to the dashboard. A button's action_id names the action
(`followthrough:verify`); what it acts on is the notice the message was posted for, which the
interaction endpoint finds again by the message's channel and ts. Whoever clicks is judged as in
the browser: a button is an offer, never a permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from followthrough.domain.notice import Notice, NoticeKind, OutboxMessage
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.notices.render import Links, one_line, subject_of

ACTION_PREFIX = "followthrough:"
TEXT_LIMIT = 2900  # a section's text may hold 3,000 characters


class SlackAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CLAIM_DONE = "claim_done"  # asks for the evidence first (a modal)
    VERIFY = "verify"
    APPROVE = "approve"  # the postmortem's draft
    APPROVE_EXTENSION = "approve_extension"
    DENY_EXTENSION = "deny_extension"  # asks for the reason first (a modal)
    REJECT = "reject"  # a done claim: asks why the criterion is not met (a modal)
    REQUEST_CHANGES = "request_changes"  # the draft: asks what must change (a modal)
    REQUEST_EXTENSION = "request_extension"  # asks the new due date and why (a modal)


@dataclass(frozen=True)
class Button:
    label: str
    style: str | None = None  # "primary" (green) or "danger" (red)
    asks: str | None = None  # the text it needs first, in a modal: its label
    asks_date: str | None = None  # and a date, above the text in the same modal: its label


LOOKS = {
    SlackAction.ACKNOWLEDGE: Button("Acknowledge", "primary"),
    SlackAction.CLAIM_DONE: Button("Claim done", asks="Evidence: the change, dashboard or test"),
    SlackAction.VERIFY: Button("Verify", "primary"),
    SlackAction.APPROVE: Button("Approve", "primary"),
    SlackAction.APPROVE_EXTENSION: Button("Approve extension", "primary"),
    SlackAction.DENY_EXTENSION: Button("Deny extension", "danger", asks="Why it is denied"),
    SlackAction.REJECT: Button("Reject", "danger", asks="Why the criterion is not met"),
    SlackAction.REQUEST_CHANGES: Button("Request changes", asks="What needs to change, and why"),
    SlackAction.REQUEST_EXTENSION: Button(
        "Ask for more time", asks="Why more time is needed", asks_date="New due date"
    ),
}

# The buttons each kind of notice carries. Keyed by the kind's value, so a kind yet to come
# (the hand-off notices) is one line here.
# The owner's: the item is theirs (assigned, handed over, a reminder) or its check failed.
_OWNERS = (SlackAction.ACKNOWLEDGE, SlackAction.CLAIM_DONE, SlackAction.REQUEST_EXTENSION)
BUTTONS: dict[str, tuple[SlackAction, ...]] = {
    NoticeKind.ITEM_STEP: _OWNERS,
    NoticeKind.REASSIGNED: _OWNERS,
    NoticeKind.CHECK_FAILED: (SlackAction.CLAIM_DONE, SlackAction.REQUEST_EXTENSION),
    NoticeKind.EXTENSION_REQUESTED: (SlackAction.APPROVE_EXTENSION, SlackAction.DENY_EXTENSION),
    NoticeKind.ITEM_ASSIGNED: _OWNERS,
    NoticeKind.DONE_CLAIMED: (SlackAction.VERIFY, SlackAction.REJECT),
    NoticeKind.DRAFT_SUBMITTED: (SlackAction.APPROVE, SlackAction.REQUEST_CHANGES),
}

# Actions only an item's owner may take: a DM to anyone else does not offer them.
OWNERS_ACTIONS = frozenset(_OWNERS)
# Actions on the postmortem, not on an item: offered whatever became of the item.
POSTMORTEM_ACTIONS = frozenset({SlackAction.APPROVE, SlackAction.REQUEST_CHANGES})


class Mrkdwn(str):
    """Text already in Slack's mrkdwn (a link): not escaped again."""


def escape(text: object) -> str:
    """Slack's three control characters, as its docs ask; everything else is shown as it is."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _finalize(value: object) -> str:
    return value if isinstance(value, Mrkdwn) else escape(value)


def _link(url: str, label: str) -> Mrkdwn:
    # '|' ends the URL part of a link; a URL never holds one unencoded, a label may.
    return Mrkdwn(f"<{escape(url).replace('|', '%7C')}|{escape(label)}>")


_environment = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    undefined=StrictUndefined,
    finalize=_finalize,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_environment.filters["link"] = _link


@dataclass(frozen=True)
class SlackPost:
    text: str  # the notification's text (and what clients without blocks show)
    blocks: list[dict[str, Any]]


def buttons_for(notice: Notice, item: ActionItem | None, person: str | None) -> list[SlackAction]:
    """The kind's buttons; in a DM (`person`), without the owner's actions for anyone else."""
    offered = BUTTONS.get(notice.kind.value, ())
    if item is None or item.resolved:
        offered = tuple(a for a in offered if a in POSTMORTEM_ACTIONS)
    if person is not None and item is not None and person != item.owner:
        offered = tuple(a for a in offered if a not in OWNERS_ACTIONS)
    return list(offered)


def slack_message(
    notice: Notice,
    pm: Postmortem,
    item: ActionItem | None,
    links: Links,
    person: str | None,
) -> SlackPost:
    """The message for one DM (`person`) or a team's channel (None)."""
    subject = one_line(subject_of(notice, pm, item))
    page = links.where_to_act(notice)
    text = _environment.get_template("slack.mrkdwn.j2").render(
        notice=notice, pm=pm, incident=pm.incident, item=item, subject=subject, page=page
    )
    text = text.strip()
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
    ]
    actions = buttons_for(notice, item, person)
    if actions:
        blocks.append(
            {
                "type": "actions",
                "block_id": "followthrough-actions",
                "elements": [_button(action, item.id if item else pm.id) for action in actions],
            }
        )
    return SlackPost(text=escape(subject), blocks=blocks)


def _button(action: SlackAction, target: str) -> dict[str, Any]:
    look = LOOKS[action]
    button: dict[str, Any] = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{action.value}",
        "text": {"type": "plain_text", "text": look.label},
        "value": target[:2000],
    }
    if look.style:
        button["style"] = look.style
    return button


def outcome_blocks(message: list[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    """The message as it was, its buttons replaced by what came of the click."""
    kept = [block for block in message if block.get("type") != "actions"][:48]
    return [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(outcome)}]}]


def action_of(action_id: str) -> SlackAction | None:
    """The action a button's action_id names, if it is one of ours."""
    if not action_id.startswith(ACTION_PREFIX):
        return None
    try:
        return SlackAction(action_id.removeprefix(ACTION_PREFIX))
    except ValueError:
        return None


DIGEST_SECTIONS = 45  # of Slack's 50 blocks a message may hold


def digest_message(person: str, day: date, held: list[OutboxMessage], links: Links) -> SlackPost:
    """A person's held notices of the day in one DM: a line each, linked to its page.

    No buttons: by the time the digest is read a notice may be out of date; its page offers
    what may still be done, to whoever may do it."""
    count = f"{len(held)} notice{'' if len(held) == 1 else 's'}"
    subject = f"Your Followthrough digest for {day.isoformat()}: {count}"
    lines = [_digest_line(message, links) for message in held]
    sections: list[str] = []
    for line in lines:
        if sections and len(sections[-1]) + 1 + len(line) <= TEXT_LIMIT:
            sections[-1] += "\n" + line
        else:
            sections.append(line[:TEXT_LIMIT])
    if len(sections) > DIGEST_SECTIONS:
        sections = [*sections[: DIGEST_SECTIONS - 1], "…and more: see the email digest"]
    intro = (
        f"*{escape(subject)}*\nHi {escape(person)}, you chose a daily digest for notices that "
        "are not urgent; here is what landed on you. Escalations still come at once."
    )
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": intro}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
    return SlackPost(text=escape(subject), blocks=blocks)


def _digest_line(message: OutboxMessage, links: Links) -> str:
    subject = one_line(message.subject)
    page = links.postmortem(message.postmortem_id)
    return f"• {_link(page, subject) if page else escape(subject)}"
