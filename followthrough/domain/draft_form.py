"""The dashboard's draft editor as data: a form's fields to a draft, a draft to the form's rows,
what changed between two versions, and the draft a new postmortem starts with.

Pure: the editor's page and its autosave call these, and judge the result with draft_problems,
the very rules the workflow's submit update applies (no second copy of any rule here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from followthrough.domain import limits
from followthrough.domain.draft import (
    Draft,
    InvalidDraft,
    TimelineEntry,
    parse_draft,
    prefilled_timeline,
)
from followthrough.domain.draft_templates import templates_for
from followthrough.domain.incident import Incident
from followthrough.domain.policy import Policy

# Sections a reviewer comments on, in the order a draft reads.
SECTIONS = (
    "summary",
    "impact",
    "timeline",
    "contributing_factors",
    "detection_gaps",
    "recovery_steps",
    "recovery_validation",
    "action_items",
)
# The criterion fields the editor offers, per kind; numbers are read as numbers.
CRITERION_FIELDS = {
    "manual": ("description", "verifier", "role"),
    "ticket_resolved": ("description", "ticket"),
    "http_check": ("description", "url", "expect_status", "body_contains"),
    "prometheus_query": ("description", "query", "op", "threshold", "hold_for"),
    "alert_rule_present": ("description", "alert"),
}
CRITERION_KINDS = tuple(CRITERION_FIELDS)
_ALL_CRITERION_FIELDS = tuple(dict.fromkeys(f for fs in CRITERION_FIELDS.values() for f in fs))
_NUMBERS = {"expect_status", "threshold"}
_ITEM_FIELDS = ("title", "owner", "team", "due", "priority", "description")
_ROW = re.compile(r"(timeline|factor|item|proposed)-(\d{1,6})-([a-z_]+)")
# The collected events proposed on one page; the owner decides these, then sees the next ones.
PROPOSALS_SHOWN = 100
_LIMITS = {
    "timeline": limits.TIMELINE_ENTRIES,
    "factor": limits.LIST_ENTRIES,
    "item": limits.ACTION_ITEMS,
    "proposed": PROPOSALS_SHOWN,
}
# Where a collected entry came from: carried through the form in hidden fields.
ORIGIN_FIELDS = ("source", "source_id", "author", "link")
# A form has at most this many fields: the largest draft's rows times their fields, and more.
FORM_FIELDS = 4_000


def draft_from_form(form: Mapping[str, str], zone: str) -> Draft:
    """The draft the editor's fields describe; InvalidDraft names each field that is wrong.

    Blank rows are dropped; a timeline time without an offset is in the policy's time zone.
    """
    problems: list[str] = []
    if len(form) > FORM_FIELDS:
        raise InvalidDraft("draft", [f"form: {len(form)} fields; at most {FORM_FIELDS}"])
    rows: dict[str, dict[int, dict[str, str]]] = {
        "timeline": {},
        "factor": {},
        "item": {},
        "proposed": {},
    }
    for key, value in form.items():
        if (found := _ROW.fullmatch(key)) is None:
            continue
        kind, index, name = found.group(1), int(found.group(2)), found.group(3)
        if index >= _LIMITS[kind]:
            if value.strip():
                problems.append(f"{key}: at most {_LIMITS[kind]} rows")
            continue
        rows[kind].setdefault(index, {})[name] = value.strip()

    data: dict[str, Any] = {
        name: form.get(name, "").strip() for name in ("summary", "impact", "recovery_validation")
    }
    data["caused_by_change"] = form.get("caused_by_change", "").strip() or None
    for name in ("detection_gaps", "recovery_steps"):
        data[name] = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
    if users := form.get("users_affected", "").strip():
        if users.isascii() and users.isdigit() and len(users) <= 15:  # bounds judge the range
            data["users_affected"] = int(users)
        else:
            problems.append(f"users_affected: '{users[:20]}' is not a whole number of users")
    data["timeline"] = []
    kept = [row for _, row in _filled(rows["timeline"], ("at", "description"))]
    # Proposed entries the owner keeps join the timeline, once (the page may post them again).
    have = {(r.get("source"), r.get("source_id")) for r in kept if r.get("source_id")}
    for i in sorted(rows["proposed"]):
        row = rows["proposed"][i]
        if row.get("decision") == "keep" and (row.get("source"), row.get("source_id")) not in have:
            have.add((row.get("source"), row.get("source_id")))
            kept.append(row)
    for i, row in enumerate(kept):
        at = _moment(row.get("at", ""), zone)
        if at is None:
            problems.append(f"timeline[{i}].at: '{row.get('at', '')}' is not a date and time")
            continue
        entry = {
            "at": at,
            "kind": row.get("kind") or "note",
            "description": row.get("description", ""),
            **{name: row[name] for name in ORIGIN_FIELDS if row.get(name)},
        }
        data["timeline"].append(entry)
    data["contributing_factors"] = [
        {
            "description": row.get("description", ""),
            "tags": [t.strip() for t in row.get("tags", "").split(",") if t.strip()],
        }
        for _, row in _filled(rows["factor"], ("description", "tags"))
    ]
    data["action_items"] = [
        _item(i, row, problems)
        for i, row in _filled(rows["item"], (*_ITEM_FIELDS, "criterion_description", "objective"))
    ]
    if problems:
        raise InvalidDraft("draft", problems)
    return parse_draft(data)


def dropped_proposals(form: Mapping[str, str]) -> list[tuple[str, str]]:
    """The proposed entries the owner dropped: (source, source id) each."""
    rows: dict[str, dict[str, str]] = {}
    for key, value in form.items():
        found = _ROW.fullmatch(key)
        if found is not None and found.group(1) == "proposed":
            rows.setdefault(found.group(2), {})[found.group(3)] = value.strip()
    return [
        (row["source"], row["source_id"])
        for row in rows.values()
        if row.get("decision") == "drop" and row.get("source") and row.get("source_id")
    ][:PROPOSALS_SHOWN]


def _filled(
    rows: dict[int, dict[str, str]], fields: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]]:
    """The rows someone wrote in, in order, renumbered as the draft will number them."""
    kept = [rows[i] for i in sorted(rows) if any(rows[i].get(f) for f in fields)]
    return list(enumerate(kept))


def _moment(text: str, zone: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(zone))


def _item(i: int, row: dict[str, str], problems: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {f: row.get(f) or None for f in ("owner", "team", "priority")}
    item["title"] = row.get("title", "")
    item["description"] = row.get("description", "")
    if due := row.get("due"):
        try:
            item["due"] = date.fromisoformat(due)
        except ValueError:
            problems.append(f"action_items[{i}].due: '{due}' is not a date (YYYY-MM-DD)")
    kind = row.get("kind") or "manual"
    criterion: dict[str, Any] = {"kind": kind}
    for name in CRITERION_FIELDS.get(kind, _ALL_CRITERION_FIELDS):
        if value := row.get(f"criterion_{name}"):
            criterion[name] = _number(value) if name in _NUMBERS else value
    if len(criterion) > 1 or kind != "manual":
        item["acceptance_criterion"] = criterion
    if slo := row.get("slo"):
        item["slo_change"] = {"slo": slo, "change": row.get("slo_change") or "alerting"}
    if row.get("communication"):  # a checkbox: sent only when ticked
        item["communication"] = True
    if objective := row.get("objective"):
        item["objective"] = objective
    if row.get("this_sprint"):  # a checkbox too
        item["this_sprint"] = True
    if failure_class := row.get("removes_class"):
        item["removes_class"] = failure_class
    return item


def _number(text: str) -> Any:
    """A number when it is one; otherwise the text, for the criterion's rules to name."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def form_rows(draft: Draft, zone: str) -> dict[str, Any]:
    """The editor's rows for a draft, with room for more: what the page's fields show."""
    timeline = [timeline_row(e, zone) for e in draft.timeline]
    factors = [
        {"description": f.description, "tags": ", ".join(f.tags)}
        for f in draft.contributing_factors
    ]
    items = []
    for item in draft.action_items:
        written = item.acceptance_criterion
        criterion = (
            (written[0] if written else {}) if isinstance(written, list) else (written or {})
        )
        criterion = criterion if isinstance(criterion, dict) else {}
        row = {f: "" if getattr(item, f) is None else str(getattr(item, f)) for f in _ITEM_FIELDS}
        row["kind"] = str(criterion.get("kind", "manual"))
        for name in _ALL_CRITERION_FIELDS:
            value = criterion.get(name)
            row[f"criterion_{name}"] = "" if value is None else str(value)
        row["slo"] = item.slo_change.slo if item.slo_change else ""
        row["slo_change"] = item.slo_change.change if item.slo_change else "alerting"
        row["communication"] = "on" if item.communication else ""
        row["objective"] = item.objective or ""
        row["this_sprint"] = "on" if item.this_sprint else ""
        row["removes_class"] = item.removes_class or ""
        items.append(row)
    blank_item = {f: "" for f in _ITEM_FIELDS} | {
        "kind": "manual",
        "slo": "",
        "slo_change": "alerting",
        "communication": "",
        "objective": "",
        "this_sprint": "",
        "removes_class": "",
    }
    blank_item |= {f"criterion_{n}": "" for n in _ALL_CRITERION_FIELDS}
    return {
        "timeline": timeline + [{"at": "", "kind": "decision", "description": ""}] * 3,
        "factors": factors + [{"description": "", "tags": ""}] * 2,
        "items": [*items, blank_item],
    }


def timeline_row(entry: TimelineEntry, zone: str) -> dict[str, str]:
    """A timeline entry as the editor's fields: the time in the zone, and where it came from."""
    return {
        "at": entry.at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S"),
        "kind": entry.kind,
        "description": entry.description,
        **{name: getattr(entry, name) or "" for name in ORIGIN_FIELDS},
    }


def fresh_draft(incident: Incident, policy: Policy) -> Draft:
    """What a new draft starts with: the incident's milestones and the templates' suggestions."""
    suggested = [
        suggestion.model_dump(exclude_none=True)
        for _, template in templates_for(policy.templates, incident.severity, incident.services)
        for suggestion in template.suggested_action_items
    ]
    return Draft(
        timeline=prefilled_timeline(incident),
        action_items=[parse_draft({"action_items": [s]}).action_items[0] for s in suggested],
    )


def draft_changes(before: Draft | None, after: Draft) -> list[str]:
    """What changed from one version of a draft to another, section by section, in words."""
    if before is None:
        return ["everything: the first version"]
    changes = []
    for section in (*SECTIONS, "slo_impact"):
        if section == "action_items":
            continue
        if getattr(before, section) != getattr(after, section):
            changes.append(f"{section} changed")
    old = {i.title.strip(): i for i in before.action_items}
    new = {i.title.strip(): i for i in after.action_items}
    changes += [f"action item '{t}' added" for t in new if t not in old]
    changes += [f"action item '{t}' removed" for t in old if t not in new]
    changes += [f"action item '{t}' changed" for t in new if t in old and new[t] != old[t]]
    return changes
