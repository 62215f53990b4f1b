"""Slack's button clicks: `POST /slack/interactions`, as Slack's interactivity Request URL.

Before the body is parsed: at most SLACK_BODY_BYTES of it, signed with the app's signing secret
over `v0:{timestamp}:{body}` (X-Slack-Signature), the timestamp within five minutes of now
(X-Slack-Request-Timestamp), and a signature never seen before (a replay within the window finds
it in webhook_deliveries and changes nothing). Then the clicking Slack user must be a person of
the directory (policy `people:`, else their Slack profile's email), and the message one that
Followthrough posted, which names the postmortem or item the button acts on. The action is the
browser's: followthrough/actions.py, as that person, refused as it would be there.

Slack wants an answer within 3 s: a click is answered at once and acted on in the background,
the message then updated to say what was done (chat.update), or the clicker alone told why not
(chat.postEphemeral). A button that needs words (the evidence of a done claim, why an extension
is denied or a claim rejected, what a draft must change, the new due date and why) opens a modal
first; its submission is judged before the modal closes, each field as the dashboard's form
judges it (api/forms.py, domain/bounds.py), a refusal shown under the field it is about.

The signatures seen are kept only as long as a replay could still pass the timestamp check: each
interaction forgets, a bounded batch at a time, those older than REPLAYS_KEPT.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.signature import Clock, SignatureVerifier

from followthrough.actions import ActionRefused, Actions
from followthrough.api.drafting import changes_reason, drafts
from followthrough.api.forms import FormRefused, day_of
from followthrough.api.services import Services, Using
from followthrough.domain.bounds import update_problems
from followthrough.domain.postmortem import (
    Acknowledgement,
    Approval,
    ChangeRequest,
    DoneClaim,
    ExtensionDecision,
    ExtensionRequest,
    Rejection,
    Verification,
)
from followthrough.domain.problems import RefusalKind
from followthrough.integrations.slack import SlackApi, SlackRefused, SlackUnavailable
from followthrough.logging import get_logger
from followthrough.notices.slack_blocks import (
    ACTION_PREFIX,
    LOOKS,
    SlackAction,
    action_of,
    escape,
    outcome_blocks,
)
from followthrough.storage.deliveries import DeliveryStore
from followthrough.storage.slack import SlackMessage

router = APIRouter(tags=["slack"])
log = get_logger(__name__)

SLACK_BODY_BYTES = 128 * 1024  # a click carries the message it was on: ours are a few KiB
TEXT_BLOCK = "followthrough-text"  # a modal's text field: block_id (its action_id is "text")
DATE_BLOCK = "followthrough-until"  # a modal's date picker: block_id (its action_id is "until")
TEXT_LIMIT = 3000  # Slack's most for a plain_text_input; the action's own bound is below it
# A signature is valid while its timestamp is within five minutes of our clock, either side, so a
# replay can pass the check until ten minutes after the first copy arrived; then a margin.
REPLAYS_KEPT = timedelta(minutes=15)
FORGET_BATCH = 500
ANSWER_SECONDS = 2.5  # Slack gives up on an answer after 3 s

_background: set[asyncio.Future[Any]] = set()


# --- what Slack sends (only the parts we read; each bounded) ---------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlackUser(_Lenient):
    id: str = Field(min_length=1, max_length=32)


class Container(_Lenient):
    channel_id: str | None = Field(default=None, max_length=100)
    message_ts: str | None = Field(default=None, max_length=32)


class Clicked(_Lenient):
    action_id: str = Field(max_length=255)


class ClickedMessage(_Lenient):
    blocks: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class BlockActions(_Lenient):
    type: Literal["block_actions"]
    user: SlackUser
    trigger_id: str = Field(default="", max_length=255)
    container: Container = Field(default_factory=Container)
    actions: list[Clicked] = Field(min_length=1, max_length=25)
    message: ClickedMessage = Field(default_factory=ClickedMessage)


class InputValue(_Lenient):
    # Bounded by the body here; the action's own bounds judge them by name, as in the browser.
    value: str | None = Field(default=None, max_length=SLACK_BODY_BYTES)  # plain_text_input
    selected_date: str | None = Field(default=None, max_length=SLACK_BODY_BYTES)  # datepicker


class ViewState(_Lenient):
    values: dict[str, dict[str, InputValue]] = Field(default_factory=dict, max_length=10)


class View(_Lenient):
    callback_id: str = Field(max_length=255)
    private_metadata: str = Field(default="", max_length=3000)
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmission(_Lenient):
    type: Literal["view_submission"]
    user: SlackUser
    view: View


class Origin(BaseModel):
    """Where a modal came from: the message whose button opened it."""

    channel: str = Field(max_length=100)
    ts: str = Field(max_length=32)


# --- the endpoint ----------------------------------------------------------------------------


class _ServiceClock(Clock):
    def __init__(self, using: Services) -> None:
        self.using = using

    def now(self) -> float:
        return self.using.clock().timestamp()


@router.post(
    "/slack/interactions",
    responses={
        401: {"description": "not signed by Slack with our signing secret, or not recently"},
        404: {"description": "Slack is not configured"},
        413: {"description": f"over {SLACK_BODY_BYTES} bytes"},
    },
)
async def interactions(request: Request, using: Using) -> Response:
    config = using.settings.slack_config()
    secret = config.signing_secret if config else None
    if config is None or not secret:
        return _refuse(status.HTTP_404_NOT_FOUND, "Slack is not configured")
    body = await _body(request)
    if body is None:
        return _refuse(status.HTTP_413_CONTENT_TOO_LARGE, f"over {SLACK_BODY_BYTES} bytes")
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not _authentic(SignatureVerifier(secret, _ServiceClock(using)), body, timestamp, signature):
        log.warning("slack interaction refused: bad signature or stale timestamp")
        return _refuse(status.HTTP_401_UNAUTHORIZED, "not signed by Slack, or not recently")
    fresh = await asyncio.to_thread(_remember, using.store.deliveries, signature, using.clock())
    if not fresh:
        log.warning("slack interaction replayed: ignored")
        return Response(status_code=status.HTTP_200_OK)
    payload = _payload(body)
    slack = SlackApi(config)
    try:
        if payload.get("type") == "block_actions":
            return await _clicked(BlockActions.model_validate(payload), using, slack)
        if payload.get("type") == "view_submission":
            return await _submitted(ViewSubmission.model_validate(payload), using, slack)
    except ValidationError as err:
        log.warning("slack interaction not understood", problems=err.error_count())
        return _refuse(status.HTTP_400_BAD_REQUEST, "not an interaction Followthrough sent")
    return Response(status_code=status.HTTP_200_OK)  # other interactions: nothing to do


async def _body(request: Request) -> bytes | None:
    """The raw body, or None past SLACK_BODY_BYTES (read no further)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > SLACK_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > SLACK_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _remember(deliveries: DeliveryStore, signature: str, now: datetime) -> bool:
    """Record the signature (False: seen before), forgetting those no replay can still use."""
    deliveries.forget("slack", before=now - REPLAYS_KEPT, limit=FORGET_BATCH)
    return deliveries.record("slack", signature, now, "received", None)


def _authentic(verifier: SignatureVerifier, body: bytes, timestamp: str, signature: str) -> bool:
    if not timestamp.isdigit() or len(timestamp) > 12 or not signature.startswith("v0="):
        return False
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (UnicodeDecodeError, ValueError):
        return False


def _payload(body: bytes) -> dict[str, Any]:
    """Slack's form-encoded `payload=` JSON; {} when it is not that."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=5)
        parsed = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _refuse(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


# --- a click ---------------------------------------------------------------------------------


async def _clicked(click: BlockActions, using: Services, slack: SlackApi) -> Response:
    action = action_of(click.actions[0].action_id)
    channel, ts = click.container.channel_id, click.container.message_ts
    if action is None or channel is None or ts is None:
        return Response(status_code=status.HTTP_200_OK)  # not one of our buttons
    person = await _person(using, slack, click.user.id)
    posted = await asyncio.to_thread(using.store.slack.at, channel, ts)
    problem = _who_and_what(person, posted)
    if problem is not None or person is None or posted is None:
        _later(_tell(slack, channel, click.user.id, problem or "nothing was done"))
        return Response(status_code=status.HTTP_200_OK)
    if LOOKS[action].asks is not None:
        _later(_open_modal(using, slack, action, posted, click.trigger_id))
        return Response(status_code=status.HTTP_200_OK)
    _later(
        _act_and_show(using, slack, action, posted, person, click.user.id, Typed(), click.message)
    )
    return Response(status_code=status.HTTP_200_OK)


async def _submitted(submission: ViewSubmission, using: Services, slack: SlackApi) -> Response:
    action = action_of(submission.view.callback_id)
    try:
        origin = Origin.model_validate_json(submission.view.private_metadata)
    except ValidationError:
        origin = None
    if action is None or origin is None:
        return Response(status_code=status.HTTP_200_OK)
    person = await _person(using, slack, submission.user.id)
    posted = await asyncio.to_thread(using.store.slack.at, origin.channel, origin.ts)
    problem = _who_and_what(person, posted)
    if problem is not None or person is None or posted is None:
        return _modal_errors({TEXT_BLOCK: problem or "nothing was done"})
    values = submission.view.state.values
    typed = Typed(text=_typed(values, TEXT_BLOCK, "text").value or "")
    if LOOKS[action].asks_date is not None:
        try:  # read as the dashboard's form reads it: refused by name, nothing sent
            typed.until = day_of("until", _typed(values, DATE_BLOCK, "until").selected_date or "")
        except FormRefused as refused:
            return _modal_errors({DATE_BLOCK: str(refused)})
    try:
        asked = await _asked(using, action, posted, person, typed)
    except ActionRefused as refused:
        return _modal_errors({TEXT_BLOCK: str(refused)})
    if problems := update_problems(asked.argument):  # the limits, each under its own field
        return _modal_errors(_under_fields(action, problems))
    work = asyncio.ensure_future(
        _act_and_show(using, slack, action, posted, person, submission.user.id, typed, None, True)
    )
    try:
        refusal = await asyncio.wait_for(asyncio.shield(work), ANSWER_SECONDS)
    except TimeoutError:  # still running: it tells the clicker itself when it ends
        _background.add(work)
        work.add_done_callback(_background.discard)
        return Response(status_code=status.HTTP_200_OK)
    if refusal is None:
        return Response(status_code=status.HTTP_200_OK)
    return _modal_errors(_under_fields(action, [refusal]))


def _typed(values: dict[str, dict[str, InputValue]], block: str, action_id: str) -> InputValue:
    return values.get(block, {}).get(action_id) or InputValue()


def _under_fields(action: SlackAction, problems: list[str]) -> dict[str, str]:
    """Each problem under the field it is about: the date's under the date picker (they name
    `until` or the due date), the others under the text."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        about_date = problem.startswith("until") or "due date" in problem
        block = DATE_BLOCK if LOOKS[action].asks_date and about_date else TEXT_BLOCK
        errors.setdefault(block, []).append(problem)
    return {block: "; ".join(said) for block, said in errors.items()}


def _modal_errors(errors: dict[str, str]) -> JSONResponse:
    """Slack shows each under the input block it names, and keeps the modal open."""
    shown = {block: message[:2000] for block, message in errors.items()}
    return JSONResponse({"response_action": "errors", "errors": shown})


def _who_and_what(person: str | None, posted: SlackMessage | None) -> str | None:
    if person is None:
        return (
            "Nothing was done: your Slack account is not in Followthrough's directory "
            "(policy `people:`), so Followthrough does not know who you are."
        )
    if posted is None:
        return "Nothing was done: this is not a message Followthrough knows."
    return None


async def _person(using: Services, slack: SlackApi, user_id: str) -> str | None:
    """The directory's person with this Slack id, else the one whose email Slack has for it."""
    policy = using.policy
    for person in sorted(policy.people):
        if policy.slack_id_of(person) == user_id:
            return person
    try:
        email = await asyncio.to_thread(slack.email_of, user_id)
    except (SlackRefused, SlackUnavailable) as err:
        log.warning("slack user not looked up", slack_user=user_id, error=str(err))
        return None
    if email is None:
        return None
    matches = [p for p in sorted(policy.people) if policy.email_of(p).lower() == email.lower()]
    return matches[0] if len(matches) == 1 else None


async def _open_modal(
    using: Services, slack: SlackApi, action: SlackAction, posted: SlackMessage, trigger_id: str
) -> None:
    """views.open with the button's fields; a date picker says the item's current due date."""
    due = None
    if LOOKS[action].asks_date is not None and posted.action_item_id is not None:
        item = await asyncio.to_thread(using.store.records.action_item, posted.action_item_id)
        due = item.due if item is not None else None
    assert posted.channel is not None and posted.ts is not None
    view = _modal(action, Origin(channel=posted.channel, ts=posted.ts), due)
    await asyncio.to_thread(_quietly, slack.open_view, trigger_id, view)


def _modal(action: SlackAction, origin: Origin, due: date | None = None) -> dict[str, Any]:
    look = LOOKS[action]
    blocks: list[dict[str, Any]] = []
    if look.asks_date is not None:
        label = f"{look.asks_date} (now {due.isoformat()})" if due else look.asks_date
        picker: dict[str, Any] = {"type": "datepicker", "action_id": "until"}
        if due is not None:
            picker["initial_date"] = due.isoformat()
        blocks.append(
            {
                "type": "input",
                "block_id": DATE_BLOCK,
                "label": {"type": "plain_text", "text": label[:2000]},
                "element": picker,
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": TEXT_BLOCK,
            "label": {"type": "plain_text", "text": (look.asks or "")[:2000]},
            "element": {
                "type": "plain_text_input",
                "action_id": "text",
                "multiline": True,
                "max_length": TEXT_LIMIT,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": f"{ACTION_PREFIX}{action.value}",
        "private_metadata": origin.model_dump_json(),
        "title": {"type": "plain_text", "text": look.label[:24]},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


# --- the action, as in the browser ------------------------------------------------------------


@dataclass
class Typed:
    """What the person typed (or picked) in the button's modal, if it has one."""

    text: str = ""
    until: date | None = None


@dataclass(frozen=True)
class Asked:
    """An action of followthrough/actions.py, on what the message is about, with its argument."""

    send: Callable[[str, Any], Awaitable[Any]]
    target: str  # the postmortem's or the item's id
    argument: BaseModel

    def __call__(self) -> Awaitable[Any]:
        return self.send(self.target, self.argument)


async def _asked(
    using: Services, action: SlackAction, posted: SlackMessage, person: str, typed: Typed
) -> Asked:
    actions: Actions = using.actions
    item, pm, text = posted.action_item_id, posted.postmortem_id, typed.text
    if action is SlackAction.APPROVE:
        return Asked(actions.approve, pm, Approval(by=person, comment=text))
    if action is SlackAction.REQUEST_CHANGES:
        return Asked(actions.request_changes, pm, await _change_request(using, pm, person, text))
    if item is None:
        raise ActionRefused("this message is not about an action item", RefusalKind.INVALID)
    if action is SlackAction.ACKNOWLEDGE:
        return Asked(actions.acknowledge, item, Acknowledgement(by=person))
    if action is SlackAction.CLAIM_DONE:
        return Asked(actions.claim_done, item, DoneClaim(by=person, evidence=text))
    if action is SlackAction.VERIFY:
        return Asked(actions.verify, item, Verification(by=person, note=text))
    if action is SlackAction.REJECT:
        return Asked(actions.reject, item, Rejection(by=person, reason=text))
    if action is SlackAction.REQUEST_EXTENSION:
        if typed.until is None:
            raise ActionRefused("until: a date is required (YYYY-MM-DD)", RefusalKind.INVALID)
        asked = ExtensionRequest(by=person, until=typed.until, reason=text)
        return Asked(actions.request_extension, item, asked)
    approve = action is SlackAction.APPROVE_EXTENSION
    decision = ExtensionDecision(by=person, approve=approve, reason=text)
    return Asked(actions.decide_extension, item, decision)


async def _change_request(using: Services, pm_id: str, person: str, reason: str) -> ChangeRequest:
    """As the review page sends it: the reviewer's words, then the comments on this version."""
    if not using.policy.may_review(person):  # before anything is read, as on the review page
        raise ActionRefused(f"{person} is not a reviewer in the policy", RefusalKind.FORBIDDEN)
    pm = await asyncio.to_thread(using.store.records.postmortem, pm_id)
    if pm is None:
        return ChangeRequest(by=person, reason=reason)
    comments = await asyncio.to_thread(drafts(using).comments, pm.id)
    return ChangeRequest(by=person, reason=changes_reason(reason, comments, pm.draft_version))


async def _act_and_show(
    using: Services,
    slack: SlackApi,
    action: SlackAction,
    posted: SlackMessage,
    person: str,
    user_id: str,
    typed: Typed,
    message: ClickedMessage | None,
    in_modal: bool = False,
) -> str | None:
    """Do it as `person`; show the outcome on the message, or tell the clicker why not (the
    refusal is returned too, for a modal to show)."""
    assert posted.channel is not None and posted.ts is not None
    bound = log.bind(action=action.value, person=person, postmortem_id=posted.postmortem_id)
    try:
        await (await _asked(using, action, posted, person, typed))()
    except ActionRefused as refused:
        bound.info("slack action refused", reason=str(refused))
        if not in_modal:
            await _tell(slack, posted.channel, user_id, f"Nothing was done: {refused}")
        return str(refused)
    except Exception as err:  # Temporal unavailable, ...: nothing was done, say so
        bound.error("slack action failed", error=repr(err))
        reason = "Followthrough could not do it just now; nothing was done. Try again shortly."
        await _tell(slack, posted.channel, user_id, reason)
        return reason
    bound.info("slack action done")
    done = f"{LOOKS[action].label}: done by {person} at {_now()}"
    if message is not None and message.blocks:  # the buttons give way to what was done
        blocks = outcome_blocks(message.blocks, done)
        await asyncio.to_thread(
            _quietly, slack.update, posted.channel, posted.ts, text=escape(done), blocks=blocks
        )
    else:  # from a modal, which does not carry the message: said in its thread
        await asyncio.to_thread(_quietly, slack.reply, posted.channel, posted.ts, escape(done))
    return None


async def _tell(slack: SlackApi, channel: str, user_id: str, text: str) -> None:
    await asyncio.to_thread(_quietly, slack.tell, channel, user_id, text)


def _quietly(call: Any, *args: Any, **kwargs: Any) -> None:
    """A Slack call whose failure only costs its own message."""
    try:
        call(*args, **kwargs)
    except (SlackRefused, SlackUnavailable) as err:
        log.warning("slack call failed", error=str(err))


def _later(work: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
