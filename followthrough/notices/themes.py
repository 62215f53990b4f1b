"""The council's email of a recurring theme, from the record as it stands: the notice activity
sends it when an approval reaches a theme, and the seeder writes it for the themes its approvals
reach."""

from __future__ import annotations

from followthrough.domain.notice import Notice
from followthrough.domain.policy import Policy
from followthrough.notices.render import (
    Links,
    RenderedEmail,
    ThemeIncident,
    ThemeItem,
    render_theme,
)
from followthrough.storage.records import RecordStore


def theme_email(
    records: RecordStore, policy: Policy, notice: Notice, links: Links
) -> RenderedEmail:
    """The theme's incidents and their open items, as the record has them now; an approved
    item whose workflow has not recorded it yet is read from its postmortem's draft."""
    assert notice.theme is not None
    incidents = []
    teams: set[str] = set()
    restricted = 0
    for pm_id in notice.theme.postmortem_ids:
        pm = records.postmortem(pm_id)
        if pm is None:
            continue
        if pm.restricted_to is not None:  # counted, not shown: the council is not its group
            restricted += 1
            continue
        if pm.team:
            teams.add(pm.team)
        teams.update(t for s in pm.incident.services if (t := policy.team_of_service(s)))
        items = []
        for spec in pm.action_item_specs():
            item = records.action_item(pm.action_item_id(spec.number))
            if item is None:
                items.append(
                    ThemeItem(
                        id=pm.action_item_id(spec.number),
                        title=spec.title,
                        owner=spec.owner,
                        team=spec.team,
                        due=spec.due,
                        state="open",
                    )
                )
            elif not item.resolved:
                items.append(
                    ThemeItem(
                        id=item.id,
                        title=item.spec.title,
                        owner=item.owner,
                        team=item.team,
                        due=item.due,
                        state=item.state.value,
                    )
                )
        incidents.append(ThemeIncident(pm=pm, open_items=items))
    return render_theme(notice, incidents, sorted(teams), links, restricted=restricted)
