"""Every side effect, each an idempotent activity.

Only the activity *names* live here, so workflows can refer to activities without importing the
storage or any client library into the workflow sandbox.
"""

RECORD_POSTMORTEM = "record_postmortem"
RECORD_ACTION_ITEM = "record_action_item"
SEND_NOTICE = "send_notice"
ESCALATE_ITEM = "escalate_item"  # a ladder step: its record, then its notice
REQUEST_SLOT = "request_slot"
RELEASE_SLOT = "release_slot"
SEND_COUNCIL_DIGEST = "send_council_digest"
RUN_CHECK = "run_check"
OPEN_TICKET = "open_ticket"
COMMENT_TICKET = "comment_ticket"
UPDATE_TICKET_DUE = "update_ticket_due"
FIND_DONE_TICKETS = "find_done_tickets"
OPEN_ITEMS_FOR_TICKETS = "open_items_for_tickets"
NOTE_THEMES = "note_themes"
SLO_EVIDENCE = "slo_evidence"
REPORT_STUCK_WORK = "report_stuck_work"
COLLECT_TIMELINE = "collect_timeline"
PUBLISH_POSTMORTEM = "publish_postmortem"
IMPACT_FACTS = "impact_facts"
RECORD_DECISION = "record_decision"
CHECK_LIFT = "check_lift"
PRUNE_ALERT_EVENTS = "prune_alert_events"
