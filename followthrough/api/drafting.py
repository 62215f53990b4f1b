"""Writing and reviewing a postmortem in the browser: the draft editor and the review page.

    GET  /postmortems/{id}/draft          the editor, with what submitting would refuse now
    POST /postmortems/{id}/draft          save (a form post, or the page's autosave asking for
                                          JSON), or save and submit (intent=submit)
    GET  /postmortems/{id}/draft.yaml     the saved draft as YAML, for `postmortem submit`
    GET  /postmortems/{id}/review         each proposed item whole, what changed since this
                                          reviewer last looked, comments per section
    POST /postmortems/{id}/review/comment, /review/request-changes

Saves are versioned on the server (storage/drafting.py): a save names the version it was based on
and a stale one is refused (409) with what changed, never written over. What submitting would
refuse is draft_problems, the rules the workflow's submit update applies; submitting sends the
saved draft through the same action as the API and the CLI. Who may save is decided from the
cookie and the record before the body is read: the draft's submitter (submitter_refusal).
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any, get_args

import yaml
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from followthrough.api.dashboard import SignedIn, Viewer, _back, local_times, render_page
from followthrough.api.edge import CONTENT_SECURITY_POLICY
from followthrough.api.people import STATUS_OF_REFUSAL, answer, postmortem_id_of
from followthrough.api.services import Services, Using
from followthrough.domain.bounds import Bounds
from followthrough.domain.draft import (
    Draft,
    InvalidDraft,
    TimelineKind,
    communication_answers,
    communication_review,
    draft_bounds,
    draft_problems,
)
from followthrough.domain.draft_form import (
    CRITERION_FIELDS,
    CRITERION_KINDS,
    FORM_FIELDS,
    PROPOSALS_SHOWN,
    SECTIONS,
    draft_changes,
    draft_from_form,
    dropped_proposals,
    form_rows,
    fresh_draft,
    timeline_row,
)
from followthrough.domain.limits import NOTE_CHARS
from followthrough.domain.postmortem import (
    ChangeRequest,
    DraftSubmission,
    Postmortem,
    PostmortemState,
    submitter_refusal,
)
from followthrough.domain.timeline import SourceReport, proposals
from followthrough.storage.drafting import (
    Comment,
    DraftStore,
    SavedDraft,
    Seen,
    StaleDraft,
    TooManyComments,
)

router = APIRouter(include_in_schema=False)
_SCRIPT = (Path(__file__).resolve().parent / "static" / "draft-editor.js").read_text()
# The editor's one script is ours, and it talks only to this server.
EDITOR_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY + "; script-src 'self'; connect-src 'self'"
TIMELINE_KINDS: tuple[str, ...] = get_args(TimelineKind)


def drafts(using: Services) -> DraftStore:
    return DraftStore(using.store.db)


async def _postmortem(using: Services, reference: str, person: str) -> Postmortem:
    pm_id = await postmortem_id_of(using, reference, person)
    pm = await asyncio.to_thread(using.store.records.postmortem, pm_id)
    assert pm is not None  # postmortem_id_of found it
    return pm


def _writer_refusal(using: Services, pm: Postmortem, who: Viewer) -> HTTPException | None:
    """Only whoever may submit the draft may save it: the domain's own rule."""
    refused = submitter_refusal(pm, who.person, using.policy)
    if refused is None:
        return None
    return HTTPException(STATUS_OF_REFUSAL[refused.kind], str(refused))


async def current_draft(using: Services, pm: Postmortem) -> tuple[Draft, int]:
    """The draft to edit and the saved version it is: the latest save, unless a draft was
    submitted after it (from the CLI or the API); a new one starts from the incident and the
    policy's templates."""
    saved = await asyncio.to_thread(drafts(using).latest, pm.id)
    version = saved.version if saved else 0
    if saved and saved.submitted_version >= pm.draft_version:
        return Draft.model_validate(saved.draft), version
    if pm.draft is not None:
        return pm.draft, version
    return fresh_draft(pm.incident, using.policy), version


def _today(using: Services) -> Any:
    return using.policy.calendar.local_date(using.clock())


def live_problems(using: Services, pm: Postmortem, draft: Draft) -> list[str]:
    """What submitting would refuse: the workflow's own rules, nothing else."""
    return draft_problems(draft, pm.incident, using.policy, today=_today(using))


# --- the editor ----------------------------------------------------------------------------------


@router.get("/assets/draft-editor.js")
async def editor_script() -> Response:
    return Response(
        _SCRIPT,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


@router.get("/postmortems/{postmortem}/draft.yaml")
async def export_draft(postmortem: str, who: SignedIn, using: Using) -> Response:
    pm = await _postmortem(using, postmortem, who.person)
    draft, _ = await current_draft(using, pm)
    text = yaml.safe_dump(draft.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    name = f"{pm.incident.id}-draft.yaml".replace('"', "")
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/postmortems/{postmortem}/draft", response_class=HTMLResponse)
async def editor_page(request: Request, postmortem: str, who: SignedIn, using: Using) -> Response:
    pm = await _postmortem(using, postmortem, who.person)
    if (refused := _writer_refusal(using, pm, who)) is not None:
        return _editor(request, using, who, pm, None, 0, refused.detail, refused.status_code)
    draft, version = await current_draft(using, pm)
    collected = await _collected(using, pm, draft)
    return _editor(request, using, who, pm, draft, version, collected=collected)


class _Collected:
    """What the incident's sources gave: how each went, and the entries not yet decided."""

    def __init__(self, reports: list[SourceReport], rows: list[dict[str, str]], more: int) -> None:
        self.reports, self.rows, self.more = reports, rows, more


async def _collected(using: Services, pm: Postmortem, draft: Draft) -> _Collected:
    timeline = using.store.timeline
    reports = await asyncio.to_thread(timeline.reports, pm.id)
    events = await asyncio.to_thread(timeline.events, pm.id)
    proposed = proposals(events, draft.timeline)
    zone = using.policy.calendar.timezone
    rows = [timeline_row(entry, zone) for entry in proposed[:PROPOSALS_SHOWN]]
    return _Collected(reports, rows, max(0, len(proposed) - PROPOSALS_SHOWN))


def _editor(
    request: Request,
    using: Services,
    who: Viewer,
    pm: Postmortem,
    draft: Draft | None,
    version: int,
    problem: str = "",
    code: int = status.HTTP_200_OK,
    changes: list[str] | None = None,
    values: dict[str, Any] | None = None,
    collected: _Collected | None = None,
) -> HTMLResponse:
    zone = using.policy.calendar.timezone
    if values is None and draft is not None:
        values = _values(draft, zone)
    page = render_page(
        request,
        using,
        "draft.html.j2",
        who,
        pm=pm,
        values=values,
        version=version,
        problem=problem,
        changes=changes or [],
        refusals=live_problems(using, pm, draft) if draft is not None else [],
        kinds=TIMELINE_KINDS,
        criterion_kinds=CRITERION_KINDS,
        criterion_fields=CRITERION_FIELDS,
        priorities=["P0", "P1", "P2", "P3"],
        people=sorted(using.policy.people),
        teams=sorted(using.policy.teams),
        tags=using.policy.contributing_factor_tags,
        failure_classes=using.policy.failure_classes,
        local=local_times(using),
        collected=collected or _Collected([], [], 0),
        may_collect=pm.owner == who.person or using.policy.may_review(who.person),
    )
    page.status_code = code
    page.headers["Content-Security-Policy"] = EDITOR_CONTENT_SECURITY_POLICY
    return page


def _values(draft: Draft, zone: str) -> dict[str, Any]:
    return {
        "summary": draft.summary,
        "impact": draft.impact,
        "recovery_validation": draft.recovery_validation,
        "caused_by_change": draft.caused_by_change or "",
        "users_affected": "" if draft.users_affected is None else str(draft.users_affected),
        "detection_gaps": "\n".join(draft.detection_gaps),
        "recovery_steps": "\n".join(draft.recovery_steps),
        **form_rows(draft, zone),
    }


def _values_from_form(form: dict[str, str]) -> dict[str, Any]:
    """What the person typed, back in the fields, when it could not be saved."""
    rows: dict[str, dict[int, dict[str, str]]] = {"timeline": {}, "factor": {}, "item": {}}
    for key, value in form.items():
        kind, _, rest = key.partition("-")
        index, _, name = rest.partition("-")
        if kind in rows and index.isdigit() and name:
            rows[kind].setdefault(int(index), {})[name] = value
    blank_item = form_rows(Draft(action_items=[]), "UTC")["items"][-1]
    return {
        **{
            k: form.get(k, "")
            for k in (
                "summary",
                "impact",
                "recovery_validation",
                "caused_by_change",
                "users_affected",
            )
        },
        **{k: form.get(k, "") for k in ("detection_gaps", "recovery_steps")},
        "timeline": [rows["timeline"][i] for i in sorted(rows["timeline"])],
        "factors": [rows["factor"][i] for i in sorted(rows["factor"])],
        "items": [blank_item | rows["item"][i] for i in sorted(rows["item"])],
    }


@router.post("/postmortems/{postmortem}/draft")
async def save_draft(request: Request, postmortem: str, who: SignedIn, using: Using) -> Response:
    """Save (and with intent=submit, submit) the draft; JSON for the page's autosave."""
    wants_json = "application/json" in request.headers.get("accept", "")
    pm = await _postmortem(using, postmortem, who.person)
    # Decided from the cookie and the record, before the body is read.
    if (refused := _writer_refusal(using, pm, who)) is not None:
        if wants_json:
            return JSONResponse({"detail": refused.detail}, refused.status_code)
        return await _back(using, who, f"/postmortems/{pm.id}", "error", str(refused.detail))
    form = _fields(await request.form(max_fields=FORM_FIELDS + 10))
    _check_csrf(form, who)
    based_on = form.get("version", "0")
    if not based_on.isdigit() or len(based_on) > 9:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "version: not a version")
    outcome = await _save(using, pm, who, form, int(based_on))
    if wants_json:
        return JSONResponse(outcome.body, outcome.code)
    if outcome.code != status.HTTP_200_OK:  # the page again: with what the sources gave, too
        shown = outcome.draft or (await current_draft(using, pm))[0]
        collected = await _collected(using, pm, shown)
    if outcome.code == status.HTTP_409_CONFLICT:
        # Their text stays in the fields, now based on the latest version: saving again
        # replaces it knowingly, having seen what changed.
        latest = outcome.body["version"]
        return _editor(
            request, using, who, pm, outcome.draft, latest, outcome.body["detail"],
            outcome.code, outcome.body["changes"], _values_from_form(form), collected,
        )  # fmt: skip
    if outcome.code != status.HTTP_200_OK:
        return _editor(
            request, using, who, pm, outcome.draft, int(based_on), outcome.body["detail"],
            outcome.code, values=_values_from_form(form), collected=collected,
        )  # fmt: skip
    here = f"/postmortems/{pm.id}/draft"
    if form.get("intent") != "submit":
        return await _back(using, who, here, "done", f"Saved version {outcome.body['version']}.")
    assert outcome.draft is not None
    try:
        done = await answer(
            using.actions.submit_draft(pm.id, DraftSubmission(by=who.person, draft=outcome.draft))
        )
    except HTTPException as refused_submit:
        return await _back(using, who, here, "error", str(refused_submit.detail))
    state = done.state.value.replace("_", " ")
    message = f"Submitted draft version {done.draft_version}; the postmortem is now {state}."
    return await _back(using, who, f"/postmortems/{pm.id}", "done", message)


def _fields(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _check_csrf(form: dict[str, str], who: Viewer) -> None:
    """A post from one of our pages (the dashboard's rule): its CSRF token is the session's."""
    if not hmac.compare_digest(form.get("csrf", ""), who.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this form is stale; reload the page")


class _Outcome:
    def __init__(self, code: int, body: dict[str, Any], draft: Draft | None = None) -> None:
        self.code, self.body, self.draft = code, body, draft


async def _save(
    using: Services, pm: Postmortem, who: Viewer, form: dict[str, str], based_on: int
) -> _Outcome:
    zone = using.policy.calendar.timezone
    try:
        draft = draft_from_form(form, zone)
    except InvalidDraft as err:
        return _Outcome(422, {"detail": err.message, "problems": err.problems})
    past = draft_bounds(draft, today=_today(using))
    if not past and (
        cause := await asyncio.to_thread(
            using.store.deploys.cause_problem, pm.incident, draft.caused_by_change
        )
    ):
        past = [cause]
    if past:
        message = InvalidDraft("draft", past).message
        return _Outcome(422, {"detail": message, "problems": past}, draft)
    store = drafts(using)
    try:
        saved = await asyncio.to_thread(
            store.save,
            pm.id,
            based_on,
            draft.model_dump(mode="json"),
            who.person,
            using.clock(),
            pm.draft_version,
        )
    except StaleDraft as stale:
        return await _stale(store, pm, based_on, stale.latest, draft)
    if dropped := dropped_proposals(form):
        await asyncio.to_thread(using.store.timeline.drop, pm.id, dropped)
    problems = live_problems(using, pm, draft)
    body = {"version": saved.version, "saved_at": saved.saved_at.isoformat(), "problems": problems}
    return _Outcome(200, body, draft)


async def _stale(
    store: DraftStore, pm: Postmortem, based_on: int, latest: SavedDraft | None, mine: Draft
) -> _Outcome:
    """409: someone saved since; say who, when and what changed from the version this was on."""
    if latest is None:  # based on a version that was never saved
        detail = f"version: {based_on} is not a saved version of this draft; reload the page"
        return _Outcome(409, {"detail": detail, "version": 0, "changes": []}, mine)
    before = await asyncio.to_thread(store.version, pm.id, based_on) if based_on else None
    changes = draft_changes(
        Draft.model_validate(before.draft) if before else None, Draft.model_validate(latest.draft)
    )
    detail = (
        f"not saved: {latest.saved_by} saved version {latest.version} at "
        f"{latest.saved_at.isoformat(timespec='seconds')} after the version {based_on} you "
        f"started from ({'; '.join(changes) or 'no changes'}). Reload to see it; saving this "
        "page again replaces it with yours."
    )
    body = {"detail": detail, "version": latest.version, "saved_by": latest.saved_by}
    return _Outcome(409, body | {"changes": changes}, mine)


# --- the review ----------------------------------------------------------------------------------


def _may_comment(using: Services, pm: Postmortem, person: str) -> bool:
    return person == pm.owner or using.policy.may_review(person)


@router.get("/postmortems/{postmortem}/review", response_class=HTMLResponse)
async def review_page(request: Request, postmortem: str, who: SignedIn, using: Using) -> Response:
    pm = await _postmortem(using, postmortem, who.person)
    store = drafts(using)
    comments = await asyncio.to_thread(store.comments, pm.id)
    reviewer = using.policy.may_review(who.person) and who.person != pm.owner
    since: list[str] | None = None  # None: nothing seen before
    seen_version = 0
    if pm.draft is not None and reviewer:
        seen = await asyncio.to_thread(store.seen, pm.id, who.person)
        if seen is not None:
            seen_version = seen.draft_version
            before = Draft.model_validate(seen.draft)
            since = (
                [] if seen.draft_version == pm.draft_version else draft_changes(before, pm.draft)
            )
        current = Seen(draft_version=pm.draft_version, draft=pm.draft.model_dump(mode="json"))
        await asyncio.to_thread(store.mark_seen, pm.id, who.person, current)
    by_section: dict[str, list[Comment]] = {section: [] for section in SECTIONS}
    for comment in comments:
        by_section.setdefault(comment.section, []).append(comment)
    return render_page(
        request,
        using,
        "review.html.j2",
        who,
        pm=pm,
        draft=pm.draft,
        specs=pm.action_item_specs() if pm.draft else [],
        since=since,
        seen_version=seen_version,
        sections=SECTIONS,
        comments=by_section,
        may_comment=_may_comment(using, pm, who.person),
        may_review=reviewer and pm.state is PostmortemState.IN_REVIEW,
        local=local_times(using),
        communication=communication_review(pm.incident, pm.draft, using.policy)
        if pm.draft
        else None,
        communication_answered=communication_answers(pm.draft) if pm.draft else [],
    )


@router.post("/postmortems/{postmortem}/review/comment")
async def comment(request: Request, postmortem: str, who: SignedIn, using: Using) -> Response:
    pm = await _postmortem(using, postmortem, who.person)
    here = f"/postmortems/{pm.id}/review"
    if not _may_comment(using, pm, who.person):  # before the body is read
        raise HTTPException(403, f"{who.person} is neither the owner nor a reviewer")
    form = _fields(await request.form(max_fields=10))
    _check_csrf(form, who)
    section, text = form.get("section", ""), form.get("text", "").strip()
    check = Bounds()
    check.text("text", text, NOTE_CHARS, lines=True)
    if section not in SECTIONS:
        check.problems.append(f"section: '{section[:64]}' is not one of {', '.join(SECTIONS)}")
    if not text:
        check.problems.append("text: say something")
    if check.problems:
        return await _back(using, who, here, "error", "; ".join(check.problems))
    said = Comment(
        draft_version=pm.draft_version,
        section=section,
        author=who.person,
        text=text,
        at=using.clock(),
    )
    try:
        await asyncio.to_thread(drafts(using).comment, pm.id, said)
    except TooManyComments as full:
        return await _back(using, who, here, "error", f"comment: not kept: {full}")
    return await _back(using, who, here, "done", f"Comment on {section} kept.")


def changes_reason(reason: str, comments: list[Comment], version: int) -> str:
    """The reason the owner reads: the reviewer's words, then the comments on this version."""
    current = [c for c in comments if c.draft_version == version]
    if not current:
        return reason
    lines = [f"- {c.section} ({c.author}): {c.text}" for c in current]
    return "\n".join([reason, "", f"Comments on draft version {version}:", *lines])


@router.post("/postmortems/{postmortem}/review/request-changes")
async def request_changes(
    request: Request, postmortem: str, who: SignedIn, using: Using
) -> Response:
    pm = await _postmortem(using, postmortem, who.person)
    here = f"/postmortems/{pm.id}/review"
    if not using.policy.may_review(who.person):  # before the body is read
        raise HTTPException(403, f"{who.person} is not a reviewer in the policy")
    form = _fields(await request.form(max_fields=10))
    _check_csrf(form, who)
    comments = await asyncio.to_thread(drafts(using).comments, pm.id)
    reason = changes_reason(form.get("text", "").strip(), comments, pm.draft_version)
    try:
        done = await answer(
            using.actions.request_changes(pm.id, ChangeRequest(by=who.person, reason=reason))
        )
    except HTTPException as refused:
        return await _back(using, who, here, "error", str(refused.detail))
    state = done.state.value.replace("_", " ")
    return await _back(
        using, who, here, "done", f"Changes requested. The postmortem is now {state}."
    )


__all__ = ["EDITOR_CONTENT_SECURITY_POLICY", "router"]
