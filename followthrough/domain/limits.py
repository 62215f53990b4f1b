"""What crosses the edge is bounded: every limit in one place, with its number.

The API, the dashboard, the CLI, webhooks and chat all refuse input past these limits with an
error naming the field, before anything reaches Temporal. A workflow must never be able to receive
something that makes its tasks fail forever: Temporal refuses any payload over 2 MB, so every
update's serialized input and every workflow's state stay far below that (the budgets below), and
long text is bounded rather than trusted.

The README's "Security and limits" section lists these numbers; keep the two in step.
"""

from __future__ import annotations

# Temporal's own hard limit on one payload (an update's input, an activity's input or result).
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024
